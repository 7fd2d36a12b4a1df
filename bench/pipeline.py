"""``python -m bench.pipeline``: what the Dagster pipeline costs on top of the library.

1. One hourly run (``ticks``, its three checks, ``bars_1m``) in process over an hour holding
   `--ticks` landed ticks: wall time, and how much of it compaction, bars and checks take (from
   the run's own metadata and step events) versus Dagster's overhead.
2. A backfill of the 24 hours of one day (the first day of the benchmark's M workload: seven
   trading hours of ingested ticks, seventeen empty hours) launched through the webserver's
   GraphQL API and run by the daemon, as a user does from the UI: time until it is complete.

Run from the project root (it reuses the test suite's Dagster service harness).
"""

from __future__ import annotations

import argparse
import datetime
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from dagster import materialize

from bench.workload import SCALES, generate
from tests.dagster_service import DagsterService, wait_for
from tests.test_dagster_e2e import BACKFILL, FINISHED, launch_backfill, partition_set
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
    defs = build_definitions(PipelineSettings())
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


def day_backfill(workdir: Path, data: Path) -> dict[str, Any]:
    """A 24-hour backfill through the webserver and the daemon."""
    workload = generate(SCALES["M"], data)
    day = workload.files[0].stem[:10]
    files = [f for f in workload.files if f.stem.startswith(day)]
    service = DagsterService(workdir / "dagster", workdir / "dagster" / "lake")
    ingest = ingest_files(LakeConfig(root=service.lake_root), files)
    keys = [f"{day}-{h:02d}:00" for h in range(24)]
    with service:
        service.start_webserver()
        selector = partition_set(service, "hourly_compaction_job")
        started = time.perf_counter()
        backfill_id = launch_backfill(service, selector, keys, "bench: one day")
        service.start_daemon()

        def done() -> dict[str, Any] | None:
            found = service.graphql(BACKFILL, {"id": backfill_id})["partitionBackfillOrError"]
            return found if found["status"] in FINISHED else None

        finished = wait_for("backfill", done, 600, interval=0.5)
        seconds = time.perf_counter() - started
    statuses = [r["status"] for r in finished["runs"]]
    return {
        "day": day,
        "ticks": ingest.appended,
        "hours": len(keys),
        "status": finished["status"],
        "runs_succeeded": statuses.count("SUCCESS"),
        "seconds": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.pipeline", description=__doc__.split("\n\n")[0])
    parser.add_argument("--ticks", type=int, default=1_000_000, help="Ticks in the single hour (default 1,000,000).")
    parser.add_argument("--data", type=Path, default=Path("bench-data"), help="Where the benchmark's JSONL is kept.")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="ticklake-pipeline-"))
    try:
        hour = one_hour(workdir, args.ticks)
        print(
            f"one hourly run, {hour['ticks']:,} ticks: {hour['wall_seconds']:.2f} s wall = compaction "
            f"{hour['compaction_seconds']:.2f} s + bars {hour['bars_seconds']:.2f} s + Dagster and checks "
            f"{hour['dagster_and_checks_seconds']:.2f} s"
        )
        backfill = day_backfill(workdir, args.data)
        print(
            f"24-hour backfill of {backfill['day']} ({backfill['ticks']:,} ticks): {backfill['status']}, "
            f"{backfill['runs_succeeded']}/{backfill['hours']} runs succeeded in {backfill['seconds']:.1f} s"
        )
        print(json.dumps({"hour": hour, "backfill": backfill}))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
