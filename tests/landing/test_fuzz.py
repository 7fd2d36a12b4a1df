"""Fuzzing ticklake.landing.jsonl: no input makes parse_jsonl raise, and every line is accounted for.

Inputs are arbitrary bytes, arbitrary JSON values, valid ticks and ticks broken in the ways
producers break them (deep nesting, huge numbers, keys written twice, out-of-range timestamps,
NUL bytes, bad UTF-8, lone surrogates, byte-order marks, CR/LF mixes), mixed in one file. For
each file: every line is exactly one of stored row, reject or blank; rows and rejects equal what
`decode_line` says of each line alone; line numbers are right; and the same lines read inside a
block of valid lines (plain, or every one with an unknown field) get the same verdicts.

`TICKLAKE_FUZZ_EXAMPLES=N` runs N examples per property instead of the default few hundred.
"""

from __future__ import annotations

import json
import math
import os
import string
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.landing.judging import is_blank, oracle, outcome, split_lines, valid_line
from ticklake.landing.jsonl import LINE, parse_jsonl
from ticklake.ticks import KNOWN_FIELDS, Invalid, unknown_fields

EXAMPLES = int(os.environ.get("TICKLAKE_FUZZ_EXAMPLES") or 0)
FUZZ = settings(
    max_examples=EXAMPLES or 150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
N_AROUND = 400  # valid lines around the fuzzed ones: enough for pyarrow's blocks and bisection
PLAIN = [valid_line(i) for i in range(N_AROUND)]
UNKNOWN = [valid_line(i, unknown=True) for i in range(N_AROUND)]
TS = '"2022-01-07T05:00:00.000000Z"'

# --- what producers send ----------------------------------------------------------------------

_text = st.text(max_size=8)
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | _text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=10,
)
_huge_numbers = st.sampled_from(
    ["1e400", "-1e400", "1" + "0" * 400, "-" + "9" * 320, "7" * 700, "-0", "-0.0", "1e-400", "NaN", "Infinity"]
    + ["-Infinity", "9223372036854775808", "4.9e-324", "1.7976931348623157e308", "1.7976931348623159e308"]
)
_timestamps = st.sampled_from(
    ['"0000-01-01T00:00:00Z"', '"10000-01-01T00:00:00Z"', '"1969-12-31T23:59:59.999999Z"', '"2099-12-31T23:59:59.999999Z"']
    + ['"2100-01-01T00:00:00Z"', "-1", "-0", "0", "4102444800", "9223372036855", "9.3e18", "1e400", "1641531600123"]
    + ['"2022-01-07T05:00:00+25:00"', '"2022-02-30T00:00:00Z"', '" 2022-01-07T05:00:00Z "', "1641531600.0000005"]
)
_escapes = st.sampled_from(["\\ud800", "\\udc00x", "\\ud83d\\ude00", "\\u0000", '\\"', "\\\\", "\\/"])
_stray_bytes = st.sampled_from([b"\x00", b"\xff", b"\xc3", b"\xef\xbb\xbf", b"\xed\xa0\x80", b"\r", b"\x1f"])


@st.composite
def ticks(draw: st.DrawFn) -> dict[str, Any]:
    """A valid tick, sometimes with unknown fields of any JSON value."""
    i = draw(st.integers(0, 10_000))
    record: dict[str, Any] = json.loads(valid_line(i))
    for _ in range(draw(st.sampled_from([0, 0, 1, 3]))):
        record[draw(_text)] = draw(_json_values)
    return record


def _members(record: dict[str, Any]) -> list[str]:
    return [json.dumps({k: v})[1:-1] for k, v in record.items()]


@st.composite
def broken_ticks(draw: st.DrawFn) -> bytes:
    """A tick's text with one producer mistake spliced in."""
    members = _members(draw(ticks()))
    how = draw(st.sampled_from(["deep", "number", "twice", "timestamp", "bytes", "escape", "spacing", "drop"]))
    at = draw(st.integers(0, len(members)))
    if how == "deep":
        depth = draw(st.sampled_from([62, 63, 64, 65, 200, 5000]))
        opener, closer = draw(st.sampled_from([("[", "]"), ('{"k":', "}")]))
        members.insert(at, '"nest":' + opener * depth + "1" + closer * depth)
    elif how == "number":
        field = draw(st.sampled_from(["price", "size", "contract_id", "bid_price", "x"]))
        members = [m for m in members if not m.startswith(f'"{field}"')]
        members.insert(at, f'"{field}":{draw(_huge_numbers)}')
    elif how == "twice":
        members.insert(at, draw(st.sampled_from(members)) if members else '"x":1')
    elif how == "timestamp":
        members = [m for m in members if not m.startswith('"timestamp"')]
        members.insert(at, f'"timestamp":{draw(_timestamps)}')
    elif how == "escape":
        members.insert(at, '"x":"' + draw(_escapes) + '"')
    elif how == "spacing":
        return ("{ " + " ,\t".join(m.replace(":", " : ", 1) for m in members) + " }\r").encode()
    elif how == "drop":
        members = members[1:]
    text = ("{" + ",".join(members) + "}").encode()
    if how == "bytes":
        where = draw(st.integers(0, len(text)))
        text = text[:where] + draw(_stray_bytes) + text[where:]
    return text


