"""Tests for ticklake.query.predicates: table references and pruning predicates per reference."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ticklake.query.predicates import Predicate, TableRef, find_table_refs

COLUMNS = {
    "timestamp": "timestamptz",
    "date": "date",
    "hour": "integer",
    "tick_type": "varchar",
    "contract_id": "integer",
    "exchange": "varchar",
    "symbol": "varchar",
    "price": "double",
    "size": "double",
}

JAN7 = 1641513600000000  # 2022-01-07 00:00 UTC in epoch microseconds
HOUR = 3_600_000_000


@pytest.fixture(scope="module")
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    connection.execute("SET TimeZone='UTC'")
    connection.execute(
        """
        CREATE TABLE ticks AS
        SELECT ts AS "timestamp", CAST(ts AS DATE) AS "date", CAST(hour(ts) AS INTEGER) AS "hour",
               CASE WHEN i % 3 = 0 THEN 'quote' ELSE 'trade' END AS tick_type,
               CAST(i % 4 AS INTEGER) AS contract_id,
               CASE WHEN i % 5 = 0 THEN 'CME' ELSE 'ICE' END AS exchange,
               CASE WHEN i % 2 = 0 THEN 'A' ELSE 'B' END AS symbol,
               CAST((i * 7) % 23 AS DOUBLE) + 0.5 AS price,
               CAST(i % 6 AS DOUBLE) AS size
        FROM (SELECT i, TIMESTAMPTZ '2022-01-06 00:00:00+00' + i * INTERVAL 37 MINUTE AS ts
              FROM range(120) r(i))
        """
    )
    yield connection
    connection.close()


def refs(con: duckdb.DuckDBPyConnection, sql: str) -> list[TableRef]:
    found = find_table_refs(con, sql, "ticks", COLUMNS)
    assert found is not None
    for ref in found:
        assert _unquote(sql[ref.start : ref.end].split(".")[-1].strip()).lower() == "ticks"
    return found


def _unquote(name: str) -> str:
    return name.strip('"').strip("'")


def preds(con: duckdb.DuckDBPyConnection, sql: str) -> list[set[tuple[str, str, tuple[object, ...]]]]:
    """Predicates of each reference, as sets of (column, op, values)."""
    return [{(p.column, p.op, p.values) for p in ref.predicates} for ref in refs(con, sql)]


# --- basic shapes -------------------------------------------------------------


def test_single_table_timestamp_string_literal(con: duckdb.DuckDBPyConnection) -> None:
    sql = "SELECT * FROM ticks WHERE timestamp >= '2022-01-07 05:00'"
    [ref] = refs(con, sql)
    assert (ref.start, ref.end, ref.alias) == (14, 19, None)
    assert ref.predicates == (Predicate("timestamp", ">=", (JAN7 + 5 * HOUR,)),)


def test_all_kinds_are_normalised(con: duckdb.DuckDBPyConnection) -> None:
    sql = (
        "SELECT * FROM ticks WHERE date = DATE '2022-01-07' AND hour = 5 AND price > 1.25 "
        "AND size <= 2 AND symbol = 'A' AND contract_id >= '3' AND exchange < 'D'"
    )
    [got] = preds(con, sql)
    assert got == {
        ("date", "=", (dt.date(2022, 1, 7),)),
        ("hour", "=", (5,)),
        ("price", ">", (1.25,)),
        ("size", "<=", (2.0,)),
        ("symbol", "=", ("A",)),
        ("contract_id", ">=", (3,)),
        ("exchange", "<", ("D",)),
    }
    [ref] = refs(con, sql)
    values = {p.column: p.values[0] for p in ref.predicates}
    assert type(values["hour"]) is int and type(values["size"]) is float


def test_reversed_comparisons_are_flipped(con: duckdb.DuckDBPyConnection) -> None:
    sql = "SELECT * FROM ticks WHERE 5 < hour AND '2022-01-07' >= date AND 3 = contract_id AND 2 <= size"
    assert preds(con, sql) == [
        {
            ("hour", ">", (5,)),
            ("date", "<=", (dt.date(2022, 1, 7),)),
            ("contract_id", "=", (3,)),
            ("size", ">=", (2.0,)),
        }
    ]


def test_between_in_and_or_of_equalities(con: duckdb.DuckDBPyConnection) -> None:
    sql = (
        "SELECT * FROM ticks WHERE (hour BETWEEN 3 AND 5) AND symbol IN ('A', 'B', 'A') "
        "AND (exchange = 'CME' OR 'ICE' = exchange OR exchange IN ('X')) AND ((contract_id = 1))"
    )
    assert preds(con, sql) == [
        {
            ("hour", ">=", (3,)),
            ("hour", "<=", (5,)),
            ("symbol", "in", ("A", "B")),
            ("exchange", "in", ("CME", "ICE", "X")),
            ("contract_id", "=", (1,)),
        }
    ]


def test_unsupported_shapes_contribute_nothing(con: duckdb.DuckDBPyConnection) -> None:
    sql = (
        "SELECT * FROM ticks WHERE NOT hour = 3 AND hour != 4 AND hour <> 5 AND symbol IS NULL "
        "AND exchange IS NOT NULL AND symbol LIKE 'A%' AND hour IN (SELECT 1) AND hour NOT IN (1, 2) "
        "AND hour NOT BETWEEN 1 AND 2 AND (symbol = 'A' OR exchange = 'CME') AND (hour = 1 OR hour > 5) "
        "AND date_trunc('hour', timestamp) = TIMESTAMP '2022-01-07' AND price = size "
        "AND hour IN (1, contract_id) AND price = (SELECT 1) AND symbol = 'a' COLLATE nocase "
        "AND hour IS NOT DISTINCT FROM 3 AND NOT (hour = 1 OR hour = 2)"
    )
    assert preds(con, sql) == [set()]


def test_constant_expressions_are_evaluated_by_duckdb(con: duckdb.DuckDBPyConnection) -> None:
    sql = (
        "SELECT * FROM ticks WHERE timestamp < TIMESTAMP '2022-01-07' + INTERVAL 1 HOUR "
        "AND timestamp >= TIMESTAMPTZ '2022-01-07 02:00:00+02' - INTERVAL '30 minutes' "
        "AND timestamp > DATE '2022-01-07' AND date <= DATE '2022-01-07' + INTERVAL 2 DAY "
        "AND date > CAST('2022-01-01' AS DATE) AND hour < 2 * 3 AND price > -5.5 AND symbol = 'A' || 'B' "
        "AND size < '1e1'::DOUBLE AND contract_id = abs(-2)"
    )
    assert preds(con, sql) == [
        {
            ("timestamp", "<", (JAN7 + HOUR,)),
            ("timestamp", ">=", (JAN7 - HOUR // 2,)),
            ("timestamp", ">", (JAN7,)),
            ("date", "<=", (dt.date(2022, 1, 9),)),
            ("date", ">", (dt.date(2022, 1, 1),)),
            ("hour", "<", (6,)),
            ("price", ">", (-5.5,)),
            ("symbol", "=", ("AB",)),
            ("size", "<", (10.0,)),
            ("contract_id", "=", (2,)),
        }
    ]


def test_volatile_parameters_and_unevaluable_constants_are_skipped(con: duckdb.DuckDBPyConnection) -> None:
    sql = (
        "SELECT * FROM ticks WHERE timestamp > now() - INTERVAL 1 DAY AND timestamp < current_timestamp "
        "AND date = current_date AND date > today() AND price > random() AND hour = $1 "
        "AND timestamp >= get_current_timestamp() AND timestamp BETWEEN '2022-01-07' AND 'not a time' "
        "AND hour = 'x' AND date > 'infinity' AND price < 'nan'::DOUBLE AND hour = NULL AND symbol = 5"
    )
    assert preds(con, sql) == [{("timestamp", ">=", (JAN7,))}]


def test_inexact_values_are_skipped_not_rounded(con: duckdb.DuckDBPyConnection) -> None:
    # 1.5 is not an integer and 05:00 is not a date: rounding would prune rows that match.
    sql = (
        "SELECT * FROM ticks WHERE hour > 1.5 AND hour <= 3.0 AND date < TIMESTAMP '2022-01-08 05:00' "
        "AND date >= TIMESTAMP '2022-01-06 00:00' "
        "AND timestamp < TIMESTAMP_NS '2022-01-07 00:00:00.000000500' AND hour IN (1, 2.5)"
    )
    assert preds(con, sql) == [{("hour", "<=", (3,)), ("date", ">=", (dt.date(2022, 1, 6),))}]


def test_timestamps_follow_session_time_zone() -> None:
    local = duckdb.connect()
    local.execute("SET TimeZone='America/New_York'")
    found = find_table_refs(local, "SELECT * FROM ticks WHERE timestamp >= '2022-01-07'", "ticks", COLUMNS)
    assert found is not None
    assert found[0].predicates == (Predicate("timestamp", ">=", (JAN7 + 5 * HOUR,)),)
    local.close()


def test_default_collation_disables_varchar_predicates() -> None:
    local = duckdb.connect()
    local.execute("SET default_collation='nocase'")
    found = find_table_refs(local, "SELECT * FROM ticks WHERE symbol = 'a' AND hour = 1", "ticks", COLUMNS)
    assert found is not None and found[0].predicates == (Predicate("hour", "=", (1,)),)
    local.close()


def test_unknown_column_kinds_and_columns_are_ignored(con: duckdb.DuckDBPyConnection) -> None:
    columns = {"hour": "integer", "flags": "blob", "Symbol": "varchar"}
    found = find_table_refs(con, "SELECT * FROM ticks WHERE flags = 'x' AND other = 1 AND SYMBOL = 'A'", "ticks", columns)
    assert found is not None
    assert found[0].predicates == (Predicate("symbol", "=", ("A",)),)


# --- names, offsets and statements -----------------------------------------------------


def test_non_select_and_multiple_statements_return_none(con: duckdb.DuckDBPyConnection) -> None:
    for sql in (
        "INSERT INTO ticks SELECT * FROM ticks",
        "DELETE FROM ticks WHERE hour = 1",
        "SELECT 1; SELECT 2",
        "EXPLAIN SELECT * FROM ticks",
        "SELEC oops",
    ):
        assert find_table_refs(con, sql, "ticks", COLUMNS) is None


def test_table_not_referenced_returns_empty(con: duckdb.DuckDBPyConnection) -> None:
    assert refs(con, "SELECT 1") == []
    assert refs(con, "SELECT * FROM other WHERE hour = 1") == []
    assert refs(con, "SELECT * FROM other AS ticks WHERE ticks.hour = 1") == []


def test_offsets_quoted_and_qualified_names(con: duckdb.DuckDBPyConnection) -> None:
    sql = (
        'SELECT \'é€\' AS x, * FROM "ticks" AS "T", main.ticks m, "main" . "TICKS", '
        "MAIN.Ticks/*c*/u, 'ticks' q WHERE \"T\".hour = 1 AND m.symbol = 'ü' AND t.price > 2"
    )
    found = refs(con, sql)
    assert [sql[r.start : r.end] for r in found] == [
        '"ticks"',
        "main.ticks",
        '"main" . "TICKS"',
        "MAIN.Ticks",
        "'ticks'",
    ]
    assert [r.alias for r in found] == ["T", "m", None, "u", "q"]
    by_alias = {r.alias: {(p.column, p.op, p.values) for p in r.predicates} for r in found}
    assert by_alias["T"] == {("hour", "=", (1,)), ("price", ">", (2.0,))}
    assert by_alias["m"] == {("symbol", "=", ("ü",))}


def test_qualified_by_table_name_without_alias(con: duckdb.DuckDBPyConnection) -> None:
    sql = "SELECT * FROM ticks JOIN other o ON ticks.hour = 3 AND o.hour = 4 WHERE ticks.symbol = 'A'"
    assert preds(con, sql) == [{("hour", "=", (3,)), ("symbol", "=", ("A",))}]


def test_other_schemas_and_catalogs_are_not_the_table(con: duckdb.DuckDBPyConnection) -> None:
    sql = "SELECT * FROM temp.ticks, other.ticks, memory.main.ticks, main.ticks WHERE ticks.hour = 1"
    [ref] = refs(con, sql)
    assert sql[ref.start : ref.end] == "main.ticks"


def test_from_first_and_non_select_shorthands(con: duckdb.DuckDBPyConnection) -> None:
    [ref] = refs(con, "FROM ticks WHERE hour = 1")
    assert (ref.start, ref.predicates) == (5, (Predicate("hour", "=", (1,)),))
    [ref] = refs(con, "SUMMARIZE ticks")
    assert ref.predicates == ()


def test_sampled_or_renamed_references_get_no_predicates(con: duckdb.DuckDBPyConnection) -> None:
    assert preds(con, "SELECT * FROM ticks TABLESAMPLE 10% WHERE hour = 1") == [set()]
    assert preds(con, "SELECT * FROM ticks WHERE hour = 1 USING SAMPLE 10") == [set()]
    assert preds(con, "SELECT * FROM ticks t(a, b) WHERE hour = 1") == [set()]


# --- joins ------------------------------------------------------------------------------


def test_inner_join_on_and_where(con: duckdb.DuckDBPyConnection) -> None:
    sql = (
        "SELECT * FROM ticks t JOIN ticks u ON t.symbol = u.symbol AND u.hour = 5 AND t.hour = 6 "
        "WHERE t.price > 1 AND price > 2 AND u.size > 3"
    )
    assert preds(con, sql) == [
        {("hour", "=", (6,)), ("price", ">", (1.0,))},
        {("hour", "=", (5,)), ("size", ">", (3.0,))},
    ]


def test_unqualified_columns_need_a_single_reference(con: duckdb.DuckDBPyConnection) -> None:
    assert preds(con, "SELECT * FROM ticks, other WHERE hour = 1") == [set()]
    assert preds(con, "SELECT * FROM ticks, (SELECT 1) s WHERE hour = 1") == [set()]
    assert preds(con, "SELECT * FROM ticks, range(3) WHERE hour = 1") == [set()]


def test_outer_joins_only_restrict_null_supplying_side(con: duckdb.DuckDBPyConnection) -> None:
    on = "ON t.symbol = u.symbol AND u.hour = 5 AND t.hour = 6"
    assert preds(con, f"SELECT * FROM ticks t LEFT JOIN ticks u {on}") == [set(), {("hour", "=", (5,))}]
    assert preds(con, f"SELECT * FROM ticks t RIGHT JOIN ticks u {on}") == [{("hour", "=", (6,))}, set()]
    assert preds(con, f"SELECT * FROM ticks t FULL JOIN ticks u {on} WHERE t.price > 1") == [
        {("price", ">", (1.0,))},
        set(),
    ]


def test_using_natural_cross_and_positional_joins(con: duckdb.DuckDBPyConnection) -> None:
    assert preds(con, "SELECT * FROM ticks t JOIN ticks u USING (symbol) WHERE t.hour = 1") == [
        {("hour", "=", (1,))},
        set(),
    ]
    assert preds(con, "SELECT * FROM ticks t NATURAL JOIN ticks u WHERE u.hour = 1") == [set(), {("hour", "=", (1,))}]
    assert preds(con, "SELECT * FROM ticks t CROSS JOIN ticks u WHERE u.hour = 1") == [set(), {("hour", "=", (1,))}]
    # Pruning either side of a positional join shifts the row pairing.
    assert preds(con, "SELECT * FROM ticks t POSITIONAL JOIN ticks u WHERE t.hour = 1 AND u.hour = 2") == [set(), set()]


def test_semi_and_anti_joins(con: duckdb.DuckDBPyConnection) -> None:
    on = "ON t.hour = u.hour AND u.price > 5 AND t.price > 6"
    assert preds(con, f"SELECT * FROM ticks t SEMI JOIN ticks u {on}") == [
        {("price", ">", (6.0,))},
        {("price", ">", (5.0,))},
    ]
    assert preds(con, f"SELECT * FROM ticks t ANTI JOIN ticks u {on}") == [set(), {("price", ">", (5.0,))}]


def test_asof_join(con: duckdb.DuckDBPyConnection) -> None:
    # ON conjuncts are part of the ASOF match, WHERE runs after it: only the former may prune
    # the searched (right) side.
    sql = (
        "SELECT * FROM ticks t ASOF JOIN ticks u ON t.symbol = u.symbol AND t.timestamp >= u.timestamp "
        "AND u.exchange = 'ICE' WHERE u.price > 1 AND t.price > 2"
    )
    assert preds(con, sql) == [{("price", ">", (2.0,))}, {("exchange", "=", ("ICE",))}]
    sql = sql.replace("ASOF JOIN", "ASOF LEFT JOIN").replace("u.exchange", "t.hour = 3 AND u.exchange")
    assert preds(con, sql) == [{("price", ">", (2.0,))}, {("exchange", "=", ("ICE",))}]


def test_nested_joins(con: duckdb.DuckDBPyConnection) -> None:
    sql = (
        "SELECT * FROM ticks a LEFT JOIN (ticks b JOIN ticks c ON b.hour = 1 AND c.hour = 2) "
        "ON a.symbol = b.symbol AND c.size = 3 AND a.size = 4 WHERE b.price > 5"
    )
    assert preds(con, sql) == [
        set(),
        {("hour", "=", (1,)), ("price", ">", (5.0,))},
        {("hour", "=", (2,)), ("size", "=", (3.0,))},
    ]


# --- scopes -----------------------------------------------------------------------------


def test_subqueries_are_their_own_scopes(con: duckdb.DuckDBPyConnection) -> None:
    sql = (
        "SELECT * FROM (SELECT * FROM ticks WHERE hour = 1) s WHERE s.price > 1 AND price > 2 "
        "AND EXISTS (SELECT 1 FROM ticks t WHERE t.symbol = s.symbol AND t.hour = 2) "
        "AND s.size IN (SELECT size FROM ticks WHERE hour = 3) "
        "AND s.size < (SELECT max(size) FROM ticks WHERE symbol = 'B')"
    )
    assert preds(con, sql) == [
        {("hour", "=", (1,))},
        {("hour", "=", (2,))},
        {("hour", "=", (3,))},
        {("symbol", "=", ("B",))},
    ]


def test_outer_scope_predicates_do_not_leak(con: duckdb.DuckDBPyConnection) -> None:
    sql = "SELECT * FROM ticks t WHERE t.hour = 1 AND EXISTS (SELECT 1 FROM other o WHERE t.price > 5)"
    assert preds(con, sql) == [{("hour", "=", (1,))}]
    sql = "SELECT * FROM ticks t, LATERAL (SELECT * FROM ticks WHERE hour = t.hour AND price > 5) s WHERE t.size > 1"
    assert preds(con, sql) == [{("size", ">", (1.0,))}, {("price", ">", (5.0,))}]


def test_union_intersect_except_branches(con: duckdb.DuckDBPyConnection) -> None:
    sql = (
        "SELECT * FROM ticks WHERE hour = 1 UNION ALL SELECT * FROM ticks WHERE hour = 2 "
        "INTERSECT SELECT * FROM ticks WHERE symbol = 'A' EXCEPT SELECT * FROM ticks"
    )
    assert preds(con, sql) == [{("hour", "=", (1,))}, {("hour", "=", (2,))}, {("symbol", "=", ("A",))}, set()]


def test_cte_bodies_are_scopes(con: duckdb.DuckDBPyConnection) -> None:
    sql = "WITH x AS (SELECT * FROM ticks WHERE hour = 3) SELECT * FROM x JOIN ticks t ON t.hour = x.hour WHERE t.size = 1"
    assert preds(con, sql) == [{("hour", "=", (3,))}, {("size", "=", (1.0,))}]


def test_cte_shadows_the_table(con: duckdb.DuckDBPyConnection) -> None:
    sql = "WITH ticks AS (SELECT * FROM ticks WHERE hour = 3) SELECT * FROM ticks WHERE hour = 4"
    [ref] = refs(con, sql)
    assert sql[: ref.end].endswith("FROM ticks") and ref.start == 29
    assert ref.predicates == (Predicate("hour", "=", (3,)),)
    # Names are case-insensitive and visible in nested subqueries and later CTEs.
    sql = (
        'WITH "Ticks" AS (SELECT 1 AS hour), a AS (SELECT * FROM TICKS) '
        "SELECT * FROM a WHERE hour IN (SELECT hour FROM ticks) AND EXISTS (SELECT 1 FROM (SELECT * FROM ticks))"
    )
    assert refs(con, sql) == []
    # A schema-qualified name bypasses the CTE.
    [ref] = refs(con, "WITH ticks AS (SELECT 1) SELECT * FROM main.ticks WHERE hour = 9")
    assert ref.predicates == (Predicate("hour", "=", (9,)),)


def test_cte_scope_is_local_and_ordered(con: duckdb.DuckDBPyConnection) -> None:
    # A CTE body cannot see later CTEs, and a CTE in a subquery does not shadow outside it.
    sql = "WITH a AS (SELECT * FROM ticks WHERE hour = 1), ticks AS (SELECT * FROM a) SELECT * FROM ticks"
    assert preds(con, sql) == [{("hour", "=", (1,))}]
    sql = "SELECT * FROM (WITH ticks AS (SELECT 1) SELECT * FROM ticks) s, ticks WHERE ticks.hour = 2"
    assert preds(con, sql) == [{("hour", "=", (2,))}]


def test_recursive_cte(con: duckdb.DuckDBPyConnection) -> None:
    sql = "WITH RECURSIVE ticks AS (SELECT 1 AS hour UNION ALL SELECT hour + 1 FROM ticks WHERE hour < 3) SELECT * FROM ticks"
    assert refs(con, sql) == []
    # Without a UNION DuckDB treats the body's reference as the real table.
    sql = "WITH RECURSIVE ticks AS (SELECT * FROM ticks WHERE hour = 1) SELECT * FROM ticks"
    assert preds(con, sql) == [{("hour", "=", (1,))}]


# --- pruning never changes results -------------------------------------------------------


def _literal(column: str, value: object) -> tuple[str, str]:
    """SQL for (column side, value) of a rendered predicate."""
    name = f'"{column}"'
    if COLUMNS[column] == "timestamptz":
        return f"epoch_us({name})", str(value)
    if isinstance(value, dt.date):
        return name, f"DATE '{value.isoformat()}'"
    if isinstance(value, str):
        return name, "'" + value.replace("'", "''") + "'"
    if isinstance(value, float):
        return name, f"CAST('{value!r}' AS DOUBLE)"
    return name, str(value)


def _render(pred: Predicate) -> str:
    sides = [_literal(pred.column, value) for value in pred.values]
    if pred.op == "in":
        return f"{sides[0][0]} IN ({', '.join(value for _, value in sides)})"
    return f"{sides[0][0]} {pred.op} {sides[0][1]}"


def pruned(con: duckdb.DuckDBPyConnection, sql: str) -> str:
    """Rewrite ``sql`` so each reference reads only rows passing its predicates."""
    for ref in sorted(refs(con, sql), key=lambda r: r.start, reverse=True):
        where = " AND ".join(_render(p) for p in ref.predicates) or "true"
        scan = f"(SELECT * FROM main.ticks WHERE {where})" + ("" if ref.alias else " AS ticks")
        sql = sql[: ref.start] + scan + sql[ref.end :]
    return sql


def assert_same_result(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    expected = sorted(con.execute(sql).fetchall(), key=repr)
    actual = sorted(con.execute(pruned(con, sql)).fetchall(), key=repr)
    assert actual == expected, pruned(con, sql)


SOUNDNESS_QUERIES = [
    "SELECT * FROM ticks WHERE timestamp >= '2022-01-07 05:00' AND timestamp < TIMESTAMP '2022-01-07' + INTERVAL 3 HOUR",
    "SELECT count(*), sum(price) FROM ticks WHERE date = DATE '2022-01-07' AND hour BETWEEN 3 AND 9",
    "SELECT * FROM ticks WHERE (symbol = 'A' OR symbol = 'C') AND exchange IN ('CME') AND 2 <= size",
    "SELECT * FROM ticks t JOIN ticks u ON t.timestamp = u.timestamp AND u.hour = 5 WHERE t.price > 10",
    "SELECT t.hour, u.price FROM ticks t LEFT JOIN ticks u ON t.hour = u.hour AND u.size = 3 AND t.size = 2",
    "SELECT t.hour, u.price FROM ticks t RIGHT JOIN ticks u ON t.hour = u.hour AND u.size = 3 AND t.size = 2",
    "SELECT t.hour, u.price FROM ticks t FULL JOIN ticks u ON t.hour = u.hour AND u.size = 3 AND t.size = 2 "
    "WHERE t.price > 4 OR t.price IS NULL",
    "SELECT * FROM ticks t LEFT JOIN ticks u ON t.hour = u.hour WHERE u.size = 3 AND t.symbol = 'A'",
    "SELECT t.timestamp, u.timestamp, u.price FROM ticks t ASOF JOIN ticks u ON t.symbol = u.symbol "
    "AND t.timestamp > u.timestamp AND u.exchange = 'CME' WHERE u.price > 10 AND t.hour < 12",
    "SELECT t.timestamp, u.price FROM ticks t ASOF LEFT JOIN ticks u ON t.symbol = u.symbol "
    "AND t.timestamp > u.timestamp AND u.size = 1 AND t.size = 2",
    "SELECT * FROM ticks t SEMI JOIN ticks u ON t.hour = u.hour AND u.price > 20 AND t.size = 1",
    "SELECT * FROM ticks t ANTI JOIN ticks u ON t.hour = u.hour AND u.price > 20 AND t.size = 1",
    "SELECT * FROM ticks t POSITIONAL JOIN ticks u WHERE u.size = 1",
    "SELECT * FROM (SELECT * FROM ticks WHERE hour = 1) s WHERE EXISTS "
    "(SELECT 1 FROM ticks t WHERE t.symbol = s.symbol AND t.hour = 2)",
    "WITH x AS (SELECT * FROM ticks WHERE contract_id = 1) SELECT * FROM x JOIN ticks t ON t.hour = x.hour "
    "WHERE t.tick_type = 'quote'",
    "WITH ticks AS (SELECT * FROM ticks WHERE hour = 3) SELECT * FROM ticks WHERE size = 2",
    "SELECT hour FROM ticks WHERE price > 10 UNION SELECT hour FROM ticks WHERE size = 0 "
    "EXCEPT SELECT hour FROM ticks WHERE symbol = 'A'",
    "SELECT * FROM ticks t, LATERAL (SELECT max(price) AS m FROM ticks WHERE hour = t.hour AND size > 2) s "
    "WHERE t.exchange = 'CME'",
    "SELECT * FROM ticks WHERE hour > 1.5 AND date < TIMESTAMP '2022-01-07 05:00' AND hour IN (1, 2.5, 9)",
]


@pytest.mark.parametrize("sql", SOUNDNESS_QUERIES)
def test_pruning_preserves_results(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    assert_same_result(con, sql)


def test_pruning_asof_right_side_by_where_would_be_wrong(con: duckdb.DuckDBPyConnection) -> None:
    sql = (
        "SELECT t.timestamp, u.price FROM ticks t ASOF JOIN ticks u ON t.symbol = u.symbol "
        "AND t.timestamp > u.timestamp WHERE u.price > 10"
    )
    naive = sql.replace("ASOF JOIN ticks u", "ASOF JOIN (SELECT * FROM ticks WHERE price > 10) u")
    assert sorted(con.execute(naive).fetchall()) != sorted(con.execute(sql).fetchall())
    assert preds(con, sql) == [set(), set()]


_ATOMS = st.sampled_from(
    [
        "{q}hour = 5",
        "{q}hour BETWEEN 3 AND 7",
        "{q}hour IN (1, 2, 20)",
        "{q}symbol = 'A'",
        "({q}symbol = 'B' OR {q}symbol = 'C')",
        "{q}size >= 2",
        "3 > {q}size",
        "{q}price < 12.5",
        "{q}timestamp >= TIMESTAMP '2022-01-07' + INTERVAL 5 HOUR",
        "{q}timestamp < '2022-01-07 12:00'",
        "{q}date = DATE '2022-01-07'",
        "{q}exchange <> 'CME'",
        "{q}contract_id IN (1, 3)",
        "{q}hour > 2.5",
    ]
)
_SHAPES = st.sampled_from(
    [
        "SELECT * FROM ticks t WHERE {w1} AND {w2}",
        "SELECT t.hour, u.price FROM ticks t JOIN ticks u ON t.hour = u.hour AND {o} WHERE {w1}",
        "SELECT t.hour, u.price FROM ticks t LEFT JOIN ticks u ON t.hour = u.hour AND {o} WHERE {w2}",
        "SELECT t.hour, u.price FROM ticks t RIGHT JOIN ticks u ON t.hour = u.hour AND {o}",
        "SELECT t.hour, u.price FROM ticks t FULL JOIN ticks u ON t.hour = u.hour AND {o} WHERE {w1}",
        "SELECT t.timestamp, u.price FROM ticks t ASOF JOIN ticks u ON t.symbol = u.symbol "
        "AND t.timestamp >= u.timestamp AND {o} WHERE {w1} AND {w2}",
        "SELECT t.timestamp, u.price FROM ticks t ASOF LEFT JOIN ticks u ON t.symbol = u.symbol "
        "AND t.timestamp >= u.timestamp AND {o} WHERE {w1}",
        "SELECT count(*) FROM ticks t WHERE {t1} AND t.hour IN (SELECT hour FROM ticks u WHERE {w2} AND {o})",
    ]
)


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(shape=_SHAPES, a=_ATOMS, b=_ATOMS, c=_ATOMS, qa=st.sampled_from(["t.", "u."]), qb=st.sampled_from(["t.", "u."]))
def test_pruning_preserves_results_generated(
    con: duckdb.DuckDBPyConnection, shape: str, a: str, b: str, c: str, qa: str, qb: str
) -> None:
    sql = shape.format(w1=a.format(q=qa), t1=a.format(q="t."), w2=b.format(q=qb), o=c.format(q="u."))
    if "JOIN" not in sql and "ticks u" not in sql:
        sql = sql.replace("u.", "t.")
    assert_same_result(con, sql)


@pytest.mark.parametrize(
    ("literal", "expected_utc"),
    [
        ("'2022-01-07 05:00:00+00:00'", "2022-01-07 05:00:00"),  # offset given: read without DuckDB
        ("TIMESTAMPTZ '2022-01-07 05:00:00.5-05:00'", "2022-01-07 10:00:00.5"),
        ("'2022-01-07 05:00:00'", "2022-01-07 10:00:00"),  # naive: the session TimeZone decides
        ("TIMESTAMPTZ '2022-01-07 05:00:00'", "2022-01-07 10:00:00"),
    ],
)
def test_literal_shortcut_agrees_with_duckdb_in_any_time_zone(literal: str, expected_utc: str) -> None:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'America/New_York'")
    (found,) = find_table_refs(con, f"SELECT * FROM ticks WHERE timestamp >= {literal}", "ticks", COLUMNS) or []
    expected = con.execute(f"SELECT epoch_us(TIMESTAMPTZ '{expected_utc}+00:00')").fetchall()[0][0]
    duckdb_value = con.execute(f"SELECT epoch_us(CAST({literal} AS TIMESTAMPTZ))").fetchall()[0][0]
    assert expected == duckdb_value
    assert found.predicates == (Predicate("timestamp", ">=", (expected,)),)
