"""The entry point: every reference to a table in one statement, with the predicates that restrict it."""

from __future__ import annotations

import json
from collections.abc import Mapping

import duckdb

from ticklake.query.predicates.context import Context, TableRef, fetch_one
from ticklake.query.predicates.scopes import walk


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
    parsed = json.loads(fetch_one(con, "json_serialize_sql", sql)[0])
    if parsed.get("error") or len(parsed.get("statements", [])) != 1:
        return None
    ctx = Context(con, sql, table.lower(), {k.lower(): v for k, v in columns.items()}, params=_by_name(params))
    walk(parsed["statements"][0], frozenset(), ctx)
    return sorted(ctx.refs, key=lambda ref: ref.start)


def _by_name(params: Mapping[str, object] | None) -> dict[str, object]:
    """Parameter values by lower-case name, as DuckDB matches ``$name``; none at all when two names
    differ only in case (which one DuckDB binds is not worth guessing: pruning is skipped).

    >>> _by_name({"C": 1, "t": 2}), _by_name({"C": 1, "c": 2})
    ({'c': 1, 't': 2}, {})
    """
    folded = {str(k).lower(): v for k, v in (params or {}).items()}
    return folded if len(folded) == len(params or {}) else {}