_blank = st.sampled_from([b"", b" ", b"\t", b"\r", b" \r", b"\x0c", b"\x0b"])  # the last two are not blank
_shapes = st.sampled_from([b"[]", b"null", b'"str"', b"42", b"{}", b"{", b"}", b"\xef\xbb\xbf" + valid_line(0)])


@st.composite
def lines(draw: st.DrawFn) -> bytes:
    """One line of a producer's file, valid or not (never containing a line break)."""
    kind = draw(st.integers(0, 9))
    if kind <= 2:
        return json.dumps(draw(ticks()), ensure_ascii=draw(st.booleans())).encode()
    if kind <= 5:
        return draw(broken_ticks())
    if kind == 6:
        return json.dumps(draw(_json_values)).encode()
    if kind == 7:
        return draw(_blank | _shapes)
    return draw(st.binary(max_size=40)).replace(b"\n", b"")


@st.composite
def files(draw: st.DrawFn) -> bytes:
    """A file of lines, with LF or CRLF endings (or a mix), with or without a final line break."""
    body = draw(st.lists(lines(), min_size=1, max_size=25))
    ends = [draw(st.sampled_from([b"\n", b"\r\n"])) for _ in body]
    data = b"".join(line + end for line, end in zip(body, ends, strict=True))
    return data if draw(st.booleans()) else data[: -len(ends[-1])]


# --- the properties ---------------------------------------------------------------------------


def check_accounted(data: bytes) -> None:
    """Every line is one of row / reject / blank, and rows and rejects are the judge's."""
    parsed = parse_jsonl(data)
    lines = split_lines(data)
    rows = set(parsed.table.column(LINE).to_pylist())
    rejected = {r.line - 1 for r in parsed.rejects}
    blank = {i for i, raw in enumerate(lines) if is_blank(raw)}
    assert len(rows) == parsed.table.num_rows and len(rejected) == len(parsed.rejects)
    assert not (rows & rejected) and not (rows & blank) and not (rejected & blank)
    assert rows | rejected | blank == set(range(len(lines)))
    assert parsed.blank == len(blank) and parsed.rows_in + parsed.blank == len(lines)
    assert [r.raw for r in parsed.rejects] == [lines[r.line - 1] for r in parsed.rejects]
    assert outcome(parsed) == oracle(lines)


def check_embedded(data: bytes, around: list[bytes]) -> None:
    """The file's lines inside a block of valid lines get the same verdicts and line numbers."""
    lines = split_lines(data)
    half = len(around) // 2
    block = b"\n".join([*around[:half], *lines, *around[half:]]) + b"\n"
    rejects, rows = outcome(parse_jsonl(block), shift=half)
    expected_rejects, expected_rows = oracle(lines)
    assert rejects == expected_rejects
    assert [r for r in rows if 1 <= r[LINE] <= len(lines)] == expected_rows
    assert len(rows) == len(around) + len(expected_rows)


@FUZZ
@given(files())
def test_any_file_every_line_accounted_for(data: bytes) -> None:
    check_accounted(data)


@FUZZ
@given(files(), st.booleans())
def test_any_file_same_verdicts_inside_a_valid_block(data: bytes, unknown: bool) -> None:
    check_embedded(data, UNKNOWN if unknown else PLAIN)


@settings(FUZZ, max_examples=EXAMPLES or 100)
@given(st.binary(max_size=300))
def test_arbitrary_bytes(data: bytes) -> None:
    check_accounted(data)


@settings(FUZZ, max_examples=EXAMPLES or 100)
@given(st.lists(st.text(string.printable + '{}[]":,\\é\x00', max_size=30), max_size=10))
def test_json_like_text(texts: list[str]) -> None:
    data = "\n".join(texts).encode("utf-8", "surrogatepass")
    check_accounted(data)
    check_embedded(data, UNKNOWN)


def _numbers(value: Any) -> list[int | float]:
    if isinstance(value, dict):
        return [n for v in value.values() for n in _numbers(v)]
    if isinstance(value, list):
        return [n for v in value for n in _numbers(v)]
    return [value] if isinstance(value, int | float) and not isinstance(value, bool) else []


def _is_double(number: int | float) -> bool:
    try:
        return math.isfinite(float(number))
    except OverflowError:
        return False


@settings(FUZZ, max_examples=EXAMPLES or 100)
@given(st.dictionaries(_text, _json_values | st.integers(min_value=2**1024 - 2**969), max_size=5))
def test_extra_is_what_json_dumps_writes_sorted_and_compact(fields: dict[str, Any]) -> None:
    record = {**json.loads(valid_line(0)), **fields}
    unknown = {k: v for k, v in record.items() if k not in KNOWN_FIELDS}
    if any(not _is_double(n) for n in _numbers(unknown)):
        with pytest.raises(Invalid) as info:  # no double holds it: refused, not written as Infinity
            unknown_fields(record)
        assert info.value.kind == "bad_value"
    else:
        expected = json.dumps(unknown, separators=(",", ":"), sort_keys=True) if unknown else None
        assert unknown_fields(record)[0] == expected
