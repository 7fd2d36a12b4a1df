"""The tick record: its one column table (landing JSON rules, Arrow and SQL schemas), and the per-record validator.

The validator here is the one definition of what a valid tick is and why a line is rejected;
the vectorised fast path in `ticklake.landing.jsonl` only decides which lines need it.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa

from ticklake.columns import PATH_COLUMNS, TIMESTAMP, Column, arrow_schema, numbered, sql_columns

TICK_TYPES = ("last", "bid_ask", "mid_point")

# The one declaration of the tick columns (in field-ID order: append only); every schema below is derived from it.
TICK_COLUMNS: tuple[Column, ...] = numbered((
    Column("timestamp", TIMESTAMP, json="required"),
    Column("contract_id", pa.int64(), json="required"),
    Column("tick_type", pa.string(), json="required", place="partition"),
    Column("price", pa.float64(), json="price"),
    Column("size", pa.float64(), json="size"),
    Column("bid_price", pa.float64(), json="price"),
    Column("ask_price", pa.float64(), json="price"),
    Column("bid_size", pa.float64(), json="size"),
    Column("ask_size", pa.float64(), json="size"),
    Column("symbol", pa.string(), json="text"),
    Column("exchange", pa.string(), json="text"),
    Column("conditions", pa.list_(pa.string()), json="text_list"),
    # Unknown fields as a JSON object, so nothing sent is lost.
    Column("extra", pa.string()),
    *PATH_COLUMNS,
))


def _fields(*rules: str) -> tuple[str, ...]:
    return tuple(c.name for c in TICK_COLUMNS if c.json in rules)


REQUIRED_FIELDS = _fields("required")
PRICE_FIELDS = _fields("price")
SIZE_FIELDS = _fields("size")
NUMBER_FIELDS = _fields("price", "size")
TEXT_FIELDS = _fields("text")
KNOWN_FIELDS = frozenset(c.name for c in TICK_COLUMNS if c.json is not None)

# Accepted timestamp range: catches epoch milliseconds sent as seconds and similar unit slips.
MIN_US = 0
MAX_US = int(datetime(2100, 1, 1, tzinfo=UTC).timestamp()) * 1_000_000
# Nesting of arrays and objects a line may have (its own object is level 1): far beyond any
# real tick, and far below where Python's JSON decoder would give up, so the rule, not the stack, decides.
MAX_DEPTH = 64
# Longest integer literal decoded: Python's str-to-int conversion is quadratic in the digits, and
# 640 is the lowest limit it can be configured to, so the rule is the same in every process.
MAX_INT_DIGITS = 640

# One row per tick (date and hour are derived from the timestamp when it is written).
ROW_SCHEMA = arrow_schema(c for c in TICK_COLUMNS if c.place != "path")
# Parquet files hold every column but tick_type, which is their partition.
FILE_SCHEMA = arrow_schema(c for c in TICK_COLUMNS if c.place == "file")
# The fields a landing JSON line may carry, as the JSON reader types them (ROW_SCHEMA minus extra).
LANDING_SCHEMA = arrow_schema(c for c in TICK_COLUMNS if c.json is not None)
# The `ticks` table as SQL sees it (tick_type, date and hour come from the Hive partition path).
SQL_COLUMNS: dict[str, str] = sql_columns(TICK_COLUMNS)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FRACTION = re.compile(r"(\.\d{6})\d+")


@dataclass(frozen=True)
class Invalid(Exception):
    """Why one record is not a valid tick: a reason kind, the field at fault, and a message."""

    kind: str
    field: str | None
    message: str

    def __str__(self) -> str:
        return self.message


def _missing(field: str) -> Invalid:
    return Invalid("missing_field", field, f"field '{field}' missing")


def _wrong_type(field: str, expected: str, value: Any) -> Invalid:
    return Invalid("wrong_type", field, f"field '{field}' must be {expected}, got {json.dumps(value)[:40]}")


def _clip(text: str) -> str:
    """`text` fit for a one-line message: escaped like JSON, at most 40 characters."""
    return json.dumps(text)[1:-1][:40]


def timestamp_us(value: Any) -> int:
    """Epoch microseconds (UTC) of a landing timestamp: ISO-8601 text (naive = UTC) or epoch seconds.

    >>> timestamp_us("2022-01-07T05:00:00.123456Z"), timestamp_us("2022-01-07 06:00:00.123456+01:00")
    (1641531600123456, 1641531600123456)
    >>> timestamp_us(1641531600.123456)
    1641531600123456
    """
    if isinstance(value, bool):
        raise _wrong_type("timestamp", "an ISO-8601 string or epoch seconds", value)
    if isinstance(value, int):
        us = value * 1_000_000
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise Invalid("bad_timestamp", "timestamp", f"field 'timestamp' is not finite: {value}")
        us = round(value * 1_000_000)
    elif isinstance(value, str):
        text = _FRACTION.sub(r"\1", value.strip())  # nanoseconds: kept to the microsecond
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise Invalid("bad_timestamp", "timestamp", f"field 'timestamp' is not ISO-8601: {value[:40]!r}") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        us = (parsed - _EPOCH) // timedelta(microseconds=1)
    else:
        raise _wrong_type("timestamp", "an ISO-8601 string or epoch seconds", value)
    if not MIN_US <= us < MAX_US:
        raise Invalid("bad_timestamp", "timestamp", f"field 'timestamp' out of range 1970..2100: {_clip(repr(value))}")
    return us


def validate(obj: Any) -> dict[str, Any]:
    """A valid tick as a row of ROW_SCHEMA (timestamp in epoch µs), or raise Invalid.

    >>> validate({"timestamp": "2022-01-07T05:00:00Z", "contract_id": 1, "tick_type": "mid_point", "price": 1.5, "x": 1})["extra"]
    '{"x":1}'
    >>> validate({"timestamp": "2022-01-07T05:00:00Z", "contract_id": 1, "tick_type": "last"})
    Traceback (most recent call last):
    ...
    ticklake.ticks.Invalid: field 'price' missing (required for tick_type 'last')
    """
    if not isinstance(obj, dict):
        raise Invalid("not_an_object", None, f"line is a JSON {_json_type(obj)}, not an object")
    for name in REQUIRED_FIELDS:
        if obj.get(name) is None:
            raise _missing(name)
    row: dict[str, Any] = {"timestamp": timestamp_us(obj["timestamp"])}
    cid = obj["contract_id"]
    if not isinstance(cid, int) or isinstance(cid, bool):
        raise _wrong_type("contract_id", "an integer", cid)
    if not 0 < cid < 2**63:
        raise Invalid("bad_value", "contract_id", f"field 'contract_id' out of range: {_clip(str(cid))}")
    row["contract_id"] = cid
    tick_type = obj["tick_type"]
    if tick_type not in TICK_TYPES:
        raise Invalid(
            "bad_value",
            "tick_type",
            f"field 'tick_type' must be one of {', '.join(TICK_TYPES)}, got {json.dumps(tick_type)[:40]}",
        )
    row["tick_type"] = tick_type
    for name in NUMBER_FIELDS:
        row[name] = _number(name, obj.get(name))
    if tick_type in ("last", "mid_point") and row["price"] is None:
        raise Invalid("missing_field", "price", f"field 'price' missing (required for tick_type '{tick_type}')")
    if tick_type == "bid_ask" and row["bid_price"] is None and row["ask_price"] is None:
        raise Invalid("missing_field", "bid_price", "fields 'bid_price' and 'ask_price' both missing (bid_ask needs one)")
    for name in TEXT_FIELDS:
        value = obj.get(name)
        if value is not None:
            if not isinstance(value, str):
                raise _wrong_type(name, "a string", value)
            _check_unicode(name, value)
        row[name] = value
    conditions = obj.get("conditions")
    if conditions is not None:
        if not (isinstance(conditions, list) and all(isinstance(c, str) for c in conditions)):
            raise _wrong_type("conditions", "a list of strings", conditions)
        for c in conditions:
            _check_unicode("conditions", c)
    row["conditions"] = conditions
    row["extra"] = unknown_fields(obj)[0]
    return row


def _not_json(value: Any) -> Any:
    raise TypeError(f"{type(value).__name__} is not a JSON value")


# The encoder of `extra` values that nest, built once (json.dumps builds one per call, which costs
# more than encoding a small value; the fast path encodes one per line that has unknown fields).
_EXTRA = json.JSONEncoder(separators=(",", ":"), sort_keys=True, allow_nan=False, default=_not_json)
# CPython's C encoder, called directly (not in the typeshed stubs, hence getattr). No circular
# check: decoded JSON has no cycles, and a Python caller's cycle stops at MAX_DEPTH first.
_make_encoder = getattr(json.encoder, "c_make_encoder", None)
_C_EXTRA = (
    _make_encoder(None, _not_json, json.encoder.encode_basestring_ascii, None, ":", ",", True, False, False)
    if _make_encoder is not None
    else None
)
_quote = json.encoder.encode_basestring_ascii


def _encode_nested(value: Any) -> str:
    return "".join(_C_EXTRA(value, 0)) if _C_EXTRA is not None else _EXTRA.encode(value)


def unknown_fields(obj: dict[str, Any]) -> tuple[str | None, int]:
    """The `extra` column of a record (its unknown fields as sorted, compact JSON, non-ASCII
    escaped, as json.dumps writes them; None when it has none) and how many JSON strings their
    values hold (nested keys included); or raise Invalid.

    Every number in them must fit a double (1e400 and 10**400 are the same number, and neither can
    be stored) and they nest at most MAX_DEPTH levels. The string count lets the vectorised fast
    path check that a raw line holds nothing its decoded object lost (a key written twice).

    >>> unknown_fields({"timestamp": 1, "z": [1, "a"], "b": {"c": None}, "a": 0.5})
    ('{"a":0.5,"b":{"c":null},"z":[1,"a"]}', 2)
    """
    names = obj.keys() - KNOWN_FIELDS
    if not names:
        return None, 0
    strings = 0
    members = []
    try:
        for name in sorted(names):
            value = obj[name]
            kind = type(value)
            # Scalars are written here as json.dumps writes them; the rest is checked, then encoded.
            if kind is str:
                strings += 1
                text = _quote(value)
            elif kind is int and -_EXACT < value < _EXACT:
                text = int.__repr__(value)
            elif kind is float and value - value == 0.0:  # finite
                text = float.__repr__(value)
            elif value is None or kind is bool:
                text = "null" if value is None else "true" if value else "false"
            else:
                strings += _check_value(name, value, 2)
                text = _encode_nested(value)
            members.append(_quote(name) + ":" + text)
    except (TypeError, ValueError) as e:  # a Python caller's object: a key that is not a string, a NaN
        raise Invalid("wrong_type", None, f"unknown fields hold a value JSON cannot express: {e}") from None
    return "{" + ",".join(members) + "}", strings


_EXACT = 2**53  # integers below this in magnitude are doubles exactly: no need to try the conversion


def _check_value(name: str, value: Any, depth: int) -> int:
    """Strings (nested keys included) in the value of unknown field `name`, a value at level `depth`."""
    if isinstance(value, str):
        return 1
    if isinstance(value, bool) or value is None:
        return 0
    if isinstance(value, float):
        if not math.isfinite(value):
            raise Invalid("bad_value", _clip(name), f"field '{_clip(name)}' holds a number that is not finite")
        return 0
    if isinstance(value, int):
        try:
            float(value)
        except OverflowError:
            raise Invalid("bad_value", _clip(name), f"field '{_clip(name)}' holds an integer too large for a double") from None
        return 0
    if depth > MAX_DEPTH:
        raise Invalid("too_deep", _clip(name), f"field '{_clip(name)}' nests arrays or objects deeper than {MAX_DEPTH} levels")
    if isinstance(value, dict):
        return len(value) + sum(_check_value(name, v, depth + 1) for v in value.values())
    if isinstance(value, list | tuple):
        return sum(_check_value(name, v, depth + 1) for v in value)
    raise Invalid("wrong_type", _clip(name), f"field '{_clip(name)}' holds a {type(value).__name__}, which JSON cannot express")


def _number(name: str, value: Any) -> float | None:
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise _wrong_type(name, "a number", value)
    try:
        number = -0.0 if type(value) is _NegativeZero else float(value)
    except OverflowError:
        raise Invalid("bad_value", name, f"field '{name}' is too large for a double") from None
    if not math.isfinite(number):
        raise Invalid("bad_value", name, f"field '{name}' is not finite: {value}")
    if name in SIZE_FIELDS and number < 0:
        raise Invalid("bad_value", name, f"field '{name}' is negative: {value}")
    return number


def _check_unicode(name: str, text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise Invalid("bad_value", name, f"field '{name}' holds an unpaired UTF-16 surrogate") from None


_JSON_TYPES = {dict: "object", list: "array", str: "string", int: "number", float: "number", bool: "boolean"}


def _json_type(value: Any) -> str:
    return "null" if value is None else _JSON_TYPES.get(type(value), type(value).__name__)


def decode_line(raw: bytes) -> dict[str, Any]:
    """Decode and validate one landing line, or raise Invalid (bad UTF-8 and bad JSON included).

    Whatever the bytes, the outcome is a row or Invalid: a key written twice in one object is
    refused (JSON readers disagree on which copy wins), and so are integers of more than
    MAX_INT_DIGITS digits and nesting Python's decoder cannot follow.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise Invalid("invalid_utf8", None, f"line is not UTF-8 (byte {e.start})") from None
    try:
        obj = json.loads(text, parse_constant=reject_constant, parse_int=_integer, object_pairs_hook=_unique)
    except _Refused as e:
        raise e.invalid from None
    except RecursionError:
        raise Invalid("too_deep", None, f"line nests arrays or objects deeper than {MAX_DEPTH} levels") from None
    except ValueError as e:
        raise Invalid("invalid_json", None, f"line is not valid JSON: {e}") from None
    return validate(obj)


def reject_constant(name: str) -> Any:
    """`parse_constant` for json.loads: NaN and Infinity are not JSON, though Python accepts them."""
    raise ValueError(f"{name} is not a JSON number")


class _Refused(Exception):
    """Raised from inside json.loads (which lets it through) to reject a line it is decoding."""

    def __init__(self, invalid: Invalid) -> None:
        self.invalid = invalid


class _NegativeZero(int):
    """The integer literal -0: zero as an integer, but -0.0 where a double is read (as pyarrow reads it)."""


def _integer(text: str) -> int:
    if len(text) > MAX_INT_DIGITS and len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise _Refused(Invalid("bad_value", None, f"line holds an integer of more than {MAX_INT_DIGITS} digits"))
    return _NegativeZero(0) if text == "-0" else int(text)


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) < len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                message = f"key '{_clip(key)}' appears twice in one object"
                raise _Refused(Invalid("duplicate_field", _clip(key), message))
            seen.add(key)
    return obj
