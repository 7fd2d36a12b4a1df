"""Query results through `ticklake.connect` equal DuckDB reading the raw JSONL directly.

Each example writes generated ticks as JSONL files, ingests and compacts them (late data: more
batches for the same hours, compacted again), then runs the same SQL twice: through the lake
(catalog-pruned Parquet) and on a table DuckDB builds straight from the JSONL files. The two
results must be the same multiset of rows, with the same column names and types.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ticklake
from ticklake.build.compaction import compact_all
from ticklake.config import LakeConfig
from ticklake.demo.eurusd import eurusd_ticks
from ticklake.demo.synthetic import to_jsonl
from ticklake.errors import NotFoundError
from ticklake.landing.ingest import ingest_files

UTC = dt.UTC
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
HOUR_US = 3_600_000_000
# Candidate event hours over four days, with midnights inside: a generated lake fills a few of them.
HOUR_STARTS = [
    dt.datetime(2022, 1, 6, 22, tzinfo=UTC),
    dt.datetime(2022, 1, 6, 23, tzinfo=UTC),
    dt.datetime(2022, 1, 7, 0, tzinfo=UTC),
    dt.datetime(2022, 1, 7, 1, tzinfo=UTC),
    dt.datetime(2022, 1, 7, 5, tzinfo=UTC),
    dt.datetime(2022, 1, 8, 23, tzinfo=UTC),
    dt.datetime(2022, 1, 9, 0, tzinfo=UTC),
]
HOURS = [int((h - EPOCH).total_seconds()) // 3600 for h in HOUR_STARTS]
CONTRACTS = [1, 7, 265598, 12087792, 2**62 + 3]
SYMBOLS = ["AAPL", "EUR.USD", "Ünï", "X"]
EXCHANGES = ["NASDAQ", "NYSE", "IDEALPRO"]
CONDITION_LISTS = [[], ["ODD_LOT"], ["ODD_LOT", "INTERMARKET_SWEEP"]]
SOURCES = ["feed-a", "feed b"]  # unknown field values (ASCII: the reference rebuilds `extra` with DuckDB)
# Each batch is written with its own JSON separators, so a late batch never repeats an earlier segment's bytes.
SEPARATORS = [(",", ":"), (", ", ": "), (",", ": ")]
TS_FORMATS = ["Z", "+00:00", "+05:30", "-08:00", "-00:00", "naive-T", "naive-space", "epoch", "nanos"]

# The `ticks` table straight from the JSONL files: what the lake must return, row for row.
REFERENCE_SQL = """
CREATE OR REPLACE TABLE ticks AS
SELECT ts AS "timestamp", contract_id, tick_type, price, "size", bid_price, ask_price, bid_size, ask_size,
       symbol, exchange, conditions,
       CASE WHEN seq IS NULL AND src IS NULL THEN NULL
            WHEN src IS NULL THEN CAST(json_object('seq', seq) AS VARCHAR)
            WHEN seq IS NULL THEN CAST(json_object('src', src) AS VARCHAR)
            ELSE CAST(json_object('seq', seq, 'src', src) AS VARCHAR) END AS extra,
       CAST(ts AS DATE) AS "date", CAST(hour(ts) AS INTEGER) AS "hour"
