"""Unknown fields on the fast path: which lines of a block carry more than the known fields, and
their `extra` built cheaply.

A block read by pyarrow ignoring unknown fields gives, per row, its known keys and strings;
counting the quotes of each raw line against them shows which lines hold more (unknown keys, a
key written twice, a null field). Of those, a line whose one unknown field is its last member,
already written as `extra` writes it, gives that text directly; the others are decoded by
Python's json in one batch call, and whatever the quotes do not account for goes to the judge.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ticklake.ticks import LANDING_SCHEMA, TEXT_FIELDS, Invalid, reject_constant, unknown_fields

# Lines longer than this are decoded by the per-line judge alone, whose integer rule bounds the work.
BATCH_LINE_MAX = 1 << 16


@dataclass
class Quotes:
    """Per row: known keys (fields not null), JSON strings of the known fields (keys included), and
    the `"` bytes of its raw line. A line holds exactly its known fields when its quotes are twice
    their strings: every key and string value brings two, and an unknown key, a null field or a
    key written twice brings more."""

    keys: np.ndarray
    strings: np.ndarray
    quotes: np.ndarray

    @classmethod
    def of(cls, raw: pa.Table, block: bytes, text_stamps: bool) -> Quotes | None:
        """The counts of a block read ignoring unknown fields; None when no line holds more."""
        n = raw.num_rows
        keys = np.zeros(n, dtype=np.int64)
        for name in LANDING_SCHEMA.names:
            keys += _valid(raw.column(name))
        strings = keys.copy()
        for name in ("tick_type", *TEXT_FIELDS, *(("timestamp",) if text_stamps else ())):
            strings += _valid(raw.column(name))
        strings += pc.fill_null(pc.list_value_length(raw.column("conditions").combine_chunks()), 0).to_numpy()
        if block.count(b'"') == 2 * int(strings.sum()):  # no line holds more (none can hold less)
            return None
        return cls(keys, strings, _line_quotes(block, n))

    def filter(self, mask: np.ndarray) -> Quotes:
        """The counts of the rows kept by `mask`."""
        return Quotes(self.keys[mask], self.strings[mask], self.quotes[mask])

    def flagged(self) -> np.ndarray:
        """Rows whose lines hold more than their known fields."""
        return np.flatnonzero(self.quotes != 2 * self.strings)

    def explained(self, rows: np.ndarray, keys: np.ndarray, inner: np.ndarray) -> np.ndarray:
        """Whether decoded objects of `keys` keys, whose unknown fields hold `inner` strings, account
        for every quote of the lines of `rows` (the known fields' values bring the same strings)."""
        return 2 * (self.strings[rows] - self.keys[rows] + keys + inner) == self.quotes[rows]


def _valid(column: pa.ChunkedArray) -> np.ndarray:
    return pc.is_valid(column.combine_chunks()).to_numpy(zero_copy_only=False)


def _line_quotes(block: bytes, n: int) -> np.ndarray:
    """The `"` bytes of each of the `n` lines of `block`."""
    buffer = np.frombuffer(block, dtype=np.uint8)
    ends = np.flatnonzero(buffer == 10)
    if len(ends) == n - 1:  # the last line has no line break
        ends = np.append(ends, len(buffer))
    if len(ends) != n:
        raise ValueError("line count differs from row count")
    return np.diff(np.searchsorted(np.flatnonzero(buffer == 34), ends), prepend=0)


# The last member of a line, when `extra` writes it as it stands (but for spaces around the colon):
# a printable ASCII key and an integer, a decimal, a plain printable ASCII string or a constant;
# then the line's closing brace.
_TEXT = rb'"[ !#-\[\]-~]*"'
_LAST_MEMBER = re.compile(
    rb"(%s)[ \t\r]*:[ \t\r]*(0|-?[1-9][0-9]{0,17}|-?(?:0|[1-9][0-9]*)\.[0-9]+(?:[eE][-+]?[0-9]+)?|%s|true|false|null)"
    rb"[ \t\r]*\}[ \t\r]*" % (_TEXT, _TEXT)
)


_KNOWN_BYTES = frozenset(name.encode() for name in LANDING_SCHEMA.names)


def last_member(line: bytes, known_quotes: int) -> str | None:
    """`extra` of a line whose only unknown field is its last member, written (nearly) as `extra`
    writes it; None when the line is not of that shape (the general path decides it).

    The key of the last member ends at the last `":`; with the quotes before its opening quote
    exactly those of the known fields' strings, everything before it is known fields, each once.
    A backslash cannot fool this: an escaped quote before the key adds a quote, and one in it
    fails the pattern. A decimal is taken when it is already Python's shortest form of its double.
    """
    end = line.rfind(b'":')
    start = line.rfind(b'"', 0, end) if end > 0 else -1
    if start < 0 or line[start + 1 : end] in _KNOWN_BYTES or line.count(b'"', 0, start) != known_quotes:
        return None
    member = _LAST_MEMBER.fullmatch(line, start)
    if member is None:
        return None
    key, value = member.group(1, 2)
    if value[:1] != b'"' and b"." in value and repr(float(value)).encode() != value:
        return None
    return "{" + key.decode("ascii") + ":" + value.decode("ascii") + "}"


def extra_of(obj: dict[str, Any] | None) -> tuple[str | None, int, int]:
    """`extra` of a decoded line, its key count and the strings its unknown fields hold; key count
    -1 when Python's json refused the line or it breaks a rule (the judge names which)."""
    if obj is None:
        return None, -1, 0
    try:
        text, inner = unknown_fields(obj)
    except Invalid:
        return None, -1, 0
    return text, len(obj), inner


def decode_all(raws: list[bytes]) -> list[dict[str, Any] | None]:
    """Python's json reading of each line (one call for all, usually); None where it refuses a line
    or gets something other than an object, and for lines too long to be read here."""
    if all(len(raw) <= BATCH_LINE_MAX for raw in raws):
        try:
            objs = json.loads("[" + b",".join(raws).decode("utf-8") + "]", parse_constant=reject_constant)
        except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
            pass
        else:
            if len(objs) == len(raws) and all(type(obj) is dict for obj in objs):
                return objs
    out: list[dict[str, Any] | None] = []
    for raw in raws:
        obj = None
        if len(raw) <= BATCH_LINE_MAX:
            try:
                obj = json.loads(raw.decode("utf-8"), parse_constant=reject_constant)
            except (ValueError, RecursionError):
                pass
        out.append(obj if type(obj) is dict else None)
    return out
