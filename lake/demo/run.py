"""The main job, end to end on an embedded lake: generate, ingest, compact, query, explain.

A synthetic trading day (hundreds of contracts, skewed activity, all tick types, several
exchanges) plus the real EUR/USD quotes shipped in ``lake/demo/data`` go through the same path a
production feed takes; a few malformed lines show quarantine at work. Example queries from
``sql/demo`` print their results with how many files the catalog let DuckDB open.
"""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from datetime import time as dtime
from io import StringIO
from pathlib import Path

import pyarrow.compute as pc

from ticklake.build.compaction import compact_all
from ticklake.build.rollups import build_bars_1m
from ticklake.config import LakeConfig
from ticklake.demo.eurusd import EURUSD_CONTRACT_ID, eurusd_ticks
from ticklake.demo.ownership import mark_demo_lake, prepare_root
from ticklake.demo.synthetic import make_contracts, synthetic_ticks, to_jsonl
from ticklake.landing.ingest import ingest_files
from ticklake.query.connection import LakeConnection
from ticklake.query.output import write_result
from ticklake.sql import load_sql
from ticklake.status import has_contract
from ticklake.storage.layout import parse_hour

# Three lines a real recorder might emit on a bad day; they end up in quarantine, with reasons.
GLITCHES = b"""{"timestamp":"2022-01-07T15:00:00Z","contract_id":"AAPL","tick_type":"last","price":1}
{"timestamp":"2022-01-07T15:00:01Z","contract_id":265598,"tick_type":"last"}
{"timestamp":"2022-01-07T15:00:02Z","contract_id":265598,"tick_type":"last","price":
"""
DEMO_QUERIES = ("01_overview", "02_one_contract_one_hour", "03_vwap_bars", "04_eurusd_spread", "05_asof_quotes", "06_bars_1m")