FROM (
    SELECT CASE WHEN json_type("timestamp") = 'VARCHAR' THEN CAST("timestamp" ->> '$' AS TIMESTAMPTZ)
                ELSE CAST(make_timestamp(CAST(round(CAST("timestamp" AS DOUBLE) * 1000000.0) AS BIGINT)) AS TIMESTAMPTZ)
           END AS ts, *
    FROM read_json({files}, format = 'newline_delimited', columns = {{
        "timestamp": 'JSON', contract_id: 'BIGINT', tick_type: 'VARCHAR', price: 'DOUBLE', "size": 'DOUBLE',
        bid_price: 'DOUBLE', ask_price: 'DOUBLE', bid_size: 'DOUBLE', ask_size: 'DOUBLE', symbol: 'VARCHAR',
        exchange: 'VARCHAR', conditions: 'VARCHAR[]', seq: 'BIGINT', src: 'VARCHAR'}})
)
"""


# --- generated ticks ------------------------------------------------------------------------------


def iso(us: int, offset_minutes: int = 0, *, sep: str = "T", suffix: str = "", digits: int = 6) -> str:
    """ISO-8601 text of epoch microseconds `us`, as local time at a UTC offset."""
    local = EPOCH + dt.timedelta(microseconds=us) + dt.timedelta(minutes=offset_minutes)
    text = local.strftime(f"%Y-%m-%d{sep}%H:%M:%S")
    if digits:
        text += "." + f"{local.microsecond:06d}"[:digits]
    return text + suffix


@st.composite
def timestamp_value(draw: st.DrawFn, us: int, formats: Sequence[str]) -> str | int | float:
    """One landing spelling of instant `us`: ISO with an offset, naive (UTC), epoch seconds, or nanoseconds."""
    style = draw(st.sampled_from(formats))
    digits = draw(st.sampled_from([d for d in (0, 3, 6) if us % 10 ** (6 - d) == 0]))
    if style == "epoch":
        return us // 1_000_000 if us % 1_000_000 == 0 else us / 1_000_000
    if style == "nanos":  # sub-microsecond digits are truncated, as DuckDB does
        return iso(us, suffix=draw(st.sampled_from(["789Z", "999+00:00", "1"])))
    if style.startswith("naive"):
        return iso(us, sep="T" if style == "naive-T" else " ", digits=digits)
    if style == "Z":
        return iso(us, suffix="Z", digits=digits)
    sign = -1 if style.startswith("-") else 1
    minutes = sign * (int(style[1:3]) * 60 + int(style[4:6]))
    return iso(us, minutes, suffix=style, digits=digits)


def cents(draw: st.DrawFn) -> float:
    return draw(st.integers(1, 2_000_000)) / 100


@st.composite
def tick_record(draw: st.DrawFn, hours: Sequence[int], formats: Sequence[str]) -> dict[str, Any]:
    """A valid landing tick (a dict in JSON key order) in one of `hours`."""
    hour = draw(st.sampled_from(hours))
    # A few fixed offsets make same-microsecond ticks (of one contract, too) common.
    offset = draw(st.one_of(st.sampled_from([0, 1, 999_999, 1_800_000_000, HOUR_US - 1]), st.integers(0, HOUR_US - 1)))
    us = hour * HOUR_US + offset
    tick_type = draw(st.sampled_from(["last", "bid_ask", "mid_point"]))
    record: dict[str, Any] = {
        "timestamp": draw(timestamp_value(us, formats)),
        "contract_id": draw(st.sampled_from(CONTRACTS)),
        "tick_type": tick_type,
    }
    if tick_type == "last":
        record["price"] = cents(draw)
        if draw(st.booleans()):
            record["size"] = draw(st.sampled_from([100, 1, 2.5, 0]))
    elif tick_type == "mid_point":
        record["price"] = cents(draw)
    else:
        sides = draw(st.sampled_from(["both", "both", "bid", "ask"]))  # one-sided quotes too
        if sides in ("both", "bid"):
            record["bid_price"] = cents(draw)
            if draw(st.booleans()):
                record["bid_size"] = draw(st.sampled_from([300, 1, 0.5]))
        if sides in ("both", "ask"):
            record["ask_price"] = cents(draw)
            if draw(st.booleans()):
                record["ask_size"] = draw(st.sampled_from([200, 7]))
    for name, choices in (("symbol", SYMBOLS), ("exchange", EXCHANGES), ("conditions", CONDITION_LISTS)):
        mode = draw(st.sampled_from(["value", "value", "absent", "null"]))
        if mode != "absent":
            record[name] = draw(st.sampled_from(choices)) if mode == "value" else None
    if draw(st.integers(0, 4)) == 0:  # unknown fields: kept in `extra`
        record["seq"] = draw(st.integers(0, 10**12))
    if draw(st.integers(0, 5)) == 0:
        record["src"] = draw(st.sampled_from(SOURCES))
    order = draw(st.permutations(list(record)))
    return {key: record[key] for key in order}


@st.composite
def batch_lines(draw: st.DrawFn, hours: Sequence[int]) -> list[dict[str, Any]]:
    """One JSONL file's ticks, some repeated line for line (two ticks each, never deduplicated)."""
    formats = draw(st.sampled_from([["Z"], ["epoch"], ["naive-T"], TS_FORMATS, TS_FORMATS]))
    small = st.lists(tick_record(hours, formats), min_size=1, max_size=10)
    large = st.lists(tick_record(hours, formats), min_size=33, max_size=45)  # past the parser's line-by-line threshold
    records = draw(st.one_of(small, small, large))
    repeats = draw(st.lists(st.integers(0, len(records) - 1), max_size=3))
    for i in repeats:
        records.insert(draw(st.integers(0, len(records))), records[i])
    return records


