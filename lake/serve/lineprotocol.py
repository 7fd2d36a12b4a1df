"""InfluxDB line protocol (v1, text) into landing-format tick records, and back.

A line is ``measurement[,tag=value...] field=value[,field=value...] [timestamp]``. The measurement
is ``ticks`` (the tick type then comes from the ``tick_type`` tag) or a tick type itself
(``last``, ``bid_ask``, ``mid_point``). Tags and fields become the record's JSON fields: the
known ones by the landing format's names (``contract_id`` may be a tag, an integer field or a
float field with an integral value; ``conditions`` is a comma-separated string), every other one
is kept under its own name, so the landing format keeps it in ``extra``. Nothing here decides
whether a tick is valid: records go through the one validator (`ticklake.ticks`), and only what
JSON cannot carry (a line that is not line protocol, an infinity) is refused here. A ``NaN`` float
is QuestDB's null, as its clients send a DataFrame's missing values: the field is null (absent).

Escapes follow InfluxDB: in the measurement, tag keys and values and field keys a backslash
escapes ``,``, ``=``, a space, a backslash or a line break (a backslash before anything else is
itself); in a quoted string field ``\\"`` and ``\\\\`` (and a backslash before a line break, as
QuestDB's clients write one). A line break a backslash escapes does not end the line.

A line without a timestamp gets the time it was received (InfluxDB's rule): the caller passes it.
A tag with an empty value (``exchange=``, what QuestDB's clients send for an empty symbol) is absent.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from ticklake.ticks import MAX_INT_DIGITS, TEXT_FIELDS, TICK_TYPES, Invalid, timestamp_us

MEASUREMENT = "ticks"
# Nanoseconds per unit of each `precision` query value: InfluxDB v1's (n, u, ms, s, m, h) and v2's (ns, us).
PRECISIONS = {"n": 1, "ns": 1, "u": 1_000, "us": 1_000, "ms": 1_000_000, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}

_NAME = re.compile(r"(?:\\.|[^,= \\])+", re.S)  # a tag key or value, or a field key
_MEASURE = re.compile(r"(?:\\.|[^, \\])+", re.S)  # '=' needs no escape in a measurement
_QUOTED = re.compile(r'"((?:\\.|[^"\\])*)"', re.S)
_BARE = re.compile(r"[^, ]+")
_SPACES = re.compile(r" +")
# The fast path's: a whole tag (with its comma), a whole field (and the comma after it), the timestamp.
_TAG = re.compile(r",((?:\\.|[^,= \\])+)=((?:\\.|[^,= \\])+)", re.S)
_FIELD = re.compile(r'((?:\\.|[^,= \\])+)=("(?:\\.|[^"\\])*"|[^, "]+)(,?)', re.S)
_STAMP = re.compile(r" (-?[0-9]+) *")
_NOT_A_VALUE = object()
_INTEGER = re.compile(r"-?[0-9]+")
_FLOAT = re.compile(r"-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_NOT_FINITE = {"NaN", "Infinity", "-Infinity", "+Infinity"}
_BOOLEANS = {"t": True, "T": True, "true": True, "True": True, "TRUE": True}
_BOOLEANS |= {"f": False, "F": False, "false": False, "False": False, "FALSE": False}
_UNESCAPE_NAME = re.compile(r"\\([,= \\\n\r])")
_UNESCAPE_STRING = re.compile(r'\\(["\\\n\r])')
_ESCAPE_NAME = re.compile(r"([,= \\\n\r])")
_ESCAPE_STRING = re.compile(r'(["\\\n\r])')
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ISO_RANGE = (-62135596800 * 10**6, 253402300800 * 10**6)  # what datetime holds: years 1 to 9999


def split_lines(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(1-based line number where it starts, the line without its line break) for each line of `data`.

    A line break after an odd run of backslashes is escaped and continues the line; a CR before
    the line break (CRLF) is dropped.

    >>> list(split_lines(b"a 1\\r\\nb,s=x\\\\\\ny 2\\n"))
    [(1, b'a 1'), (2, b'b,s=x\\\\\\ny 2')]
    """
    number = 1
    pending: list[bytes] = []
    start = 1
    pieces = data.split(b"\n")
    if pieces[-1] == b"":
        pieces.pop()  # the final line break ends the last line; no empty line follows it
    for piece in pieces:
        if not pending:
            start = number
        number += 1
        if (len(piece) - len(piece.rstrip(b"\\"))) % 2:
            pending.append(piece)
            continue
        line = b"\n".join([*pending, piece]) if pending else piece
        pending = []
        if line.endswith(b"\r") and (len(line) - 1 - len(line[:-1].rstrip(b"\\"))) % 2 == 0:
            line = line[:-1]
        yield start, line
    if pending:
        yield start, b"\n".join(pending)


