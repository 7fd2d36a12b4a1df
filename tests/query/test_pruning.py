"""Pruning is asserted, not assumed: files left after every catalog step, and what DuckDB really reads.

One lake of 12 files (4 hours x 3 tick types), each file holding a few distinct contracts, so every
index has something to prune: partitions and the time range (ts_min/ts_max), min/max statistics,
the inverted index (contract_id, exchange) and the Bloom filters (symbol, which has no other index).
Every pruned query is also run unpruned, by DuckDB over the whole snapshot, and must agree.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

import ticklake
from ticklake.build.compaction import compact_all
from ticklake.config import LakeConfig
from ticklake.landing.ingest import ingest_files
from ticklake.status import has_contract
from ticklake.ticks import SQL_COLUMNS

# contract -> (symbol, exchange)
CONTRACTS = {
    101: ("AAA", "NASDAQ"),
    102: ("BBB", "NYSE"),
    103: ("CCC", "ARCA"),
    104: ("DDD", "NASDAQ"),
    105: ("EEE", "NYSE"),
    106: ("FFF", "IEX"),
}
# (date, hour, tick_type) -> contracts in that file. Ranges overlap on purpose: contract 103 lies inside
# the [min, max] of 8 files but occurs in only 4, so min/max prunes some and the inverted index the rest.
LAYOUT = {
    ("2022-01-07", 5, "last"): (101, 105),
    ("2022-01-07", 5, "bid_ask"): (101, 102, 103),
    ("2022-01-07", 5, "mid_point"): (104,),
    ("2022-01-07", 6, "last"): (102, 106),
    ("2022-01-07", 6, "bid_ask"): (103, 104),
    ("2022-01-07", 6, "mid_point"): (101, 106),
    ("2022-01-07", 7, "last"): (105,),
    ("2022-01-07", 7, "bid_ask"): (102, 105),
    ("2022-01-07", 7, "mid_point"): (103,),
    ("2022-01-08", 5, "last"): (101, 103),
    ("2022-01-08", 5, "bid_ask"): (104, 106),
    ("2022-01-08", 5, "mid_point"): (102,),
}
# Each contract of a file ticks twice, at these minutes of the hour: the files' time ranges differ.
MINUTES = {"last": (0, 19), "bid_ask": (10, 49), "mid_point": (40, 59)}
ALL = 12
STEP_NAMES = ["snapshot", "partitions", "min/max", "inverted index", "bloom"]


def records() -> list[dict[str, Any]]:
    out = []
    for (day, hour, tick_type), contracts in LAYOUT.items():
        for contract in contracts:
            symbol, exchange = CONTRACTS[contract]
            for minute in MINUTES[tick_type]:
                tick: dict[str, Any] = {
                    "timestamp": f"{day}T{hour:02d}:{minute:02d}:{59 if minute == 49 else 0:02d}Z",
                    "contract_id": contract,
                    "tick_type": tick_type,
                    "symbol": symbol,
                    "exchange": exchange,
                }
                if tick_type == "bid_ask":
                    tick.update(bid_price=float(contract), ask_price=contract + 1.0, bid_size=100, ask_size=200)
                else:
                    tick["price"] = contract + 0.5
                out.append(tick)
    return out


@pytest.fixture(scope="module")
def lake_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 12-file lake, built once; tests that damage it work on a copy (`lake_copy`)."""
    folder = tmp_path_factory.mktemp("pruning")
    source = folder / "ticks.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in records()))
    config = LakeConfig(root=folder / "lakehouse", writer_id="test")
    assert ingest_files(config, [source]).appended == 2 * sum(len(c) for c in LAYOUT.values())
    assert len(compact_all(config)) == 4
    return config.root


@pytest.fixture
def con(lake_root: Path) -> Iterator[ticklake.LakeConnection]:
    with ticklake.connect(lake_root) as connection:
        yield connection


@pytest.fixture
def lake_copy(lake_root: Path, tmp_path: Path) -> Path:
    root = tmp_path / "lakehouse"
    shutil.copytree(lake_root, root)
    return root


