"""Tests for ticklake.ticks: the tick record rules (validate, decode_line) and timestamp parsing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ticklake.ticks import MAX_US, ROW_SCHEMA, Invalid, decode_line, timestamp_us, validate

T0 = 1641531600_000000  # 2022-01-07T05:00:00Z in epoch microseconds
TS = "2022-01-07T05:00:00Z"


def rec(tick_type: str = "last", **fields: Any) -> dict[str, Any]:
    """A minimal valid record of `tick_type`; `fields` add, override, or (with None) remove."""
    base: dict[str, Any] = {"timestamp": TS, "contract_id": 7, "tick_type": tick_type}
    if tick_type in ("last", "mid_point"):
        base["price"] = 1.5
    if tick_type == "bid_ask":
        base.update(bid_price=1.25, ask_price=1.75)
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


def rejection(obj: Any) -> tuple[str, str | None, str]:
    with pytest.raises(Invalid) as info:
        validate(obj)
    return info.value.kind, info.value.field, info.value.message


# --- timestamps -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2022-01-07T05:00:00Z", T0),
        ("2022-01-07T05:00:00+00:00", T0),
        ("2022-01-07T06:00:00+01:00", T0),
        ("2022-01-07T00:30:00-04:30", T0),
        ("2022-01-07T05:00:00", T0),  # naive means UTC
        ("2022-01-07 05:00:00", T0),
        ("2022-01-07T05:00:00.000001Z", T0 + 1),  # one microsecond, not rounded to a millisecond
        ("2022-01-07T05:00:00.000999Z", T0 + 999),
        ("2022-01-07T05:00:00.123456Z", T0 + 123456),
        ("2022-01-07T05:00:00.5Z", T0 + 500000),
        ("2022-01-07T05:00:00.123456999Z", T0 + 123456),  # nanoseconds truncated, never rounded up
        ("  2022-01-07T05:00:00Z  ", T0),
        (1641531600, T0),
        (1641531600.123456, T0 + 123456),
        (1641531600.000001, T0 + 1),
        (0, 0),
    ],
)
def test_timestamp_us_is_utc_microseconds(value: Any, expected: int) -> None:
    assert timestamp_us(value) == expected


@pytest.mark.parametrize(
    ("value", "kind", "message"),
    [
        ("yesterday", "bad_timestamp", "field 'timestamp' is not ISO-8601: 'yesterday'"),
        ("2022-13-01T00:00:00Z", "bad_timestamp", "field 'timestamp' is not ISO-8601: '2022-13-01T00:00:00Z'"),
        ("2016-12-31T23:59:60Z", "bad_timestamp", "field 'timestamp' is not ISO-8601: '2016-12-31T23:59:60Z'"),
        ("", "bad_timestamp", "field 'timestamp' is not ISO-8601: ''"),
        # epoch milliseconds (and microseconds) sent as seconds land far beyond 2100
        (1641531600123, "bad_timestamp", "field 'timestamp' out of range 1970..2100: 1641531600123"),
        (1641531600123456, "bad_timestamp", "field 'timestamp' out of range 1970..2100: 1641531600123456"),
        (-1, "bad_timestamp", "field 'timestamp' out of range 1970..2100: -1"),
        ("1969-12-31T23:59:59Z", "bad_timestamp", "field 'timestamp' out of range 1970..2100: '1969-12-31T23:59:59Z'"),
        ("2100-01-01T00:00:00Z", "bad_timestamp", "field 'timestamp' out of range 1970..2100: '2100-01-01T00:00:00Z'"),
        (float("nan"), "bad_timestamp", "field 'timestamp' is not finite: nan"),
        (float("inf"), "bad_timestamp", "field 'timestamp' is not finite: inf"),
        (True, "wrong_type", "field 'timestamp' must be an ISO-8601 string or epoch seconds, got true"),
        ([2022], "wrong_type", "field 'timestamp' must be an ISO-8601 string or epoch seconds, got [2022]"),
        ({}, "wrong_type", "field 'timestamp' must be an ISO-8601 string or epoch seconds, got {}"),
    ],
)
def test_timestamp_us_rejects(value: Any, kind: str, message: str) -> None:
    with pytest.raises(Invalid) as info:
        timestamp_us(value)
    assert (info.value.kind, info.value.field, info.value.message) == (kind, "timestamp", message)


def test_timestamp_range_edges() -> None:
    assert timestamp_us("2099-12-31T23:59:59.999999Z") == MAX_US - 1
    assert timestamp_us("1970-01-01T00:00:00Z") == 0


def test_huge_integer_timestamp_is_bad_timestamp() -> None:
    with pytest.raises(Invalid) as info:
        timestamp_us(10**400)
    assert info.value.kind == "bad_timestamp"


# --- valid records ----------------------------------------------------------------------------


def test_valid_last_tick_becomes_a_full_row() -> None:
    row = validate(rec(size=100, symbol="AAPL", exchange="NASDAQ", conditions=["@", "T"]))
    assert list(row) == ROW_SCHEMA.names
    assert row == {
        "timestamp": T0,
        "contract_id": 7,
        "tick_type": "last",
        "price": 1.5,
        "size": 100.0,
        "bid_price": None,
        "ask_price": None,
        "bid_size": None,
        "ask_size": None,
        "symbol": "AAPL",
        "exchange": "NASDAQ",
        "conditions": ["@", "T"],
        "extra": None,
    }
    assert isinstance(row["size"], float)


@pytest.mark.parametrize(
    "record",
    [
        rec("bid_ask"),
        rec("bid_ask", ask_price=None),  # one-sided quotes are valid
        rec("bid_ask", bid_price=None),
        rec("bid_ask", bid_price=None, ask_size=0),
        rec("mid_point"),
        rec("last", price=-1.5),  # negative prices exist (spreads, some futures)
        rec("last", size=0),
        rec("last", conditions=[]),
        rec("last", contract_id=2**63 - 1),
    ],
)
def test_valid_records(record: dict[str, Any]) -> None:
    row = validate(record)
    assert row["tick_type"] == record["tick_type"] and row["contract_id"] == record["contract_id"]


def test_unknown_fields_are_kept_in_extra() -> None:
    row = validate(rec(venue_seq=42, zeta={"a": [1, 2]}, alpha="x"))
    assert json.loads(row["extra"]) == {"venue_seq": 42, "zeta": {"a": [1, 2]}, "alpha": "x"}
    assert row["extra"] == '{"alpha":"x","venue_seq":42,"zeta":{"a":[1,2]}}'  # canonical: sorted, compact
    assert validate(rec())["extra"] is None


# --- rejected records: one test per reason and field ------------------------------------------


@pytest.mark.parametrize(
    ("record", "field", "message"),
    [
        (rec(timestamp=None), "timestamp", "field 'timestamp' missing"),
        (rec(contract_id=None), "contract_id", "field 'contract_id' missing"),
        (rec(tick_type=None), "tick_type", "field 'tick_type' missing"),
        (rec("last", price=None), "price", "field 'price' missing (required for tick_type 'last')"),
        (rec("mid_point", price=None), "price", "field 'price' missing (required for tick_type 'mid_point')"),
        (
            rec("bid_ask", bid_price=None, ask_price=None, bid_size=1, ask_size=1),
            "bid_price",
            "fields 'bid_price' and 'ask_price' both missing (bid_ask needs one)",
        ),
        ({**rec(), "timestamp": None}, "timestamp", "field 'timestamp' missing"),  # explicit null = missing
    ],
)
def test_missing_field(record: dict[str, Any], field: str, message: str) -> None:
    assert rejection(record) == ("missing_field", field, message)


@pytest.mark.parametrize(
    ("record", "field", "message"),
    [
        (rec(contract_id="7"), "contract_id", "field 'contract_id' must be an integer, got \"7\""),
        (rec(contract_id=7.0), "contract_id", "field 'contract_id' must be an integer, got 7.0"),
        (rec(contract_id=True), "contract_id", "field 'contract_id' must be an integer, got true"),
        (rec(price="1.5"), "price", "field 'price' must be a number, got \"1.5\""),
        (rec(size="100"), "size", "field 'size' must be a number, got \"100\""),
        (rec(size=False), "size", "field 'size' must be a number, got false"),
        (rec("bid_ask", bid_price="1.2"), "bid_price", "field 'bid_price' must be a number, got \"1.2\""),
        (rec("bid_ask", ask_size=[1]), "ask_size", "field 'ask_size' must be a number, got [1]"),
        (rec(symbol=5), "symbol", "field 'symbol' must be a string, got 5"),
        (rec(exchange=["X"]), "exchange", "field 'exchange' must be a string, got [\"X\"]"),
        (rec(conditions="@"), "conditions", "field 'conditions' must be a list of strings, got \"@\""),
        (rec(conditions=["@", 1]), "conditions", "field 'conditions' must be a list of strings, got [\"@\", 1]"),
        (rec(conditions=[None]), "conditions", "field 'conditions' must be a list of strings, got [null]"),
    ],
)
def test_wrong_type(record: dict[str, Any], field: str, message: str) -> None:
    assert rejection(record) == ("wrong_type", field, message)


def test_wrong_type_message_truncates_long_values() -> None:
    kind, field, message = rejection(rec(symbol=["A" * 100]))
    assert (kind, field) == ("wrong_type", "symbol")
    assert message == "field 'symbol' must be a string, got " + json.dumps(["A" * 100])[:40]


@pytest.mark.parametrize(
    ("record", "field", "message"),
    [
        (rec(tick_type="trade"), "tick_type", "field 'tick_type' must be one of last, bid_ask, mid_point, got \"trade\""),
        (rec(tick_type="LAST"), "tick_type", "field 'tick_type' must be one of last, bid_ask, mid_point, got \"LAST\""),
        (rec(tick_type=1), "tick_type", "field 'tick_type' must be one of last, bid_ask, mid_point, got 1"),
        (rec(contract_id=0), "contract_id", "field 'contract_id' out of range: 0"),
        (rec(contract_id=-5), "contract_id", "field 'contract_id' out of range: -5"),
        (rec(contract_id=2**63), "contract_id", f"field 'contract_id' out of range: {2**63}"),
        (rec(size=-1), "size", "field 'size' is negative: -1"),
        (rec("bid_ask", bid_size=-0.5), "bid_size", "field 'bid_size' is negative: -0.5"),
        (rec("bid_ask", ask_size=-2), "ask_size", "field 'ask_size' is negative: -2"),
        (rec(price=float("nan")), "price", "field 'price' is not finite: nan"),
        (rec(price=float("inf")), "price", "field 'price' is not finite: inf"),
        (rec("bid_ask", ask_price=float("-inf")), "ask_price", "field 'ask_price' is not finite: -inf"),
    ],
)
def test_bad_value(record: dict[str, Any], field: str, message: str) -> None:
    assert rejection(record) == ("bad_value", field, message)


@pytest.mark.parametrize("record", [rec(price=10**400), rec(size=-(10**400)), rec(size=10**309)])
def test_integer_beyond_float_range_is_bad_value(record: dict[str, Any]) -> None:
    assert rejection(record)[0] == "bad_value"


def test_first_problem_in_field_order_is_reported() -> None:
    # timestamp is checked before contract_id, contract_id before tick_type
    assert rejection(rec(timestamp="x", contract_id="y", tick_type="z"))[1] == "timestamp"
    assert rejection(rec(contract_id="y", tick_type="z"))[1] == "contract_id"


@pytest.mark.parametrize("value", [[], "x", 1, 1.5, True, None])
def test_not_an_object(value: Any) -> None:
    kind, field, _ = rejection(value)
    assert (kind, field) == ("not_an_object", None)


def test_not_an_object_message_names_the_json_type() -> None:
    assert rejection([1])[2] == "line is a JSON array, not an object"


def test_not_an_object_message_for_null_says_null() -> None:
    assert rejection(None)[2] == "line is a JSON null, not an object"


# --- decode_line: bytes to row ----------------------------------------------------------------


def test_decode_line_accepts_a_valid_line() -> None:
    row = decode_line(json.dumps(rec(symbol="ÉUR")).encode("utf-8"))
    assert row["timestamp"] == T0 and row["symbol"] == "ÉUR"


@pytest.mark.parametrize(
    ("raw", "kind", "message"),
    [
        (b'{"timestamp": "\xff"}', "invalid_utf8", "line is not UTF-8 (byte 15)"),
        (b"\xc3", "invalid_utf8", "line is not UTF-8 (byte 0)"),
        (b'{"timestamp": ', "invalid_json", "line is not valid JSON: Expecting value: line 1 column 15 (char 14)"),
        (
            b"{'a': 1}",
            "invalid_json",
            "line is not valid JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
        ),
        (
            b'{"timestamp":"2022-01-07T05:00:00Z","contract_id":7,"tick_type":"last","price":NaN}',
            "invalid_json",
            "line is not valid JSON: NaN is not a JSON number",
        ),
        (b'{"price":Infinity}', "invalid_json", "line is not valid JSON: Infinity is not a JSON number"),
        (b"[1, 2]", "not_an_object", "line is a JSON array, not an object"),
    ],
)
def test_decode_line_rejects(raw: bytes, kind: str, message: str) -> None:
    with pytest.raises(Invalid) as info:
        decode_line(raw)
    assert (info.value.kind, info.value.field, info.value.message) == (kind, None, message)


def test_decode_line_number_beyond_double_is_bad_value() -> None:
    # 1e400 parses to infinity: the number is not finite, not bad JSON
    with pytest.raises(Invalid) as info:
        decode_line(json.dumps(rec()).replace("1.5", "1e400").encode())
    assert (info.value.kind, info.value.field, info.value.message) == ("bad_value", "price", "field 'price' is not finite: inf")


def test_invalid_is_an_exception_with_its_message() -> None:
    error = Invalid("bad_value", "size", "field 'size' is negative: -1")
    assert str(error) == "field 'size' is negative: -1"
