"""Reading an archived object by the byte ranges of the row groups a query can need.

An archived object is sorted by (contract_id, timestamp), so one contract's ticks sit in one or two
of its row groups. The catalog holds each archived object's footer, so a reader picks those row
groups from their statistics, exactly as the catalog prunes files (`may_match` on min/max of the
query's conditions), and fetches only their byte spans: one ranged GET per run of adjacent row
groups, and no request for the footer.

The spans become a *slice*: a small Parquet file of their bytes and the object's footer cut down to
those row groups (fastparquet writes Parquet's thrift footer, which pyarrow cannot; the chunks'
offsets are moved to where the spans now sit). DuckDB reads a slice as it reads any file, and
applies the query's own filters. A slice is checked once, when fetched: every page's CRC-32
(written by the archive) is recomputed from its header (`ticklake.storage.pages`), so damaged page
bytes are never cached.
"""

from __future__ import annotations

import builtins
import functools
import importlib.machinery
import importlib.util
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ticklake.catalog.pruning import Condition, may_match
from ticklake.errors import StorageError
from ticklake.storage.pages import check_pages

PARTIAL_SHARE = 0.5  # ranges only when the row groups needed are at most this share of the object's bytes
SMALL = 2**20  # an object smaller is read whole: one GET of it costs about what a range does, and serves every later query
GAP = 64 * 1024  # spans closer than this are fetched as one range: a request costs more than the bytes between
MAGIC = b"PAR1"


@dataclass(frozen=True)
class RangePlan:
    """The row groups of one object a query can need, the byte spans (start, length) that hold
    them, and the footer of the slice made of those spans."""

    row_groups: tuple[int, ...]
    spans: tuple[tuple[int, int], ...]
    footer: bytes = field(default=b"", repr=False)
    chunks: tuple[tuple[int, int], ...] = field(default=(), repr=False)  # [start, end) of each column chunk read

    @property
    def bytes(self) -> int:
        """Bytes the spans fetch."""
        return sum(length for _, length in self.spans)

    @property
    def tail(self) -> builtins.bytes:
        """What follows the spans in the slice: its footer, the footer's length, the magic."""
        return self.footer + len(self.footer).to_bytes(4, "little") + MAGIC

    @property
    def slice_bytes(self) -> int:
        """The size of the slice file: the magic, the spans, the tail."""
        return len(MAGIC) + self.bytes + len(self.tail)


def metadata_of(footer: bytes) -> pq.FileMetaData:
    """The FileMetaData of a footer (the file's last bytes), parsed without the file."""
    try:
        return pq.read_metadata(pa.BufferReader(MAGIC + footer))
    except (OSError, pa.ArrowException) as e:
        raise StorageError(f"a footer in the catalog cannot be parsed: {' '.join(str(e).split())[:160]}") from e


