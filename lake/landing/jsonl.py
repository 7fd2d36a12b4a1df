"""Parsing landing JSONL into Arrow: a vectorised fast path, with the per-line validator as judge.

pyarrow's JSON reader parses whole blocks in C++; when a block fails (bad JSON, a wrong
type, an unknown field) it is bisected until the failing lines are found, and only those
go through `ticklake.ticks.decode_line`, which decides and names the reason. Rows the fast
path accepts pass the same rules, checked column-wise, so both paths agree on every line.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from ticklake.ticks import (
    LANDING_SCHEMA,
    MAX_US,
    MIN_US,
    NUMBER_FIELDS,
    ROW_SCHEMA,
    SIZE_FIELDS,
    TICK_TYPES,
    TIMESTAMP,
    Invalid,
    decode_line,
)

LINE = "_line"  # 0-based index of a row's line in `Parsed.lines`
_SMALL = 32  # below this many lines a failing block is judged line by line
_SPACE = b" \t\r"
# A line the fast path must not see: blank, or not starting with "{" (pyarrow's reader crashes
# on a bare `null` line), found by one scan; only then are lines looked at one by one.
_ODD_LINE = re.compile(rb"\n[ \t\r]*[^{ \t\r]")
# pyarrow passes unpaired UTF-16 surrogate escapes through; Python's json decodes them exactly.
_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")


def _raw_schema(ts_type: pa.DataType) -> pa.Schema:
    """The landing fields as the JSON reader reads them, with the timestamp read as `ts_type`."""
    return LANDING_SCHEMA.set(LANDING_SCHEMA.get_field_index("timestamp"), pa.field("timestamp", ts_type))


# Timestamps parsed by the reader itself (ISO text with an offset, or naive = UTC) skip a string
# column per block; epoch numbers or odd text fall back to reading them as strings and casting.
_TYPED_OPTIONS = pj.ParseOptions(explicit_schema=_raw_schema(TIMESTAMP), unexpected_field_behavior="error")
_ISO_OPTIONS = pj.ParseOptions(explicit_schema=_raw_schema(pa.string()), unexpected_field_behavior="error")
_EPOCH_OPTIONS = pj.ParseOptions(explicit_schema=_raw_schema(pa.float64()), unexpected_field_behavior="error")
_OUT_SCHEMA = ROW_SCHEMA.append(pa.field(LINE, pa.int64()))


@dataclass
class Reject:
    """One rejected line: where it was, why, and its raw bytes."""

    line: int
    kind: str
    field: str | None
    message: str
    raw: bytes


class Lines:
    """The lines of a block of bytes, split only when a caller needs them (most blocks never do)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.count = data.count(b"\n") + (0 if not data or data.endswith(b"\n") else 1)
        self._split: list[bytes] | None = None

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, i: int) -> bytes:
        return self.split()[i]

    def split(self) -> list[bytes]:
        """Every line, without its line break."""
        if self._split is None:
            self._split = self.data.split(b"\n")
            if len(self._split) > self.count:
                self._split.pop()
        return self._split


@dataclass
class Parsed:
    """Valid rows (ROW_SCHEMA plus `_line`, in line order) and the rejected lines of one block of JSONL."""

    table: pa.Table
    rejects: list[Reject]
    lines: Lines
    blank: int
    first_line: int = 1
    stats: dict[str, int] = field(default_factory=dict)

    @property
    def rows_in(self) -> int:
        """Non-blank lines: every one is stored or rejected."""
        return self.table.num_rows + len(self.rejects)


def parse_jsonl(data: bytes, *, first_line: int = 1, use_threads: bool | None = None, lines: Lines | None = None) -> Parsed:
    """Parse and validate JSONL bytes; line numbers in rejects start at `first_line`.

    `use_threads` defaults to using threads only when more than one core is available;
    `lines` is `Lines(data)` when the caller has it already.

    >>> p = parse_jsonl(b'{"timestamp":"2022-01-07T05:00:00Z","contract_id":7,"tick_type":"mid_point","price":1.5}\\n[1]\\n')
    >>> p.table.num_rows, [(r.line, r.kind) for r in p.rejects]
    (1, [(2, 'not_an_object')])
    """
    lines = Lines(data) if lines is None else lines
    threads = pa.cpu_count() > 1 if use_threads is None else use_threads
    state = _State(lines, first_line, threads)
    keep: Sequence[int]
    if _is_plain(data):
        keep, block, blank = range(lines.count), data, 0
    else:
        keep, slow, blank = _screen(lines)
        block = None
        for i in slow:
            state.judge(i)
    state.parse(keep, block)
    rejects = sorted(state.rejects, key=lambda r: r.line)
    return Parsed(state.table(), rejects, lines, blank, first_line, state.stats)


