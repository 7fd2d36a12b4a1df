"""The value of a predicate's constant side, as DuckDB itself would compare it with the column.

Constants are evaluated by DuckDB on the caller's connection, so casts, time zones and literal
rules are exactly those used at execution; a value the column cannot hold exactly, or one from
a non-deterministic or non-constant expression, is ``SKIP``: no predicate rather than a wrong one.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb

from ticklake.query.kinds import KIND_SQL_TYPES
from ticklake.query.predicates.context import Context, Node, fetch_one

# 'YYYY-MM-DD HH:MM[:SS[.ffffff]]' with an explicit +HH:MM offset or Z: read the same by DuckDB and Python.
_OFFSET_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Expression classes allowed in a constant side; anything else (column refs,
# subqueries, parameters, COLLATE, lambdas, windows...) disqualifies it.
_CONST_CLASSES = frozenset({"CONSTANT", "CAST", "FUNCTION", "OPERATOR", "CASE", "COMPARISON", "CONJUNCTION", "BETWEEN"})
# Natural types (typeof) of constants that compare with numeric / temporal columns.
_NUMERIC = frozenset(
    {
        "TINYINT",
        "SMALLINT",
        "INTEGER",
        "BIGINT",
        "HUGEINT",
        "UTINYINT",
        "USMALLINT",
        "UINTEGER",
        "UBIGINT",
        "UHUGEINT",
        "FLOAT",
        "DOUBLE",
    }
)
_TEMPORAL = frozenset({"DATE", "TIMESTAMP", "TIMESTAMP WITH TIME ZONE", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS"})
_SENTINEL = "__lake_predicates_placeholder__"
_SAFE_FUNCTIONS_SQL = """SELECT lower(function_name) FROM duckdb_functions() GROUP BY 1 HAVING bool_and(
    function_type = 'scalar' AND stability = 'CONSISTENT' AND NOT coalesce(has_side_effects, false))"""
SKIP = object()  # not a usable value: the predicate is dropped


def value(expr: Node, column: str, ctx: Context) -> object:
    """Evaluate a constant side as a value for ``column``'s kind, or ``SKIP``."""
    kind = ctx.columns[column]
    quick = _literal(expr, kind)
    if quick is not SKIP:
        return quick
    key = (json.dumps(expr, sort_keys=True), kind)
    if key not in ctx.values:
        ctx.values[key] = _evaluate(expr, kind, ctx) if _is_constant(expr, ctx) else SKIP
    return ctx.values[key]


_INTEGER_TYPES = frozenset({"TINYINT", "SMALLINT", "INTEGER", "BIGINT"})
_TIMESTAMPTZ_TYPES = frozenset({"TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ"})


def _literal(expr: Node, kind: str) -> object:
    """The common literals, decided without a round trip to DuckDB (``SKIP``: ask DuckDB).

    Integers for numeric columns, and timestamp strings that carry their own UTC offset
    (so the session TimeZone cannot change their meaning); anything else goes the slow way.
    """
    if expr.get("class") == "CONSTANT" and kind in ("integer", "double"):
        value = expr["value"]
        if not value.get("is_null") and value["type"]["id"] in _INTEGER_TYPES and isinstance(value.get("value"), int):
            number = value["value"]
            if kind == "integer":
                return number
            return float(number) if abs(number) < 2**53 else SKIP
        return SKIP
    if kind != "timestamptz":
        return SKIP
    if expr.get("class") == "CAST" and expr["cast_type"]["id"] in _TIMESTAMPTZ_TYPES and not expr.get("try_cast"):
        expr = expr["child"]
    if expr.get("class") != "CONSTANT" or expr["value"]["type"]["id"] != "VARCHAR" or expr["value"].get("is_null"):
        return SKIP
    text = expr["value"]["value"]
    if not _OFFSET_TIMESTAMP.match(text):
        return SKIP
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        return SKIP
    if stamp.tzinfo is None:
        return SKIP
    return (stamp - _EPOCH) // timedelta(microseconds=1)