def is_skipped(line: bytes) -> bool:
    """True for a blank line or a ``#`` comment: neither a tick nor a reject."""
    text = line.strip(b" \t\r")
    return not text or text.startswith(b"#")


def parse_line(text: str, *, unit_ns: int = 1, received_ns: int = 0) -> dict[str, Any]:
    """The landing record (JSON-ready) of one line, or raise `Invalid` naming the field at fault.

    `unit_ns` is the timestamp's unit in nanoseconds (see PRECISIONS); a line without a
    timestamp is stamped `received_ns`.

    >>> parse_line('ticks,tick_type=last,symbol=AB\\\\ C contract_id=7i,price=1.5,size=2u,conditions="@,T" 1641531600123456789')
    {'tick_type': 'last', 'symbol': 'AB C', 'contract_id': 7, 'price': 1.5, 'size': 2, 'conditions': ['@', 'T'], \
'timestamp': '2022-01-07T05:00:00.123456Z'}
    >>> parse_line("mid_point contract_id=7i price=1")
    Traceback (most recent call last):
    ticklake.ticks.Invalid: line protocol: column 26: expected an integer timestamp, got 'price=1'
    """
    record = _quick(text, unit_ns, received_ns)
    return _Line(text).record(unit_ns, received_ns) if record is None else record


def _quick(text: str, unit_ns: int, received_ns: int) -> dict[str, Any] | None:
    """The record of a well-formed line, read a whole tag or field per regex match (most of the time
    of a large body goes here); None for anything unusual, which `_Line` then reads and names the fault of."""
    m = _MEASURE.match(text)
    if m is None:
        return None
    measurement, pos = _unescape(m.group()), m.end()
    pairs: list[tuple[str, Any]] = []
    while (tag := _TAG.match(text, pos)) is not None:
        pairs.append((_unescape(tag[1]), _unescape(tag[2])))
        pos = tag.end()
    if not text.startswith(" ", pos):
        return None
    pos += 1
    while True:
        f = _FIELD.match(text, pos)
        if f is None:
            return None
        key, raw = _unescape(f[1]), f[2]
        value = _UNESCAPE_STRING.sub(r"\1", raw[1:-1]) if raw[0] == '"' else _scalar(raw, key)
        if value is _NOT_A_VALUE:
            return None
        pairs.append((key, value))
        pos = f.end()
        if not f[3]:
            break
    if pos == len(text):
        return _record(measurement, pairs, received_ns)
    stamp = _STAMP.fullmatch(text, pos)
    return None if stamp is None else _record(measurement, pairs, _integer(stamp[1], "timestamp") * unit_ns)


def _unescape(text: str) -> str:
    return _UNESCAPE_NAME.sub(r"\1", text) if "\\" in text else text