def _is_plain(data: bytes) -> bool:
    """True when every line is an object-looking, valid UTF-8 line without surrogate escapes (one scan each)."""
    if not data.lstrip(_SPACE).startswith(b"{") or _ODD_LINE.search(data):
        return False
    last = data[data.rfind(b"\n", 0, len(data) - 1) + 1 :]
    if not last.strip(_SPACE):  # a blank last line
        return False
    if b"\\" in data and _SURROGATE.search(data):  # one memchr usually settles it
        return False
    if not data.isascii():
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            return False
    return True


def _screen(lines: Lines) -> tuple[list[int], list[int], int]:
    """Line indexes for the fast path, line indexes for the per-line judge, and the blank count."""
    keep: list[int] = []
    slow: list[int] = []
    blank = 0
    for i, line in enumerate(lines.split()):
        text = line.strip(_SPACE)
        if not text:
            blank += 1
        elif text[:1] != b"{" or _SURROGATE.search(line) or not _is_utf8(line):
            slow.append(i)
        else:
            keep.append(i)
    return keep, slow, blank


def _is_utf8(line: bytes) -> bool:
    if line.isascii():
        return True
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class _State:
    def __init__(self, lines: Lines, first_line: int, use_threads: bool) -> None:
        self.lines = lines
        self.first_line = first_line
        self.use_threads = use_threads
        self.pieces: list[pa.Table] = []
        self.slow_rows: list[dict[str, Any]] = []
        self.rejects: list[Reject] = []
        self.stats = {"fast_rows": 0, "slow_lines": 0, "bisections": 0}

    def parse(self, keep: Sequence[int], block: bytes | None) -> None:
        """Parse lines `keep` (or the whole `block`) on the fast path, bisecting a block that fails."""
        if not keep:
            return
        if block is None:
            split = self.lines.split()
            block = b"\n".join([split[i] for i in keep])
        try:
            table = self._fast(block, len(keep))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, UnicodeDecodeError, ValueError):
            if len(keep) <= _SMALL:
                for i in keep:
                    self.judge(i)
                return
            self.stats["bisections"] += 1
            mid = len(keep) // 2
            self.parse(keep[:mid], None)
            self.parse(keep[mid:], None)
            return
        table = table.combine_chunks()
        if isinstance(keep, range):
            index = pa.array(np.arange(keep.start, keep.stop, dtype=np.int64))
        else:
            index = pa.array(keep, pa.int64())
        if not _all_valid(table) and not pc.all(ok := _valid_mask(table)).as_py():
            for i in pc.filter(index, pc.invert(ok)).to_pylist():
                self.judge(i)
            table = table.filter(ok)
            index = index.filter(ok)
        self.stats["fast_rows"] += table.num_rows
        self.pieces.append(table.append_column(LINE, index))

    def _fast(self, block: bytes, expected: int) -> pa.Table:
        read = pj.ReadOptions(use_threads=self.use_threads, block_size=1 << 22)
        try:
            raw = pj.read_json(pa.BufferReader(block), read_options=read, parse_options=_TYPED_OPTIONS)
            stamps = raw.column("timestamp")
        except pa.ArrowInvalid:
            raw, stamps = self._fast_untyped(block, read)
        if raw.num_rows != expected:
            raise ValueError("row count differs from line count")
        columns = [stamps, *(raw.column(name) for name in ROW_SCHEMA.names[1:-1])]
        columns.append(pa.nulls(raw.num_rows, pa.string()))
        return pa.Table.from_arrays(columns, schema=ROW_SCHEMA)

    def _fast_untyped(self, block: bytes, read: pj.ReadOptions) -> tuple[pa.Table, pa.ChunkedArray]:
        """Read timestamps as text (then cast) or as epoch seconds, for blocks the typed read refused."""
        try:
            raw = pj.read_json(pa.BufferReader(block), read_options=read, parse_options=_ISO_OPTIONS)
            ts = raw.column("timestamp")
            try:
                stamps = pc.cast(ts, TIMESTAMP)
            except pa.ArrowInvalid:
                stamps = pc.cast(pc.cast(ts, pa.timestamp("us")), TIMESTAMP)  # naive text means UTC
        except pa.ArrowInvalid as e:
            if "changed from string to number" not in str(e):
                raise
            raw = pj.read_json(pa.BufferReader(block), read_options=read, parse_options=_EPOCH_OPTIONS)
            seconds = raw.column("timestamp")
            micros = pc.round(pc.multiply(seconds, 1_000_000.0))
            stamps = pc.cast(pc.cast(micros, pa.int64()), TIMESTAMP)
        return raw, stamps

    def judge(self, i: int) -> None:
        """Send line `i` to the per-line validator: a row or a reject with its reason."""
        self.stats["slow_lines"] += 1
        raw = self.lines[i]
        try:
            row = decode_line(raw)
        except Invalid as e:
            self.rejects.append(Reject(self.first_line + i, e.kind, e.field, e.message, raw))
            return
        row[LINE] = i
        self.slow_rows.append(row)

    def table(self) -> pa.Table:
        """Every accepted row, fast and slow path together, in line order."""
        pieces = list(self.pieces)
        if self.slow_rows:
            self.slow_rows.sort(key=lambda r: r[LINE])
            arrays = {name: [r[name] for r in self.slow_rows] for name in _OUT_SCHEMA.names}
            stamps = pa.array(arrays["timestamp"], pa.int64()).cast(TIMESTAMP)
            cols = [stamps] + [pa.array(arrays[f.name], f.type) for f in list(_OUT_SCHEMA)[1:]]
            pieces.append(pa.Table.from_arrays(cols, schema=_OUT_SCHEMA))
        if not pieces:
            return _OUT_SCHEMA.empty_table()
        table = pa.concat_tables(pieces)
        if len(pieces) > 1:
            table = table.take(pc.sort_indices(table, [(LINE, "ascending")]))
        return table