def steps(plan: Any) -> list[int]:
    assert [s.name for s in plan.steps] == STEP_NAMES
    return [s.files for s in plan.steps]


def partitions(plan: Any) -> set[tuple[str, int, str]]:
    """(date, hour, tick_type) of the files a reference reads."""
    values = [f.partition_values for f in plan.files]
    return {(str(v["date"]), int(v["hour"]), v["tick_type"]) for v in values}


def holding(contract: int) -> set[tuple[str, int, str]]:
    return {(d, h, t) for (d, h, t), cs in LAYOUT.items() if contract in cs}


def files_read(connection: duckdb.DuckDBPyConnection, sql: str) -> list[int]:
    """DuckDB's own "Total Files Read" of every Parquet scan, from EXPLAIN (ANALYZE, FORMAT JSON)."""
    text = connection.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql).fetchall()[0][1]
    found: list[int] = []

    def walk(node: dict[str, Any]) -> None:
        info = node.get("extra_info") or {}
        if "Total Files Read" in info:
            found.append(int(info["Total Files Read"]))
        for child in node.get("children", []):
            walk(child)

    walk(json.loads(text))
    return sorted(found)


def assert_unchanged_by_pruning(con: ticklake.LakeConnection, sql: str) -> list[tuple[Any, ...]]:
    """The pruned query returns what DuckDB returns over every file of the snapshot; return the rows."""
    pruned = con.sql(sql)
    full = con.con.sql(sql)  # `ticks` is also a view over the whole snapshot, unpruned
    assert pruned.columns == full.columns
    got = sorted(pruned.fetchall(), key=repr)
    assert got == sorted(full.fetchall(), key=repr), sql
    return got


def assert_duckdb_reads_only(con: ticklake.LakeConnection, sql: str) -> None:
    """DuckDB's EXPLAIN ANALYZE reads exactly the files the catalog handed it, per reference."""
    plan = con.plan(sql)
    expected = sorted(len(ref.plan.files) for ref in plan.refs if ref.plan.files)
    assert files_read(con.con, plan.sql) == expected


# --- one reference, one index at a time ---------------------------------------------------------


def test_lake_has_one_file_per_hour_and_tick_type(con: ticklake.LakeConnection) -> None:
    plan = con.plan("SELECT * FROM ticks").refs[0].plan
    assert steps(plan) == [ALL] * 5
    assert partitions(plan) == set(LAYOUT)
    assert con.sql("SELECT count(*) FROM ticks").fetchone() == (2 * sum(len(c) for c in LAYOUT.values()),)


def test_one_contract_one_hour_reads_exactly_its_file(con: ticklake.LakeConnection) -> None:
    sql = "SELECT * FROM ticks WHERE contract_id = 103 AND date = '2022-01-07' AND hour = 6"
    (ref,) = con.plan(sql).refs
    assert steps(ref.plan) == [ALL, 3, 3, 1, 1]
    assert partitions(ref.plan) == {("2022-01-07", 6, "bid_ask")}
    assert [s.conditions for s in ref.plan.steps[1:]] == [
        ("date = 2022-01-07", "hour = 6"),
        ("contract_id = 103",),
        ("contract_id = 103",),
        ("contract_id = 103",),
    ]
    rows = assert_unchanged_by_pruning(con, sql)
    assert [(r[1], r[2], r[0].minute) for r in rows] == [(103, "bid_ask", 10), (103, "bid_ask", 49)]
    assert_duckdb_reads_only(con, sql)