@st.composite
def lake_batches(draw: st.DrawFn) -> list[tuple[list[dict[str, Any]], bool]]:
    """1-3 batches over the same few hours (late data), each with "compact after it" (the last always)."""
    hours = draw(st.lists(st.sampled_from(HOURS), min_size=1, max_size=4, unique=True))
    n = draw(st.integers(1, 3))
    batches = [draw(batch_lines(hours)) for _ in range(n)]
    compact = [draw(st.booleans()) for _ in range(n - 1)] + [True]
    return list(zip(batches, compact, strict=True))


# --- building the two sides ---------------------------------------------------------------------


def write_batch(folder: Path, index: int, records: list[dict[str, Any]]) -> Path:
    path = folder / f"batch-{index}.jsonl"
    seps = SEPARATORS[index % len(SEPARATORS)]
    path.write_text("".join(json.dumps(r, separators=seps) + "\n" for r in records), encoding="utf-8")
    return path


def build_lake(
    config: LakeConfig, batches: list[tuple[list[dict[str, Any]], bool]], inputs: Path, *, first: int = 0
) -> list[Path]:
    """Ingest each batch (compacting where asked) and return the JSONL files written (batch-<first>...)."""
    files = []
    for i, (records, compact_after) in enumerate(batches, start=first):
        path = write_batch(inputs, i, records)
        report = ingest_files(config, [path])
        assert (report.lines, report.appended, report.quarantined, report.already_present) == (len(records), len(records), 0, 0)
        files.append(path)
        if compact_after:
            for hour in compact_all(config):
                assert hour.quarantined == 0, hour.summary()
    return files


