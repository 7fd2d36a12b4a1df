"""The SQLite catalog: datasets, snapshots, files, consumed segments, inverted and Bloom indexes."""

from catalog.bloom import BloomFilter
from catalog.errors import CatalogCorrupt, CatalogError, CatalogLocked, CommitConflict, LeaseHeld, TicklakeError
from catalog.leases import Lease
from catalog.pruning import PrunePlan, PruneStep, prune_files
from catalog.records import ColumnStats, Commit, ConsumedSegment, Dataset, DatasetSpec, LiveFile, NewFile
from catalog.store import Catalog

__all__ = [
    "BloomFilter",
    "Catalog",
    "CatalogCorrupt",
    "CatalogError",
    "CatalogLocked",
    "ColumnStats",
    "Commit",
    "CommitConflict",
    "ConsumedSegment",
    "Dataset",
    "DatasetSpec",
    "Lease",
    "LeaseHeld",
    "LiveFile",
    "NewFile",
    "PrunePlan",
    "PruneStep",
    "TicklakeError",
    "prune_files",
]