def plan_ranges(
    footer: bytes, size: int, conditions: Sequence[Condition], skip: Collection[str] = (), gap: int = GAP
) -> RangePlan | None:
    """What to fetch of an object of `size` bytes for `conditions` (columns in `skip` are not judged
    by row-group statistics); None: read it whole (smaller than `SMALL`, or nothing rules out enough
    of it). Spans at most `gap` bytes apart are fetched as one.

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
    chunks: list[tuple[int, int]] = []
    for g in range(metadata.num_row_groups):
        group = metadata.row_group(g)
        if not all(_may_hold(group, columns.get(c.column), c) for c in judged):
            continue
        kept.append(g)
        own = _chunks(group)
        chunks += own
        start, end = min(s for s, _ in own), max(e for _, e in own)
        if spans and start - (spans[-1][0] + spans[-1][1]) <= gap:
            spans[-1] = (spans[-1][0], end - spans[-1][0])
        else:
            spans.append((start, end - start))
    if sum(length for _, length in spans) > PARTIAL_SHARE * size:
        return None
    return RangePlan(tuple(kept), tuple(spans), slice_footer(footer, kept, spans) if kept else b"", tuple(chunks))


def slice_footer(footer: bytes, row_groups: Sequence[int], spans: Sequence[tuple[int, int]]) -> bytes:
    """The footer of a slice: the object's, with only `row_groups`, each chunk's offsets moved from
    the object to the slice (its spans one after the other behind the magic), and no page index or
    Bloom filter (their bytes are not in the slice)."""
    cencoding = _thrift_codec()
    # plan_ranges had pyarrow parse this footer first: fastparquet's decoder prints, not raises, on damage.
    metadata: Any = cencoding.from_buffer(footer[: -4 - len(MAGIC)], "FileMetaData")

    groups = [metadata.row_groups[g] for g in row_groups]
    for group in groups:
        for chunk in group.columns:
            meta = chunk.meta_data
            meta.data_page_offset = _in_slice(spans, meta.data_page_offset)
            for name in ("dictionary_page_offset", "index_page_offset"):  # 0 from some writers: none
                setattr(meta, name, _in_slice(spans, getattr(meta, name)) if getattr(meta, name) else None)
            _clear(meta, "bloom_filter_offset", "bloom_filter_length")
            _clear(chunk, "column_index_offset", "column_index_length", "offset_index_offset", "offset_index_length")
            if chunk.file_offset:  # deprecated, unread by readers: where the chunk now starts
                chunk.file_offset = meta.dictionary_page_offset or meta.data_page_offset
        if group.file_offset:
            group.file_offset = _in_slice(spans, group.file_offset)
    metadata.row_groups = groups
    metadata.num_rows = sum(group.num_rows for group in groups)
    return bytes(metadata.to_bytes())


@functools.cache
def _thrift_codec() -> ModuleType:
    """fastparquet's thrift codec (a compiled module), loaded without running ``fastparquet/__init__``:
    that imports pandas and the rest of fastparquet (~0.6 s), which a query cutting a footer would
    wait for; the codec itself needs only numpy, which pyarrow has loaded already."""
    package = importlib.util.find_spec("fastparquet")
    for folder in (package.submodule_search_locations or []) if package else []:
        for binary in Path(folder).glob("cencoding.*"):
            if binary.suffix in (".so", ".pyd"):
                loader = importlib.machinery.ExtensionFileLoader("fastparquet.cencoding", str(binary))
                spec = importlib.util.spec_from_file_location("fastparquet.cencoding", binary, loader=loader)
                if spec is not None:
                    module = importlib.util.module_from_spec(spec)
                    loader.exec_module(module)
                    return module
    from fastparquet import cencoding  # noqa: PLC0415 - a layout this does not know: the usual import

    return cencoding


def _clear(thrift: Any, *fields: str) -> None:
    """Unset the optional `fields` of a thrift struct that fastparquet's Parquet schema knows."""
    for name in fields:
        try:
            setattr(thrift, name, None)
        except KeyError:
            pass  # a field newer than fastparquet's parquet.thrift: it cannot be in what fastparquet read


def verify_slice(path: Path, plan: RangePlan) -> None:
    """Check the CRC-32 of every page of the slice of `plan` at `path` (a StorageError names the damage)."""
    data = path.read_bytes()
    for start, end in plan.chunks:
        try:
            check_pages(data, _in_slice(plan.spans, start), _in_slice(plan.spans, end - 1) + 1)
        except StorageError as e:
            raise StorageError(f"the column chunk at byte {start:,}: {e}") from e


def _in_slice(spans: Sequence[tuple[int, int]], offset: int) -> int:
    """Where byte `offset` of the object sits in the slice of `spans` (behind the magic)."""
    at = len(MAGIC)
    for start, length in spans:
        if start <= offset < start + length:
            return at + offset - start
        at += length
    raise StorageError(f"byte {offset:,} of a row group lies outside the spans fetched")


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


def _chunks(group: pq.RowGroupMetaData) -> list[tuple[int, int]]:
    """[start, end) of each of a row group's column chunks (dictionary page first, where there is one)."""
    out = []
    for i in range(group.num_columns):
        chunk = group.column(i)
        first = chunk.dictionary_page_offset if chunk.has_dictionary_page else chunk.data_page_offset
        first = min(first, chunk.data_page_offset) if first else chunk.data_page_offset
        out.append((first, first + chunk.total_compressed_size))
    return out
