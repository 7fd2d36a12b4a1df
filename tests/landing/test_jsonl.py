"""Tests for ticklake.landing.jsonl: the vectorised fast path and the per-line judge agree on every line.

The judge (`ticklake.ticks.decode_line`, applied to each line alone) is the oracle: whatever block a
line sits in — alone, among 12,000 valid lines (so pyarrow parses and bisects), among lines that
all carry an unknown field (so pyarrow ignores them and `extra` is built beside it), after blank
lines or with CRLF endings — it must be kept or rejected the same way, with the same line number.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from tests.landing.judging import oracle, outcome, valid_line
from ticklake.landing.jsonl import LINE, parse_jsonl
from ticklake.ticks import KNOWN_FIELDS

FUZZ_EXAMPLES = int(os.environ.get("TICKLAKE_FUZZ_EXAMPLES") or 0)  # more random mixes when asked (README)
N_BIG = 12_000  # above 10,000 lines: the vectorised path does the work
AT = 6_000  # where a line under test is put inside the big block (its line number is AT + 1)


BIG = [valid_line(i) for i in range(N_BIG)]
GOOD = BIG[0]
TS = b'"2022-01-07T05:00:00.000000Z"'


def with_field(member: bytes) -> bytes:
    """GOOD with one more member (raw JSON text) before its closing brace."""
    return GOOD[:-1] + b"," + member + b"}"


BAD_LINES: dict[str, tuple[bytes, str, str | None]] = {
    "invalid_json": (b'{"timestamp": "2022-01-07T05:00:00Z",', "invalid_json", None),
    "nan": (GOOD.replace(b'"price":100.0', b'"price":NaN'), "invalid_json", None),
    "invalid_utf8": (b"\xff\xfe{}", "invalid_utf8", None),
    "not_an_object": (b"[1,2,3]", "not_an_object", None),
    "missing_timestamp": (b'{"contract_id":1,"tick_type":"last","price":1}', "missing_field", "timestamp"),
    "missing_contract_id": (b'{"timestamp":"2022-01-07T05:00:00Z","tick_type":"last","price":1}', "missing_field", "contract_id"),
    "missing_tick_type": (b'{"timestamp":"2022-01-07T05:00:00Z","contract_id":1,"price":1}', "missing_field", "tick_type"),
    "missing_price": (b'{"timestamp":"2022-01-07T05:00:00Z","contract_id":1,"tick_type":"mid_point"}', "missing_field", "price"),
    "missing_bid_ask": (
        b'{"timestamp":"2022-01-07T05:00:00Z","contract_id":1,"tick_type":"bid_ask","bid_size":5}',
        "missing_field",
        "bid_price",
    ),
    "cid_string": (GOOD.replace(b'"contract_id":1', b'"contract_id":"1"'), "wrong_type", "contract_id"),
    "cid_float": (GOOD.replace(b'"contract_id":1', b'"contract_id":1.0'), "wrong_type", "contract_id"),
    "cid_bool": (GOOD.replace(b'"contract_id":1', b'"contract_id":true'), "wrong_type", "contract_id"),
    "price_string": (GOOD.replace(b'"price":100.0', b'"price":"100.0"'), "wrong_type", "price"),
    "size_string": (GOOD.replace(b'"size":0', b'"size":"0"'), "wrong_type", "size"),
    "conditions_numbers": (GOOD.replace(b'["@"]', b"[1]"), "wrong_type", "conditions"),
    "conditions_string": (GOOD.replace(b'["@"]', b'"@"'), "wrong_type", "conditions"),
    "symbol_number": (GOOD.replace(b'"AB"', b"12"), "wrong_type", "symbol"),
    "tick_type_unknown": (GOOD.replace(b'"last"', b'"trade"'), "bad_value", "tick_type"),
    "cid_zero": (GOOD.replace(b'"contract_id":1', b'"contract_id":0'), "bad_value", "contract_id"),
    "cid_negative": (GOOD.replace(b'"contract_id":1', b'"contract_id":-3'), "bad_value", "contract_id"),
    "cid_too_big": (GOOD.replace(b'"contract_id":1', b'"contract_id":9223372036854775808'), "bad_value", "contract_id"),
    "size_negative": (GOOD.replace(b'"size":0', b'"size":-1'), "bad_value", "size"),
    "price_overflow": (GOOD.replace(b'"price":100.0', b'"price":1e400'), "bad_value", "price"),
    "ts_not_iso": (GOOD.replace(b"2022-01-07T05:00:00.000000Z", b"07/01/2022 05:00"), "bad_timestamp", "timestamp"),
    "ts_epoch_ms": (GOOD.replace(b'"2022-01-07T05:00:00.000000Z"', b"1641531600123"), "bad_timestamp", "timestamp"),
    "ts_before_1970": (GOOD.replace(b"2022-01-07", b"1969-07-20"), "bad_timestamp", "timestamp"),
    "ts_leap_second": (GOOD.replace(b"05:00:00.000000", b"23:59:60"), "bad_timestamp", "timestamp"),
    # a key twice: JSON readers disagree on which copy wins, so the line is refused
    "duplicate_key": (GOOD.replace(b"}", b',"price":7.5}'), "duplicate_field", "price"),
    "duplicate_key_null": (GOOD.replace(b"}", b',"price":null}'), "duplicate_field", "price"),
    "duplicate_unknown": (with_field(b'"x":1,"x":2'), "duplicate_field", "x"),
    "duplicate_nested": (with_field(b'"venue":{"seq":1,"seq":1}'), "duplicate_field", "seq"),
    # nesting: deeper than Python's decoder can follow, and just past the rule
    "deep_unclosed": (b'{"a":' * 100_000, "too_deep", None),
    "deep_array": (with_field(b'"x":' + b"[" * 100_000 + b"]" * 100_000), "too_deep", None),
    "deep_65": (with_field(b'"x":' + b"[" * 64 + b"]" * 64), "too_deep", "x"),
    # numbers: the same value written as 1e400 or 10**400 gets the same verdict, in any field
    "extra_overflow": (with_field(b'"x":1e400'), "bad_value", "x"),
    "extra_huge_integer": (with_field(b'"x":1' + b"0" * 400), "bad_value", "x"),
    "integer_too_long": (with_field(b'"x":' + b"7" * 700), "bad_value", None),
    "extra_nan": (with_field(b'"x":NaN'), "invalid_json", None),
    "extra_infinity": (with_field(b'"x":-Infinity'), "invalid_json", None),
    "cid_huge": (GOOD.replace(b'"contract_id":1', b'"contract_id":1' + b"0" * 400), "bad_value", "contract_id"),
    "price_huge_integer": (GOOD.replace(b'"price":100.0', b'"price":1' + b"0" * 400), "bad_value", "price"),
    # timestamps beyond what a datetime, a double or int64 microseconds hold
    "ts_year_0": (GOOD.replace(b"2022-01-07", b"0000-01-07"), "bad_timestamp", "timestamp"),
    "ts_year_10000": (GOOD.replace(b"2022-01-07", b"10000-01-07"), "bad_timestamp", "timestamp"),
    "ts_epoch_overflow": (GOOD.replace(TS, b"1e400"), "bad_timestamp", "timestamp"),
    "ts_epoch_beyond_int64_us": (GOOD.replace(TS, b"9223372036855.0"), "bad_timestamp", "timestamp"),
    "ts_epoch_huge_integer": (GOOD.replace(TS, b"1" + b"0" * 30), "bad_timestamp", "timestamp"),
    "ts_epoch_negative": (GOOD.replace(TS, b"-1.5"), "bad_timestamp", "timestamp"),
    # bytes JSON forbids, or that are not one JSON object
    "nul_in_string": (GOOD.replace(b'"AB"', b'"A\x00B"'), "invalid_json", None),
    "nul_in_unknown": (with_field(b'"x":"a\x00b"'), "invalid_json", None),
    "bom_mid_file": (b"\xef\xbb\xbf" + GOOD, "invalid_json", None),
    "two_objects": (GOOD + GOOD, "invalid_json", None),
    "two_objects_cr": (GOOD + b"\r" + GOOD, "invalid_json", None),
    "form_feed": (b"\x0c", "invalid_json", None),
    "empty_array": (b"[]", "not_an_object", None),
    "null": (b"null", "not_an_object", None),
    "string": (b'"str"', "not_an_object", None),
}

# Valid lines the vectorised reader cannot take as they are (and one it can): they must survive.
SLOW_VALID: dict[str, bytes] = {
    "extra_field": GOOD.replace(b"}", b',"venue":{"seq":5}}'),
    "epoch_seconds": GOOD.replace(b'"2022-01-07T05:00:00.000000Z"', b"1641531600.000001"),
    "naive": GOOD.replace(b"00.000000Z", b"00.000001"),
    "nanoseconds": GOOD.replace(b"00.000000Z", b"00.123456789Z"),
    "offset": GOOD.replace(b"05:00:00.000000Z", b"06:00:00.000001+01:00"),
    "extra_nested": with_field(b'"venue":{"seq":5,"tags":["a",{"b":null}]}'),
    "extra_known_names_nested": with_field(b'"venue":{"price":1,"timestamp":"x"}'),
    "extra_unicode_key": with_field('"prix_€":1,"名":"値"'.encode()),
    "extra_escaped_key": with_field(b'"\\u00e9t\\u00e9":true'),
    "extra_minus_zero": with_field(b'"x":-0,"y":-0.0'),
    "extra_big_integer": with_field(b'"x":123456789012345678901234567890'),
    "extra_null": with_field(b'"x":null'),
    "extra_escaped_quote": with_field(b'"note":"say \\"hi\\""'),
    "extra_spaced": GOOD[:-1] + b' , "x" : 1 }',
    "extra_64_deep": with_field(b'"x":' + b"[" * 63 + b"]" * 63),
    "extra_and_null_field": with_field(b'"x":1').replace(b'"symbol":"AB"', b'"symbol":null'),
    "known_key_escaped": GOOD.replace(b'"price"', b'"pr\\u0069ce"'),
    "extra_last_python_spacing": GOOD[:-1] + b', "x": 1.5}',
    "extra_last_decimal_long": with_field(b'"x":1.50'),
    "extra_last_exponent": with_field(b'"x":1.5e3'),
    "extra_last_string_spaced": GOOD[:-1] + b',"x" : "a b" }\r',
    "extra_last_true": with_field(b'"x":true'),
    "extra_last_long_integer": with_field(b'"x":-12345678901234567890'),
    "extra_last_known_name_escaped": with_field(b'"pric\\u0065x":1'),
    "extra_not_last": GOOD.replace(b'"price"', b'"x":1,"price"'),
    "price_minus_zero": GOOD.replace(b'"price":100.0', b'"price":-0'),
    "ts_epoch_minus_zero": GOOD.replace(TS, b"-0"),
}


def embedded(line: bytes) -> bytes:
    return b"\n".join([*BIG[:AT], line, *BIG[AT:]]) + b"\n"


def only(rows: list[dict[str, Any]], line: int) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != LINE} for r in rows if r[LINE] == line]


# --- one line, alone and among 12,000 -------------------------------------------------------


@pytest.mark.parametrize("name", sorted(BAD_LINES))
def test_bad_line_same_reject_alone_and_in_a_big_file(name: str) -> None:
    raw, kind, field = BAD_LINES[name]
    alone = parse_jsonl(raw + b"\n")
    big = parse_jsonl(embedded(raw))
    assert [(r.line, r.kind, r.field) for r in alone.rejects] == [(1, kind, field)]
    assert outcome(big, shift=AT)[0] == outcome(alone)[0]
    assert big.table.num_rows == N_BIG and big.rows_in == N_BIG + 1
    assert big.stats["fast_rows"] >= N_BIG - 64  # the vectorised path did the work
    assert big.table.column(LINE).to_pylist() == [i for i in range(N_BIG + 1) if i != AT]


@pytest.mark.parametrize("name", sorted(SLOW_VALID))
def test_valid_line_same_row_alone_and_in_a_big_file(name: str) -> None:
    raw = SLOW_VALID[name]
    alone = outcome(parse_jsonl(raw + b"\n"))
    big = outcome(parse_jsonl(embedded(raw)), shift=AT)
    assert alone[0] == big[0] == []
    assert only(big[1], 1) == only(alone[1], 1) == only(oracle([raw])[1], 1)


def test_big_file_rows_equal_the_judge() -> None:
    lines = [*BIG[:100], BAD_LINES["cid_float"][0], *BIG[100:5000], SLOW_VALID["extra_field"], *BIG[5000:]]
    assert outcome(parse_jsonl(b"\n".join(lines) + b"\n")) == oracle(lines)


def test_one_bad_line_is_found_by_bisection_not_by_judging_every_line() -> None:
    parsed = parse_jsonl(embedded(BAD_LINES["invalid_json"][0]))
    assert 1 <= parsed.stats["bisections"] <= 20
    assert parsed.stats["slow_lines"] <= 32
    assert parsed.stats["fast_rows"] == N_BIG - parsed.stats["slow_lines"] + 1


def test_single_threaded_parse_is_identical() -> None:
    data = embedded(BAD_LINES["size_negative"][0])
    assert outcome(parse_jsonl(data, use_threads=False)) == outcome(parse_jsonl(data))


def test_first_line_offsets_reported_line_numbers() -> None:
    parsed = parse_jsonl(GOOD + b"\n[1]\n", first_line=101)
    assert [(r.line, r.kind) for r in parsed.rejects] == [(102, "not_an_object")]
    assert parsed.first_line == 101 and parsed.table.column(LINE).to_pylist() == [0]


def test_identical_lines_are_two_ticks() -> None:
    parsed = parse_jsonl(GOOD + b"\n" + GOOD + b"\n")
    assert parsed.table.num_rows == 2 and parsed.rejects == []


def test_empty_input() -> None:
    parsed = parse_jsonl(b"")
    assert (parsed.table.num_rows, parsed.rejects, parsed.blank, parsed.rows_in) == (0, [], 0, 0)


def test_last_line_without_newline_is_parsed() -> None:
    parsed = parse_jsonl(GOOD + b"\n" + BIG[1])
    assert parsed.table.num_rows == 2


# --- unknown fields: kept in `extra`, on the vectorised path ---------------------------------

N_EXTRA = 1_500  # enough for pyarrow to read blocks and bisect; the judge checks every line
EXTRA = [valid_line(i, unknown=True) for i in range(N_EXTRA)]
EXTRA_BIG = [valid_line(i, unknown=True) for i in range(N_BIG)]


def among_extra(line: bytes) -> list[bytes]:
    return [*EXTRA[: N_EXTRA // 2], line, *EXTRA[N_EXTRA // 2 :]]


def test_every_line_with_an_unknown_field_stays_on_the_fast_path() -> None:
    parsed = parse_jsonl(b"\n".join(EXTRA_BIG) + b"\n")
    assert parsed.stats["slow_lines"] == 0 and parsed.stats["bisections"] == 0
    assert parsed.stats["fast_rows"] == parsed.stats["extra_lines"] == N_BIG
    assert parsed.table.column("extra").to_pylist()[:2] == ['{"feed_seq":0}', '{"feed_seq":1}']
    assert outcome(parsed) == oracle(EXTRA_BIG)


def test_some_lines_with_unknown_fields_only_those_are_decoded_again() -> None:
    lines = [valid_line(i, unknown=i % 100 == 0) for i in range(N_EXTRA)]
    parsed = parse_jsonl(b"\n".join(lines) + b"\n")
    assert parsed.stats["extra_lines"] == N_EXTRA // 100 and parsed.stats["slow_lines"] == 0
    assert outcome(parsed) == oracle(lines)


@pytest.mark.parametrize("name", sorted(BAD_LINES))
def test_bad_line_among_lines_with_unknown_fields(name: str) -> None:
    lines = among_extra(BAD_LINES[name][0])
    parsed = parse_jsonl(b"\n".join(lines) + b"\n")
    assert outcome(parsed) == oracle(lines)
    assert parsed.stats["fast_rows"] >= N_EXTRA - 64


@pytest.mark.parametrize("name", sorted(SLOW_VALID))
def test_valid_line_among_lines_with_unknown_fields(name: str) -> None:
    lines = among_extra(SLOW_VALID[name])
    assert outcome(parse_jsonl(b"\n".join(lines) + b"\n")) == oracle(lines)


def test_a_key_twice_is_refused_whichever_path_reads_it() -> None:
    for raw in (b'{"timestamp":"2022-01-07T05:00:00Z","contract_id":1,"contract_id":2,"tick_type":"last","price":1}',
                with_field(b'"x":{"a":1},"x":{"a":1}')):  # fmt: skip
        for data in (raw + b"\n", embedded(raw), b"\n".join(among_extra(raw))):
            assert [r.kind for r in parse_jsonl(data).rejects] == ["duplicate_field"]


def test_extra_is_canonical_json_whatever_the_producer_wrote() -> None:
    raw = GOOD[:-1] + b', "z" : [1.50, -0, 1E2], "a" : {"\\u00e9" : "\\/"} }'
    for data in (raw + b"\n", b"\n".join(among_extra(raw))):
        parsed = parse_jsonl(data)
        extra = [e for e in parsed.table.column("extra").to_pylist() if e and '"z"' in e]
        assert extra == ['{"a":{"\\u00e9":"/"},"z":[1.5,0,100.0]}']


# --- blank lines and CRLF -----------------------------------------------------------------------


def test_blank_lines_are_skipped_counted_and_keep_line_numbers() -> None:
    data = b"\n  \n" + GOOD + b"\n\t\n\n[1]\n" + GOOD + b"\n \n"
    parsed = parse_jsonl(data)
    assert parsed.blank == 5
    assert parsed.rows_in == 3 and parsed.table.num_rows == 2
    assert [(r.line, r.kind) for r in parsed.rejects] == [(6, "not_an_object")]
    assert parsed.table.column(LINE).to_pylist() == [2, 6]  # 0-based: lines 3 and 7


def test_blank_lines_in_a_big_file() -> None:
    lines = [*BIG[:3000], b"", b"   ", *BIG[3000:9000], b"\r", BAD_LINES["cid_zero"][0], *BIG[9000:]]
    parsed = parse_jsonl(b"\n".join(lines) + b"\n")
    assert parsed.blank == 3
    assert outcome(parsed) == oracle(lines)
    assert [r.line for r in parsed.rejects] == [9004]  # 3000 + 2 blank + 6000 + 1 blank before it


def test_crlf_line_endings() -> None:
    lines = [BIG[0], BIG[1], BAD_LINES["missing_price"][0], BIG[2]]
    data = b"\r\n".join(lines) + b"\r\n\r\n"
    parsed = parse_jsonl(data)
    assert parsed.table.num_rows == 3 and parsed.blank == 1
    assert [(r.line, r.kind, r.field) for r in parsed.rejects] == [(3, "missing_field", "price")]
    plain = parse_jsonl(b"\n".join(lines) + b"\n")
    assert parsed.table.drop_columns([LINE]).equals(plain.table.drop_columns([LINE]))


def test_crlf_big_file_uses_the_fast_path() -> None:
    parsed = parse_jsonl(b"\r\n".join(BIG) + b"\r\n")
    assert parsed.table.num_rows == N_BIG and parsed.rejects == [] and parsed.stats["slow_lines"] == 0
    assert parsed.table.drop_columns([LINE]).equals(parse_jsonl(b"\n".join(BIG) + b"\n").table.drop_columns([LINE]))


# --- known disagreements (bugs) -----------------------------------------------------------------


def test_invalid_utf8_inside_a_string_is_rejected() -> None:
    raw = GOOD.replace(b'"AB"', b'"A\xffB"')
    for data in (raw + b"\n", embedded(raw)):
        parsed = parse_jsonl(data)
        assert [r.kind for r in parsed.rejects] == ["invalid_utf8"]


def test_lone_surrogate_escape_does_not_crash() -> None:
    raw = GOOD.replace(b'"AB"', b'"\\ud800"')
    parsed = parse_jsonl(embedded(raw))
    assert parsed.rows_in == N_BIG + 1


def test_null_condition_judged_the_same_in_every_block() -> None:
    raw = GOOD.replace(b'["@"]', b'["@",null]')
    alone = parse_jsonl(raw + b"\n")
    with_bad_neighbour = parse_jsonl(raw + b"\n[1]\n")
    assert alone.table.num_rows == with_bad_neighbour.table.num_rows


def test_bom_line_judged_the_same_in_every_block() -> None:
    raw = b"\xef\xbb\xbf" + GOOD
    alone = parse_jsonl(raw + b"\n")
    with_bad_neighbour = parse_jsonl(raw + b"\n[1]\n")
    assert alone.table.num_rows == with_bad_neighbour.table.num_rows


def test_form_feed_line_judged_the_same_in_every_file() -> None:
    alone = parse_jsonl(GOOD + b"\n\x0c\n")  # last line: blank detection by strip()
    inside = parse_jsonl(GOOD + b"\n\x0c\n" + GOOD + b"\n")  # middle: only [ \t\r] count as blank
    assert (alone.blank, len(alone.rejects)) == (inside.blank, len(inside.rejects))


_PARSE_IN_CHILD = """
import sys
from ticklake.landing.jsonl import parse_jsonl
parsed = parse_jsonl(sys.stdin.buffer.read())
print([(r.line, r.kind) for r in parsed.rejects], parsed.table.num_rows)
"""


@pytest.mark.parametrize("where", ["first line", "where bisection splits a big file"])
def test_null_line_does_not_crash_the_process(where: str, tmp_path: Any) -> None:
    if where == "first line":
        data, expected = b"null\n" + GOOD + b"\n", "[(1, 'not_an_object')] 1"
    else:  # a bad first line makes the reader bisect; the second half then starts with the null
        data = b"\n".join([b"{", *BIG[:AT], b"null", *BIG[AT:]]) + b"\n"  # 12,002 lines, mid = AT + 1
        expected = f"[(1, 'invalid_json'), ({AT + 2}, 'not_an_object')] {N_BIG}"
    # a child process: the crash is a segmentation fault, which would take the test run down
    done = subprocess.run([sys.executable, "-c", _PARSE_IN_CHILD], input=data, capture_output=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, f"exit status {done.returncode}"
    assert done.stdout.decode().strip() == expected


# --- random mixes: block parse == line-by-line judge --------------------------------------------

_ts = st.integers(0, 4_102_444_799_999_999)  # 1970 .. 2099-12-31
_price = st.floats(-1e9, 1e9, allow_nan=False)
_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=6)


@st.composite
def valid_records(draw: st.DrawFn) -> dict[str, Any]:
    us = draw(_ts)
    style = draw(st.sampled_from(["z", "offset", "naive", "epoch_int", "epoch_float"]))
    seconds, micros = divmod(us, 1_000_000)
    when = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=us)
    stamp: Any = {
        "z": when.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "offset": when.astimezone(dt.timezone(dt.timedelta(hours=-5))).isoformat() if us >= 18_000_000_000 else when.isoformat(),
        "naive": when.replace(tzinfo=None).isoformat(sep=" "),
        "epoch_int": seconds,
        "epoch_float": seconds + micros / 1e6,
    }[style]
    kind = draw(st.sampled_from(["last", "bid_ask", "mid_point"]))
    rec: dict[str, Any] = {"timestamp": stamp, "contract_id": draw(st.integers(1, 2**63 - 1)), "tick_type": kind}
    if kind == "bid_ask":
        sides = draw(st.sampled_from([("bid_price",), ("ask_price",), ("bid_price", "ask_price")]))
        rec.update({s: draw(_price) for s in sides})
        if draw(st.booleans()):
            rec["bid_size"] = draw(st.integers(0, 10**6))
    else:
        rec["price"] = draw(_price)
        if draw(st.booleans()):
            rec["size"] = draw(st.floats(0, 1e9))
    for name in ("symbol", "exchange"):
        if draw(st.booleans()):
            rec[name] = draw(_text)
    if draw(st.booleans()):
        rec["conditions"] = draw(st.lists(_text, max_size=3))
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2]))):  # unknown fields: kept in `extra`
        rec[draw(_unknown_keys)] = draw(_unknown_values)
    return rec


_unknown_keys = st.sampled_from(["venue_seq", "flags", "é", "名前", "a b", "Price"]) | st.text(max_size=4).filter(
    lambda k: k not in KNOWN_FIELDS
)
_unknown_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=6,
)


_BROKEN = {
    "drop": lambda r, k: {n: v for n, v in r.items() if n != k},
    "null": lambda r, k: {**r, k: None},
    "string": lambda r, k: {**r, k: str(r.get(k, "x"))},
    "bool": lambda r, k: {**r, k: True},
    "negative": lambda r, k: {**r, k: -abs(r.get(k, 1) if isinstance(r.get(k), int | float) else 1) - 1},
    "list": lambda r, k: {**r, k: [1]},
}
_FIELDS = ["timestamp", "contract_id", "tick_type", "price", "size", "bid_price", "ask_price", "symbol", "conditions"]
_garbage = st.sampled_from(
    # not b"null": a block starting with it crashes the process (test_null_line_does_not_crash_the_process)
    [b"{", b"[]", b"42", b'"tick"', b"true", b"\xff\xfe", b'{"timestamp":NaN}', b"{'a':1}", b"not json", b"{}"]
)


def _twice(line: bytes, key: str) -> bytes:
    """`line` (an object) with one more copy of its member `key`, written as text: dicts cannot hold it."""
    obj = json.loads(line)
    return line[:-1] + b"," + json.dumps({key: obj.get(key, 1)})[1:].encode()


@st.composite
def lines(draw: st.DrawFn) -> bytes:
    choice = draw(st.integers(0, 10))
    if choice <= 3:
        return json.dumps(draw(valid_records()), ensure_ascii=draw(st.booleans())).encode()
    if choice == 10:
        line = json.dumps(draw(valid_records())).encode()
        return _twice(line, draw(st.sampled_from(sorted(json.loads(line)))))
    if choice <= 6:
        rec = draw(valid_records())
        how = draw(st.sampled_from(sorted(_BROKEN)))
        return json.dumps(_BROKEN[how](rec, draw(st.sampled_from(_FIELDS)))).encode()
    if choice == 7:
        return draw(st.sampled_from([b"", b"  ", b"\t", b"\r"]))
    return draw(_garbage)


@pytest.fixture
def hypothesis_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Hypothesis keeps caches (constants, unicode tables) in a folder: below tmp, never in the working directory."""
    set_hypothesis_home_dir(tmp_path_factory.mktemp("hypothesis"))
    yield
    set_hypothesis_home_dir(None)


@pytest.mark.usefixtures("hypothesis_home")
@settings(max_examples=FUZZ_EXAMPLES or 40, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(lines(), min_size=1, max_size=40), st.booleans())
def test_random_mix_matches_the_judge_alone_and_in_a_big_file(mix: list[bytes], crlf: bool) -> None:
    end = b"\r\n" if crlf else b"\n"
    expected = oracle([line + (b"\r" if crlf else b"") for line in mix])
    data = end.join(mix) + end
    assert outcome(parse_jsonl(data)) == expected
    # the same lines inside a big valid file: same verdicts, same line numbers (after the shift)
    big = end.join([*BIG[:AT], *mix, *BIG[AT:]]) + end
    got_rejects, got_rows = outcome(parse_jsonl(big), shift=AT)
    assert got_rejects == expected[0]
    assert [r for r in got_rows if 1 <= r[LINE] <= len(mix)] == expected[1]
    assert len(got_rows) == N_BIG + len(expected[1])
