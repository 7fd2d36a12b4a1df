"""Filters as Dask and pyarrow users write them, ``[("contract_id", "=", 5), ("timestamp", ">=", "2022-01-07")]``.

Each is checked against the dataset's columns and its value typed once; then it serves twice: as a
condition the catalog prunes files by (`ticklake.catalog.pruning` takes a `Filter` as it takes a SQL
predicate), and on the rows read, since pruning only rules out whole files. All filters must hold
(one list, no OR); a null never matches, as in SQL. A time is a datetime, a ``pandas.Timestamp``, a
``numpy.datetime64``, a date (its midnight) or ISO-8601 text; without an offset it means UTC, as a
naive literal does in ``ticklake sql``.
"""

from __future__ import annotations

import datetime as dt
import math
import operator
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ticklake.errors import QueryError

# The operators taken, each by its canonical name.
OPS = {"=": "=", "==": "=", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">=", "in": "in", "not in": "not in"}
_ISO = re.compile(r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?\s*(Z|z|[+-]\d{2}(:?\d{2})?)?")
_COMPARE = {"=": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


@dataclass(frozen=True)
class Filter:
    """One filter, its values in the column's own terms (a time: epoch microseconds, as the catalog keeps it)."""

    column: str
    op: str  # one of the canonical `OPS`
    values: tuple[Any, ...]  # one value, or any number for "in" and "not in"


def parse_filters(filters: Iterable[Sequence[Any]] | None, schema: pa.Schema, time_column: str) -> tuple[Filter, ...]:
    """Check and type `filters` against a dataset's `schema`; a QueryError names the one at fault.

    >>> schema = pa.schema([("timestamp", pa.timestamp("us", tz="UTC")), ("contract_id", pa.int64())])
    >>> parse_filters([("contract_id", "==", 5), ("timestamp", "<", "1970-01-01 00:00:01")], schema, "timestamp")
    (Filter(column='contract_id', op='=', values=(5,)), Filter(column='timestamp', op='<', values=(1000000,)))
    >>> parse_filters([("price", ">", 1)], schema, "timestamp")
    Traceback (most recent call last):
    ticklake.errors.QueryError: filter ('price', '>', 1): no column 'price' (columns: timestamp, contract_id)
    """
    if filters is None:
        return ()
    if isinstance(filters, str | bytes) or not isinstance(filters, Iterable):
        raise QueryError(f"filters {filters!r}: expected a list of (column, op, value) tuples")
    items = list(filters)
    if len(items) == 3 and isinstance(items[0], str) and isinstance(items[1], str):
        raise QueryError(f"filters {filters!r}: expected a list of (column, op, value) tuples (put one filter in a list)")
    parsed = []
    for item in items:
        if isinstance(item, list) and item and all(isinstance(i, list | tuple) for i in item):
            raise QueryError(
                "filters: one list of (column, op, value), all of which must hold (a list of lists, OR, is not supported)"
            )
        if not isinstance(item, list | tuple) or len(item) != 3 or not isinstance(item[0], str):
            raise QueryError(f"filter {item!r}: expected (column, op, value)")
        parsed.append(_parse(tuple(item), schema, time_column))
    return tuple(parsed)


def _parse(item: tuple[Any, ...], schema: pa.Schema, time_column: str) -> Filter:
    column, op, value = item
    if column not in schema.names:
        raise QueryError(f"filter {item!r}: no column {column!r} (columns: {', '.join(schema.names)})")
    if not isinstance(op, str) or op.lower() not in OPS:
        raise QueryError(f"filter {item!r}: unknown operator {op!r} (use {', '.join(OPS)})")
    op = OPS[op.lower()]
    arrow_type = schema.field(column).type
    if pa.types.is_list(arrow_type):
        raise QueryError(f"filter {item!r}: {column} is a list column; filter its rows after reading")
    several = op in ("in", "not in")
    if several != (isinstance(value, Iterable) and not isinstance(value, str | bytes)):
        wanted = (
            "a list, tuple or set of values" if several else f"one value (for several, use {'not in' if op == '!=' else 'in'})"
        )
        raise QueryError(f"filter {item!r}: {op!r} takes {wanted}")
    try:
        values = tuple(dict.fromkeys(_value(v, arrow_type, column == time_column) for v in (value if several else [value])))
    except (TypeError, ValueError, OverflowError) as e:
        raise QueryError(f"filter {item!r}: {e}") from None
    if column == time_column:
        return _to_microseconds(column, op, values)
    return Filter(column, op, values)


def _value(value: Any, arrow_type: pa.DataType, is_time: bool) -> Any:
    """A filter value as the column's kind of Python value (a time: epoch nanoseconds, for now)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        raise ValueError("a null matches no row (it compares with nothing); select nulls after reading")
    if isinstance(value, np.generic):
        value = value.item() if not isinstance(value, np.datetime64) else pd.Timestamp(value)
    if is_time or pa.types.is_timestamp(arrow_type):
        return _nanoseconds(value)
    if pa.types.is_date(arrow_type):
        if isinstance(value, str):
            return dt.date.fromisoformat(value.strip())
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            return value
        raise TypeError(f"expected a date or 'YYYY-MM-DD' text, got {value!r}")
    if pa.types.is_integer(arrow_type):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"expected an integer, got {value!r}")
        if not -(2**63) <= value < 2**63:
            raise OverflowError(f"{value} is out of range of a 64-bit integer")
        return value
    if pa.types.is_floating(arrow_type):
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise TypeError(f"expected a number, got {value!r}")
        return float(value)
    if not isinstance(value, str):
        raise TypeError(f"expected text, got {value!r}")
    return value


def _nanoseconds(value: Any) -> int:
    """Epoch nanoseconds (UTC) of a time given any way `parse_filters` takes one."""
    if isinstance(value, str):
        if not _ISO.fullmatch(value.strip()):
            raise ValueError(f"expected ISO-8601 text such as 2022-01-07T05:00:00Z, got {value!r}")
        value = pd.Timestamp(value.strip())
    elif isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        value = dt.datetime.combine(value, dt.time(0))
    if not isinstance(value, dt.datetime):
        raise TypeError(f"expected a datetime, a date or ISO-8601 text, got {value!r}")
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return int(stamp.as_unit("ns").value)


def _to_microseconds(column: str, op: str, nanoseconds: tuple[int, ...]) -> Filter:
    """The same filter on whole microseconds, which is all the lake stores: exact, so catalog and rows agree.

    >>> _to_microseconds("t", "<", (1500,)), _to_microseconds("t", ">=", (1500,)), _to_microseconds("t", "=", (1500,))
    (Filter(column='t', op='<', values=(2,)), Filter(column='t', op='>=', values=(2,)), Filter(column='t', op='in', values=()))
    """
    if op in ("<", ">="):  # t < 1.5 µs holds exactly when t < 2 µs
        return Filter(column, op, (-(-nanoseconds[0] // 1000),))
    if op in ("<=", ">"):
        return Filter(column, op, (nanoseconds[0] // 1000,))
    whole = tuple(ns // 1000 for ns in nanoseconds if ns % 1000 == 0)  # no stored time equals 1.5 µs
    if op == "=" and not whole:
        return Filter(column, "in", ())
    if op == "!=" and not whole:
        return Filter(column, "not in", ())
    return Filter(column, op, whole)


def matches_nothing(filters: Iterable[Filter]) -> bool:
    """Whether some filter holds for no row at all (``in`` an empty set), so no file needs reading."""
    return any(f.op == "in" and not f.values for f in filters)


def holds(f: Filter, value: Any) -> bool:
    """Whether `f` holds for `value` (a partition value, the same for every row of a file).

    >>> holds(Filter("tick_type", "!=", ("last",)), "bid_ask"), holds(Filter("hour", "in", (5, 6)), 7)
    (True, False)
    """
    if value is None:
        return False
    if f.op == "in":
        return value in f.values
    if f.op == "not in":
        return value not in f.values
    return bool(_COMPARE[f.op](value, f.values[0]))


def expression(filters: Iterable[Filter], schema: pa.Schema) -> pc.Expression | None:
    """The Arrow expression rows must meet for all `filters` (None: no filter), for pyarrow to read with."""
    parts = [_expression(f, schema.field(f.column).type) for f in filters]
    if not parts:
        return None
    combined = parts[0]
    for part in parts[1:]:
        combined = combined & part
    return combined


def _expression(f: Filter, arrow_type: pa.DataType) -> pc.Expression:
    field = pc.field(f.column)
    # Any integer a filter takes compares with a 32-bit column too (hour < 2**40 is simply true).
    values = pa.array(f.values, type=pa.int64() if pa.types.is_integer(arrow_type) else arrow_type)
    if f.op == "in":
        return field.isin(values)
    if f.op == "not in":
        return ~field.isin(values) & field.is_valid()  # NULL NOT IN (...) is not true in SQL either
    return _COMPARE[f.op](field, values[0])
