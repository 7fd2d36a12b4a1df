"""An event hour as the build steps work on it: the partitions it spans, the lease that lets one
worker at a time rebuild it (see `ticklake.catalog.leases`), and running a step over many hours at once."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

from ticklake.access import open_catalog
from ticklake.catalog import Lease, hold_lease
from ticklake.config import LakeConfig
from ticklake.storage.layout import hour_key, hour_partition, partition_path
from ticklake.ticks import TICK_TYPES

R = TypeVar("R")


def tick_partitions(hour: int) -> dict[str, dict[str, object]]:
    """The ticks partitions of an event hour, one per tick type.

    >>> tick_partitions(455981)["last"]
    {'tick_type': 'last', 'date': '2022-01-07', 'hour': 5}
    """
    return {t: {"tick_type": t, **hour_partition(hour)} for t in TICK_TYPES}


def tick_partition_paths(hour: int) -> list[str]:
    """The Hive paths of `tick_partitions`.

    >>> tick_partition_paths(455981)[0]
    'tick_type=last/date=2022-01-07/hour=05'
    """
    return [partition_path(p) for p in tick_partitions(hour).values()]


def lease_name(dataset: str, hour: int) -> str:
    """The lease that guards one hour of a dataset.

    >>> lease_name("ticks", 455981)
    'ticks/2022-01-07T05'
    """
    return f"{dataset}/{hour_key(hour)}"


@contextmanager
def partition_lease(
    config: LakeConfig, dataset: str, hour: int, owner: str, *, wait: float = 0.0, ttl: float = 60.0
) -> Iterator[Lease]:
    """Hold the lease of one hour of `dataset` for a ``with`` block; LeaseHeld if it stays taken past `wait`."""
    with (
        open_catalog(config, create=True) as catalog,
        hold_lease(catalog, lease_name(dataset, hour), owner, ttl=ttl, wait=wait) as lease,
    ):
        yield lease


def hour_workers(config: LakeConfig, hours: int) -> int:
    """How many hours to build at once: ``threads`` (default one per core), never more than there are hours.

    >>> hour_workers(LakeConfig(threads=4), 2)
    2
    """
    return max(1, min(hours, config.threads or os.cpu_count() or 1))


def each_hour(
    hours: Sequence[int], build: Callable[[int], R], *, workers: int, done: Callable[[R | Exception], None] | None = None
) -> list[R | Exception]:
    """`build(hour)` for every hour, `workers` at a time; each hour's result or the exception it raised,
    in the order of `hours` (`done` sees each in that order, as soon as it is known).

    Hours are independent, so one hour's failure is that hour's outcome and never stops the others
    (their commits stand). Threads, not processes: the work is in pyarrow, DuckDB and SQLite, which
    release the GIL, and a thread needs no imports and no pickling of results.

    >>> each_hour([1, 0, 2], lambda h: 10 // h, workers=2)
    [10, ZeroDivisionError('integer division or modulo by zero'), 5]
    """

    def attempt(hour: int) -> R | Exception:
        try:
            return build(hour)
        except Exception as e:  # the hour's outcome: the caller raises or reports it
            return e

    outcomes: list[R | Exception] = []
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hour") as pool:
        for outcome in pool.map(attempt, hours):
            outcomes.append(outcome)
            if done is not None:
                done(outcome)
    return outcomes
