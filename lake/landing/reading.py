"""Reading a sealed segment into the rows compaction stores: its valid lines whose timestamps lie
in the segment's hour; every other line is a reject with its reason.

One rule for every reader of segments: compaction, and repair or a catalog rebuild working from
the retained copies.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ticklake.landing.jsonl import LINE, Lines, Parsed, Reject, parse_jsonl
from ticklake.landing.sidecar import read_sidecar
from ticklake.storage.layout import HOUR_US, hour_key


@dataclass(frozen=True)
class SegmentRead:
    """A segment's stored rows (ROW_SCHEMA, in line order), its rejects and line count, and
    whether the rows came from its sidecar."""

    table: pa.Table
    rejects: list[Reject]
    lines: int
    from_sidecar: bool


def read_segment(path: Path, data: bytes, digest: str, hour: int, parse_threads: bool | None = None) -> SegmentRead:
    """The rows of segment `path` (content `data`, hash `digest`) that belong to `hour`.

    Rows come from the segment's sidecar when ingest left one bound to this exact content
    (every line valid, parsed once already), otherwise from parsing the JSONL.
    """
    rows = read_sidecar(path, digest, len(data), Lines(data).count)
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]  # a byte-order mark some producers write first, as ingest allows
    lines = Lines(data)
    if rows is not None:
        parsed = Parsed(rows.append_column(LINE, pa.array(np.arange(rows.num_rows, dtype=np.int64))), [], lines, 0)
    else:
        parsed = parse_jsonl(data, use_threads=parse_threads, lines=lines)
    table = parsed.table
    rejects = list(parsed.rejects)
    hours = pc.divide(pc.cast(table.column("timestamp"), pa.int64()), HOUR_US)
    inside = pc.equal(hours, hour)
    if not pc.all(inside).as_py():
        # A producer routed a tick into the wrong hour folder: keep it in quarantine, where
        # `ticklake ingest` can re-route the raw line, rather than store it in the wrong partition.
        outside = pc.filter(table.column(LINE), pc.invert(inside)).to_pylist()
        stamps = pc.filter(table.column("timestamp"), pc.invert(inside)).to_pylist()
        for i, stamp in zip(outside, stamps, strict=True):
            message = f"field 'timestamp' {stamp.isoformat()} is outside the segment's hour {hour_key(hour)}"
            rejects.append(Reject(parsed.first_line + i, "wrong_hour", "timestamp", message, parsed.lines[i]))
        table = table.filter(inside)
        rejects.sort(key=lambda r: r.line)
    return SegmentRead(table.drop_columns([LINE]), rejects, parsed.rows_in, rows is not None)
