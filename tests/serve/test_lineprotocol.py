"""Line protocol into landing records: escapes, types, precisions, and every malformed line named by its field."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ticklake.serve.lineprotocol import PRECISIONS, format_line, is_skipped, landing_time, parse_line, split_lines
from ticklake.ticks import Invalid, timestamp_us, validate

from .conftest import SYNTAX

NS = 1641531600123456789  # 2022-01-07T05:00:00.123456789Z
ISO = "2022-01-07T05:00:00.123456Z"


def test_a_ticks_line_becomes_its_landing_record() -> None:
    tags = "ticks,tick_type=bid_ask,contract_id=42,symbol=ES,exchange=CME"
    line = f'{tags} bid_price=1.25,ask_price=2e1,bid_size=3i,ask_size=4u,conditions="a,b" {NS}'
    assert parse_line(line) == {
        "tick_type": "bid_ask",
        "contract_id": 42,
        "symbol": "ES",
        "exchange": "CME",
        "bid_price": 1.25,
        "ask_price": 20.0,
        "bid_size": 3,
        "ask_size": 4,
        "conditions": ["a", "b"],
        "timestamp": ISO,
    }


def test_a_tick_type_measurement_sets_the_tick_type_and_contract_id_may_be_a_field() -> None:
    assert parse_line(f"last contract_id=7i,price=1,size=2 {NS}")["tick_type"] == "last"
    assert parse_line(f"mid_point contract_id=7.0,price=1 {NS}")["contract_id"] == 7
    assert parse_line(f"mid_point,tick_type=mid_point contract_id=7u,price=1 {NS}")["contract_id"] == 7
    assert parse_line(f"ticks,tick_type=last contract_id=7.5,price=1 {NS}")["contract_id"] == 7.5  # the validator refuses it


def test_unknown_tags_and_fields_are_kept_with_their_types() -> None:
    record = parse_line(f'last,venue=X contract_id=1i,price=1,flag=t,off=F,n=-3i,u=5u,x=0.5,note="hi" {NS}')
    assert {k: record[k] for k in ("venue", "flag", "off", "n", "u", "x", "note")} == {
        "venue": "X",
        "flag": True,
        "off": False,
        "n": -3,
        "u": 5,
        "x": 0.5,
        "note": "hi",
    }
    assert validate(record)["extra"] == '{"flag":true,"n":-3,"note":"hi","off":false,"u":5,"venue":"X","x":0.5}'


@pytest.mark.parametrize(
    ("line", "key", "value"),
    [
        (r"ticks,tick_type=last,sym\,b\ c\=d=v\,1\ 2\=3 contract_id=1i,price=1", "sym,b c=d", "v,1 2=3"),
        (r"ticks,tick_type=last contract_id=1i,price=1,f\ k\,e\=y=1i", "f k,e=y", 1),
        (r'ticks,tick_type=last contract_id=1i,price=1,s="a \"q\" \\ b, c=d"', "s", 'a "q" \\ b, c=d'),
        (r'ticks,tick_type=last contract_id=1i,price=1,s="back\slash"', "s", "back\\slash"),  # not an escape: kept
        (r"ticks,tick_type=last,sym=a\\ contract_id=1i,price=1", "sym", "a\\"),  # \\ then the space ends the tag
        (r"ticks,tick_type=last,sym=a\b contract_id=1i,price=1", "sym", "a\\b"),
        ('ticks,tick_type=last,sym=quo"te contract_id=1i,price=1', "sym", 'quo"te'),  # quotes are plain in tags
        ('ticks,tick_type=last contract_id=1i,price=1,s="multi\\\nline"', "s", "multi\nline"),
        ('ticks,tick_type=last contract_id=1i,price=1,s=""', "s", ""),
        ('ticks,tick_type=last,é=ü contract_id=1i,price=1,s="ß"', "é", "ü"),
    ],
)
def test_escapes(line: str, key: str, value: Any) -> None:
    assert parse_line(line)[key] == value


def test_an_empty_tag_value_is_an_absent_tag() -> None:
    record = parse_line("ticks,tick_type=last,exchange=,symbol=AAPL,contract_id=7 price=1.5 1641531600000000000")
    assert "exchange" not in record and record["symbol"] == "AAPL"
    assert "venue" not in parse_line("last,venue= price=1")


def test_nan_is_questdbs_null_and_the_field_is_absent() -> None:
    record = parse_line("ticks,tick_type=bid_ask,contract_id=7 bid_price=NaN,ask_price=1.5 1641531600000000000")
    assert record["bid_price"] is None and record["ask_price"] == 1.5
    assert validate(record)["bid_price"] is None


def test_an_escaped_measurement() -> None:
    with pytest.raises(Invalid) as e:
        parse_line(r"tic\ ks,tick_type=last contract_id=1i,price=1")
    assert e.value.field == "measurement" and "'tic ks'" in e.value.message


@pytest.mark.parametrize("precision", sorted(PRECISIONS))
def test_precisions(precision: str) -> None:
    unit = PRECISIONS[precision]
    record = parse_line(f"last contract_id=1i,price=1 {NS // unit}", unit_ns=unit)
    expected = (NS // unit * unit) // 1000  # truncated to the unit, then to the microsecond
    assert timestamp_us(record["timestamp"]) == expected


def test_a_line_without_timestamp_gets_the_receive_time() -> None:
    assert parse_line("last contract_id=1i,price=1", received_ns=NS)["timestamp"] == ISO
    assert parse_line("last contract_id=1i,price=1  ", received_ns=NS)["timestamp"] == ISO


def test_a_timestamp_no_date_holds_is_left_for_the_validator() -> None:
    record = parse_line("last contract_id=1i,price=1 9223372036854775807", unit_ns=PRECISIONS["h"])
    with pytest.raises(Invalid) as e:
        validate(record)
    assert e.value.kind == "bad_timestamp"


def test_lines_blank_lines_comments_crlf_and_escaped_line_breaks() -> None:
    body = b'# a comment\r\n\r\nlast a=1 1\r\nlast s="x\\\ny" 2\n  \nlast,t=a\\\\ b=1\nlast c=1'
    lines = list(split_lines(body))
    assert lines == [
        (1, b"# a comment"),
        (2, b""),
        (3, b"last a=1 1"),
        (4, b'last s="x\\\ny" 2'),
        (6, b"  "),
        (7, b"last,t=a\\\\ b=1"),
        (8, b"last c=1"),
    ]
    assert [n for n, line in lines if not is_skipped(line)] == [3, 4, 7, 8]


# (line, reason, field, words the message holds): every way a line is refused before the validator sees it
MALFORMED: list[tuple[str, str, str | None, str]] = [
    ("", SYNTAX, None, "expected a measurement"),
    (",tick_type=last price=1", SYNTAX, None, "column 1: expected a measurement"),
    ("last", SYNTAX, None, "expected a space before the fields"),
    ("last ", SYNTAX, None, "expected a field key"),
    ("last,tick_type price=1", SYNTAX, None, "expected '=' after tag key 'tick_type'"),
    ("last,=x price=1", SYNTAX, None, "expected a tag key"),
    ("last price", SYNTAX, None, "expected '=' after field key 'price'"),
    ("last price=", SYNTAX, "price", "expected a value for field 'price'"),
    ("last price=1,", SYNTAX, None, "expected a field key"),
    ("last price=abc", SYNTAX, "price", "field 'price' has value 'abc': not a number"),
    ("last price=1.2.3", SYNTAX, "price", "not a number, boolean or quoted string"),
    ("last price=-5u", SYNTAX, "price", "'-5u'"),
    ("last price=1i2", SYNTAX, "price", "'1i2'"),
    ('last symbol="open', SYNTAX, "symbol", "the string value of field 'symbol' has no closing quote"),
    ("last price=1 12ab", SYNTAX, "timestamp", "expected an integer timestamp, got '12ab'"),
    ("last price=1 size=2", SYNTAX, "timestamp", "got 'size=2'"),
    ("last price=1 1 2", SYNTAX, None, "expected the end of the line after the timestamp"),
    ('last price=1"x"', SYNTAX, "price", "'1\"x\"'"),
    ("last price=-Infinity", "bad_value", "price", "field 'price' is not finite: -Infinity"),
    ("last price=1e999", "bad_value", "price", "field 'price' is too large for a double"),
    (f"last n={'9' * 700}i", "bad_value", "n", "more than 640 digits"),
    ("trades price=1", "bad_value", "measurement", "measurement 'trades' is neither 'ticks' nor a tick type"),
    ("last,tick_type=bid_ask price=1", "bad_value", "tick_type", "but the measurement says 'last'"),
    ('last,symbol=a symbol="b"', "duplicate_field", "symbol", "key 'symbol' appears twice in one line"),
    ("last price=1,price=2", "duplicate_field", "price", "appears twice"),
    ("last timestamp=1i", "duplicate_field", "timestamp", "appears twice"),
]


@pytest.mark.parametrize(("line", "reason", "field", "words"), MALFORMED, ids=[m[0][:30] or "empty" for m in MALFORMED])
def test_malformed_lines_are_named_by_reason_and_field(line: str, reason: str, field: str | None, words: str) -> None:
    with pytest.raises(Invalid) as e:
        parse_line(line)
    assert (e.value.kind, e.value.field) == (reason, field)
    assert words in e.value.message
    if reason == SYNTAX:
        assert e.value.message.startswith("line protocol: column ")


_TEXT = st.text(st.characters(min_codepoint=1, max_codepoint=0x2FFF, exclude_categories=["Cs"]), max_size=12)
_NAME = st.text(st.characters(min_codepoint=32, max_codepoint=0x2FF), min_size=1, max_size=8).filter(
    lambda s: s not in ("timestamp", "tick_type", "contract_id", "conditions")  # converted on the way in
)
_NUMBER = st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(2**63), 2**63)
_VALUE = _NUMBER | _TEXT | st.booleans()


@st.composite
def records(draw: st.DrawFn) -> dict[str, Any]:
    """Landing records as `parse_line` makes them: a timestamp to the microsecond, any known and unknown fields."""
    us = draw(st.integers(0, 4102444800 * 10**6 - 1))
    record: dict[str, Any] = {"tick_type": draw(st.sampled_from(["last", "bid_ask", "mid_point"]))}
    record["contract_id"] = draw(st.integers(1, 2**63 - 1))
    for name in ("price", "size", "bid_price", "ask_price", "bid_size", "ask_size"):
        if draw(st.booleans()):
            record[name] = draw(_NUMBER)
    for name in ("symbol", "exchange"):
        if draw(st.booleans()):
            record[name] = draw(_TEXT)
    if draw(st.booleans()):
        record["conditions"] = draw(st.lists(_TEXT.filter(lambda s: s and "," not in s), max_size=3))
    for name, value in draw(st.dictionaries(_NAME, _VALUE, max_size=3)).items():
        record.setdefault(name, value)
    record["timestamp"] = landing_time(us * 1000)
    return record


@given(records())
def test_records_rendered_to_line_protocol_parse_back_equal(record: dict[str, Any]) -> None:
    line = format_line(record)
    [(_, raw)] = list(split_lines(line.encode() + b"\n"))
    fields, stamp = raw.decode().rsplit(" ", 1)
    for text in (raw.decode(), f"{fields}   {stamp}"):  # the regex fast path; extra spaces take the careful reader
        parsed = parse_line(text)
        assert parsed == record
        assert {k: type(v) for k, v in parsed.items()} == {k: type(v) for k, v in record.items()}  # 1 == 1.0; 1i is not 1.0
