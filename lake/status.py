"""Catalog-only answers about the lake: "does contract X have data on day D?", lake status, and where its data starts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from ticklake.access import check_root, find_catalog, open_catalog
from ticklake.catalog import LiveTotals
from ticklake.catalog.changes import first_data
from ticklake.catalog.inventory import Presence, value_presence
from ticklake.config import LakeConfig
from ticklake.datasets import TICKS
from ticklake.errors import NotFoundError
from ticklake.landing.buffer import sealed_segments
from ticklake.storage.layout import hour_of, parse_hour
from ticklake.storage.publication import LocalTier, local_tier


def has_contract(config: LakeConfig, contract_id: int, day: date) -> Presence:
    """Rows of `contract_id` on `day` (UTC), from the catalog's inverted index; opens no data file."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    lo = int(start.timestamp()) * 1_000_000
    hi = int((start + timedelta(days=1)).timestamp()) * 1_000_000
    with open_catalog(config) as catalog:
        dataset = catalog.dataset(TICKS.name)
        if dataset is None:
            raise NotFoundError(f"lake {config.root}: dataset 'ticks' not registered")
        return value_presence(catalog, dataset, "contract_id", contract_id, lo, hi)


@dataclass(frozen=True)
class Status:
    """Counts that describe a lake at a glance."""

    snapshot: int
    files: int
    rows: int
    bytes: int
    pending_segments: int
    pending_bytes: int
    consumed_segments: int
    source: str = ""  # a remote lake (read through its published catalog): its location
    local_tier: LocalTier | None = None  # of a remote lake: live files on its writer's disk, not readable here


def lake_status(config: LakeConfig) -> Status:
    """Current snapshot, live files/rows/bytes, and what waits in the landing buffer.

    A root that is not there is no lake (NotFoundError), and data files without a catalog are
    refused (CatalogMissing), so that neither passes for an empty lake.
    """
    check_root(config, exists=True)
    pending = sealed_segments(config.root)
    snapshot = consumed = 0
    totals = LiveTotals(files=0, rows=0, bytes=0)
    catalog = find_catalog(config)
    local = None
    if catalog is not None:
        with catalog:
            snapshot = catalog.current_snapshot()
            totals = catalog.live_totals()
            consumed = catalog.consumed_segment_count()
            local = local_tier(catalog) if config.source else None
    pending_bytes = sum(s.bytes for s in pending)
    return Status(snapshot, totals.files, totals.rows, totals.bytes, len(pending), pending_bytes, consumed, config.source, local)


def first_hour(config: LakeConfig) -> int | None:
    """The earliest event hour the lake has ticks of: in a data file or a consumed segment the catalog
    recorded (since replaced or not), or in a sealed landing segment; None while it has none."""
    hours = [s.hour for s in sealed_segments(config.root)[:1]]  # sorted by hour
    catalog = find_catalog(config)
    if catalog is not None:
        with catalog:
            ticks = catalog.dataset(TICKS.name)
            if ticks is not None:
                ts_min, segment_hour = first_data(catalog, ticks.dataset_id)
                hours += [hour_of(ts_min)] if ts_min is not None else []
                hours += [parse_hour(segment_hour)] if segment_hour is not None else []
    return min(hours, default=None)
