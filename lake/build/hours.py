"""An event hour as the build steps work on it: the partitions it spans, and the lease that lets one
worker at a time rebuild it (see `ticklake.catalog.leases`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ticklake.access import open_catalog
from ticklake.catalog import Lease, hold_lease
from ticklake.config import LakeConfig
from ticklake.storage.layout import hour_key, hour_partition, partition_path
from ticklake.ticks import TICK_TYPES


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
