"""`ticklake.to_dask` on a ``dask.distributed`` cluster of two worker processes: the benchmark queries
Dask expresses answer exactly what `ticklake sql` answers, over a lake with an archived (cold, on a
real S3 server) day, late ticks compacted beside it, warm days and rolled-up bars; partitions are the
pruned files, divisions are known and true, merge_asof matches DuckDB's ASOF JOIN, and bad requests
are one-line errors."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cloudpickle
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from distributed import Client, LocalCluster

import ticklake
from bench.compare import canonical_rows
from bench.interop import DASK_QUERIES, python_rows
from bench.queries import Query, make_queries
from bench.workload import Scale, Workload, generate
from tests.conftest import jsonl, tick
from tests.objectstore import S3Server
from ticklake.access import open_catalog
from ticklake.build.archive import archive_lake
from ticklake.build.compaction import compact_all
from ticklake.build.rollups import build_bars_1m
from ticklake.catalog import prune_files
from ticklake.config import LakeConfig
from ticklake.datasets import ARCHIVE_SCHEMAS, create_catalog
from ticklake.errors import NotFoundError, QueryError, StorageError
from ticklake.interop.dataframes import plan_dask, to_dask
from ticklake.interop.filters import parse_filters
from ticklake.landing.ingest import ingest_files
from ticklake.query.connection import connect
from ticklake.storage.layout import parse_hour
from ticklake.storage.tiers import tier_of

SCALE = Scale("dask", 12_000, 3, 40)  # three days: two archived, one warm


@dataclass(frozen=True)
class Lake:
    """The lake under test: its config, workload, benchmark queries and the snapshot before the late ticks."""

    config: LakeConfig
    workload: Workload
    queries: dict[str, Query]
    before_late: int
    days: list[str]
    late_hour: str  # the archived day's hour that late ticks were compacted into, beside the day's objects
    bars_hour: str

    def day(self, i: int) -> list[tuple[str, str, Any]]:
        start = dt.datetime.fromisoformat(self.days[i]).replace(tzinfo=dt.UTC)
        return [("timestamp", ">=", start), ("timestamp", "<", start + dt.timedelta(days=1))]


def _late_ticks(day: str, contracts: list[int]) -> list[dict[str, object]]:
    """Trades and quotes for 15:10-15:11 of `day`, after the day was archived."""
    out: list[dict[str, object]] = []
    for i, contract in enumerate(contracts):
        out.append(tick(f"{day}T15:10:{i:02d}.000007Z", contract, "last", price=50.0 + i, size=i + 1, symbol="LATE"))
        out.append(tick(f"{day}T15:11:{i:02d}.000003Z", contract, "bid_ask", bid_price=49.5, ask_price=50.5))
    return out


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory, s3_server: S3Server) -> Lake:
    folder = tmp_path_factory.mktemp("dask")
    workload = generate(SCALE, folder / "data")
    days = list(workload.facts["days"])  # type: ignore[call-overload]
    prefix = f"s3://{s3_server.bucket}/dask-{uuid.uuid4().hex[:8]}"
    config = LakeConfig(root=folder / "lake", writer_id="test", cold_uri=prefix, cache_dir=str(folder / "cache"))
    queries = {q.name: q for q in make_queries(workload.facts)}
    with pytest.MonkeyPatch.context() as mp:
        for k, v in s3_server.env().items():
            mp.setenv(k, v)
        ingest_files(config, workload.files)
        compact_all(config)
        end_of_second_day = dt.datetime.fromisoformat(days[2]).replace(tzinfo=dt.UTC).timestamp()
        assert len(archive_lake(config, 0, to=prefix, now=end_of_second_day).days) == 2 * 3
        with open_catalog(config) as catalog:
            before_late = catalog.current_snapshot()
        late = folder / "late.jsonl"
        rare = int(queries["Q5"].params["contract"])  # type: ignore[call-overload]
        late.write_bytes(jsonl(_late_ticks(days[1], [rare, *workload.facts["busy"]])))  # type: ignore[misc]
        ingest_files(config, [late])
        compact_all(config)
        bars_hour = f"{days[2]}T15"
        build_bars_1m(config, parse_hour(bars_hour))
    return Lake(config, workload, queries, before_late, days, f"{days[1]}T15", bars_hour)


@pytest.fixture(scope="module")
def client(s3_server: S3Server) -> Iterator[Client]:
    """Two worker processes on 127.0.0.1, one thread each, whose environment reaches the S3 server."""
    with (
        LocalCluster(
            n_workers=2,
            processes=True,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address=None,
            env=s3_server.env(),
        ) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        yield client


@pytest.fixture(autouse=True)
def aws(s3_env: S3Server) -> S3Server:
    """This process reaches the S3 server too (ticklake sql reads the archived day)."""
    return s3_env


def sql(lake: Lake, query: str, **options: Any) -> list[tuple[Any, ...]]:
    with connect(config=lake.config, **options) as con:
        return con.sql(query).fetchall()


def sql_columns(lake: Lake, table: str) -> list[str]:
    with connect(config=lake.config, fresh=False) as con:
        return [c[0] for c in con.sql(f"SELECT * FROM {table} LIMIT 0").description]


@pytest.mark.parametrize("name", sorted(DASK_QUERIES))
def test_benchmark_queries_equal_ticklake_sql(lake: Lake, client: Client, name: str) -> None:
    q = lake.queries[name]
    answer = DASK_QUERIES[name](lake.config, q, client)
    assert answer and canonical_rows(answer) == canonical_rows(sql(lake, q.sql))
    if name in ("Q3", "Q5"):  # their day is the archived one, with late ticks beside it
        files = plan_dask("ticks", filters=lake.day(1), config=lake.config).files
        assert {tier_of(f.path) for f in files} == {"cold", "warm"}


def quote_per_time(part: pd.DataFrame) -> pd.DataFrame:
    """One partition's quotes averaged per contract and time (a contract may quote twice in a microsecond),
    in time order; partitions are disjoint in time, so the averages are the whole frame's."""
    return part.groupby([part.index, "contract_id"]).mean().reset_index(level="contract_id")