def run_demo(
    config: LakeConfig,
    *,
    n_ticks: int = 500_000,
    contracts: int = 300,
    day: date = date(2022, 1, 7),
    seed: int = 7,
    keep: bool = False,
    force: bool = False,
    echo: Callable[[str], None] = print,
) -> dict[str, float]:
    """Run the demo on `config.root` and return its headline figures.

    It starts from an empty lake: a root that is empty or holds a lake an earlier demo made is
    reset, anything else is refused unless `force` (delete its lake, saying what goes first)
    or `keep` (add the demo's data to it; see `ticklake.demo.ownership`).
    """
    root = config.root
    owned = prepare_root(config, keep=keep, force=force, echo=echo)
    root.mkdir(parents=True, exist_ok=True)
    figures: dict[str, float] = {}
    echo(f"ticklake demo: lake at {root.resolve()}")

    started = time.perf_counter()
    universe = make_contracts(contracts, seed=seed)
    synthetic = synthetic_ticks(day, universe, n_ticks, seed=seed)
    real = eurusd_ticks()
    with tempfile.TemporaryDirectory(prefix="ticklake-demo-") as tmp:
        inputs = [
            Path(tmp) / f"recorder-{day}.jsonl",
            Path(tmp) / "eurusd-2020-01-01.jsonl",
            Path(tmp) / "recorder-glitches.jsonl",
        ]
        inputs[0].write_bytes(to_jsonl(synthetic))
        inputs[1].write_bytes(to_jsonl(real))
        inputs[2].write_bytes(GLITCHES)
        jsonl_bytes = sum(p.stat().st_size for p in inputs)
        echo(
            f"generated {synthetic.num_rows:,} synthetic ticks ({contracts} contracts) + {real.num_rows:,} real EUR/USD quotes "
            f"in {time.perf_counter() - started:.1f}s"
        )

        report = ingest_files(config, inputs)
    echo(report.summary())
    for line in report.problems:
        echo(f"  quarantined {line}")
    figures["ingest_ticks_per_s"] = report.lines / report.seconds

    t0 = time.perf_counter()
    results = compact_all(config)
    seconds = time.perf_counter() - t0
    stored = sum(r.stored for r in results)
    data_bytes = sum(r.bytes for r in results)
    figures["compact_ticks_per_s"] = stored / seconds
    echo(
        f"compacted {len(results)} hours: {stored:,} ticks into {sum(len(r.files) for r in results)} Parquet files "
        f"in {seconds:.1f}s ({stored / seconds:,.0f} ticks/s)"
    )
    # With --keep on a lake that has the demo's data already, ingest recognised every input: nothing to compare.
    if stored and report.lines:
        figures["bytes_per_tick"] = data_bytes / stored
        figures["jsonl_bytes_per_tick"] = jsonl_bytes / report.lines
        echo(
            f"on disk: {data_bytes / stored:.1f} bytes/tick in Parquet vs {jsonl_bytes / report.lines:.1f} in JSONL "
            f"({jsonl_bytes / data_bytes:.0f}x smaller)"
        )
    echo(f"reconciled: {report.lines:,} lines in = {stored:,} stored + {report.quarantined:,} quarantined")

    t0 = time.perf_counter()
    rollups = [build_bars_1m(config, parse_hour(r.hour)) for r in results]
    echo(
        f"rolled up {len(rollups)} hours into {sum(r.rows for r in rollups):,} 1-minute bars (dataset bars_1m) "
        f"in {time.perf_counter() - t0:.1f}s"
    )

    # Pick a busy and a rare contract from the data itself.
    counts = pc.value_counts(synthetic.column("contract_id")).to_pylist()
    counts.sort(key=lambda c: (-c["counts"], c["values"]))
    busy, rare = counts[0]["values"], counts[len(counts) * 3 // 4]["values"]
    session = datetime.combine(day, dtime(14, 30), tzinfo=UTC)
    rare_hour = (
        pc.min(pc.filter(synthetic.column("timestamp"), pc.equal(synthetic.column("contract_id"), rare)))
        .as_py()
        .replace(minute=0, second=0, microsecond=0)
    )
    params = {"contract": busy, "session_start": session, "hour_start": rare_hour}
    with LakeConnection(config) as lake:
        for name in DEMO_QUERIES:
            values = dict(params, contract=rare) if name == "02_one_contract_one_hour" else params
            _show_query(lake, name, values, echo)

    echo("")
    echo("-- catalog only (no data file opened): does a contract have data on a day?")
    for contract, d in ((rare, day), (EURUSD_CONTRACT_ID, date(2020, 1, 1)), (EURUSD_CONTRACT_ID, day)):
        found = has_contract(config, contract, d)
        answer = f"yes, {found.rows:,} ticks in {found.files} files" if found.found else "no"
        echo(f"ticklake has --contract {contract} --date {d}: {answer}")
    if owned:
        mark_demo_lake(config)
    figures["seconds"] = time.perf_counter() - started
    echo(f'demo finished in {figures["seconds"]:.1f}s; try: ticklake --root {root} sql "SELECT count(*) FROM ticks"')
    return figures


def _show_query(lake: LakeConnection, name: str, values: dict[str, object], echo: Callable[[str], None]) -> None:
    """Run one demo query with its values bound as parameters (they prune like literals)."""
    text = load_sql(f"demo/{name}")
    query = "\n".join(line for line in text.splitlines() if not line.startswith("--")).strip()
    comment = " ".join(line[2:].strip() for line in text.splitlines() if line.startswith("--"))
    params = {key: value for key, value in values.items() if re.search(rf"\${key}\b", query)}
    echo("")
    echo(f"-- {comment}")
    echo(query)
    if params:
        echo("-- with " + ", ".join(f"${key} = {_show(value)}" for key, value in params.items()))
    plan = lake.plan(query, params)
    started = time.perf_counter()
    relation = lake.sql(query, params)
    rows = relation.fetchall()
    seconds = time.perf_counter() - started
    out = StringIO()
    write_result(relation.columns, rows, "table", out)
    echo(out.getvalue().rstrip())
    for ref in plan.refs:
        steps = " -> ".join(f"{s.name} {s.files}" for s in ref.plan.steps)
        name = ref.text + (f" AS {ref.alias}" if ref.alias else "")
        echo(f"   {name}: files {steps} (read {len(ref.plan.files)} of {ref.plan.steps[0].files}); {seconds * 1000:.0f} ms")


def _show(value: object) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)
