"""Consumed segments still retained in ``landing/_consumed/``: the record a lost data file, or a
lost catalog, is rebuilt from.

A retained segment's rows are what compaction stored from it: its valid lines whose timestamps
lie in its hour (the others were quarantined). Its content must still hash to what the catalog
recorded, or it is not the segment that was consumed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from ticklake.catalog import ConsumedSegment
from ticklake.landing.reading import read_segment
from ticklake.storage.files import read_bytes, sha256_hex
from ticklake.storage.layout import consumed_dir, hour_key


@dataclass(frozen=True)
class SegmentRows:
    """The rows a segment stores (ROW_SCHEMA, `tick_type` included, in line order) and its counts."""

    table: pa.Table
    lines: int
    quarantined: int
    sha256: str
    bytes: int

    def record(self, path: str, hour: int) -> ConsumedSegment:
        """The catalog's record of this segment consumed for `hour` under `path` (relative to the root)."""
        return ConsumedSegment(path, self.bytes, self.sha256, hour_key(hour), self.lines, self.table.num_rows, self.quarantined)


def retained_copy(root: Path, segment_path: str) -> Path:
    """Where a consumed segment (its path as recorded, relative to the root) waits out its retention.

    >>> retained_copy(Path("/lake"), "landing/ticks/date=2022-01-07/hour=05/w-000001.jsonl").as_posix()
    '/lake/landing/_consumed/ticks/date=2022-01-07/hour=05/w-000001.jsonl'
    """
    return consumed_dir(root) / Path(segment_path).relative_to("landing")


def recorded_path(root: Path, copy: Path) -> str:
    """The recorded path (relative to the root, where it was sealed) of a retained copy.

    >>> recorded_path(Path("/lake"), Path("/lake/landing/_consumed/ticks/date=2022-01-07/hour=05/w-000001.jsonl"))
    'landing/ticks/date=2022-01-07/hour=05/w-000001.jsonl'
    """
    return "landing/" + copy.relative_to(consumed_dir(root)).as_posix()


def read_segment_rows(path: Path, hour: int) -> SegmentRows:
    """Read a segment as compaction does (`ticklake.landing.reading.read_segment`)."""
    data = read_bytes(path)
    digest = sha256_hex(data)
    read = read_segment(path, data, digest, hour)
    return SegmentRows(read.table, read.lines, len(read.rejects), digest, len(data))


def hour_from_retained(root: Path, segments: list[ConsumedSegment], hour: int) -> pa.Table | str:
    """Every row the hour's consumed segments stored, in the order they were consumed, from their
    retained copies; or why that cannot be had (a copy purged or changed, counts that differ)."""
    if not segments:
        return "no segment was consumed for it"
    tables = []
    for s in segments:
        copy = retained_copy(root, s.path)
        if not copy.is_file():
            return f"segment {s.path} is no longer retained"
        rows = read_segment_rows(copy, hour)
        if rows.sha256 != s.sha256:
            return f"the retained copy of {s.path} is not the content consumed"
        if rows.table.num_rows != s.rows_stored:
            return f"segment {s.path} gives {rows.table.num_rows:,} rows, the catalog recorded {s.rows_stored:,}"
        tables.append(rows.table)
    return pa.concat_tables(tables)
