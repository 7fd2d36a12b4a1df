"""The SQLite catalog: datasets, snapshots, files, consumed segments, inverted and Bloom indexes."""

from ticklake.catalog.bloom import BloomFilter
from ticklake.catalog.errors import (
    CatalogCorrupt,
    CatalogError,
    CatalogLocked,
    CatalogMissing,
    CommitConflict,
    LeaseHeld,
    TicklakeError,
)
from ticklake.catalog.leases import Lease, hold_lease
from ticklake.catalog.pruning import PrunePlan, PruneStep, prune_files
from ticklake.catalog.records import (
    ColumnStats,
    Commit,
    ConsumedSegment,
    Dataset,
    DatasetSpec,
    LiveFile,
    LiveTotals,
    NewFile,
)
from ticklake.catalog.store import Catalog

__all__ = [
    "BloomFilter",
    "Catalog",
    "CatalogCorrupt",
    "CatalogError",
    "CatalogLocked",
    "CatalogMissing",
    "ColumnStats",
    "Commit",
    "CommitConflict",
    "ConsumedSegment",
    "Dataset",
    "DatasetSpec",
    "Lease",
    "LeaseHeld",
    "LiveFile",
    "LiveTotals",
    "NewFile",
    "PrunePlan",
    "PruneStep",
    "TicklakeError",
    "hold_lease",
    "prune_files",
]