def test_merge_asof_of_trades_and_quotes_equals_duckdb_asof_join(lake: Lake, client: Client) -> None:
    day = lake.day(1)
    trades = to_dask("ticks", ["contract_id", "price", "size"], [("tick_type", "=", "last"), *day], config=lake.config)
    quotes = to_dask(
        "ticks", ["contract_id", "bid_price", "ask_price"], [("tick_type", "==", "bid_ask"), *day], config=lake.config
    )
    quotes = quotes.map_partitions(quote_per_time, meta=quote_per_time(quotes._meta))
    joined = dd.merge_asof(trades, quotes, left_index=True, right_index=True, by="contract_id")
    got = client.compute(joined, sync=True).reset_index()
    lo, hi = (v.isoformat() for _, _, v in day)
    where = f"timestamp >= TIMESTAMPTZ '{lo}' AND timestamp < TIMESTAMPTZ '{hi}'"
    expected = sql(
        lake,
        "SELECT t.timestamp, t.contract_id, t.price, t.size, q.bid_price, q.ask_price"
        f" FROM (SELECT * FROM ticks WHERE tick_type = 'last' AND {where}) t"
        " ASOF LEFT JOIN (SELECT timestamp, contract_id, avg(bid_price) AS bid_price, avg(ask_price) AS ask_price"
        f"  FROM ticks WHERE tick_type = 'bid_ask' AND {where} GROUP BY ALL) q"
        " ON t.contract_id = q.contract_id AND t.timestamp >= q.timestamp",
    )
    assert len(got) == len(expected) > 100 and got["bid_price"].notna().sum() > 100
    assert canonical_rows(python_rows(got)) == canonical_rows(expected)


def _bounds(part: pd.DataFrame) -> pd.DataFrame:
    """Rows and time range of one partition, and whether its times are sorted."""
    return pd.DataFrame(
        {
            "rows": [len(part)],
            "low": [part.index.min()],
            "high": [part.index.max()],
            "sorted": [part.index.is_monotonic_increasing],
        }
    )


def _partition_bounds(frame: dd.DataFrame, client: Client) -> pd.DataFrame:
    meta = pd.DataFrame({"rows": pd.Series(dtype="int64"), "low": frame.index._meta[:0], "high": frame.index._meta[:0]})
    meta["sorted"] = pd.Series(dtype="bool")
    return client.compute(frame.map_partitions(_bounds, meta=meta), sync=True).reset_index(drop=True)