def _scalar(word: str, key: str) -> Any:
    """The value of an unquoted field value: a boolean, an integer (``i``, ``u``), a float, None for NaN; or
    _NOT_A_VALUE; Invalid for a number no double holds."""
    if word in _BOOLEANS:
        return _BOOLEANS[word]
    if word[-1] in "iu" and _INTEGER.fullmatch(word, 0, len(word) - 1) and not (word[-1] == "u" and word[0] == "-"):
        return _integer(word[:-1], key)
    if _FLOAT.fullmatch(word):
        value = float(word)
        if not math.isfinite(value):
            raise Invalid("bad_value", key, f"field '{key}' is too large for a double: {word[:40]}")
        return value
    if word == "NaN":
        return None  # QuestDB's null: a DataFrame's missing value
    if word in _NOT_FINITE:
        raise Invalid("bad_value", key, f"field '{key}' is not finite: {word}")
    return _NOT_A_VALUE


class _Line:
    """One line, read left to right, naming where and why it is not line protocol."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def syntax(self, what: str, field: str | None = None) -> Invalid:
        return Invalid("invalid_line_protocol", field, f"line protocol: column {self.pos + 1}: {what}")

    def token(self, pattern: re.Pattern[str], what: str) -> str:
        m = pattern.match(self.text, self.pos)
        if m is None:
            raise self.syntax(f"expected {what}")
        self.pos = m.end()
        return _unescape(m.group())

    def expect(self, char: str, after: str) -> None:
        if not self.text.startswith(char, self.pos):
            raise self.syntax(f"expected '{char}' after {after}")
        self.pos += 1

    def spaces(self) -> bool:
        m = _SPACES.match(self.text, self.pos)
        if m is None:
            return False
        self.pos = m.end()
        return True

    def record(self, unit_ns: int, received_ns: int) -> dict[str, Any]:
        measurement = self.token(_MEASURE, "a measurement")
        pairs: list[tuple[str, Any]] = []
        while self.text.startswith(",", self.pos):
            self.pos += 1
            key = self.token(_NAME, "a tag key")
            self.expect("=", f"tag key '{key}'")
            if self.text.startswith((",", " "), self.pos) or self.pos == len(self.text):
                continue  # an empty tag value (QuestDB's clients send an empty symbol so): the tag is absent
            pairs.append((key, self.token(_NAME, f"a value for tag '{key}'")))
        if not self.spaces():
            raise self.syntax("expected a space before the fields")
        while True:
            key = self.token(_NAME, "a field key")
            self.expect("=", f"field key '{key}'")
            pairs.append((key, self.value(key)))
            if not self.text.startswith(",", self.pos):
                break
            self.pos += 1
        stamp = received_ns
        if self.pos < len(self.text):
            if not self.spaces():
                raise self.syntax(f"expected ',' or a space after the value of field '{key}'", key)
            if self.pos < len(self.text):
                word = _BARE.match(self.text, self.pos)
                if word is None or not _INTEGER.fullmatch(word.group()):
                    found = self.text[self.pos :].split(" ", 1)[0][:40]
                    raise self.syntax(f"expected an integer timestamp, got {found!r}", "timestamp")
                stamp = _integer(word.group(), "timestamp") * unit_ns
                self.pos = word.end()
                self.spaces()
                if self.pos < len(self.text):
                    raise self.syntax("expected the end of the line after the timestamp")
        return _record(measurement, pairs, stamp)

    def value(self, key: str) -> Any:
        """A field's value: a quoted string, a boolean, an integer (``i``, ``u``) or a float."""
        if self.text.startswith('"', self.pos):
            m = _QUOTED.match(self.text, self.pos)
            if m is None:
                raise self.syntax(f"the string value of field '{key}' has no closing quote", key)
            self.pos = m.end()
            return _UNESCAPE_STRING.sub(r"\1", m.group(1))
        m = _BARE.match(self.text, self.pos)
        if m is None:
            raise self.syntax(f"expected a value for field '{key}'", key)
        value = _scalar(m.group(), key)
        if value is _NOT_A_VALUE:
            raise self.syntax(f"field '{key}' has value {m.group()[:40]!r}: not a number, boolean or quoted string", key)
        self.pos = m.end()
        return value


