"""ticklake-only figures: bulk ingest, compaction of plain recorder segments, `ticklake sql` as a new process,
landing append throughput."""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.queries import make_queries
from bench.workload import Workload
from ticklake.build.compaction import compact_all
from ticklake.config import LakeConfig
from ticklake.landing.buffer import write_segment
from ticklake.landing.ingest import ingest_files
from ticklake.landing.writer import LandingWriter
from ticklake.storage.layout import parse_hour


def _cli() -> list[str]:
    script = Path(sys.executable).parent / "ticklake"
    return [str(script)] if script.exists() else [sys.executable, "-m", "ticklake.cli"]


def ticklake_extras(workload: Workload, out: Path) -> dict[str, Any]:
    """Figures a ticklake user sees beyond the shared queries."""
    scratch = out / "ticklake-extras"
    shutil.rmtree(scratch, ignore_errors=True)
    report = ingest_files(LakeConfig(root=scratch / "ingest"), workload.files)
    figures: dict[str, Any] = {"ingest_ticks_per_second": report.lines / report.seconds, "ingest_seconds": report.seconds}
    shutil.rmtree(scratch / "ingest")

    # Segments sealed by a foreign recorder (plain JSONL, no sidecar): compaction parses them.
    raw = LakeConfig(root=scratch / "raw")
    for path in workload.files:
        write_segment(raw.root, parse_hour(path.stem), f"recorder-{path.stem}-000001.jsonl", path.read_bytes())
    t0 = time.perf_counter()
    stored = sum(r.stored for r in compact_all(raw))
    figures["compaction_raw_ticks_per_second"] = stored / (time.perf_counter() - t0)
    shutil.rmtree(raw.root)

    lake_root = out / "ticklake" / "lake"
    cli: dict[str, float] = {}
    for q in make_queries(workload.facts):
        if q.name not in ("Q2", "Q5", "Q6"):
            continue
        walls = []
        for _ in range(3):
            t0 = time.perf_counter()
            subprocess.run([*_cli(), "--root", str(lake_root), "sql", q.sql, "--format", "csv"], capture_output=True, check=True)
            walls.append(time.perf_counter() - t0)
        cli[q.name] = statistics.median(walls)
    figures["cli_sql_seconds"] = cli

    ticks = [json.loads(line) for line in workload.files[0].read_text().splitlines()[:20_000]]
    for label, batch in (("single", 1), ("batch_1000", 1000)):
        with LandingWriter(LakeConfig(root=scratch / f"append-{label}"), writer_id=label) as writer:
            t0 = time.perf_counter()
            for i in range(0, len(ticks), batch):
                writer.append(ticks[i : i + batch])
            writer.flush()
            seconds = time.perf_counter() - t0
        figures[f"append_{label}_ticks_per_second"] = len(ticks) / seconds
    shutil.rmtree(scratch, ignore_errors=True)
    return figures