@pytest.mark.parametrize(
    ("where", "expected_steps", "expected_files"),
    [
        # partitions: tick_type, date, hour
        ("tick_type = 'last'", [ALL, 4, 4, 4, 4], {k for k in LAYOUT if k[2] == "last"}),
        ("tick_type IN ('last', 'mid_point')", [ALL, 8, 8, 8, 8], {k for k in LAYOUT if k[2] != "bid_ask"}),
        ("date = '2022-01-08'", [ALL, 3, 3, 3, 3], {k for k in LAYOUT if k[0] == "2022-01-08"}),
        ("date > DATE '2022-01-07'", [ALL, 3, 3, 3, 3], {k for k in LAYOUT if k[0] == "2022-01-08"}),
        ("hour = 5", [ALL, 6, 6, 6, 6], {k for k in LAYOUT if k[1] == 5}),
        ("hour BETWEEN 6 AND 7", [ALL, 6, 6, 6, 6], {k for k in LAYOUT if k[1] in (6, 7)}),
        ("date = '2022-01-07' AND hour >= 6", [ALL, 6, 6, 6, 6], {k for k in LAYOUT if k[0] == "2022-01-07" and k[1] > 5}),
        # time range, from the files' ts_min/ts_max
        (
            "timestamp BETWEEN '2022-01-07 05:25:00+00' AND '2022-01-07 05:35:00+00'",
            [ALL, 1, 1, 1, 1],
            {("2022-01-07", 5, "bid_ask")},
        ),
        (
            "timestamp = TIMESTAMPTZ '2022-01-07 05:45:00+00'",
            [ALL, 2, 2, 2, 2],
            {("2022-01-07", 5, "bid_ask"), ("2022-01-07", 5, "mid_point")},
        ),
        ("timestamp < '2022-01-07 05:10'", [ALL, 1, 1, 1, 1], {("2022-01-07", 5, "last")}),
        (
            "timestamp >= TIMESTAMP '2022-01-07 06:00' + INTERVAL 45 MINUTE",
            [ALL, 8, 8, 8, 8],
            {("2022-01-07", 6, "bid_ask"), ("2022-01-07", 6, "mid_point")}
            | {k for k in LAYOUT if k[1] == 7 or k[0] == "2022-01-08"},
        ),
        (
            "timestamp >= '2022-01-07 06:30:00+01:00' AND timestamp < '2022-01-07 05:40:00+00'",
            [ALL, 1, 1, 1, 1],
            {("2022-01-07", 5, "bid_ask")},
        ),
        # min/max statistics of a data column (bid_ask files hold no price at all)
        ("price > 105", [ALL, ALL, 4, 4, 4], {k for k, cs in LAYOUT.items() if k[2] != "bid_ask" and max(cs) >= 105}),
        ("contract_id = 999", [ALL, ALL, 0, 0, 0], set()),
        # inverted index: contract_id (after min/max) and exchange
        ("contract_id = 103", [ALL, ALL, 8, 4, 4], holding(103)),
        ("contract_id IN (103, 106)", [ALL, ALL, 9, 7, 7], holding(103) | holding(106)),
        ("contract_id = 103 OR contract_id = 106", [ALL, ALL, 9, 7, 7], holding(103) | holding(106)),
        ("exchange = 'IEX'", [ALL, ALL, ALL, 3, 3], holding(106)),
        ("exchange IN ('ARCA', 'IEX')", [ALL, ALL, ALL, 7, 7], holding(103) | holding(106)),
        # Bloom filters: symbol has no other index, so only this step can prune it
        ("symbol = 'FFF'", [ALL, ALL, ALL, ALL, 3], holding(106)),
        ("symbol IN ('AAA', 'EEE')", [ALL, ALL, ALL, ALL, 6], holding(101) | holding(105)),
        ("symbol = 'ZZZ'", [ALL, ALL, ALL, ALL, 0], set()),
        # every step at once
        (
            "tick_type = 'bid_ask' AND hour = 5 AND contract_id = 104 AND exchange = 'NASDAQ' AND symbol = 'DDD'",
            [ALL, 2, 1, 1, 1],
            {("2022-01-08", 5, "bid_ask")},
        ),
    ],
)
def test_single_reference_is_pruned_step_by_step(
    con: ticklake.LakeConnection, where: str, expected_steps: list[int], expected_files: set[tuple[str, int, str]]
) -> None:
    sql = f"SELECT * FROM ticks WHERE {where}"
    (ref,) = con.plan(sql).refs
    assert steps(ref.plan) == expected_steps
    assert len(ref.plan.files) == expected_steps[-1]
    assert partitions(ref.plan) == expected_files
    rows = assert_unchanged_by_pruning(con, sql)
    assert {(str(r[13]), r[14], r[2]) for r in rows} <= expected_files
    assert_duckdb_reads_only(con, sql)