def reference(files: Sequence[Path]) -> duckdb.DuckDBPyConnection:
    """DuckDB with a `ticks` table read from the raw JSONL files."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    listing = "[" + ", ".join("'" + str(f).replace("'", "''") + "'" for f in files) + "]"
    con.execute(REFERENCE_SQL.format(files=listing))
    return con


def rows(relation: duckdb.DuckDBPyRelation) -> list[tuple[Any, ...]]:
    return sorted(relation.fetchall(), key=repr)


def assert_same(lake_con: ticklake.LakeConnection, ref: duckdb.DuckDBPyConnection, sql: str) -> None:
    """The lake and the raw-JSONL reference give the same columns, types and multiset of rows."""
    got, want = lake_con.sql(sql), ref.sql(sql)
    assert got.columns == want.columns, sql
    assert [str(t) for t in got.types] == [str(t) for t in want.types], sql
    assert rows(got) == rows(want), sql


def lit(us: int) -> str:
    return iso(us, suffix="+00")


# --- queries -------------------------------------------------------------------------------------


def queries(data: st.DataObject, ref: duckdb.DuckDBPyConnection) -> list[str]:
    """The SQL compared on every generated lake, with constants drawn from (and around) its data."""
    stamps = [int((t - EPOCH) / dt.timedelta(microseconds=1)) for (t,) in ref.sql('SELECT "timestamp" FROM ticks').fetchall()]
    near = st.sampled_from(stamps).flatmap(lambda us: st.sampled_from([us, us - 1, us + 1]))
    bounds = st.sampled_from([h * HOUR_US for h in HOURS] + [h * HOUR_US + HOUR_US // 2 for h in HOURS])
    t0, t1 = sorted([data.draw(st.one_of(near, bounds)), data.draw(st.one_of(near, bounds))])
    c, c2 = data.draw(st.sampled_from(CONTRACTS)), data.draw(st.sampled_from(CONTRACTS))
    lo, hi = sorted([data.draw(st.sampled_from(CONTRACTS)), data.draw(st.sampled_from(CONTRACTS))])
    hour_start = HOUR_STARTS[HOURS.index(data.draw(st.sampled_from(HOURS)))]
    h, d = hour_start.hour, hour_start.date().isoformat()
    h2 = data.draw(st.integers(0, 23))
    s, s2 = data.draw(st.sampled_from(SYMBOLS)), data.draw(st.sampled_from(SYMBOLS))
    e = data.draw(st.sampled_from(EXCHANGES))
    p = data.draw(st.integers(1, 2_000_000)) / 100
    naive0 = iso(t0)
    local0 = iso(t0, 330, suffix="+05:30")
    pair = "a.timestamp, a.contract_id, a.tick_type, a.price, b.timestamp AS b_ts, b.tick_type AS b_type, b.bid_price"
    return [
        # full scans and single-column filters
        "SELECT * FROM ticks",
        "SELECT count(*) FROM ticks",
        f"SELECT * FROM ticks WHERE timestamp = TIMESTAMPTZ '{lit(t0)}'",
        f"SELECT * FROM ticks WHERE timestamp < '{lit(t0)}'",
        f"SELECT * FROM ticks WHERE timestamp <= '{lit(t0)}'",
        f"SELECT * FROM ticks WHERE timestamp > '{local0}'",
        f"SELECT * FROM ticks WHERE '{lit(t0)}' <= timestamp",
        f"SELECT * FROM ticks WHERE timestamp BETWEEN '{lit(t0)}' AND '{lit(t1)}'",
        f"SELECT * FROM ticks WHERE timestamp >= TIMESTAMP '{naive0}' AND timestamp < TIMESTAMP '{naive0}' + INTERVAL 90 MINUTE",
        f"SELECT * FROM ticks WHERE timestamp > TIMESTAMPTZ '{lit(t1)}' - INTERVAL '1 hour'",
        f"SELECT * FROM ticks WHERE timestamp IN ('{lit(t0)}', '{lit(t1)}')",
        f"SELECT * FROM ticks WHERE timestamp >= DATE '{d}'",
        f"SELECT * FROM ticks WHERE epoch_us(timestamp) >= {t0}",
        f"SELECT * FROM ticks WHERE date = '{d}'",
        f"SELECT * FROM ticks WHERE date > DATE '{d}'",
        f"SELECT * FROM ticks WHERE date BETWEEN DATE '{d}' - 1 AND '{d}' AND hour = {h}",
        f"SELECT * FROM ticks WHERE hour = {h}",
        f"SELECT * FROM ticks WHERE hour IN ({h}, {h2}) AND date <= '{d}'",
        f"SELECT * FROM ticks WHERE hour < {h2}",
        "SELECT * FROM ticks WHERE tick_type = 'last'",
        "SELECT * FROM ticks WHERE tick_type IN ('bid_ask', 'mid_point')",
        "SELECT * FROM ticks WHERE tick_type <> 'last'",
        "SELECT * FROM ticks WHERE tick_type = 'bid_ask' AND (bid_price IS NULL OR ask_price IS NULL)",
        f"SELECT * FROM ticks WHERE contract_id = {c}",
        f"SELECT * FROM ticks WHERE contract_id = '{c}'",
        f"SELECT * FROM ticks WHERE contract_id IN ({c}, {c2})",
        f"SELECT * FROM ticks WHERE contract_id = {c} OR contract_id = {c2}",
        f"SELECT * FROM ticks WHERE contract_id BETWEEN {lo} AND {hi}",
        f"SELECT * FROM ticks WHERE contract_id > {lo} AND contract_id <= {hi}",
        f"SELECT * FROM ticks WHERE contract_id NOT IN ({c}, {c2})",
        f"SELECT * FROM ticks WHERE NOT (contract_id = {c})",
        f"SELECT * FROM ticks WHERE exchange = '{e}'",
        f"SELECT * FROM ticks WHERE symbol = '{s}'",
        f"SELECT * FROM ticks WHERE symbol IN ('{s}', '{s2}') AND exchange IS NOT NULL",
        f"SELECT * FROM ticks WHERE price > {p}",
        "SELECT * FROM ticks WHERE size BETWEEN 1 AND 100 OR bid_size < 1",
        # combinations, and ORs that cannot prune
        f"SELECT * FROM ticks WHERE contract_id = {c} AND tick_type = 'last' AND timestamp >= '{lit(t0)}' AND date = '{d}'",
        f"SELECT * FROM ticks WHERE contract_id = {c} OR tick_type = 'last'",
        f"SELECT * FROM ticks WHERE hour = {h} OR symbol = '{s}'",
        f"SELECT * FROM ticks WHERE timestamp < '{lit(t0)}' OR exchange = '{e}'",
        f"SELECT * FROM ticks WHERE (contract_id = {c} AND hour = {h}) OR (contract_id = {c2} AND tick_type = 'mid_point')",
        # spellings of the table
        f"SELECT * FROM main.ticks WHERE contract_id = {c}",
        f'SELECT t.* FROM "ticks" AS t WHERE t.hour = {h}',
        f"FROM ticks SELECT contract_id, timestamp WHERE symbol = '{s}'",
        # joins
        f"SELECT {pair} FROM ticks a JOIN ticks b ON a.contract_id = b.contract_id AND a.timestamp = b.timestamp "
        "WHERE a.tick_type = 'last' AND b.tick_type = 'bid_ask'",
        f"SELECT {pair} FROM ticks a, ticks b WHERE a.contract_id = b.contract_id AND a.hour = {h} AND b.symbol = '{s}'",
        f"SELECT {pair} FROM ticks a LEFT JOIN ticks b ON a.contract_id = b.contract_id AND a.tick_type = 'last' "
        f"AND b.tick_type = 'mid_point' AND b.hour = {h}",
        f"SELECT {pair} FROM ticks a LEFT JOIN ticks b ON a.contract_id = b.contract_id AND b.exchange = '{e}' "
        f"WHERE a.hour = {h}",
        f"SELECT {pair} FROM ticks a LEFT JOIN ticks b ON a.contract_id = b.contract_id AND a.timestamp < b.timestamp "
        f"WHERE b.tick_type = 'bid_ask' AND a.contract_id = {c}",
        f"SELECT {pair} FROM ticks a RIGHT JOIN ticks b ON a.contract_id = b.contract_id AND a.tick_type = 'last' "
        f"AND b.tick_type = 'bid_ask' WHERE b.contract_id IN ({c}, {c2})",
        f"SELECT {pair} FROM ticks a FULL JOIN ticks b ON a.contract_id = b.contract_id AND a.hour = {h} "
        "AND b.tick_type = 'last' AND a.tick_type = 'mid_point'",
        "SELECT q.timestamp, q.contract_id, q.bid_price, t.timestamp AS trade_ts FROM ticks q ASOF JOIN ticks t "
        "ON q.contract_id = t.contract_id AND t.tick_type = 'last' AND q.timestamp >= t.timestamp WHERE q.tick_type = 'bid_ask'",
        # WHERE on the right side of an ASOF join filters after the nearest row is found. It tests the
        # matched row's hour: a function of its timestamp, so ties between same-microsecond rows do not matter.
        "SELECT q.timestamp, q.contract_id, t.timestamp AS prior_ts FROM ticks q ASOF JOIN ticks t "
        f"ON q.contract_id = t.contract_id AND q.timestamp > t.timestamp WHERE t.hour = {h} AND q.tick_type <> 'last'",
        "SELECT q.timestamp, q.contract_id, t.timestamp AS prior_ts FROM ticks q ASOF LEFT JOIN ticks t "
        f"ON q.contract_id = t.contract_id AND q.timestamp >= t.timestamp AND t.exchange = '{e}' WHERE q.tick_type = 'mid_point'",
        # CTEs, subqueries, set operations
        f"WITH l AS (SELECT * FROM ticks WHERE tick_type = 'last' AND hour = {h}), "
        f"q AS (SELECT * FROM ticks WHERE contract_id = {c}) "
        "SELECT l.contract_id, l.timestamp, q.timestamp AS q_ts FROM l JOIN q USING (contract_id)",
        f"WITH ticks AS (SELECT * FROM main.ticks WHERE contract_id = {c}) SELECT * FROM ticks WHERE hour = {h}",
        f"SELECT * FROM ticks WHERE contract_id IN (SELECT contract_id FROM ticks WHERE exchange = '{e}') "
        "AND tick_type = 'mid_point'",
        f"SELECT * FROM ticks WHERE timestamp > (SELECT min(timestamp) FROM ticks WHERE contract_id = {c})",
        "SELECT * FROM ticks a WHERE a.tick_type = 'bid_ask' AND EXISTS (SELECT 1 FROM ticks b "
        "WHERE b.contract_id = a.contract_id AND b.tick_type = 'last' AND b.timestamp <= a.timestamp)",
        f"SELECT * FROM (SELECT * FROM ticks WHERE date = '{d}') s WHERE s.contract_id = {c}",
        f"SELECT contract_id, timestamp FROM ticks WHERE hour = {h} UNION ALL "
        f"SELECT contract_id, timestamp FROM ticks WHERE symbol = '{s}'",
        f"SELECT contract_id FROM ticks WHERE tick_type = 'last' EXCEPT ALL SELECT contract_id FROM ticks WHERE hour = {h}",
        # aggregates and windows
        "SELECT contract_id, tick_type, count(*) AS n, min(timestamp), max(timestamp), round(sum(price), 4), "
        "count(DISTINCT symbol), max(bid_price) FROM ticks GROUP BY ALL",
        f"SELECT date, hour, tick_type, count(*) FROM ticks WHERE contract_id IN ({c}, {c2}) GROUP BY ALL",
        f"SELECT exchange, count(*) FROM ticks WHERE timestamp BETWEEN '{lit(t0)}' AND '{lit(t1)}' GROUP BY exchange "
        "HAVING count(*) > 1",
        "SELECT contract_id, timestamp, count(*) OVER (PARTITION BY contract_id, date) AS n FROM ticks "
        f"WHERE tick_type <> 'mid_point' QUALIFY n >= 1 AND hour = {h}",
        "SELECT timestamp, contract_id, count(*) AS same_us FROM ticks GROUP BY ALL HAVING count(*) > 1",
        "SELECT extra, conditions, symbol, exchange FROM ticks WHERE extra IS NOT NULL OR conditions IS NOT NULL",
        "SELECT count(*), count(price) FROM ticks WHERE contract_id = 999999 AND hour = 3",
    ]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(batches=lake_batches(), data=st.data())
def test_queries_match_raw_jsonl(batches: list[tuple[list[dict[str, Any]], bool]], data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory(prefix="ticklake-test-") as tmp:
        folder = Path(tmp)
        (folder / "input").mkdir()
        config = LakeConfig(root=folder / "lake", writer_id="test", threads=2)
        files = build_lake(config, batches, folder / "input")
        ref = reference(files)
        with ticklake.connect(config=config) as lake_con:
            total = sum(len(records) for records, _ in batches)
            assert lake_con.sql("SELECT count(*) FROM ticks").fetchone() == (total,)
            for sql in queries(data, ref):
                assert_same(lake_con, ref, sql)
        ref.close()


# --- fixed cases ------------------------------------------------------------------------------------


def test_identical_lines_are_two_ticks_and_late_duplicates_too(tmp_path: Path) -> None:
    """The same line twice in a file, and again in a late file, is three ticks."""
    config = LakeConfig(root=tmp_path / "lake", writer_id="test")
    line = {"timestamp": "2022-01-07T05:00:00.000001Z", "contract_id": 7, "tick_type": "last", "price": 1.5, "size": 100}
    batches = [([line, line, {**line, "price": 1.25}], True), ([line], True)]
    (tmp_path / "input").mkdir()
    files = build_lake(config, batches, tmp_path / "input")
    ref = reference(files)
    with ticklake.connect(config=config) as con:
        assert con.sql("SELECT price, count(*) FROM ticks GROUP BY price ORDER BY price").fetchall() == [(1.25, 1), (1.5, 3)]
        assert_same(con, ref, "SELECT * FROM ticks")
        assert_same(con, ref, "SELECT * FROM ticks WHERE timestamp = '2022-01-07 05:00:00.000001+00' AND contract_id = 7")


def test_eurusd_quotes_round_trip_exactly(tmp_path: Path) -> None:
    """Real EUR/USD quotes: JSONL -> ingest -> compact -> SQL gives back exactly `eurusd_ticks()`."""
    expected = eurusd_ticks()
    source = tmp_path / "eurusd.jsonl"
    source.write_bytes(to_jsonl(expected))
    config = LakeConfig(root=tmp_path / "lake", writer_id="test")
    report = ingest_files(config, [source])
    assert (report.appended, report.quarantined) == (expected.num_rows, 0)
    hours = compact_all(config)
    assert sum(h.stored for h in hours) == expected.num_rows
    keys = [("timestamp", "ascending"), ("bid_price", "ascending"), ("ask_price", "ascending")]
    expected = expected.take(pc.sort_indices(expected, keys))
    columns = ", ".join(f'"{name}"' for name in expected.column_names)
    with ticklake.connect(config=config) as con:
        got = con.sql(f"SELECT {columns} FROM ticks ORDER BY timestamp, bid_price, ask_price").arrow()
        if isinstance(got, pa.RecordBatchReader):
            got = got.read_all()
        assert got.num_rows == expected.num_rows
        for name in expected.column_names:
            assert got.column(name).to_pylist() == expected.column(name).to_pylist(), name
        # and per hour, through pruning
        per_hour = con.sql("SELECT hour, count(*) FROM ticks WHERE contract_id = 12087792 GROUP BY hour ORDER BY hour")
        counts = pc.value_counts(pc.hour(expected.column("timestamp"))).to_pylist()
        assert per_hour.fetchall() == sorted((c["values"], c["counts"]) for c in counts)


# --- snapshot pinning and late data -------------------------------------------------------------


def two_commits(config: LakeConfig, folder: Path, make_tick: Any, hour: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """First batch over `hour` and `hour + 1` (two commits), then late data for `hour` (one more)."""
    at = lambda minute, h=hour: f"2022-01-07T{h:02d}:{minute:02d}:00Z"  # noqa: E731
    first = [
        make_tick(at(10), 1, "last", price=10.0),
        make_tick(at(20), 2, "bid_ask"),
        make_tick(at(10, hour + 1), 1, "mid_point", price=11.0),
    ]
    late = [
        make_tick(at(30), 1, "last", price=12.0),
        make_tick(at(40), 3, "bid_ask", bid_price=None, ask_price=9.5),  # one-sided
    ]
    (folder / "input").mkdir()
    build_lake(config, [(first, True)], folder / "input")
    return first, late


def live_paths(con: ticklake.LakeConnection) -> set[str]:
    return {f.path for ref in con.plan("SELECT * FROM ticks").refs for f in ref.plan.files}


@pytest.mark.parametrize("hour", [5, 14])
def test_snapshot_pins_the_data_of_its_commit(tmp_path: Path, make_tick: Any, hour: int) -> None:
    """`connect(snapshot=N)` keeps answering with snapshot N's data after late data is committed."""
    config = LakeConfig(root=tmp_path / "lake", writer_id="test")
    _, late = two_commits(config, tmp_path, make_tick, hour)
    with ticklake.connect(config=config) as con:
        pinned_at = con.snapshot
        old_files = live_paths(con)
    assert pinned_at == 2  # one commit per hour
    pinned_early = ticklake.connect(config=config, snapshot=pinned_at)  # opened before the late commit
    following = ticklake.connect(config=config)  # unpinned, opened before: sees the late commit on its next query
    try:
        build_lake(config, [(late, True)], tmp_path / "input", first=1)
        ref_first = reference([tmp_path / "input" / "batch-0.jsonl"])
        ref_all = reference([tmp_path / "input" / "batch-0.jsonl", tmp_path / "input" / "batch-1.jsonl"])
        with ticklake.connect(config=config) as now, ticklake.connect(config=config, snapshot=pinned_at) as then:
            assert (now.snapshot, then.snapshot) == (3, pinned_at)
            plan = then.plan(f"SELECT * FROM ticks WHERE hour = {hour}")
            assert plan.refs[0].plan.snapshot == pinned_at
            assert {f.path for f in plan.refs[0].plan.files} <= old_files
            assert live_paths(then) == old_files
            assert all((config.root / path).is_file() for path in old_files)  # files of old snapshots are kept
            for sql in (
                "SELECT * FROM ticks",
                f"SELECT * FROM ticks WHERE hour = {hour} AND contract_id = 1",
                "SELECT * FROM ticks WHERE tick_type = 'bid_ask'",
                "SELECT tick_type, count(*) FROM ticks GROUP BY ALL",
            ):
                assert_same(then, ref_first, sql)
                assert_same(pinned_early, ref_first, sql)
                assert_same(now, ref_all, sql)
                assert_same(following, ref_all, sql)
        with ticklake.connect(config=config, snapshot=1) as first_commit:  # hours compact in parallel: either first
            assert first_commit.sql("SELECT hour, count(*) FROM ticks GROUP BY hour").fetchall() in ([(hour, 2)], [(hour + 1, 1)])
        ref_first.close()
        ref_all.close()
    finally:
        pinned_early.close()
        following.close()


