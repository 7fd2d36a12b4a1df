"""Line protocol read column by column: a body's plain lines become landing JSON through Arrow's vectorised
string kernels, at a small part of the per-line parser's cost.

A line takes this path only when it holds nothing the per-line parser (`ticklake.serve.lineprotocol`)
treats specially: no backslash in the whole body (so no escapes), measurement ``ticks`` or a tick type,
only the known tags (``tick_type``, ``contract_id`` as digits, ``symbol``, ``exchange``) and fields
(prices and sizes as JSON-shaped numbers, integers with ``i`` or ``NaN``; ``contract_id`` as an integer
field; ``conditions`` as a quoted string without ``=``, quotes or control characters), each key once,
and a timestamp in the landing format's range. Every other line is left to the per-line parser, which
gives the same record for a line this path takes (a property test holds both to it).
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from ticklake.serve.lineprotocol import MEASUREMENT
from ticklake.ticks import MAX_US, MIN_US, NUMBER_FIELDS, TICK_TYPES

TAGS = ("tick_type", "contract_id", "symbol", "exchange")
_PLAIN = r'[^,= "\\\x00-\x1f]+'
_VALUE = r'(?:"[^"=\\\x00-\x1f]*"|' + _PLAIN + ")"
_LINE = (
    r"^(?P<m>[a-z_]+)(?P<tags>(?:,[a-z_]+=" + _PLAIN + r")*) (?P<fields>[a-z_]+=" + _VALUE
    + r"(?:,[a-z_]+=" + _VALUE + r")*)(?: (?P<ts>[0-9]{1,19}))?$"
)  # fmt: skip
_JSON_NUMBER = r"^-?(?:0|[1-9][0-9]{0,15})(?:\.[0-9]{1,17})?(?:[eE][+-]?[0-9]{1,2})?$"
_INTEGER_I = r"^-?(?:0|[1-9][0-9]{0,17})i$"
_ID = r"^(?:0|[1-9][0-9]{0,17})$"


def landing_json(body: bytes, unit_ns: int, received_ns: int) -> list[str | None] | None:
    """Each line of `body` (split at line breaks) as its landing JSON, or None where the per-line parser must
    read it; None for the whole body when it has a backslash or is not UTF-8 (the per-line parser reads all)."""
    if b"\\" in body:
        return None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    pieces = text.split("\n")
    if pieces and pieces[-1] == "":
        pieces.pop()
    if not pieces:
        return []
    lines = pa.array(pieces, pa.string())
    parts = pc.extract_regex(lines, _LINE)
    ok = parts.is_valid()
    measurement, tags, fields, ts = parts.flatten()
    fields = pc.binary_join_element_wise(",", fields, "")  # every field behind a comma, as every tag is
    typed = pc.is_in(measurement, pa.array(TICK_TYPES))
    ok = pc.and_(ok, pc.or_(typed, pc.equal(measurement, MEASUREMENT)))
    columns: dict[str, pa.Array] = _values(tags, TAGS)
    ok = pc.and_(ok, _each_once(tags, list(columns.values())))  # no other tag, none twice
    fielded = _values(fields, (*NUMBER_FIELDS, "contract_id", "conditions"))
    ok = pc.and_(ok, _each_once(fields, list(fielded.values())))
    columns |= {(key + "#field" if key in columns else key): value for key, value in fielded.items()}
    ok = pc.and_(ok, pc.invert(pc.and_(pc.is_valid(columns["contract_id"]), pc.is_valid(columns["contract_id#field"]))))
    ok = pc.and_(ok, pc.invert(pc.and_(typed, pc.is_valid(columns["tick_type"]))))  # measurement and tag: per line
    pieces_json = [_text("tick_type", pc.if_else(typed, measurement, columns["tick_type"]))]
    ok, contract = _contract(ok, columns["contract_id"], columns["contract_id#field"])
    pieces_json.append(_raw("contract_id", contract))
    pieces_json += [_text(key, columns[key]) for key in ("symbol", "exchange")]
    for key in NUMBER_FIELDS:
        ok, number = _number(ok, columns[key])
        pieces_json.append(_raw(key, number))
    ok, conditions = _conditions(ok, columns["conditions"])
    pieces_json.append(_raw("conditions", conditions))
    ok, stamp = _timestamp(ok, ts, unit_ns, received_ns)
    pieces_json.append(_raw("timestamp", stamp))
    # Each piece is ',"key":value' or empty; (null_handling="skip" over many arguments lost rows in pyarrow 26.)
    record = pc.binary_join_element_wise(*[pc.fill_null(piece, "") for piece in pieces_json], "")
    record = pc.binary_join_element_wise("{", pc.utf8_slice_codeunits(record, 1), "}", "")
    return pc.if_else(pc.fill_null(ok, False), record, pa.scalar(None, pa.string())).to_pylist()


def _each_once(part: pa.Array, found: list[pa.Array]) -> pa.Array:
    """Whether a part's items are all among the keys `found` and each once: its ``=`` signs, one per item
    (no value here holds one), are as many as the keys found (a key twice is found once)."""
    seen = pc.cast(pc.is_valid(found[0]), pa.int32())
    for values in found[1:]:
        seen = pc.add(seen, pc.cast(pc.is_valid(values), pa.int32()))
    return pc.equal(seen, pc.count_substring(part, "="))


def _values(part: pa.Array, keys: tuple[str, ...]) -> dict[str, pa.Array]:
    """Each key's value text in a part of ``,key=value`` items (null where absent). When every line has
    the same keys in the same order (one client's batch), one regex takes them all; else one per key."""
    if len(part):
        shape = pc.replace_substring_regex(part, "=" + _VALUE, "=")
        first = shape[0].as_py() or ""
        names = [item.removesuffix("=") for item in first.split(",")[1:]]
        if names and set(names) <= set(keys) and len(set(names)) == len(names) and pc.all(pc.equal(shape, first)).as_py():
            pattern = "^" + "".join(f",{name}=(?P<{name}>{_VALUE})" for name in names) + "$"
            found = dict(zip(names, pc.extract_regex(part, pattern).flatten(), strict=True))
            absent = pa.nulls(len(part), pa.string())
            return {key: found.get(key, absent) for key in keys}
    return {key: _value(part, key) for key in keys}


def _value(part: pa.Array, key: str) -> pa.Array:
    """The text of `key`'s value in a part of ``,key=value`` items (null where absent)."""
    found = pc.extract_regex(part, "," + key + "=(?P<v>" + _VALUE + ")(?:,|$)")
    return found.flatten()[0]  # flatten: a line without the key is null, not an empty string


def _text(key: str, values: pa.Array) -> pa.Array:
    return pc.binary_join_element_wise(',"' + key + '":"', values, '"', "")


def _raw(key: str, values: pa.Array) -> pa.Array:
    return pc.binary_join_element_wise(',"' + key + '":', values, "")


def _contract(ok: pa.Array, tag: pa.Array, field: pa.Array) -> tuple[pa.Array, pa.Array]:
    """contract_id as JSON digits: a tag of digits, or an integer field ``123i``; anything else: the per-line parser."""
    tag_ok = pc.fill_null(pc.match_substring_regex(tag, _ID), True)
    field_digits = pc.utf8_slice_codeunits(field, 0, -1)
    field_ok = pc.fill_null(pc.and_(pc.ends_with(field, "i"), pc.match_substring_regex(field_digits, _ID)), True)
    return pc.and_(ok, pc.and_(tag_ok, field_ok)), pc.coalesce(tag, field_digits)


def _number(ok: pa.Array, values: pa.Array) -> tuple[pa.Array, pa.Array]:
    """A price or size as JSON: the number as sent, an ``i`` integer without its suffix, NaN as null."""
    plain = pc.match_substring_regex(values, _JSON_NUMBER)
    integer = pc.match_substring_regex(values, _INTEGER_I)
    nan = pc.equal(values, "NaN")
    fine = pc.fill_null(pc.or_(pc.or_(plain, integer), nan), True)
    text = pc.if_else(integer, pc.utf8_slice_codeunits(values, 0, -1), values)
    return pc.and_(ok, fine), pc.if_else(pc.fill_null(nan, False), pa.scalar("null"), text)


def _conditions(ok: pa.Array, values: pa.Array) -> tuple[pa.Array, pa.Array]:
    """A quoted comma-separated string as a JSON list of strings (``""``: an empty list)."""
    quoted = pc.fill_null(pc.and_(pc.starts_with(values, '"'), pc.ends_with(values, '"')), True)
    inner = pc.utf8_slice_codeunits(values, 1, -1)
    listed = pc.binary_join_element_wise('["', pc.replace_substring(inner, ",", '","'), '"]', "")
    return pc.and_(ok, quoted), pc.if_else(pc.equal(inner, ""), pa.scalar("[]"), listed)


def _timestamp(ok: pa.Array, stamps: pa.Array, unit_ns: int, received_ns: int) -> tuple[pa.Array, pa.Array]:
    """The landing timestamp (ISO-8601 to the microsecond, truncated) of each line's timestamp in `unit_ns`, or
    of `received_ns` where it has none; a timestamp outside the landing range goes to the per-line parser."""
    given = pc.not_equal(stamps, "")
    digits = pc.if_else(given, stamps, pa.scalar("0"))
    width = pc.utf8_length(digits)  # past int64 (19 digits above 9223372036854775807): the per-line parser judges it
    long = pc.or_(pc.greater(width, 19), pc.and_(pc.equal(width, 19), pc.greater(digits, "9223372036854775807")))
    ns = pc.cast(pc.if_else(long, pa.scalar("0"), digits), pa.int64())
    if unit_ns >= 1000:
        limit = MAX_US // (unit_ns // 1000)
        inside = pc.less(ns, limit)
        us = pc.multiply(pc.if_else(inside, ns, pa.scalar(0, pa.int64())), unit_ns // 1000)
    else:
        inside = pa.array([True] * len(ns))
        us = pc.divide(ns, 1000 // unit_ns)
    us = pc.if_else(given, us, pa.scalar(received_ns // 1000, pa.int64()))
    fits = pc.and_(pc.and_(inside, pc.invert(long)), pc.and_(pc.greater_equal(us, MIN_US), pc.less(us, MAX_US)))
    fits = pc.or_(fits, pc.invert(given))
    clipped = pc.if_else(fits, us, pa.scalar(MIN_US, pa.int64()))
    text = _iso(clipped)
    return pc.and_(ok, fits), pc.binary_join_element_wise('"', text, '"', "")


def _iso(us: pa.Array) -> pa.Array:
    """``YYYY-MM-DDTHH:MM:SS.ffffffZ`` of epoch microseconds, from integer arithmetic (Arrow's strftime costs
    five times as much): the date by Arrow's own formatting, the time of day by padded numbers."""
    day_us = 86_400_000_000
    days = pc.floor(pc.divide(pc.cast(us, pa.float64()), float(day_us)))  # microseconds fit a double exactly here
    days = pc.cast(days, pa.int64())
    rest = pc.subtract(us, pc.multiply(days, day_us))
    date = pc.cast(pc.cast(pc.cast(days, pa.int32()), pa.date32()), pa.string())
    parts = []
    for unit, width in ((3_600_000_000, 2), (60_000_000, 2), (1_000_000, 2), (1, 6)):
        whole = pc.divide(rest, unit)
        rest = pc.subtract(rest, pc.multiply(whole, unit))
        parts.append(pc.utf8_lpad(pc.cast(whole, pa.string()), width, "0"))
    hh, mm, ss, ff = parts
    return pc.binary_join_element_wise(date, "T", hh, ":", mm, ":", ss, ".", ff, "Z", "")