@pytest.mark.parametrize(
    "where",
    [
        "contract_id = 103 OR tick_type = 'last'",
        "hour = 5 OR symbol = 'FFF'",
        "timestamp < '2022-01-07 05:10:00+00' OR exchange = 'IEX'",
        "NOT (tick_type = 'last')",
        "tick_type <> 'last'",
        "contract_id NOT IN (101, 102, 103)",
        "coalesce(symbol, 'x') = 'FFF'",
        "hour + 0 = 5",
        "timestamp > now() - INTERVAL 1 DAY",
    ],
)
def test_predicates_that_cannot_prune_leave_every_file(con: ticklake.LakeConnection, where: str) -> None:
    sql = f"SELECT * FROM ticks WHERE {where}"
    (ref,) = con.plan(sql).refs
    assert steps(ref.plan) == [ALL] * 5
    assert_unchanged_by_pruning(con, sql)


def test_duckdb_alone_reads_more_files_than_the_catalog_hands_it(con: ticklake.LakeConnection) -> None:
    """Without the catalog DuckDB can skip only Hive partitions; with it, it opens only the 4 files of contract 103."""
    sql = "SELECT * FROM ticks WHERE contract_id = 103 AND symbol = 'CCC'"
    assert files_read(con.con, sql) == [ALL]  # `ticks` itself: the whole snapshot
    assert_duckdb_reads_only(con, sql)
    assert files_read(con.con, con.plan(sql).sql) == [4]
    explained = con.sql("EXPLAIN ANALYZE " + sql).fetchall()[0][1]  # EXPLAIN ANALYZE through the lake
    assert "Total Files Read: 4" in explained


