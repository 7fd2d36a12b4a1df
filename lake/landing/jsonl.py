"""Parsing landing JSONL into Arrow: a vectorised fast path, with the per-line validator as judge.

pyarrow's JSON reader parses whole blocks in C++; when a block fails (bad JSON, a wrong
type) it is bisected until the failing lines are found, and only those go through
`ticklake.ticks.decode_line`, which decides and names the reason. Rows the fast path accepts
pass the same rules, checked column-wise, so both paths agree on every line.

A block with unknown fields is read again with pyarrow ignoring them, and only the lines that
carry more than the known fields get their `extra` built (`ticklake.landing.extras`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from ticklake.landing.extras import Quotes, decode_all, extra_of, last_member
from ticklake.landing.rules import all_valid, valid_mask
from ticklake.ticks import (
    LANDING_SCHEMA,
    ROW_SCHEMA,
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


@dataclass(frozen=True)
class _Reading:
    """The reader's options for each way of reading timestamps, with one behaviour for unknown fields."""

    typed: pj.ParseOptions
    iso: pj.ParseOptions
    epoch: pj.ParseOptions


def _reading(unexpected: str) -> _Reading:
    # Timestamps parsed by the reader itself (ISO text with an offset, or naive = UTC) skip a string
    # column per block; epoch numbers or odd text fall back to reading them as strings and casting.
    def options(ts_type: pa.DataType) -> pj.ParseOptions:
        return pj.ParseOptions(explicit_schema=_raw_schema(ts_type), unexpected_field_behavior=unexpected)

    return _Reading(options(TIMESTAMP), options(pa.string()), options(pa.float64()))


# Strict first: a block it reads has no unknown field (and no known one twice), so no line has an
# `extra`. Lenient ("ignore", never "infer": inferring types of deeply nested values crashes pyarrow).
_STRICT = _reading("error")
_LENIENT = _reading("ignore")
_UNEXPECTED = "unexpected field"
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
        self.stats = {"fast_rows": 0, "slow_lines": 0, "bisections": 0, "extra_lines": 0}

    def parse(self, keep: Sequence[int], block: bytes | None) -> None:
        """Parse lines `keep` (or the whole `block`) on the fast path, bisecting a block that fails."""
        if not keep:
            return
        if block is None:
            split = self.lines.split()
            block = b"\n".join([split[i] for i in keep])
        try:
            table, quotes = self._fast(block, len(keep))
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
        if not all_valid(table) and not pc.all(ok := valid_mask(table)).as_py():
            for i in pc.filter(index, pc.invert(ok)).to_pylist():
                self.judge(i)
            table, index = table.filter(ok), index.filter(ok)
            if quotes is not None:
                quotes = quotes.filter(ok.combine_chunks().to_numpy(zero_copy_only=False))
        if quotes is not None:
            table, index = self._add_extra(table, index, quotes)
        self.stats["fast_rows"] += table.num_rows
        self.pieces.append(table.append_column(LINE, index))

    def _fast(self, block: bytes, expected: int) -> tuple[pa.Table, Quotes | None]:
        """The rows of a block (`extra` null), and the quote counts of its lines when some hold more
        than their known fields."""
        read = pj.ReadOptions(use_threads=self.use_threads, block_size=1 << 22)
        quotes = None
        try:
            raw, stamps, _ = _read(block, read, _STRICT)
        except pa.ArrowInvalid as e:
            if _UNEXPECTED not in str(e):
                raise
            raw, stamps, text_stamps = _read(block, read, _LENIENT)
            if raw.num_rows == expected:
                quotes = Quotes.of(raw, block, text_stamps)
        if raw.num_rows != expected:
            raise ValueError("row count differs from line count")
        columns = [stamps, *(raw.column(name) for name in ROW_SCHEMA.names[1:-1])]
        columns.append(pa.nulls(raw.num_rows, pa.string()))
        return pa.Table.from_arrays(columns, schema=ROW_SCHEMA), quotes

    def _add_extra(self, table: pa.Table, index: pa.Array, quotes: Quotes) -> tuple[pa.Table, pa.Array]:
        """Fill in `extra` of the rows whose lines hold more strings than their known fields; a line
        Python's json reads otherwise than the quotes say, or that breaks a rule, goes to the judge."""
        flagged = quotes.flagged()
        self.stats["extra_lines"] += len(flagged)
        if not len(flagged):
            return table, index
        lines = index.to_numpy()
        split = self.lines.split()
        extras: list[str | None] = [None] * table.num_rows
        settled = np.zeros(len(flagged), dtype=bool)
        # Usually the one unknown field is the last, and written as `extra` writes it: its text is
        # taken as it is when the quotes before it are exactly the known fields' (see `ticklake.landing.extras.last_member`).
        known_quotes = (2 * quotes.strings[flagged]).tolist()
        for j, (r, i) in enumerate(zip(flagged.tolist(), lines[flagged].tolist(), strict=True)):
            text = last_member(split[i], known_quotes[j])
            if text is not None:
                extras[r] = text
                settled[j] = True
        rest = np.flatnonzero(~settled)
        decoded = [extra_of(obj) for obj in decode_all([split[i] for i in lines[flagged[rest]].tolist()])]
        keys = np.array([k for _, k, _ in decoded], dtype=np.int64)
        inner = np.array([n for _, _, n in decoded], dtype=np.int64)
        # A key written twice, or an escaped quote, leaves quotes the decoded object does not explain.
        settled[rest] = (keys >= 0) & quotes.explained(flagged[rest], keys, inner)  # keys < 0: refused
        for r, (text, _, _) in zip(flagged[rest].tolist(), decoded, strict=True):
            extras[r] = text
        table = table.set_column(table.schema.get_field_index("extra"), "extra", pa.array(extras, pa.string()))
        if not settled.all():
            for i in lines[flagged[~settled]].tolist():
                self.judge(i)
            keep = np.ones(table.num_rows, dtype=bool)
            keep[flagged[~settled]] = False
            table, index = table.filter(pa.array(keep)), index.filter(pa.array(keep))
        return table, index

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


def _read(block: bytes, read: pj.ReadOptions, reading: _Reading) -> tuple[pa.Table, pa.ChunkedArray, bool]:
    """The block as read, its timestamps, and whether they were text (not epoch numbers)."""
    try:
        raw = pj.read_json(pa.BufferReader(block), read_options=read, parse_options=reading.typed)
        return raw, raw.column("timestamp"), True
    except pa.ArrowInvalid as e:
        if _UNEXPECTED in str(e):
            raise
    try:
        raw = pj.read_json(pa.BufferReader(block), read_options=read, parse_options=reading.iso)
        ts = raw.column("timestamp")
        try:
            stamps = pc.cast(ts, TIMESTAMP)
        except pa.ArrowInvalid:
            stamps = pc.cast(pc.cast(ts, pa.timestamp("us")), TIMESTAMP)  # naive text means UTC
        return raw, stamps, True
    except pa.ArrowInvalid as e:
        if "changed from string to number" not in str(e):
            raise
    raw = pj.read_json(pa.BufferReader(block), read_options=read, parse_options=reading.epoch)
    micros = pc.round(pc.multiply(raw.column("timestamp"), 1_000_000.0))
    return raw, pc.cast(pc.cast(micros, pa.int64()), TIMESTAMP), False