@pytest.mark.parametrize("hour", [5, 14])  # 5: a one-digit hour, zero-padded in partition paths
def test_late_data_replaces_the_hour_files(tmp_path: Path, make_tick: Any, hour: int) -> None:
    """Compacting late data rewrites the hour: one live file per tick type, the old ones retired."""
    config = LakeConfig(root=tmp_path / "lake", writer_id="test")
    _, late = two_commits(config, tmp_path, make_tick, hour)
    with ticklake.connect(config=config) as con:
        old_files = live_paths(con)
    (report,) = [r for r in ingest_and_compact(config, tmp_path / "input", late)]
    assert (report.replaced_files, len(report.files), report.rows) == (2, 2, 4)
    with ticklake.connect(config=config) as con:
        now_files = live_paths(con)
        per_partition = con.sql(f"SELECT tick_type, count(*) FROM ticks WHERE hour = {hour} GROUP BY ALL ORDER BY ALL").fetchall()
    assert per_partition == [("bid_ask", 2), ("last", 2)]
    assert len(old_files - now_files) == 2 and len(now_files - old_files) == 2
    assert len(now_files) == 3  # last, bid_ask of `hour`; mid_point of `hour + 1`


def ingest_and_compact(config: LakeConfig, inputs: Path, records: list[dict[str, Any]]) -> list[Any]:
    path = write_batch(inputs, 1, records)
    assert ingest_files(config, [path]).appended == len(records)
    return compact_all(config)


@pytest.mark.parametrize("offset", [1, 50, -10])
def test_pinning_a_snapshot_that_does_not_exist_is_an_error(tmp_path: Path, make_tick: Any, offset: int) -> None:
    config = LakeConfig(root=tmp_path / "lake", writer_id="test")
    two_commits(config, tmp_path, make_tick, 14)
    with ticklake.connect(config=config) as con:
        missing = con.snapshot + offset if offset > 0 else offset
    with pytest.raises(NotFoundError, match=str(missing)):
        ticklake.connect(config=config, snapshot=missing).close()