def test_partitions_are_the_pruned_files_in_time_order(lake: Lake, client: Client) -> None:
    filters = [("tick_type", "=", "last"), ("date", "=", dt.date.fromisoformat(lake.days[2]))]
    plan = plan_dask("ticks", ["price"], filters, config=lake.config)
    with open_catalog(lake.config) as catalog:
        dataset = catalog.dataset("ticks")
        assert dataset is not None
        pruned = prune_files(catalog, dataset, parse_filters(filters, ARCHIVE_SCHEMAS["ticks"], "timestamp")).files
    assert [f.path for f in plan.files] == [f.path for f in pruned] and len(pruned) == 7  # 14:30-21:00: 7 hours
    assert [len(p) for p in plan.partitions] == [1] * 7 and {f.path for p in plan.partitions for f in p} == {
        f.path for f in pruned
    }
    frame = to_dask("ticks", ["price"], filters, config=lake.config)
    assert frame.npartitions == 7 and frame.known_divisions and frame.divisions == plan.divisions
    assert list(frame.divisions) == sorted(set(frame.divisions))
    bounds = _partition_bounds(frame, client)
    assert bounds["rows"].tolist() == [p[0].rows for p in plan.partitions]  # each partition is its file, whole
    assert_divisions_hold(bounds, frame.divisions)


def assert_divisions_hold(bounds: pd.DataFrame, divisions: tuple[Any, ...]) -> None:
    """Partition i holds times in [divisions[i], divisions[i + 1]), the last one's end included, sorted."""
    filled = bounds[bounds["rows"] > 0]
    assert filled["sorted"].all()
    for i, row in filled.iterrows():
        assert divisions[i] <= row["low"] and (
            row["high"] < divisions[i + 1] or (i == len(bounds) - 1 and row["high"] == divisions[-1])
        )


def test_overlapping_files_share_a_partition_and_divisions_stay_true(lake: Lake, client: Client) -> None:
    plan = plan_dask("ticks", ["contract_id"], config=lake.config)
    frame = to_dask("ticks", ["contract_id"], config=lake.config)
    archived_day = [p for p in plan.partitions if any(tier_of(f.path) == "cold" and lake.days[1] in f.path for f in p)]
    assert len(archived_day) == 1  # three objects (one per tick type) and the late hour's two files
    assert {tier_of(f.path) for f in archived_day[0]} == {"cold", "warm"} and len(archived_day[0]) == 3 + 2
    assert sorted(f.path for p in plan.partitions for f in p) == sorted(f.path for f in plan.files)
    assert frame.npartitions == len(plan.partitions) == 2 + 7  # two archived days, seven warm hours
    bounds = _partition_bounds(frame, client)
    assert bounds["rows"].tolist() == [sum(f.rows for f in p) for p in plan.partitions]
    assert bounds["rows"].sum() == sql(lake, "SELECT count(*) FROM ticks")[0][0]
    assert_divisions_hold(bounds, frame.divisions)


def test_a_computed_frame_has_its_meta_and_runs_on_the_workers(lake: Lake, client: Client) -> None:
    frame = to_dask("ticks", filters=[("contract_id", "in", lake.workload.facts["busy"])], config=lake.config)
    got = client.compute(frame, sync=True)
    assert got.dtypes.to_dict() == frame.dtypes.to_dict() and got.index.dtype == frame.index.dtype == "datetime64[us, UTC]"
    assert got.index.name == "timestamp" and "timestamp" not in got.columns and got.index.is_monotonic_increasing
    assert frame.dtypes["tick_type"] == "string" and str(frame.dtypes["date"]) == "date32[day][pyarrow]"
    workers = set(client.run(os.getpid).values())
    ran = client.compute(frame.map_partitions(lambda p: pd.Series([os.getpid()]), meta=pd.Series(dtype="int64")), sync=True)
    assert set(ran) <= workers and len(workers) == 2 and os.getpid() not in workers


def test_a_pinned_snapshot_reads_the_lake_before_the_late_ticks(lake: Lake, client: Client) -> None:
    count = "SELECT count(*), sum(size) FROM ticks"
    for snapshot in (lake.before_late, None):
        frame = to_dask("ticks", ["size"], config=lake.config, snapshot=snapshot)
        n, volume = client.compute([frame["size"].size, frame["size"].sum()], sync=True)
        assert canonical_rows([(int(n), float(volume))]) == canonical_rows(sql(lake, count, snapshot=snapshot, fresh=False))
    assert plan_dask(config=lake.config, snapshot=lake.before_late).snapshot == lake.before_late
    with open_catalog(lake.config) as catalog:
        newest = catalog.current_snapshot()
    assert plan_dask(config=lake.config, as_of="2100-01-01").snapshot == newest
    with pytest.raises(NotFoundError, match="no snapshot as of 2000-01-01T00:00:00"):
        to_dask(config=lake.config, as_of=dt.date(2000, 1, 1))
    assert ticklake.to_dask is to_dask


