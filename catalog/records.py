"""Plain records the catalog reads and writes; no SQL here.

A record read from a table names its fields after the table's columns, in select order, so its
select list is derived from the record (`columns`) and never written out by hand.
"""

from __future__ import annotations

import builtins
import json
from dataclasses import dataclass, field, fields
from functools import cached_property
from typing import Any

from ticklake.catalog.bloom import BloomFilter


@dataclass(frozen=True)
class DatasetSpec:
    """What a dataset looks like: where its files live, how they are partitioned and indexed."""

    name: str
    location: str
    partition_keys: tuple[str, ...]
    time_column: str
    columns: dict[str, str]
    indexed_columns: tuple[str, ...] = ()
    bloom_columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class Dataset:
    """A registered dataset."""

    dataset_id: int
    spec: DatasetSpec


@dataclass(frozen=True)
class ColumnStats:
    """Min/max/null count of one column in one file (min and max are None when all null)."""

    min_value: Any
    max_value: Any
    null_count: int


@dataclass(frozen=True)
class NewFile:
    """A data file written by a commit, with everything the catalog indexes about it."""

    path: str
    partition_path: str  # as written in the data path, e.g. 'tick_type=last/date=2022-01-07/hour=05'
    partition_values: dict[str, Any]
    rows: int
    bytes: int
    ts_min: int
    ts_max: int
    stats: dict[str, ColumnStats] = field(default_factory=dict)
    values: dict[str, dict[str, int]] = field(default_factory=dict)
    blooms: dict[str, BloomFilter] = field(default_factory=dict)
    sha256: str | None = None  # of the file as written
    hours: dict[str, int] = field(default_factory=dict)  # rows per event hour, when the partition holds no hour
    footer: builtins.bytes | None = None  # a cold object's Parquet footer (its last bytes), for ranged reads


@dataclass(frozen=True)
class LiveFile:
    """A data file as the catalog knows it: one row of ``files``."""

    file_id: int
    path: str
    partition_path: str
    # The column's JSON text; `partition_values` decodes it on first use (planning a full scan
    # never needs it, and a plan may hold 100,000 files).
    partition_values_json: str = field(metadata={"column": "partition_values"})
    rows: int
    bytes: int
    ts_min: int
    ts_max: int
    added_snapshot: int
    sha256: str | None = None  # of the file as written (None: recorded before checksums were kept)

    @cached_property
    def partition_values(self) -> dict[str, Any]:
        """Partition key -> value, as the commit recorded it."""
        values: dict[str, Any] = json.loads(self.partition_values_json)
        return values


@dataclass(frozen=True)
class ConsumedSegment:
    """A landing segment consumed by a commit, with its reconciled line counts: one row of ``segments``."""

    path: str
    bytes: int
    sha256: str
    hour: str
    lines: int
    rows_stored: int
    rows_quarantined: int


@dataclass(frozen=True)
class LiveTotals:
    """Files live in the current snapshot, over every dataset, and the rows and bytes they hold."""

    files: int
    rows: int
    bytes: int


@dataclass(frozen=True)
class Commit:
    """One atomic change: files added, files replaced, segments consumed.

    `replace_partitions` names the partitions the commit rewrites; the commit fails with
    CommitConflict unless the live files there are exactly `remove_file_ids` (what the
    writer read), so two writers can never leave two live files for one partition.
    """

    dataset_id: int
    operation: str
    add_files: tuple[NewFile, ...] = ()
    remove_file_ids: tuple[int, ...] = ()
    replace_partitions: tuple[str, ...] = ()
    consume_segments: tuple[ConsumedSegment, ...] = ()
    summary: dict[str, Any] = field(default_factory=dict)


def columns(record: type) -> str:
    """The select list that reads `record`: its fields in order, each named by its column.

    A field whose attribute differs from its column says so in ``metadata["column"]``; rows
    selected with this list bind to the record positionally, which keeps reading cheap.

    >>> columns(ConsumedSegment)
    'path, bytes, sha256, hour, lines, rows_stored, rows_quarantined'
    >>> columns(LiveFile).split(", ")[3]
    'partition_values'
    """
    return ", ".join(f.metadata.get("column", f.name) for f in fields(record))