def _all_valid(t: pa.Table) -> bool:
    """True when every row passes `_valid_mask`, decided from a few aggregates (the usual block).

    Aggregates cost a fraction of building the row mask; False only means "build the mask".
    """
    ts, contract, tick, price = (t.column(n) for n in ("timestamp", "contract_id", "tick_type", "price"))
    if ts.null_count or contract.null_count or tick.null_count or pc.list_flatten(t.column("conditions")).null_count:
        return False
    bounds, ids = pc.min_max(pc.cast(ts, pa.int64())).as_py(), pc.min_max(contract).as_py()
    if not (bounds["min"] >= MIN_US and bounds["max"] < MAX_US and ids["min"] > 0):
        return False
    if not set(pc.unique(tick).to_pylist()) <= set(TICK_TYPES):
        return False
    for name in NUMBER_FIELDS:
        col = t.column(name)
        if col.null_count == len(col):
            continue
        if not math.isfinite(pc.sum(col).as_py()):  # NaN and infinities make the sum non-finite
            return False
        if name in SIZE_FIELDS and pc.min(col).as_py() < 0:
            return False
    quotes = pc.equal(tick, "bid_ask")
    if price.null_count and not pc.all(pc.or_(quotes, pc.is_valid(price))).as_py():
        return False
    if not pc.any(quotes).as_py():
        return True
    sides = pc.or_(pc.is_valid(t.column("bid_price")), pc.is_valid(t.column("ask_price")))
    return bool(pc.all(pc.or_(pc.invert(quotes), sides)).as_py())


def _valid_mask(t: pa.Table) -> pa.ChunkedArray:
    """Rows that pass every rule of `ticklake.ticks.validate` (False where it would reject)."""
    ts = pc.cast(t.column("timestamp"), pa.int64())
    ok = pc.and_kleene(pc.is_valid(ts), pc.is_valid(t.column("contract_id")))
    ok = pc.and_(ok, pc.fill_null(pc.and_(pc.greater_equal(ts, MIN_US), pc.less(ts, MAX_US)), False))
    ok = pc.and_(ok, pc.fill_null(pc.greater(t.column("contract_id"), 0), False))
    tick = t.column("tick_type")
    ok = pc.and_(ok, pc.fill_null(pc.is_in(tick, pa.array(TICK_TYPES)), False))
    for name in NUMBER_FIELDS:
        col = t.column(name)
        ok = pc.and_(ok, pc.fill_null(pc.is_finite(col), True))
        if name in SIZE_FIELDS:
            ok = pc.and_(ok, pc.fill_null(pc.greater_equal(col, 0.0), True))
    conditions = t.column("conditions")
    if conditions.null_count < len(conditions):
        items = pc.list_flatten(conditions)
        if items.null_count:  # a null inside the list is not a string: the per-line judge rejects it
            parents = pc.filter(pc.list_parent_indices(conditions), pc.is_null(items))
            bad = np.zeros(len(conditions), dtype=bool)
            bad[parents.to_numpy()] = True
            ok = pc.and_(ok, pa.array(~bad))
    needs_price = pc.fill_null(pc.is_in(tick, pa.array(["last", "mid_point"])), False)
    ok = pc.and_(ok, pc.or_(pc.invert(needs_price), pc.is_valid(t.column("price"))))
    is_quote = pc.fill_null(pc.equal(tick, "bid_ask"), False)
    has_side = pc.or_(pc.is_valid(t.column("bid_price")), pc.is_valid(t.column("ask_price")))
    return pc.and_(ok, pc.or_(pc.invert(is_quote), has_side))