# --- several references in one query ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        (  # self-join: each side by its own WHERE conjuncts
            "SELECT a.contract_id, a.timestamp, b.timestamp AS b_ts FROM ticks a JOIN ticks b ON a.contract_id = b.contract_id "
            "WHERE a.tick_type = 'last' AND a.hour = 5 AND b.tick_type = 'bid_ask' AND b.date = '2022-01-08'",
            [{("2022-01-07", 5, "last"), ("2022-01-08", 5, "last")}, {("2022-01-08", 5, "bid_ask")}],
        ),
        (  # CTEs
            "WITH q AS (SELECT * FROM ticks WHERE tick_type = 'bid_ask' AND contract_id = 104), "
            "s AS (SELECT * FROM ticks WHERE symbol = 'EEE') "
            "SELECT q.contract_id, q.timestamp, s.timestamp AS s_ts FROM q JOIN s ON q.exchange <> s.exchange",
            [{k for k in holding(104) if k[2] == "bid_ask"}, holding(105)],
        ),
        (  # IN subquery
            "SELECT * FROM ticks WHERE hour = 7 AND contract_id IN (SELECT contract_id FROM ticks WHERE exchange = 'IEX')",
            [{k for k in LAYOUT if k[1] == 7}, holding(106)],
        ),
        (  # scalar subquery: the outer comparison is not constant, so only the inner reference prunes
            "SELECT * FROM ticks WHERE timestamp > (SELECT max(timestamp) FROM ticks WHERE date = '2022-01-07' AND hour = 6)",
            [set(LAYOUT), {k for k in LAYOUT if k[:2] == ("2022-01-07", 6)}],
        ),
        (  # correlated EXISTS
            "SELECT * FROM ticks a WHERE a.tick_type = 'mid_point' AND EXISTS "
            "(SELECT 1 FROM ticks b WHERE b.contract_id = a.contract_id AND b.exchange = 'NYSE')",
            [{k for k in LAYOUT if k[2] == "mid_point"}, holding(102) | holding(105)],
        ),
        (  # UNION ALL
            "SELECT contract_id, timestamp FROM ticks WHERE symbol = 'AAA' UNION ALL "
            "SELECT contract_id, timestamp FROM ticks WHERE tick_type = 'mid_point' AND date = '2022-01-08'",
            [holding(101), {("2022-01-08", 5, "mid_point")}],
        ),
        (  # LEFT JOIN: a predicate on the preserved side in ON must not prune it; the inner side's must
            "SELECT a.contract_id, a.timestamp, a.tick_type, b.timestamp AS b_ts FROM ticks a LEFT JOIN ticks b "
            "ON a.contract_id = b.contract_id AND a.tick_type = 'last' AND b.hour = 7",
            [set(LAYOUT), {k for k in LAYOUT if k[1] == 7}],
        ),
        (  # ... while WHERE on the preserved side does prune it
            "SELECT a.contract_id, a.timestamp, b.timestamp AS b_ts FROM ticks a LEFT JOIN ticks b "
            "ON a.contract_id = b.contract_id AND b.tick_type = 'bid_ask' WHERE a.tick_type = 'last'",
            [{k for k in LAYOUT if k[2] == "last"}, {k for k in LAYOUT if k[2] == "bid_ask"}],
        ),
        (  # RIGHT JOIN, mirrored
            "SELECT a.timestamp, b.contract_id, b.timestamp AS b_ts FROM ticks a RIGHT JOIN ticks b "
            "ON a.contract_id = b.contract_id AND b.tick_type = 'last' AND a.hour = 7",
            [{k for k in LAYOUT if k[1] == 7}, set(LAYOUT)],
        ),
        (  # FULL JOIN: both sides preserved, nothing in ON prunes
            "SELECT a.timestamp, b.timestamp AS b_ts FROM ticks a FULL JOIN ticks b "
            "ON a.contract_id = b.contract_id AND a.hour = 5 AND b.hour = 6",
            [set(LAYOUT), set(LAYOUT)],
        ),
        (  # ASOF: WHERE on the right side would change which row is nearest, so it must not prune it
            "SELECT q.contract_id, q.timestamp, t.timestamp AS t_ts FROM ticks q ASOF JOIN ticks t "
            "ON q.contract_id = t.contract_id AND q.timestamp >= t.timestamp "
            "WHERE q.tick_type = 'bid_ask' AND t.tick_type = 'last'",
            [{k for k in LAYOUT if k[2] == "bid_ask"}, set(LAYOUT)],
        ),
    ],
)
def test_each_reference_is_pruned_by_its_own_predicates(
    con: ticklake.LakeConnection, sql: str, expected: list[set[tuple[str, int, str]]]
) -> None:
    plan = con.plan(sql)
    assert [partitions(ref.plan) for ref in plan.refs] == expected
    assert [len(ref.plan.files) for ref in plan.refs] == [len(e) for e in expected]
    assert_unchanged_by_pruning(con, sql)
    assert_duckdb_reads_only(con, sql)


# --- nothing matches ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "where",
    ["contract_id = 999", "tick_type = 'trade'", "date = '2021-12-31'", "symbol = 'ZZZ'", "timestamp > '2030-01-01'"],
)
def test_query_matching_nothing_reads_no_file_and_keeps_the_columns(con: ticklake.LakeConnection, where: str) -> None:
    sql = f"SELECT * FROM ticks WHERE {where}"
    plan = con.plan(sql)
    assert [len(ref.plan.files) for ref in plan.refs] == [0]
    result = con.sql(sql)
    assert result.columns == list(SQL_COLUMNS)
    assert [str(t) for t in result.types] == list(SQL_COLUMNS.values())
    assert result.fetchall() == []
    assert files_read(con.con, plan.sql) == []  # no Parquet scan at all
    assert con.sql(f"SELECT count(*), max(price), min(timestamp) FROM ticks WHERE {where}").fetchall() == [(0, None, None)]
    joined = f"SELECT a.contract_id, b.timestamp FROM ticks a LEFT JOIN ticks b ON a.contract_id = b.contract_id AND b.{where}"
    assert [len(ref.plan.files) for ref in con.plan(joined).refs] == [ALL, 0]
    assert_unchanged_by_pruning(con, joined)


