"""Scale L: how planning grows with the lake, up to a catalog of more than 100,000 files.

``python -m bench.scale_l --files 100000`` builds a planning lake: hourly partitions (three tick
types each) going back as many hours as needed, every file a hard link to one of three small
Parquet files (so disk and build time stay small), registered in a real ticklake catalog with the
statistics, inverted index and Bloom filters compaction would write. Row contents are the same
in every file, so only planning is measured: ticklake's catalog planning and DuckDB's planning
over a glob of the same tree (`EXPLAIN`), at several lake sizes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow as pa

from ticklake.access import open_catalog
from ticklake.catalog import Commit
from ticklake.config import LakeConfig
from ticklake.datasets import TICKS
from ticklake.query.connection import LakeConnection
from ticklake.query.duck import connect_duckdb
from ticklake.query.quoting import quote_literal
from ticklake.storage.layout import HOUR_US, hour_key, hour_partition, partition_path
from ticklake.storage.parquet import describe_file, write_data_file
from ticklake.ticks import FILE_SCHEMA, TICK_TYPES

CONTRACTS = [100_000 + 7 * i for i in range(50)]
LAST_HOUR = 455_981  # 2022-01-07T05


def _template(tick_type: str) -> pa.Table:
    n = len(CONTRACTS)
    price = [100.0 + i for i in range(n)]
    columns: dict[str, Any] = {
        "timestamp": pa.array([i * 1_000_000 for i in range(n)], pa.int64()).cast(FILE_SCHEMA.field("timestamp").type),
        "contract_id": pa.array(CONTRACTS, pa.int64()),
        "price": pa.array(price if tick_type != "bid_ask" else [None] * n, pa.float64()),
        "size": pa.array([100.0] * n if tick_type == "last" else [None] * n, pa.float64()),
        "bid_price": pa.array(price if tick_type == "bid_ask" else [None] * n, pa.float64()),
        "ask_price": pa.array([p + 0.01 for p in price] if tick_type == "bid_ask" else [None] * n, pa.float64()),
        "bid_size": pa.array([None] * n, pa.float64()),
        "ask_size": pa.array([None] * n, pa.float64()),
        "symbol": pa.array([f"S{c}" for c in CONTRACTS]),
        "exchange": pa.array(["NYSE"] * n),
        "conditions": pa.array([None] * n, pa.list_(pa.string())),
        "extra": pa.array([None] * n, pa.string()),
    }
    return pa.table(columns, schema=FILE_SCHEMA)


def build(root: Path, files: int) -> int:
    """A planning lake with at least `files` files (whole hours of three tick types); return the count."""
    shutil.rmtree(root, ignore_errors=True)
    config = LakeConfig(root=root)
    catalog = open_catalog(config, create=True)
    dataset = catalog.ensure_dataset(TICKS)
    templates = {}
    for tick_type in TICK_TYPES:
        rel = f"_templates/{tick_type}.parquet"
        table = _template(tick_type)
        size = write_data_file(root / rel, table, config, table.schema)
        templates[tick_type] = (
            table,
            size,
            describe_file(TICKS, rel, {"tick_type": tick_type, "date": "x", "hour": 0}, table, size, config),
        )
    hours = -(-files // len(TICK_TYPES))
    first = LAST_HOUR - hours + 1
    batch: list[Any] = []
    for hour in range(first, LAST_HOUR + 1):
        for tick_type, (_, _, model) in templates.items():
            partition = {"tick_type": tick_type, **hour_partition(hour)}
            rel = f"{TICKS.location}/{partition_path(partition)}/f.parquet"
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            os.link(root / f"_templates/{tick_type}.parquet", root / rel)
            shift = hour * HOUR_US
            batch.append(
                type(model)(
                    rel,
                    partition_path(partition),
                    partition,
                    model.rows,
                    model.bytes,
                    shift + model.ts_min,
                    shift + model.ts_max,
                    model.stats,
                    model.values,
                    model.blooms,
                )  # fmt: skip
            )
        if len(batch) >= 3000 or hour == LAST_HOUR:
            catalog.commit(Commit(dataset.dataset_id, "compact", add_files=tuple(batch)))
            batch = []
    catalog.close()
    return hours * len(TICK_TYPES)


def queries() -> dict[str, str]:
    """Selective queries whose planning should not grow with the lake."""
    hour = hour_key(LAST_HOUR - 30).replace("T", " ")
    day = hour[:10]
    return {
        "one hour": f"SELECT count(*) FROM ticks WHERE timestamp >= TIMESTAMPTZ '{hour}:00:00+00:00'"
        f" AND timestamp < TIMESTAMPTZ '{hour}:00:00+00:00' + INTERVAL 1 HOUR",
        "contract, day": f"SELECT * FROM ticks WHERE contract_id = {CONTRACTS[3]}"
        f" AND timestamp >= TIMESTAMPTZ '{day} 00:00:00+00:00' AND timestamp < TIMESTAMPTZ '{day} 23:59:59+00:00'",
        "absent contract": f"SELECT count(*) > 0 FROM ticks WHERE contract_id = 5 AND date = DATE '{day}'",
    }


def measure(root: Path, repeat: int = 5) -> dict[str, Any]:
    """Median planning ms per query for ticklake (warm connection) and DuckDB over the glob."""
    out: dict[str, Any] = {"ticklake": {}, "duckdb-glob": {}}
    with LakeConnection(LakeConfig(root=root)) as lake:
        for name, sql in queries().items():
            times = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                plan = lake.plan(sql)
                times.append(time.perf_counter() - t0)
            out["ticklake"][name] = {"ms": statistics.median(times) * 1000, "files": sum(len(r.plan.files) for r in plan.refs)}
    con = connect_duckdb()
    glob = quote_literal(str(root / TICKS.location / "**" / "*.parquet"))
    con.execute(
        f"CREATE VIEW ticks AS SELECT * FROM read_parquet({glob}, hive_partitioning = true,"
        " hive_types = {'date': DATE, 'hour': INTEGER})"
    )
    for name, sql in queries().items():
        times = []
        for _ in range(max(1, repeat // 2)):
            t0 = time.perf_counter()
            con.execute("EXPLAIN " + sql).fetchall()
            times.append(time.perf_counter() - t0)
        out["duckdb-glob"][name] = {"ms": statistics.median(times) * 1000}
    con.close()
    return out


def plot_planning(results: list[dict[str, Any]], path: Path) -> None:
    """Planning time against lake size, log-log, one line per system and query."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    sizes = [r["files"] for r in results]
    for system, style in (("ticklake", "-o"), ("duckdb-glob", "--s")):
        for name in queries():
            ax.plot(sizes, [r[system][name]["ms"] for r in results], style, label=f"{system}: {name}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("data files in the lake")
    ax.set_ylabel("planning time (ms, log scale)")
    ax.set_title("Planning time vs lake size")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    """Build planning lakes of growing size and print planning time per query."""
    parser = argparse.ArgumentParser(prog="python -m bench.scale_l", description=__doc__)
    parser.add_argument("--files", type=int, nargs="+", default=[1_000, 10_000, 100_000], help="Lake sizes in files.")
    parser.add_argument("--out", type=Path, default=Path("bench-results") / "L", help="Where lakes and results go.")
    args = parser.parse_args(argv)
    results = []
    for n in args.files:
        t0 = time.perf_counter()
        built = build(args.out / f"lake-{n}", n)
        print(f"built a lake of {built:,} files in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
        results.append({"files": built, **measure(args.out / f"lake-{n}")})
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results-L.json").write_text(json.dumps(results, indent=2))
    try:
        plot_planning(results, args.out / "planning-L.png")
    except ImportError:
        print("matplotlib not installed: no plot", file=sys.stderr)
    names = list(queries())
    print(
        "| files | "
        + " | ".join(f"ticklake {n} ms (files)" for n in names)
        + " | "
        + " | ".join(f"DuckDB glob {n} ms" for n in names)
        + " |"
    )
    print("|---:|" + "---:|" * (2 * len(names)))
    for r in results:
        cells = [f"{r['files']:,}"]
        cells += [f"{r['ticklake'][n]['ms']:.2f} ({r['ticklake'][n]['files']})" for n in names]
        cells += [f"{r['duckdb-glob'][n]['ms']:.0f}" for n in names]
        print("| " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
