"""Find each reference to a table in a SELECT and the predicates that restrict it.

The query planner prunes Parquet files per table reference before DuckDB runs
a user's SQL.  To do that safely it must know, for every place the table is
named, which simple conditions (``col op constant``) are guaranteed to hold for
every row of that reference that can influence the result.  This module answers
that question with DuckDB's own parser (``json_serialize_sql``) and evaluates
constant expressions with DuckDB itself on the caller's connection, so casts,
time zones and literal rules are exactly those used at execution.  Whenever in
doubt it reports fewer predicates: a missing predicate only costs speed, a
wrong one changes results.
"""

from __future__ import annotations

import bisect
import json
import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb

from ticklake.columns import KIND_SQL_TYPES
from ticklake.query.quoting import quote_literal

Node = dict[str, Any]
Resolver = Callable[[Node], str | None]
_Leaf = tuple[Node, tuple[Node, ...] | None, bool]  # (table ref, ON conjuncts or None = never prune, WHERE applies)

_OPS = {
    "COMPARE_EQUAL": "=",
    "COMPARE_LESSTHAN": "<",
    "COMPARE_LESSTHANOREQUALTO": "<=",
    "COMPARE_GREATERTHAN": ">",
    "COMPARE_GREATERTHANOREQUALTO": ">=",
}
_FLIP = {"=": "=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
# Column kind -> SQL type its constants are cast to.
# 'YYYY-MM-DD HH:MM[:SS[.ffffff]]' with an explicit +HH:MM offset or Z: read the same by DuckDB and Python.
_OFFSET_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_QUERY_NODES = frozenset({"SELECT_NODE", "SET_OPERATION_NODE", "RECURSIVE_CTE_NODE", "CTE_NODE"})
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
_IDENT = re.compile(r"[A-Za-z_\x80-\U0010ffff][A-Za-z0-9_$\x80-\U0010ffff]*")
_SKIP = object()


@dataclass(frozen=True)
class Predicate:
    """One pruning condition on a column of the referenced table."""

    column: str  # lower-case column name
    op: str  # "=", "in", "<", "<=", ">", ">="
    values: tuple[object, ...]  # one value, or several for "in"


@dataclass(frozen=True)
class TableRef:
    """One reference to the table in the SQL text."""

    start: int  # offset where the reference (schema-qualified name) begins
    end: int  # offset just past the table name
    alias: str | None  # alias as written, or None
    predicates: tuple[Predicate, ...]


@dataclass
class _Context:
    """State shared by one ``find_table_refs`` call."""

    con: duckdb.DuckDBPyConnection
    sql: str
    table: str
    columns: dict[str, str]
    preds: dict[int, tuple[Predicate, ...]] = field(default_factory=dict)  # id(BASE_TABLE node) -> predicates
    refs: list[TableRef] = field(default_factory=list)
    values: dict[tuple[str, str], object] = field(default_factory=dict)
    templates: dict[str, Node] = field(default_factory=dict)
    safe_functions: frozenset[str] | None = None
    tokens: list[int] | None = None
    params: Mapping[str, object] = field(default_factory=dict)  # values of named parameters ($name)


def find_table_refs(
    con: duckdb.DuckDBPyConnection,
    sql: str,
    table: str,
    columns: Mapping[str, str],
    params: Mapping[str, object] | None = None,
) -> list[TableRef] | None:
    """Return every reference to ``table`` in ``sql`` with its pruning predicates.

    ``params`` are the values the query will be run with for its named parameters (``$name``):
    a parameter with a value counts as a constant, one without makes its predicate unusable.

    ``columns`` maps column names to a kind ("timestamptz", "date", "integer",
    "double", "varchar"); predicates on other columns are ignored.  Returns
    None if ``sql`` is not a single SELECT, [] if ``table`` is not referenced.
    References are ordered by position; offsets index into ``sql``.

    >>> import duckdb
    >>> con = duckdb.connect()
    >>> _ = con.execute("SET TimeZone='UTC'")
    >>> sql = "SELECT * FROM main.ticks t WHERE t.hour BETWEEN 3 AND 5 AND symbol = 'A'"
    >>> [ref] = find_table_refs(con, sql, "ticks", {"hour": "integer", "symbol": "varchar"})
    >>> sql[ref.start:ref.end], ref.alias
    ('main.ticks', 't')
    >>> for p in ref.predicates: print(p)
    Predicate(column='hour', op='>=', values=(3,))
    Predicate(column='hour', op='<=', values=(5,))
    Predicate(column='symbol', op='=', values=('A',))
    >>> sql = "SELECT * FROM ticks WHERE timestamp >= '2022-01-07 05:00' AND hour > random()"
    >>> find_table_refs(con, sql, "ticks", {"timestamp": "timestamptz", "hour": "integer"})[0].predicates
    (Predicate(column='timestamp', op='>=', values=(1641531600000000,)),)
    >>> find_table_refs(con, "WITH ticks AS (SELECT 1) SELECT * FROM ticks", "ticks", {})
    []
    >>> find_table_refs(con, "DELETE FROM ticks", "ticks", {}) is None
    True
    >>> find_table_refs(con, "SELECT * FROM ticks WHERE hour = $h + 1", "ticks", {"hour": "integer"}, {"h": 4})[0].predicates
    (Predicate(column='hour', op='=', values=(5,)),)
    """
    if "\x00" in sql:  # no SQL text holds a NUL; let DuckDB itself reject the statement
        return None
    parsed = json.loads(_fetch_one(con, "json_serialize_sql", sql)[0])
    if parsed.get("error") or len(parsed.get("statements", [])) != 1:
        return None
    ctx = _Context(con, sql, table.lower(), {k.lower(): v for k, v in columns.items()}, params=params or {})
    _walk(parsed["statements"][0], frozenset(), ctx)
    return sorted(ctx.refs, key=lambda ref: ref.start)


# --- scopes -------------------------------------------------------------------


def _walk(obj: Any, ctes: frozenset[str], ctx: _Context) -> None:
    """Visit the parse tree, tracking visible CTE names, and record references."""
    if isinstance(obj, list):
        for item in obj:
            _walk(item, ctes, ctx)
        return
    if not isinstance(obj, dict):
        return
    kind = obj.get("type")
    if isinstance(kind, str) and kind in _QUERY_NODES and "cte_map" in obj:
        for entry in obj["cte_map"].get("map", []):  # a CTE body sees only the CTEs before it
            _walk(entry["value"], ctes, ctx)
            ctes = ctes | {entry["key"].lower()}
        if obj.get("cte_name"):  # a recursive CTE sees itself
            ctes = ctes | {obj["cte_name"].lower()}
        if kind == "SELECT_NODE":
            _scope_select(obj, ctes, ctx)
        obj = {key: value for key, value in obj.items() if key != "cte_map"}
    elif kind == "BASE_TABLE" and _is_target(obj, ctes, ctx):
        start, end = _span(obj, ctx)
        ctx.refs.append(TableRef(start, end, obj.get("alias") or None, ctx.preds.get(id(obj), ())))
    for value in obj.values():
        _walk(value, ctes, ctx)


def _is_target(ref: Node, ctes: frozenset[str], ctx: _Context) -> bool:
    """Whether a BASE_TABLE node names the real table (not a CTE, other schema or catalog)."""
    schema = ref.get("schema_name", "").lower()
    return (
        ref.get("table_name", "").lower() == ctx.table
        and ref.get("catalog_name", "") == ""
        and schema in ("", "main")
        and (schema != "" or ctx.table not in ctes)
    )


def _scope_select(node: Node, ctes: frozenset[str], ctx: _Context) -> None:
    """Compute predicates for every target reference in this SELECT's FROM."""
    if node.get("sample"):  # USING SAMPLE runs before WHERE: pruning would change the sample
        return
    leaves = [leaf for leaf in _leaves(node.get("from_table") or {}, (), True) if leaf[0].get("type") != "EMPTY"]
    quals = [(ref.get("alias") or ref.get("table_name") or "").lower() for ref, _, _ in leaves]
    where = _split(node.get("where_clause"), "CONJUNCTION_AND")
    for (ref, conds, where_ok), qual in zip(leaves, quals, strict=False):
        if conds is None or ref.get("type") != "BASE_TABLE" or ref.get("column_name_alias"):
            continue
        if _is_target(ref, ctes, ctx):
            resolve = _resolver(qual if quals.count(qual) == 1 else None, len(leaves) == 1, ctx)
            found = [p for expr in conds + (tuple(where) if where_ok else ()) for p in _from_conjunct(expr, resolve, ctx)]
            ctx.preds[id(ref)] = tuple(dict.fromkeys(found))


def _leaves(ref: Node, conds: tuple[Node, ...] | None, where_ok: bool) -> Iterator[_Leaf]:
    """Yield the non-join table refs of a FROM tree with the conditions that may prune them.

    ON conjuncts restrict the inner side(s) of a join.  Our predicate shapes are
    null-rejecting, so WHERE conjuncts restrict every leaf, except the searched
    (right) side of an ASOF join, where pruning changes which row is nearest,
    and both sides of a POSITIONAL join.  Sampled subtrees are never pruned.
    """
    if ref.get("sample"):
        conds = None
    if ref.get("type") != "JOIN":
        yield ref, conds, where_ok
        return
    join, kind = ref.get("join_type"), ref.get("ref_type")
    on = () if ref.get("using_columns") else tuple(_split(ref.get("condition"), "CONJUNCTION_AND"))
    left_on = on if join in ("INNER", "SEMI", "RIGHT") else ()
    right_on = on if join in ("INNER", "SEMI", "LEFT", "ANTI") else ()
    left, right, right_where = conds, conds, where_ok
    if kind == "ASOF" and join in ("INNER", "LEFT"):
        right, right_where = (None if conds is None else ()), False
    elif kind not in ("REGULAR", "CROSS", "NATURAL"):
        left = right = None
    yield from _leaves(ref["left"], None if left is None else left + left_on, where_ok)
    yield from _leaves(ref["right"], None if right is None else right + right_on, right_where)


def _resolver(qual: str | None, single: bool, ctx: _Context) -> Resolver:
    """Map a COLUMN_REF to a known column: qualified by ``qual``, or bare if ``single``."""

    def resolve(expr: Node) -> str | None:
        if expr.get("class") != "COLUMN_REF":
            return None
        names = [name.lower() for name in expr["column_names"]]
        if len(names) == 1 and single:
            column = names[0]
        elif len(names) == 2 and qual and names[0] == qual:
            column = names[1]
        else:
            return None
        return column if ctx.columns.get(column) in KIND_SQL_TYPES else None

    return resolve


# --- predicate shapes ---------------------------------------------------------


def _split(expr: Node | None, conjunction: str) -> list[Node]:
    """Split nested AND (or OR) conjunctions into their parts."""
    if not expr:
        return []
    if expr.get("class") == "CONJUNCTION" and expr.get("type") == conjunction:
        return [part for child in expr["children"] for part in _split(child, conjunction)]
    return [expr]


def _from_conjunct(expr: Node, resolve: Resolver, ctx: _Context) -> list[Predicate]:
    """Predicates implied by one conjunct, or [] if it has no recognised shape."""
    cls, kind = expr.get("class"), expr.get("type")
    if cls == "COMPARISON" and kind in _OPS:
        side = _comparison(expr, resolve)
        if side is None:
            return []
        column, op, const = side
        value = _value(const, column, ctx)
        return [] if value is _SKIP else [Predicate(column, op, (value,))]
    if cls == "BETWEEN" and (target := resolve(expr["input"])) is not None:
        bounds = ((">=", _value(expr["lower"], target, ctx)), ("<=", _value(expr["upper"], target, ctx)))
        return [Predicate(target, op, (value,)) for op, value in bounds if value is not _SKIP]
    if cls == "CONJUNCTION" and kind == "CONJUNCTION_OR":
        return _equalities(_split(expr, "CONJUNCTION_OR"), resolve, ctx)
    if cls == "OPERATOR" and kind == "COMPARE_IN":
        return _equalities([expr], resolve, ctx)
    return []


def _comparison(expr: Node, resolve: Resolver) -> tuple[str, str, Node] | None:
    """Split ``col op const`` or ``const op col`` into (column, op, constant side)."""
    op = _OPS[expr["type"]]
    if (column := resolve(expr["left"])) is not None:
        return column, op, expr["right"]
    if (column := resolve(expr["right"])) is not None:
        return column, _FLIP[op], expr["left"]
    return None


def _equalities(exprs: list[Node], resolve: Resolver, ctx: _Context) -> list[Predicate]:
    """One "in" predicate from ORed equalities / IN lists, all on the same column."""
    columns: set[str | None] = set()
    consts: list[Node] = []
    for expr in exprs:
        if expr.get("class") == "COMPARISON" and expr.get("type") == "COMPARE_EQUAL":
            side = _comparison(expr, resolve)
            columns.add(side and side[0])
            consts.extend([side[2]] if side else [])
        elif expr.get("class") == "OPERATOR" and expr.get("type") == "COMPARE_IN":
            columns.add(resolve(expr["children"][0]))
            consts.extend(expr["children"][1:])
        else:
            return []
    column = columns.pop() if len(columns) == 1 else None
    if column is None or not consts:
        return []
    values = [_value(const, column, ctx) for const in consts]
    return [] if any(value is _SKIP for value in values) else [Predicate(column, "in", tuple(dict.fromkeys(values)))]


# --- constant evaluation ------------------------------------------------------


def _value(expr: Node, column: str, ctx: _Context) -> object:
    """Evaluate a constant side as a value for ``column``'s kind, or ``_SKIP``."""
    kind = ctx.columns[column]
    quick = _literal(expr, kind)
    if quick is not _SKIP:
        return quick
    key = (json.dumps(expr, sort_keys=True), kind)
    if key not in ctx.values:
        ctx.values[key] = _evaluate(expr, kind, ctx) if _is_constant(expr, ctx) else _SKIP
    return ctx.values[key]


_INTEGER_TYPES = frozenset({"TINYINT", "SMALLINT", "INTEGER", "BIGINT"})
_TIMESTAMPTZ_TYPES = frozenset({"TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ"})


def _literal(expr: Node, kind: str) -> object:
    """The common literals, decided without a round trip to DuckDB (``_SKIP``: ask DuckDB).

    Integers for numeric columns, and timestamp strings that carry their own UTC offset
    (so the session TimeZone cannot change their meaning); anything else goes the slow way.
    """
    if expr.get("class") == "CONSTANT" and kind in ("integer", "double"):
        value = expr["value"]
        if not value.get("is_null") and value["type"]["id"] in _INTEGER_TYPES and isinstance(value.get("value"), int):
            number = value["value"]
            if kind == "integer":
                return number
            return float(number) if abs(number) < 2**53 else _SKIP
        return _SKIP
    if kind != "timestamptz":
        return _SKIP
    if expr.get("class") == "CAST" and expr["cast_type"]["id"] in _TIMESTAMPTZ_TYPES and not expr.get("try_cast"):
        expr = expr["child"]
    if expr.get("class") != "CONSTANT" or expr["value"]["type"]["id"] != "VARCHAR" or expr["value"].get("is_null"):
        return _SKIP
    text = expr["value"]["value"]
    if not _OFFSET_TIMESTAMP.match(text):
        return _SKIP
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        return _SKIP
    if stamp.tzinfo is None:
        return _SKIP
    return (stamp - _EPOCH) // timedelta(microseconds=1)


def _is_constant(expr: Node, ctx: _Context) -> bool:
    """Whether an expression is column-free, subquery-free and deterministic."""
    stack: list[Any] = [expr]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            cls = item.get("class")
            if cls == "PARAMETER" and item.get("identifier") in ctx.params:
                continue  # its value is known: a constant like any literal
            if cls is not None and cls not in _CONST_CLASSES:
                return False
            if cls == "FUNCTION" and not _is_safe_function(item, ctx):
                return False
            stack.extend(item.values())
    return True


def _is_safe_function(func: Node, ctx: _Context) -> bool:
    """Only plain scalar functions DuckDB marks CONSISTENT (not now(), random()...) are evaluated."""
    if ctx.safe_functions is None:
        ctx.safe_functions = frozenset(row[0] for row in ctx.con.execute(_SAFE_FUNCTIONS_SQL).fetchall())
    return (
        func.get("function_name", "").lower() in ctx.safe_functions
        and not func.get("distinct")
        and not func.get("filter")
        and not (func.get("order_bys") or {}).get("orders")
    )


def _template(kind: str, ctx: _Context) -> Node:
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
        ctx.templates[kind] = json.loads(_fetch_one(ctx.con, "json_serialize_sql", sql)[0])
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


def _evaluate(expr: Node, kind: str, ctx: _Context) -> object:
    """Run a constant through DuckDB on ``ctx.con``; ``_SKIP`` if it is unusable.

    The tree goes back to SQL text and runs on ``ctx.con`` itself, because
    ``json_execute_serialized_sql`` ignores session settings such as TimeZone.
    """
    tree = json.dumps(_substitute(_template(kind, ctx), expr))
    used = {name: ctx.params[name] for name in _parameters(expr)}
    try:
        sql = _fetch_one(ctx.con, "json_deserialize_sql", tree)[0]
        row = (ctx.con.execute(sql, used) if used else ctx.con.execute(sql)).fetchone()
    except (duckdb.Error, ValueError, OverflowError):
        return _SKIP
    if row is None or row[1] is None or row[2] is not True:
        return _SKIP
    natural, value = row[0], row[1]
    if natural == "VARCHAR":  # only string *literals* take the column's type; other strings don't compare
        ok = kind == "varchar" or expr.get("class") == "CONSTANT"
    elif kind in ("integer", "double"):
        ok = natural in _NUMERIC or natural.startswith("DECIMAL")
    else:
        ok = kind in ("timestamptz", "date") and natural in _TEMPORAL
    if not ok or (kind == "double" and math.isnan(value)):
        return _SKIP
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


# --- source offsets -----------------------------------------------------------


def _span(ref: Node, ctx: _Context) -> tuple[int, int]:
    """Character offsets of a (schema-qualified) table name; DuckDB reports UTF-8 byte offsets."""
    if ctx.tokens is None:
        ctx.tokens = [offset for offset, _ in duckdb.tokenize(ctx.sql)]
    encoded, location = ctx.sql.encode(), ref["query_location"]
    index = bisect.bisect_left(ctx.tokens, location) + (2 if ref.get("schema_name") else 0)  # skip "schema" "."
    if index < len(ctx.tokens) and location in ctx.tokens:
        name_at = len(encoded[: ctx.tokens[index]].decode())
        end = _scan_name(ctx.sql, name_at)
        if _unquote(ctx.sql[name_at:end]).lower() == ref["table_name"].lower():
            return len(encoded[:location].decode()), end
    raise ValueError(f"cannot locate table {ref['table_name']!r} at byte {location} of the SQL text")


def _scan_name(sql: str, pos: int) -> int:
    """Offset just past the (possibly quoted) identifier starting at ``pos``."""
    quote = sql[pos : pos + 1]
    if quote in ('"', "'"):
        close = sql.find(quote, pos + 1)
        while close >= 0 and sql.startswith(quote, close + 1):  # a doubled quote is part of the name
            close = sql.find(quote, close + 2)
        return len(sql) if close < 0 else close + 1
    match = _IDENT.match(sql, pos)
    return match.end() if match else pos


def _unquote(name: str) -> str:
    """Identifier text without its quotes (doubled quotes undone)."""
    if len(name) >= 2 and name[0] == name[-1] and name[0] in ('"', "'"):
        return name[1:-1].replace(name[0] * 2, name[0])
    return name


def _fetch_one(con: duckdb.DuckDBPyConnection, function: str, text: str) -> tuple[Any, ...]:
    """``SELECT function('text')``, with the text as a quoted literal: binding a parameter makes
    DuckDB import pandas, which would cost a CLI query a third of a second."""
    row = con.execute(f"SELECT {function}({quote_literal(text)})").fetchone()
    assert row is not None, "a scalar SELECT returns one row"
    return row