def _integer(text: str, key: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:  # int() is quadratic in the digits: the landing format's limit
        raise Invalid("bad_value", key, f"field '{key}' holds an integer of more than {MAX_INT_DIGITS} digits")
    return int(text)


def _record(measurement: str, pairs: list[tuple[str, Any]], stamp_ns: int) -> dict[str, Any]:
    """The JSON record of a parsed line: known keys converted as the landing format wants them."""
    record: dict[str, Any] = {}
    if measurement in TICK_TYPES:
        record["tick_type"] = measurement
    elif measurement != MEASUREMENT:
        message = f"measurement '{measurement[:40]}' is neither '{MEASUREMENT}' nor a tick type ({', '.join(TICK_TYPES)})"
        raise Invalid("bad_value", "measurement", message)
    for key, value in pairs:
        if key == "tick_type" and record.get(key, value) != value:
            message = f"field 'tick_type' is '{str(value)[:40]}' but the measurement says '{record[key]}'"
            raise Invalid("bad_value", "tick_type", message)
        if key == "timestamp" or (key in record and key != "tick_type"):
            raise Invalid("duplicate_field", key[:40], f"key '{key[:40]}' appears twice in one line")
        record[key] = _known(key, value)
    record["timestamp"] = landing_time(stamp_ns)
    return record


def _known(key: str, value: Any) -> Any:
    """A value as the landing format's field `key` takes it; anything else is left for the validator to judge."""
    if key == "contract_id":
        if isinstance(value, str) and _INTEGER.fullmatch(value):
            return int(value)
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif key == "conditions" and isinstance(value, str):
        return value.split(",") if value else []
    return value


def landing_time(ns: int) -> str | float:
    """A landing timestamp for epoch nanoseconds: ISO-8601 text to the microsecond (truncated, as the
    landing format truncates), or epoch seconds when no date can hold it (the validator refuses those).

    >>> landing_time(1641531600123456789), landing_time(-1)
    ('2022-01-07T05:00:00.123456Z', '1969-12-31T23:59:59.999999Z')
    """
    us = ns // 1000
    if not _ISO_RANGE[0] <= us < _ISO_RANGE[1]:
        return ns / 1e9
    return (_EPOCH + timedelta(microseconds=us)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def format_line(record: dict[str, Any]) -> str:
    """One line of line protocol (nanosecond timestamp) for a landing record: the inverse of `parse_line`.

    Text fields that are not empty go as tags, everything else as fields; conditions join with commas.

    >>> format_line({"timestamp": "2022-01-07T05:00:00Z", "contract_id": 7, "tick_type": "last",
    ...              "symbol": "A,B", "price": 1.5, "conditions": ["@"], "note": 'say "hi"'})
    'ticks,tick_type=last,symbol=A\\\\,B contract_id=7i,price=1.5,conditions="@",note="say \\\\"hi\\\\"" 1641531600000000000'
    """
    tags = [f"tick_type={_escape(str(record['tick_type']))}"] if "tick_type" in record else []
    fields = []
    for key, value in record.items():
        if key in ("timestamp", "tick_type"):
            continue
        name = _escape(key)
        if key in TEXT_FIELDS and isinstance(value, str) and value:
            tags.append(f"{name}={_escape(value)}")
        elif key == "conditions" and isinstance(value, list):
            fields.append(f"{name}={_field_value(','.join(value))}")
        else:
            fields.append(f"{name}={_field_value(value)}")
    head = ",".join([MEASUREMENT, *tags])
    return f"{head} {','.join(fields)} {timestamp_us(record['timestamp']) * 1000}"


def _escape(text: str) -> str:
    return _ESCAPE_NAME.sub(r"\\\1", text)


def _field_value(value: Any) -> str:
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return '"' + _ESCAPE_STRING.sub(r"\\\1", value) + '"'
    raise TypeError(f"line protocol cannot carry a {type(value).__name__}")