def _is_constant(expr: Node, ctx: Context) -> bool:
    """Whether an expression is column-free, subquery-free and deterministic."""
    stack: list[Any] = [expr]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            cls = item.get("class")
            if cls == "PARAMETER" and str(item.get("identifier")).lower() in ctx.params:
                continue  # its value is known: a constant like any literal
            if cls is not None and cls not in _CONST_CLASSES:
                return False
            if cls == "FUNCTION" and not _is_safe_function(item, ctx):
                return False
            stack.extend(item.values())
    return True


def _is_safe_function(func: Node, ctx: Context) -> bool:
    """Only plain scalar functions DuckDB marks CONSISTENT (not now(), random()...) are evaluated."""
    if ctx.safe_functions is None:
        ctx.safe_functions = frozenset(row[0] for row in ctx.con.execute(_SAFE_FUNCTIONS_SQL).fetchall())
    return (
        func.get("function_name", "").lower() in ctx.safe_functions
        and not func.get("distinct")
        and not func.get("filter")
        and not (func.get("order_bys") or {}).get("orders")
    )


def _template(kind: str, ctx: Context) -> Node:
    """Parse tree of ``SELECT typeof(x), value(x), exact(x)`` with ``x`` a placeholder.

    ``exact`` is ``CAST(x AS T) = x`` under DuckDB's own coercion rules, so a
    value the column type cannot hold exactly (1.5 for an integer, 05:00 for
    a date) is rejected instead of rounded; infinities are rejected too.
    """
    if kind not in ctx.templates:
        x = f"'{_SENTINEL}'"
        cast = f"CAST({x} AS {KIND_SQL_TYPES[kind]})"
        value = f"epoch_us({cast})" if kind == "timestamptz" else cast
        exact = f"{cast} = {x}"
        if kind in ("timestamptz", "date"):
            exact += f" AND isfinite({cast})"
        if kind == "varchar":  # a default collation (e.g. NOCASE) changes what '=' and '<' mean
            exact += " AND current_setting('default_collation') = ''"
        sql = f"SELECT typeof({x}), {value}, {exact}"
        ctx.templates[kind] = json.loads(fetch_one(ctx.con, "json_serialize_sql", sql)[0])
    return ctx.templates[kind]


def _substitute(obj: Any, expr: Node) -> Any:
    """Copy of a template tree with every placeholder constant replaced by ``expr``."""
    if isinstance(obj, list):
        return [_substitute(item, expr) for item in obj]
    if not isinstance(obj, dict):
        return obj
    if obj.get("class") == "CONSTANT" and obj["value"].get("value") == _SENTINEL:
        return expr
    return {key: _substitute(value, expr) for key, value in obj.items()}


def _evaluate(expr: Node, kind: str, ctx: Context) -> object:
    """Run a constant through DuckDB on ``ctx.con``; ``SKIP`` if it is unusable.

    The tree goes back to SQL text and runs on ``ctx.con`` itself, because
    ``json_execute_serialized_sql`` ignores session settings such as TimeZone.
    """
    tree = json.dumps(_substitute(_template(kind, ctx), expr))
    used = {name: ctx.params[name.lower()] for name in _parameters(expr)}
    try:
        sql = fetch_one(ctx.con, "json_deserialize_sql", tree)[0]
        row = (ctx.con.execute(sql, used) if used else ctx.con.execute(sql)).fetchone()
    except (duckdb.Error, ValueError, OverflowError):
        return SKIP
    if row is None or row[1] is None or row[2] is not True:
        return SKIP
    natural, value = row[0], row[1]
    if natural == "VARCHAR":  # only string *literals* take the column's type; other strings don't compare
        ok = kind == "varchar" or expr.get("class") == "CONSTANT"
    elif kind in ("integer", "double"):
        ok = natural in _NUMERIC or natural.startswith("DECIMAL")
    else:
        ok = kind in ("timestamptz", "date") and natural in _TEMPORAL
    if not ok or (kind == "double" and math.isnan(value)):
        return SKIP
    return float(value) if kind == "double" else int(value) if kind in ("timestamptz", "integer") else value


def _parameters(expr: Any) -> set[str]:
    """Names of the parameters an expression uses."""
    if isinstance(expr, list):
        return {name for item in expr for name in _parameters(item)}
    if not isinstance(expr, dict):
        return set()
    if expr.get("class") == "PARAMETER":
        return {str(expr.get("identifier"))}
    return {name for value in expr.values() for name in _parameters(value)}
