"""Reading an archived object by the byte ranges of the row groups a query can need.

An archived object is sorted by (contract_id, timestamp), so one contract's ticks sit in one or two
of its row groups. The catalog holds each archived object's footer, so a reader picks those row
groups from their statistics, exactly as the catalog prunes files (`may_match` on min/max of the
query's conditions), and fetches only their byte spans: one ranged GET per run of adjacent row
groups, and no request for the footer. pyarrow decodes the spans with the footer it is given; the
pages' CRC-32s (written by the archive) verify what arrived, and a read outside the fetched spans
raises instead of seeing zeros, so a row group is either read from its own bytes or not at all.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ticklake.catalog.pruning import Condition, may_match
from ticklake.errors import StorageError

PARTIAL_SHARE = 0.5  # ranges only when the row groups needed are at most this share of the object's bytes
SMALL = 2**20  # an object smaller is read whole: one GET of it costs about what a range does, and serves every later query
GAP = 64 * 1024  # spans closer than this are fetched as one range: a request costs more than the bytes between


@dataclass(frozen=True)
class RangePlan:
    """The row groups of one object a query can need, and the byte spans (start, length) that hold them."""

    row_groups: tuple[int, ...]
    spans: tuple[tuple[int, int], ...]
    conditions: tuple[Condition, ...] = ()  # those that picked the row groups: every row read must meet them
    metadata: pq.FileMetaData | None = field(default=None, compare=False, repr=False)  # the footer, parsed once

    @property
    def bytes(self) -> int:
        """Bytes the spans fetch."""
        return sum(length for _, length in self.spans)


def metadata_of(footer: bytes) -> pq.FileMetaData:
    """The FileMetaData of a footer (the file's last bytes), parsed without the file."""
    try:
        return pq.read_metadata(pa.BufferReader(b"PAR1" + footer))
    except (OSError, pa.ArrowException) as e:
        raise StorageError(f"a footer in the catalog cannot be parsed: {' '.join(str(e).split())[:160]}") from e


def plan_ranges(
    footer: bytes, size: int, conditions: Sequence[Condition], skip: Collection[str] = (), gap: int = GAP
) -> RangePlan | None:
    """What to fetch of an object of `size` bytes for `conditions` (columns in `skip` are not judged
    by row-group statistics); None: read it whole (smaller than `SMALL`, or nothing rules out enough
    of it). Spans at most
    `gap` bytes apart are fetched as one.

    A row group stays unless a condition on an integer column with min/max statistics rules it out;
    what is left is read by ranges only when it is at most `PARTIAL_SHARE` of the object.
    """
    judged = [c for c in conditions if c.column not in skip]
    if not judged or size < SMALL:
        return None
    metadata = metadata_of(footer)
    columns = {metadata.schema.column(i).path: i for i in range(metadata.num_columns)}
    kept: list[int] = []
    spans: list[tuple[int, int]] = []
    for g in range(metadata.num_row_groups):
        group = metadata.row_group(g)
        if not all(_may_hold(group, columns.get(c.column), c) for c in judged):
            continue
        kept.append(g)
        start, end = _span(group)
        if spans and start - (spans[-1][0] + spans[-1][1]) <= gap:
            spans[-1] = (spans[-1][0], end - spans[-1][0])
        else:
            spans.append((start, end - start))
    plan = RangePlan(tuple(kept), tuple(spans), tuple(judged), metadata)
    return plan if plan.bytes <= PARTIAL_SHARE * size else None


def read_row_groups(footer: bytes, size: int, plan: RangePlan, pieces: Sequence[bytes]) -> pa.Table:
    """The rows of `plan`'s row groups that meet its conditions on integer columns, decoded from
    `pieces` (the bytes of its spans, in order).

    A row that fails one of them could not be in the query's answer, as a file whose statistics
    fail one is not read at all; leaving it here spares DuckDB copying a row group's every row.
    """
    source = _Spans(size, list(zip((s for s, _ in plan.spans), pieces, strict=True)))
    try:
        metadata = plan.metadata or metadata_of(footer)
        parquet = pq.ParquetFile(source, metadata=metadata, page_checksum_verification=True)
        table = parquet.read_row_groups(list(plan.row_groups))
    except (OSError, pa.ArrowException) as e:
        raise StorageError(f"row groups {list(plan.row_groups)}: {' '.join(str(e).split())[:200]}") from e
    keep = [_meets(table[c.column], c) for c in plan.conditions if c.column in table.column_names]
    keep = [k for k in keep if k is not None]
    return table.filter(functools.reduce(pc.and_kleene, keep)) if keep else table


_COMPARE = {"=": pc.equal, "<": pc.less, "<=": pc.less_equal, ">": pc.greater, ">=": pc.greater_equal}


def _meets(column: pa.ChunkedArray, c: Condition) -> pa.ChunkedArray | None:
    """Which values of an integer column meet `c` (a null never does); None: not an integer column."""
    if not pa.types.is_integer(column.type):
        return None
    try:
        if c.op == "in":
            return pc.fill_null(pc.is_in(column, value_set=pa.array(list(c.values), column.type)), False)
        (value,) = c.values
        return pc.fill_null(_COMPARE[c.op](column, pa.scalar(value, column.type)), False)
    except (pa.ArrowException, TypeError, ValueError, KeyError):
        return None  # a value of another type than the column's: the query's own filter decides


def _may_hold(group: pq.RowGroupMetaData, column: int | None, c: Condition) -> bool:
    if column is None:
        return True  # a column this object lacks: DuckDB reads it as NULL, the filter decides
    chunk = group.column(column)
    stats = chunk.statistics
    # Integers only: a float's min/max leave NaN out (which DuckDB sorts above every number), and
    # strings are the catalog's inverted index's to judge.
    if stats is None or not stats.has_min_max or stats.logical_type.type not in ("INT", "NONE"):
        return True
    if chunk.physical_type not in ("INT32", "INT64"):
        return True
    return may_match(stats.min, stats.max, c.op, c.values)


def _span(group: pq.RowGroupMetaData) -> tuple[int, int]:
    """[start, end) of a row group's column chunks (dictionary page first, where there is one)."""
    starts, ends = [], []
    for i in range(group.num_columns):
        chunk = group.column(i)
        first = chunk.dictionary_page_offset if chunk.has_dictionary_page else chunk.data_page_offset
        first = min(first, chunk.data_page_offset) if first else chunk.data_page_offset
        starts.append(first)
        ends.append(first + chunk.total_compressed_size)
    return min(starts), max(ends)


class _Spans(io.RawIOBase):
    """A read-only file of `size` bytes of which only some spans are known; reading elsewhere raises."""

    def __init__(self, size: int, pieces: list[tuple[int, bytes]]) -> None:
        super().__init__()
        self._size, self._pieces, self._pos = size, pieces, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = base + offset
        return self._pos

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        want = min(len(buffer), self._size - self._pos)
        if want <= 0:
            return 0
        for start, data in self._pieces:
            if start <= self._pos and self._pos + want <= start + len(data):
                at = self._pos - start
                memoryview(buffer)[:want] = data[at : at + want]
                self._pos += want
                return want
        raise OSError(f"bytes {self._pos:,}-{self._pos + want - 1:,} were not fetched")
