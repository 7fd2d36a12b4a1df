"""``python -m bench.interop --scale S``: the heavy queries through other engines, beside ticklake's own.

The workload is loaded into ticklake once; then each engine in `ENGINES` answers the queries it can
express over that one lake, and its medians are shown beside ticklake's (DuckDB in process, through
the catalog) as ratios:

* ``ticklake``: ``LakeConnection.sql``, as ``ticklake sql`` runs a query;
* ``dask``: `ticklake.to_dask` frames computed on a ``dask.distributed`` cluster of two worker
  processes on 127.0.0.1 (one thread each), the client planning through the catalog as ticklake does;
* ``iceberg_scan``: the same SQL in DuckDB over the lake published as an Iceberg table
  (`ticklake iceberg publish` to pyiceberg's SQL catalog), read with DuckDB's iceberg extension, as
  an engine on another machine would read it.

Every engine's rows are checked against ticklake's. An engine is a small class (`Engine`): another
reader of the same lake is one more entry in `ENGINES`.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import dask.dataframe as dd
import pandas as pd
from distributed import Client, LocalCluster

from bench.compare import canonical_rows
from bench.queries import Query, make_queries
from bench.report import write_results
from bench.systems.ticklake import TicklakeSystem
from bench.workload import SCALES, Workload, generate
from ticklake.config import LakeConfig
from ticklake.interop.dataframes import to_dask
from ticklake.query.connection import LakeConnection

QUERIES = ("Q1", "Q3", "Q5")
# Q5's columns, in its SELECT's order (the time column is the frame's index).
Q5_COLUMNS = ("contract_id", "tick_type", "price", "size", "bid_price", "ask_price", "bid_size", "ask_size", "symbol", "exchange")
Rows = list[tuple[Any, ...]]


class Engine:
    """One way to answer benchmark queries over a ticklake lake, opened once and asked many times."""

    name = "engine"
    description = ""

    def __init__(self, config: LakeConfig) -> None:
        self.config = config
        self.notes = ""  # what the report should say about this engine (e.g. its start-up time)

    def answers(self, q: Query) -> bool:
        """Whether this engine can express `q`."""
        raise NotImplementedError

    def run(self, q: Query) -> Rows:
        """All rows of `q`, as ``ticklake sql`` would give them (any order)."""
        raise NotImplementedError

    def close(self) -> None:
        """Let go of connections, clusters, processes."""


class SqlEngine(Engine):
    """An engine that runs the benchmark's SQL as it is on a connection (`con`) it opened."""

    con: Any

    def answers(self, q: Query) -> bool:
        """Every benchmark query is SQL (over ``ticks``)."""
        return True

    def run(self, q: Query) -> Rows:
        """The query's SQL."""
        return list(self.con.sql(q.sql).fetchall())

    def close(self) -> None:
        """Close the connection."""
        self.con.close()


class TicklakeEngine(SqlEngine):
    """ticklake's own SQL: catalog pruning, then DuckDB in this process."""

    name = "ticklake"
    description = "ticklake SQL: catalog-pruned DuckDB in process (LakeConnection.sql)"

    def __init__(self, config: LakeConfig) -> None:
        super().__init__(config)
        self.con = LakeConnection(config)


