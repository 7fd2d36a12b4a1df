"""``python -m bench --scale S``: generate data if missing, load every system, run every query, report.

Prints a markdown table and the targets, writes ``results-<scale>.json`` (and a PNG plot when
matplotlib is installed) to the output folder. Peers whose libraries are not installed
(``pip install '.[bench]'``) are skipped with a note. Q7, the cold tier on a local S3 server, is
``python -m bench.cold``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.compare import canonical_rows
from bench.extras import ticklake_extras
from bench.queries import make_queries
from bench.report import markdown, targets
from bench.systems import SYSTEMS, load_system
from bench.workload import SCALES, generate


def run_system(name: str, workload: Any, out: Path, repeat: int) -> dict[str, Any]:
    """Load `workload` into system `name` and measure it; the figures as a dict."""
    workdir = out / name
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    system = load_system(name)(workdir)
    report = system.load(workload.files)
    started = time.perf_counter()
    system.open()
    open_seconds = time.perf_counter() - started
    size, files = system.storage()
    result: dict[str, Any] = {
        "system": name,
        "description": system.description,
        "load": {
            "ticks": report.ticks,
            "load_seconds": report.load_seconds,
            "compact_seconds": report.compact_seconds,
            "ticks_per_second": report.ticks_per_second,
            "notes": report.notes,
        },
        "bytes": size,
        "files": files,
        "bytes_per_tick": size / max(report.ticks, 1),
        "queries": {},
    }
    result["open_seconds_warm"] = open_seconds
    rows: dict[str, list[tuple[Any, ...]]] = {}
    for q in make_queries(workload.facts):
        rows[q.name] = system.query(q)  # warm-up, and the result to compare
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            system.query(q)
            times.append(time.perf_counter() - t0)
        plan = system.plan(q)
        result["queries"][q.name] = {
            "median_seconds": statistics.median(times),
            "planning_seconds": plan.seconds,
            "files_opened": plan.files,
            "rows": len(rows[q.name]),
        }
    system.close()
    manifest = workload.manifest
    for q in make_queries(workload.facts):
        probe = subprocess.run(
            [sys.executable, "-m", "bench.first", name, str(workdir), str(manifest), q.name],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if probe.returncode == 0:
            result["queries"][q.name]["first_process"] = json.loads(probe.stdout.strip().splitlines()[-1])
    result["_rows"] = {k: canonical_rows(v) for k, v in rows.items()}
    return result


def main(argv: list[str] | None = None) -> int:
    """The command line of the benchmark suite."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--scale", choices=sorted(SCALES), default="S", help="Data size (XS is a smoke test).")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="Comma-separated systems to run.")
    parser.add_argument("--data", type=Path, default=Path("bench-data"), help="Where generated JSONL is kept.")
    parser.add_argument("--out", type=Path, default=Path("bench-results"), help="Where stores and results go.")
    parser.add_argument("--repeat", type=int, default=5, help="Warm runs per query (the median is reported).")
    args = parser.parse_args(argv)

    scale = SCALES[args.scale]
    print(f"generating or reusing {scale.name}: {scale.ticks:,} ticks over {scale.days} days", file=sys.stderr)
    workload = generate(scale, args.data)
    out = args.out / scale.name
    results: list[dict[str, Any]] = []
    skipped: dict[str, str] = {}
    for name in args.systems.split(","):
        print(f"running {name}", file=sys.stderr)
        try:
            results.append(run_system(name, workload, out, args.repeat))
        except ImportError as e:
            skipped[name] = f"not installed ({e.name}); pip install '.[bench]'"
    reference = results[0]["_rows"] if results else {}
    for r in results:
        r["identical"] = {q: rows == reference.get(q) for q, rows in r.pop("_rows").items()}
    extras = ticklake_extras(workload, out) if "ticklake" in args.systems.split(",") else {}
    payload = {
        "scale": scale.name,
        "ticks": workload.ticks,
        "jsonl_bytes_per_tick": workload.bytes / workload.ticks,
        "systems": results,
        "skipped": skipped,
        "ticklake_extras": extras,
    }
    payload["targets"] = targets(payload)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"results-{scale.name}.json").write_text(json.dumps(payload, indent=2, default=str))
    print(markdown(payload))
    try:
        from bench.plot import plot

        plot(payload, out / f"latency-{scale.name}.png")
    except ImportError:
        print("matplotlib not installed: no plot", file=sys.stderr)
    mismatched = [(r["system"], q) for r in results for q, same in r["identical"].items() if not same]
    if mismatched:
        print(f"results differ from {results[0]['system']}: {mismatched}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
