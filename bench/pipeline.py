"""``python -m bench.pipeline``: what the Dagster pipeline costs on top of the library.

1. One hourly run (``ticks``, its three checks, ``bars_1m``) in process over an hour holding
   `--ticks` landed ticks: wall time, and how much of it compaction, bars and checks take (from
   the run's own metadata and step events) versus Dagster's overhead.
2. A backfill of `--days` calendar days of hours (default 30: 720 hourly partitions) from the first
   day of the benchmark's M workload, whose 20 trading days (20M ticks, seven trading hours each)
   all fall inside them, launched through the webserver's GraphQL API and run by the daemon as a
   user does from the UI, timed until the daemon marks it complete; beside it, ``ticklake compact
   --all`` on an identical copy of the landed data, and the ratio of the two. Where the backfill's
   time goes: waiting for the daemon, starting run processes, and each step of each run.

Run from the project root (it reuses the test suite's Dagster service harness). The figures are
written to ``bench/results/pipeline-M-<days>d.json`` (and ``.md``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from dagster import materialize

from bench.workload import SCALES, generate
from tests.pipelines.dagster_service import DagsterService, wait_for
from tests.pipelines.test_dagster_e2e import FINISHED, launch_backfill, partition_set
from ticklake.config import LakeConfig
from ticklake.demo.synthetic import make_contracts, synthetic_ticks, to_jsonl
from ticklake.landing.ingest import ingest_files
from ticklake.pipelines.definitions import build_definitions
from ticklake.pipelines.resources import LakeResource
from ticklake.pipelines.settings import PipelineSettings


def one_hour(workdir: Path, ticks: int) -> dict[str, Any]:
    """Wall time of one in-process hourly run of `ticks` ticks, split by step."""
    root = workdir / "hour"
    hour = synthetic_ticks(
        datetime.date(2022, 1, 7), make_contracts(300, seed=1), ticks, seed=1, session=(datetime.time(15), datetime.time(16))
    )
    source = workdir / "hour.jsonl"
    source.write_bytes(to_jsonl(hour))
    ingest_files(LakeConfig(root=root), [source])
    key = "2022-01-07-15:00"
    defs = build_definitions(PipelineSettings(partitions_start="2022-01-07-00:00"))  # not the working folder's lake
    warm = LakeConfig(root=workdir / "warm")
    ingest_files(warm, [source])
    assets = [defs.get_assets_def("ticks"), defs.get_assets_def("bars_1m"), *(defs.asset_checks or [])]
    materialize(assets, partition_key=key, resources={"lake": LakeResource(root=str(warm.root))})  # imports, caches
    started = time.perf_counter()
    result = materialize(assets, partition_key=key, resources={"lake": LakeResource(root=str(root))})
    wall = time.perf_counter() - started
    meta: dict[str, dict[str, Any]] = {
        e.asset_key.to_user_string(): {k: v.value for k, v in (e.materialization.metadata or {}).items()}
        for e in result.get_asset_materialization_events()
        if e.asset_key is not None
    }
    compaction, bars = float(meta["ticks"]["seconds"]), float(meta["bars_1m"]["seconds"])
    return {
        "ticks": int(meta["ticks"]["rows_stored"]),
        "wall_seconds": wall,
        "compaction_seconds": compaction,
        "bars_seconds": bars,
        "dagster_and_checks_seconds": wall - compaction - bars,
    }


RESULTS = Path(__file__).resolve().parent / "results"

BACKFILL_RUNS = """query($id: String!) { partitionBackfillOrError(backfillId: $id) { __typename
  ... on PartitionBackfill { status timestamp endTimestamp
    runs { runId status creationTime startTime endTime tags { key value } } } } }"""

STEPS = """query($runId: ID!, $cursor: String) { logsForRun(runId: $runId, afterCursor: $cursor) {
  ... on EventConnection { cursor hasMore events { __typename
  ... on ExecutionStepStartEvent { stepKey timestamp } ... on ExecutionStepSuccessEvent { stepKey timestamp }
  ... on ExecutionStepFailureEvent { stepKey timestamp } } } } }"""


def backfill(workdir: Path, data: Path, days: int, hours_per_run: int) -> dict[str, Any]:
    """`days` days of hours backfilled through the webserver and the daemon, beside ``ticklake
    compact --all`` on a copy of the same landed data."""
    workload = generate(SCALES["M"], data)
    first = datetime.date.fromisoformat(workload.files[0].stem[:10])
    keys = [f"{first + datetime.timedelta(days=d)}-{h:02d}:00" for d in range(days) for h in range(24)]
    last = first + datetime.timedelta(days=days)
    files = [f for f in workload.files if datetime.date.fromisoformat(f.stem[:10]) < last]
    plain, lake = workdir / "plain", workdir / "dagster" / "lake"
    ingest = ingest_files(LakeConfig(root=plain), files)
    shutil.copytree(plain, lake)  # identical landed data: segments, sidecars, checkpoints
    started = time.perf_counter()
    compact = subprocess.run(
        [sys.executable, "-m", "ticklake.cli", "--root", str(plain), "compact", "--all"], capture_output=True, text=True
    )
    compact_seconds = time.perf_counter() - started
    if compact.returncode != 0:
        raise RuntimeError(f"ticklake compact --all failed: {compact.stderr}")
    shutil.rmtree(plain)
    env = {"TICKLAKE_PARTITIONS_START": f"{first}-00:00", "TICKLAKE_BACKFILL_HOURS_PER_RUN": str(hours_per_run)}
    with DagsterService(workdir / "dagster", lake, env=env) as service:
        service.start_webserver()
        service.start_daemon()  # running already, as in a deployment: the backfill waits only for its loop
        selector = partition_set(service, "hourly_compaction_job")
        started = time.perf_counter()
        launched = time.time()
        backfill_id = launch_backfill(service, selector, keys, f"bench: {days} days")

        def done() -> dict[str, Any] | None:
            service.check_alive()
            found = service.graphql(BACKFILL_RUNS, {"id": backfill_id})["partitionBackfillOrError"]
            return found if found["status"] in FINISHED else None

        finished = wait_for("backfill", done, 3600, interval=0.5)
        seconds = time.perf_counter() - started
        runs = sorted(finished["runs"], key=lambda r: r["creationTime"])
        steps = {r["runId"]: _step_seconds(service, r["runId"]) for r in runs}
    return {
        "first_day": str(first),
        "days": days,
        "hours": len(keys),
        "hours_per_run": hours_per_run,
        "ticks": ingest.appended,
        "compact_all_seconds": compact_seconds,
        "status": finished["status"],
        "runs": len(runs),
        "runs_succeeded": sum(r["status"] == "SUCCESS" for r in runs),
        "seconds": seconds,
        "ratio": seconds / compact_seconds,
        # From the launch: when the daemon created the first run, when runs started and ended.
        "first_run_created": runs[0]["creationTime"] - launched,
        "first_run_started": min(r["startTime"] for r in runs) - launched,
        "last_run_ended": max(r["endTime"] for r in runs) - launched,
        "per_run": [
            {
                "range": [_tag(r, "dagster/asset_partition_range_start"), _tag(r, "dagster/asset_partition_range_end")],
                "queued_seconds": r["startTime"] - r["creationTime"],
                "run_seconds": r["endTime"] - r["startTime"],
                "steps": steps[r["runId"]],
            }
            for r in runs
        ],
    }


def _tag(run: dict[str, Any], key: str) -> str | None:
    return next((t["value"] for t in run["tags"] if t["key"] == key), None)


def _step_seconds(service: DagsterService, run_id: str) -> dict[str, float]:
    """Seconds each step of a run took, from its start and end events (read page by page)."""
    events: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = service.graphql(STEPS, {"runId": run_id, "cursor": cursor})["logsForRun"]
        events.extend(page["events"])
        if not page["hasMore"]:
            break
        cursor = page["cursor"]
    starts = {e["stepKey"]: float(e["timestamp"]) for e in events if e["__typename"] == "ExecutionStepStartEvent"}
    ends = {
        e["stepKey"]: float(e["timestamp"]) for e in events if e.get("stepKey") and e["__typename"] != "ExecutionStepStartEvent"
    }
    return {k: round((ends[k] - starts[k]) / 1000, 2) for k in starts if k in ends}


def report(hour: dict[str, Any], backfill: dict[str, Any]) -> str:
    """The figures as markdown."""
    b = backfill
    runs = b["per_run"]
    step_totals: dict[str, float] = {}
    for run in runs:
        for step, seconds in run["steps"].items():
            step_totals[step] = step_totals.get(step, 0.0) + seconds
    lines = [
        f"### Pipeline, 2 cores: {b['days']}-day backfill of the M workload ({b['ticks']:,} ticks)",
        "",
        f"One hourly run, {hour['ticks']:,} ticks, in process: {hour['wall_seconds']:.2f} s (compaction "
        f"{hour['compaction_seconds']:.2f} s, bars {hour['bars_seconds']:.2f} s, Dagster and checks "
        f"{hour['dagster_and_checks_seconds']:.2f} s).",
        "",
        "| | seconds |",
        "|---|---:|",
        f"| `ticklake compact --all` | {b['compact_all_seconds']:.1f} |",
        f"| backfill of {b['hours']} hours, launch to complete | {b['seconds']:.1f} |",
        f"| ratio | {b['ratio']:.2f} |",
        f"| launch to first run created (the daemon's backfill loop) | {b['first_run_created']:.1f} |",
        f"| launch to first run started | {b['first_run_started']:.1f} |",
        f"| launch to last run ended | {b['last_run_ended']:.1f} |",
        f"| first run created to complete (after the daemon's first pass) | {b['seconds'] - b['first_run_created']:.1f} |",
        "",
        f"{b['runs']} runs of up to {b['hours_per_run']} hours ({b['runs_succeeded']} succeeded, backfill {b['status']}); "
        "steps summed over the runs: " + ", ".join(f"{k} {v:.1f} s" for k, v in sorted(step_totals.items())) + ".",
        "",
        "| run | hours | queued s | run s | ticks s | checks s | bars_1m s |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for n, run in enumerate(runs, 1):
        steps = run["steps"]
        checks = sum(v for k, v in steps.items() if k.startswith("ticks_"))
        lines.append(
            f"| {n} | {run['range'][0]} .. {run['range'][1]} | {run['queued_seconds']:.1f} | "
            f"{run['run_seconds']:.1f} | {steps.get('ticks', 0):.1f} | {checks:.1f} | {steps.get('bars_1m', 0):.1f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.pipeline", description=__doc__.split("\n\n")[0])
    parser.add_argument("--ticks", type=int, default=1_000_000, help="Ticks in the single hour (default 1,000,000).")
    parser.add_argument("--data", type=Path, default=Path("bench-data"), help="Where the benchmark's JSONL is kept.")
    parser.add_argument("--days", type=int, default=30, help="Days of hours to backfill (default 30).")
    parser.add_argument(
        "--hours-per-run", type=int, default=PipelineSettings().backfill_hours_per_run, help="Hours per backfill run."
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="Folder for the results (default bench/results).")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="ticklake-pipeline-"))
    try:
        hour = one_hour(workdir, args.ticks)
        print(
            f"one hourly run, {hour['ticks']:,} ticks: {hour['wall_seconds']:.2f} s wall = compaction "
            f"{hour['compaction_seconds']:.2f} s + bars {hour['bars_seconds']:.2f} s + Dagster and checks "
            f"{hour['dagster_and_checks_seconds']:.2f} s"
        )
        result = backfill(workdir, args.data, args.days, args.hours_per_run)
        print(
            f"{result['hours']}-hour backfill ({result['ticks']:,} ticks, {result['runs']} runs): {result['status']} in "
            f"{result['seconds']:.1f} s; compact --all {result['compact_all_seconds']:.1f} s; ratio {result['ratio']:.2f}"
        )
        name = f"pipeline-M-{args.days}d"
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / f"{name}.json").write_text(json.dumps({"hour": hour, "backfill": result}, indent=2) + "\n")
        (args.out / f"{name}.md").write_text(report(hour, result))
        print(report(hour, result))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