# --- the query path reads the catalog, never a directory listing ------------------------------------


def test_a_file_outside_the_catalog_is_never_read(lake_copy: Path) -> None:
    """A stray Parquet file in a partition folder (a crashed writer's leftover) is invisible to queries."""
    with ticklake.connect(lake_copy) as con:
        (ref,) = con.plan("SELECT * FROM ticks WHERE tick_type = 'last' AND hour = 5").refs
        before = con.sql("SELECT * FROM ticks").fetchall()
    real = lake_copy / ref.plan.files[0].path
    shutil.copy(real, real.with_name("stray-0000.parquet"))
    with ticklake.connect(lake_copy) as con:
        plan = con.plan("SELECT * FROM ticks WHERE tick_type = 'last' AND hour = 5").refs[0].plan
        assert [f.path for f in plan.files] == [f.path for f in ref.plan.files]
        assert sorted(con.sql("SELECT * FROM ticks").fetchall(), key=repr) == sorted(before, key=repr)


SQL = "SELECT * FROM ticks WHERE tick_type = 'last' AND contract_id = 101"


def remove_all_but_needed(con: ticklake.LakeConnection, root: Path) -> list[str]:
    """Delete every live file the catalog prunes away from `SQL` (the first one in path order too)."""
    needed = {f.path for f in con.plan(SQL).refs[0].plan.files}
    gone = [f.path for f in con.plan("SELECT * FROM ticks").refs[0].plan.files if f.path not in needed]
    for path in gone:
        (root / path).unlink()
    (root / "lake/ticks/tick_type=mid_point").rename(root / "moved-away")
    return gone


def test_query_opens_only_the_files_the_catalog_hands_it(lake_copy: Path) -> None:
    """With 10 of 12 files deleted, a query that needs the other 2 still runs: nothing else is opened."""
    with ticklake.connect(lake_copy) as con:
        expected = con.sql(SQL).fetchall()
        assert len(expected) == 4
        assert len(remove_all_but_needed(con, lake_copy)) == ALL - 2
        assert con.sql(SQL).fetchall() == expected
        assert files_read(con.con, con.plan(SQL).sql) == [2]
        one_file = "SELECT count(*) FROM ticks WHERE contract_id = 101 AND tick_type = 'last' AND date = '2022-01-07'"
        assert con.sql(one_file).fetchone() == (2,)


def test_connect_works_when_pruned_away_files_are_gone(lake_copy: Path) -> None:
    with ticklake.connect(lake_copy) as con:
        expected = con.sql(SQL).fetchall()
        remove_all_but_needed(con, lake_copy)
    with ticklake.connect(lake_copy) as con:
        assert con.sql(SQL).fetchall() == expected


def test_has_contract_answers_from_the_catalog_alone(lake_copy: Path) -> None:
    config = LakeConfig(root=lake_copy)
    data = lake_copy / "lake"
    away = lake_copy.parent / "data-moved-away"
    data.rename(away)
    away.chmod(0)
    try:
        found = has_contract(config, 103, dt.date(2022, 1, 7))
        assert (found.found, found.rows, found.files) == (True, 6, 3)
        assert sorted(p.split("/")[0] for p in found.partitions) == ["tick_type=bid_ask"] * 2 + ["tick_type=mid_point"]
        next_day = has_contract(config, 103, dt.date(2022, 1, 8))
        assert (next_day.rows, next_day.files) == (2, 1)
        assert not has_contract(config, 104, dt.date(2022, 1, 9)).found
        assert has_contract(config, 999, dt.date(2022, 1, 7)).rows == 0
    finally:
        away.chmod(0o755)
        away.rename(data)
    assert not os.path.exists(away)
