"""Partition leases: one worker at a time rebuilds a dataset's event hour (see `catalog.leases`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ticklake.catalog import Catalog, Lease, hold_lease
from ticklake.config import LakeConfig
from ticklake.storage.layout import hour_key


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
        Catalog(config.catalog_path) as catalog,
        hold_lease(catalog, lease_name(dataset, hour), owner, ttl=ttl, wait=wait) as lease,
    ):
        yield lease