def test_bars_are_read_as_rolled_up(lake: Lake, client: Client) -> None:
    bars = to_dask("bars_1m", config=lake.config)
    assert bars.index.name == "minute" and bars.npartitions == 1
    got = client.compute(bars, sync=True).reset_index()
    expected = sql(lake, "SELECT * FROM bars_1m", fresh=False)
    assert list(got.columns) == list(sql_columns(lake, "bars_1m"))
    assert len(expected) > 10 and canonical_rows(python_rows(got)) == canonical_rows(expected)


def test_times_naive_text_dates_and_offsets_mean_the_same_instant(lake: Lake, client: Client) -> None:
    day = dt.date.fromisoformat(lake.days[2])
    start = dt.datetime.combine(day, dt.time(15))
    forms = [
        start,  # naive: UTC
        start.replace(tzinfo=dt.UTC),
        start.replace(tzinfo=dt.timezone(dt.timedelta(hours=-5))) - dt.timedelta(hours=5),
        f"{day}T15:00:00Z",
        f"{day} 15:00",
        pd.Timestamp(start),
        np.datetime64(start),
    ]
    expected = sql(lake, f"SELECT count(*) FROM ticks WHERE timestamp >= '{day} 15:00' AND timestamp < '{day} 16:00'")[0][0]
    files = None
    for form in forms:
        plan = plan_dask(
            "ticks", [], [("timestamp", ">=", form), ("timestamp", "<", start + dt.timedelta(hours=1))], config=lake.config
        )
        files = files or [f.path for f in plan.files]
        assert [f.path for f in plan.files] == files and len(files) == 3, form  # the hour's three tick types
    frame = to_dask("ticks", [], [("timestamp", ">=", forms[3]), ("timestamp", "<", f"{day}T16:00:00+00:00")], config=lake.config)
    assert client.compute(frame.index.size, sync=True) == expected > 0
    dates = plan_dask("ticks", [], [("timestamp", ">=", day), ("timestamp", "<", day + dt.timedelta(days=1))], config=lake.config)
    assert len(dates.files) == 3 * 7


@pytest.mark.parametrize(
    "filters",
    [
        [("contract_id", "=", -1)],
        [("contract_id", "in", [])],
        [("timestamp", "=", pd.Timestamp("2022-01-04T15:00:00.0000005Z"))],  # between two microseconds
        [("symbol", "=", "NO SUCH SYMBOL")],
        [("timestamp", ">=", "2030-01-01")],
    ],
)
def test_a_filter_that_rules_out_every_file_gives_an_empty_frame(lake: Lake, client: Client, filters: list[Any]) -> None:
    frame = to_dask("ticks", ["price", "symbol", "date"], filters, config=lake.config)
    assert frame.npartitions == 1 and frame.known_divisions
    got = client.compute(frame, sync=True)
    assert got.empty and list(got.columns) == ["price", "symbol", "date"] and got.dtypes.to_dict() == frame.dtypes.to_dict()


def test_an_empty_lake_is_an_empty_frame_and_a_missing_one_an_error(tmp_path: Path) -> None:
    config = LakeConfig(root=tmp_path / "lake", writer_id="test")
    with pytest.raises(NotFoundError, match="no lake at .*lake"):
        to_dask(config=config)
    config.root.mkdir()
    with pytest.raises(NotFoundError, match=r"no catalog\.sqlite \(nothing compacted yet\?\)"):
        to_dask(config=config)
    create_catalog(config)
    frame = to_dask("bars_1m", config=config)
    assert frame.npartitions == 1 and frame.compute(scheduler="sync").empty and frame.index.name == "minute"