class DaskEngine(Engine):
    """`ticklake.to_dask` frames on a local ``dask.distributed`` cluster of two worker processes."""

    name = "dask"
    description = "ticklake.to_dask on dask.distributed: 2 local worker processes, 1 thread each"

    def __init__(self, config: LakeConfig) -> None:
        super().__init__(config)
        started = time.perf_counter()
        self.cluster = LocalCluster(n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1", dashboard_address=None)
        self.client = Client(self.cluster, set_as_default=False)
        self.notes = f"its cluster started in {time.perf_counter() - started:.1f} s, not counted"

    def answers(self, q: Query) -> bool:
        """The queries with a Dask expression in `DASK_QUERIES`."""
        return q.name in DASK_QUERIES

    def run(self, q: Query) -> Rows:
        """The query's Dask expression, planned here and computed on the cluster."""
        return DASK_QUERIES[q.name](self.config, q, self.client)

    def close(self) -> None:
        """Close the client, then the cluster (its workers stop)."""
        self.client.close()
        self.cluster.close()


class IcebergScanEngine(SqlEngine):
    """DuckDB's ``iceberg_scan`` of the lake published as an Iceberg table: pruning by Iceberg's
    manifests (partitions, column bounds) instead of ticklake's catalog and indexes."""

    name = "iceberg_scan"
    description = "DuckDB iceberg_scan of the published ticklake.ticks (pyiceberg SQL catalog)"

    def __init__(self, config: LakeConfig) -> None:
        super().__init__(config)
        from ticklake.interop.iceberg import publish
        from ticklake.query.duck import connect_duckdb, load_extension

        started = time.perf_counter()
        published = publish(config, f"sqlite:///{config.root.parent.absolute() / 'iceberg.db'}")
        self.notes = f"published in {time.perf_counter() - started:.1f} s, not counted"
        self.con = connect_duckdb()
        for extension in ("avro", "iceberg"):
            load_extension(self.con, extension)
        location = published.tables[0].metadata_location.replace("'", "''")
        self.con.execute(f"CREATE VIEW ticks AS SELECT * FROM iceberg_scan('{location}')")


ENGINES: tuple[type[Engine], ...] = (TicklakeEngine, DaskEngine, IcebergScanEngine)
"""The engines compared, the first one the reference for rows and ratios."""


# -- the benchmark queries as Dask expressions ------------------------------------------------------


def python_rows(frame: pd.DataFrame) -> Rows:
    """A computed frame's rows as Python values, as DuckDB's ``fetchall`` gives them (None for a null)."""
    out = []
    for row in frame.itertuples(index=False):
        out.append(tuple(_python(v) for v in row))
    return out


def _python(value: Any) -> Any:
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value.item() if hasattr(value, "item") else value


def _day(q: Query) -> list[tuple[str, str, Any]]:
    return [("timestamp", ">=", q.params["from"]), ("timestamp", "<", q.params["to"])]


def dask_q1(config: LakeConfig, q: Query, client: Client) -> Rows:
    """Q1, the full scan: count and sum of size."""
    size = to_dask("ticks", ["size"], config=config)["size"]
    n, volume = client.compute([size.size, size.sum()], sync=True)
    return [(_python(n), _python(volume))]


def dask_q2(config: LakeConfig, q: Query, client: Client) -> Rows:
    """Q2, one hour of every contract: count and average price."""
    price = to_dask("ticks", ["price"], _day(q), config=config)["price"]
    n, mean = client.compute([price.size, price.mean()], sync=True)
    return [(_python(n), _python(mean))]


def minute_sums(part: pd.DataFrame) -> pd.DataFrame:
    """One partition's trades as (contract, minute) rows to sum: one trade, its size, price times size."""
    return pd.DataFrame(
        {
            "contract_id": part["contract_id"].to_numpy(),
            "minute": part.index.floor("min"),
            "trades": 1,
            "volume": part["size"].to_numpy(),
            "pv": (part["price"] * part["size"]).to_numpy(),
        }
    )


def dask_q3(config: LakeConfig, q: Query, client: Client) -> Rows:
    """Q3, 1-minute VWAP bars of one day's trades: a groupby over (contract, minute)."""
    trades = to_dask("ticks", ["contract_id", "price", "size"], [("tick_type", "=", "last"), *_day(q)], config=config)
    sums = trades.map_partitions(minute_sums, meta=minute_sums(trades._meta)).groupby(["contract_id", "minute"]).sum()
    bars = client.compute(sums, sync=True).reset_index()
    bars["vwap"] = bars["pv"] / bars["volume"]
    return python_rows(bars[["contract_id", "minute", "trades", "volume", "vwap"]])


def mean_per_time(part: pd.DataFrame) -> pd.DataFrame:
    """One partition's prices averaged per time (partitions are disjoint in time: so is the result)."""
    return part.groupby(level=0).mean()


def dask_q4(config: LakeConfig, q: Query, client: Client) -> Rows:
    """Q4, one contract's trades as of the other's latest price: ``merge_asof`` over known divisions."""

    def trades(contract: Any) -> dd.DataFrame:
        return to_dask("ticks", ["price"], [("contract_id", "=", contract), ("tick_type", "=", "last"), *_day(q)], config=config)

    other = trades(q.params["b"]).map_partitions(mean_per_time)
    joined = dd.merge_asof(trades(q.params["a"]), other, left_index=True, right_index=True, suffixes=("", "_b"))
    n, total = client.compute([joined["price_b"].count(), joined["price_b"].sum()], sync=True)
    return [(_python(n), _python(total) if n else None)]


def dask_q5(config: LakeConfig, q: Query, client: Client) -> Rows:
    """Q5, every tick of one contract on one day: pruned to the files that hold it, then filtered."""
    ticks = to_dask("ticks", list(Q5_COLUMNS), [("contract_id", "=", q.params["contract"]), *_day(q)], config=config)
    rows = client.compute(ticks, sync=True).reset_index()
    return python_rows(rows.sort_values(list(rows.columns), kind="stable"))


DASK_QUERIES: dict[str, Callable[[LakeConfig, Query, Client], Rows]] = {
    "Q1": dask_q1,
    "Q2": dask_q2,
    "Q3": dask_q3,
    "Q4": dask_q4,
    "Q5": dask_q5,
}
"""The benchmark queries Dask expresses, each giving the rows of the query's SQL."""


# -- measuring ---------------------------------------------------------------------------------------


def measure(engine: Engine, qs: list[Query], repeat: int) -> dict[str, dict[str, Any]]:
    """Per query the engine answers: the rows of a first (warm-up) run and the median of `repeat` more."""
    out: dict[str, dict[str, Any]] = {}
    for q in qs:
        if not engine.answers(q):
            continue
        rows = engine.run(q)
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            engine.run(q)
            times.append(time.perf_counter() - started)
        out[q.name] = {"median_seconds": statistics.median(times), "rows": canonical_rows(rows)}
    return out


def run(workload: Workload, work: Path, repeat: int, queries: Iterable[str] = QUERIES) -> dict[str, Any]:
    """Load `workload` into ticklake below `work`, then measure every engine on `queries`: the figures as a dict."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    lake = TicklakeSystem(work / "ticklake")
    lake.load(workload.files)
    names = list(queries)
    qs = [q for q in make_queries(workload.facts) if q.name in names]
    engines: dict[str, dict[str, Any]] = {}
    for kind in ENGINES:
        engine = kind(lake.config)
        try:
            figures = measure(engine, qs, repeat)
        finally:
            engine.close()
        engines[engine.name] = {"description": engine.description, "notes": engine.notes, "queries": figures}
    reference = {name: f["rows"] for name, f in engines[ENGINES[0].name]["queries"].items()}
    for figures in engines.values():
        for name, f in figures["queries"].items():
            f["identical"] = f.pop("rows") == reference[name]
    base = engines[ENGINES[0].name]["queries"]
    for figures in engines.values():
        for name, f in figures["queries"].items():
            f["ratio"] = f["median_seconds"] / base[name]["median_seconds"]
    return {
        "scale": workload.scale.name,
        "ticks": workload.ticks,
        "repeat": repeat,
        "queries": {q.name: q.title for q in qs},
        "rows": {name: len(rows) for name, rows in reference.items()},
        "engines": engines,
    }


def markdown(payload: dict[str, Any]) -> str:
    """One row per query: each engine's median ms and its ratio to ticklake's."""
    engines = payload["engines"]
    first, *others = engines
    head = f"| query | {first} ms |" + "".join(f" {n} ms | {n} / {first} |" for n in others)
    lines = [
        f"### Other engines over the lake: scale {payload['scale']}, {payload['ticks']:,} ticks",
        "",
        f"Median of {payload['repeat']} runs after a warm-up run. "
        + "; ".join(f"`{n}`: {e['description']}" + (f" ({e['notes']})" if e["notes"] else "") for n, e in engines.items())
        + ".",
        "",
        head,
        "|---|---:|" + "---:|---:|" * len(others),
    ]
    for name, title in payload["queries"].items():
        cells = [f"{name} {title}", f"{engines[first]['queries'][name]['median_seconds'] * 1000:.1f}"]
        for n in others:
            f = engines[n]["queries"].get(name)
            if f is None:
                cells += ["—", "—"]
            else:
                same = "" if f["identical"] else " (rows differ)"
                cells += [f"{f['median_seconds'] * 1000:.1f}{same}", f"{f['ratio']:.1f}×"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def identical(payload: dict[str, Any]) -> bool:
    """Whether every engine gave ticklake's rows for every query it answered."""
    return all(f["identical"] for e in payload["engines"].values() for f in e["queries"].values())


def main(argv: Iterable[str] | None = None) -> int:
    """The command line; exit status 1 when an engine's rows differ from ticklake's."""
    parser = argparse.ArgumentParser(prog="python -m bench.interop", description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="S", help="Data size (XS is a smoke test).")
    parser.add_argument("--data", type=Path, default=Path("bench-data"), help="Where generated JSONL is kept.")
    parser.add_argument("--work", type=Path, default=Path("bench-results") / "interop", help="Where the lake goes.")
    parser.add_argument("--out", type=Path, help="Markdown file for the results, a .json beside it (default: stdout only).")
    parser.add_argument("--repeat", type=int, default=5, help="Timed runs per engine and query (the median is reported).")
    parser.add_argument(
        "--queries", default=",".join(QUERIES), help=f"Comma-separated queries (Dask expresses {', '.join(DASK_QUERIES)})."
    )
    args = parser.parse_args(None if argv is None else list(argv))
    scale = SCALES[args.scale]
    print(f"generating or reusing {scale.name}: {scale.ticks:,} ticks over {scale.days} days", file=sys.stderr)
    workload = generate(scale, args.data)
    payload = run(workload, args.work / scale.name, args.repeat, args.queries.split(","))
    text = markdown(payload)
    print(text)
    if args.out:
        write_results(args.out, text, payload)
    return 0 if identical(payload) else 1


if __name__ == "__main__":
    sys.exit(main())