def test_a_file_gone_since_planning_is_a_storage_error_naming_it(config: LakeConfig, tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(jsonl([tick(f"2022-01-07T05:0{m}:00Z", 11, "last") for m in range(3)]))
    ingest_files(config, [source])
    compact_all(config)
    frame = to_dask(config=config)
    assert len(frame.compute(scheduler="sync")) == 3
    (path,) = (config.root / "lake/ticks").rglob("*.parquet")
    path.unlink()
    with pytest.raises(StorageError, match=r"\.parquet: data file missing \(vacuumed since the frame was planned\?\)$"):
        frame.compute(scheduler="sync")


@pytest.mark.parametrize(
    ("table", "columns", "filters", "error", "message"),
    [
        ("quotes", None, None, NotFoundError, "no dataset 'quotes' (datasets: ticks, bars_1m)"),
        ("ticks", ["price", "nope"], None, QueryError, "ticks has no column 'nope' (columns: timestamp, contract_id, "),
        ("ticks", "price", None, QueryError, "columns 'price': expected a list of column names"),
        ("ticks", None, [("nope", "=", 1)], QueryError, "filter ('nope', '=', 1): no column 'nope' (columns: timestamp, "),
        ("ticks", None, [("price", "~", 1)], QueryError, "filter ('price', '~', 1): unknown operator '~' (use =, ==, !="),
        ("ticks", None, [("price", "in", 1)], QueryError, "filter ('price', 'in', 1): 'in' takes a list, tuple or set of values"),
        (
            "ticks",
            None,
            [("price", "=", [1])],
            QueryError,
            "filter ('price', '=', [1]): '=' takes one value (for several, use in)",
        ),
        (
            "ticks",
            None,
            [("contract_id", "=", "5")],
            QueryError,
            "filter ('contract_id', '=', '5'): expected an integer, got '5'",
        ),
        ("ticks", None, [("contract_id", "=", 2**64)], QueryError, "is out of range of a 64-bit integer"),
        ("ticks", None, [("symbol", "=", None)], QueryError, "filter ('symbol', '=', None): a null matches no row"),
        ("ticks", None, [("timestamp", ">=", 5)], QueryError, "expected a datetime, a date or ISO-8601 text, got 5"),
        ("ticks", None, [("timestamp", ">=", "yesterday")], QueryError, "expected ISO-8601 text such as 2022-01-07T05:00:00Z"),
        ("ticks", None, [("date", "=", "07/01/2022")], QueryError, "filter ('date', '=', '07/01/2022'): Invalid isoformat"),
        ("ticks", None, [("conditions", "=", "T")], QueryError, "conditions is a list column; filter its rows after reading"),
        ("ticks", None, ("price", ">", 1), QueryError, "(put one filter in a list)"),
        ("ticks", None, [[("price", ">", 1)], [("price", "<", 0)]], QueryError, "a list of lists, OR, is not supported"),
        ("ticks", None, [("price", ">")], QueryError, "filter ('price', '>'): expected (column, op, value)"),
    ],
)
def test_bad_requests_are_one_line_errors(lake: Lake, table: str, columns: Any, filters: Any, error: type, message: str) -> None:
    with pytest.raises(error) as caught:
        to_dask(table, columns, filters, config=lake.config)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_the_task_graph_holds_no_credential(lake: Lake, s3_server: S3Server) -> None:
    frame = to_dask("ticks", ["price"], lake.day(0), config=lake.config)
    graph = dict(frame.__dask_graph__())
    shipped = cloudpickle.dumps(graph) + repr(graph).encode()
    assert b"s3://" in shipped  # it reads objects, named by their URIs
    for secret in (*s3_server.writer, *s3_server.reader):
        assert secret.encode() not in shipped


def test_a_remote_lake_reads_its_objects_and_says_what_it_leaves_out(lake: Lake, client: Client, tmp_path: Path) -> None:
    assert lake.config.cold_uri
    remote = LakeConfig(root=lake.config.cold_uri, cache_dir=str(tmp_path / "cache"))
    with pytest.warns(UserWarning, match=r"files \([\d,]+ rows\) of the writer's local tier are not in the bucket"):
        frame = to_dask("ticks", ["size"], config=remote)
    n = client.compute(frame["size"].size, sync=True)
    with connect(config=remote) as con:
        assert n == con.sql("SELECT count(*) FROM ticks").fetchall()[0][0] > 0
    assert n == sum(f.rows for f in plan_dask(config=lake.config).files if tier_of(f.path) == "cold")
    assert all(tier_of(f.path) == "cold" for f in plan_dask(config=remote).files)
