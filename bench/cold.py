"""``python -m bench.cold --scale S``: Q7, the cold tier — Q2, Q5 and Q6 against data on a local S3 server.

The workload is loaded into ticklake once (on local disk: the reference answers); a copy of that
lake is archived to a bucket (`ticklake archive`: one object per day and tick type), and DuckLake
is loaded with its data path in the same bucket. Readers:

* ticklake with the read-through cache: a new reader on an empty cache folder (cold), the same
  query again (warm), and a new reader on a filled cache;
* ticklake with ``cache_bytes = 0``: DuckDB's httpfs reads the objects directly;
* DuckDB's ``read_parquet('s3://.../**/*.parquet', hive_partitioning = true)`` on the same objects;
* DuckLake, data path ``s3://...``; and, for scale, ticklake's warm tier on local disk before the archive.

All of it runs twice: on moto, which counts the requests and bytes it answers (`CountingS3`),
and on SeaweedFS, a real S3 server in its own process, for the latencies (medians of
``--repeat`` runs: cold, a new reader each run; warm, the same reader again). Every reader's rows
are checked against ticklake's answers on local disk.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from bench.compare import canonical_rows
from bench.queries import Query, make_queries
from bench.report import write_results
from bench.systems.base import System
from bench.systems.ducklake_s3 import DuckLakeS3System
from bench.systems.objectstore import CountingS3, Requests, aws_environment, seaweedfs
from bench.systems.s3glob import S3GlobSystem
from bench.systems.ticklake import TicklakeSystem
from bench.systems.ticklake_cold import TicklakeColdSystem
from bench.workload import SCALES, Scale, Workload, generate

QUERIES = ("Q2", "Q5", "Q6")
BUCKET = "bench"
LOCAL = "ticklake, local disk (before archive)"
CACHED = "ticklake cache"
FILLED = "ticklake cache, filled"
DIRECT = "ticklake cache_bytes=0"
GLOB = "duckdb glob"
DUCKLAKE = "ducklake"
# DuckLake needs the bench extras (`pip install -e '.[bench]'`); without them Q7 compares the rest.
HAS_DUCKLAKE = importlib.util.find_spec("duckdb_extension_ducklake") is not None
READERS = (LOCAL, CACHED, FILLED, DIRECT, GLOB, *((DUCKLAKE,) if HAS_DUCKLAKE else ()))
_STARTED = time.perf_counter()


def _progress(message: str) -> None:
    print(f"[{time.perf_counter() - _STARTED:6.1f}s] {message}", file=sys.stderr, flush=True)


def _timed_query(system: System, q: Query) -> tuple[list[tuple[Any, ...]], float]:
    started = time.perf_counter()
    rows = system.query(q)
    return rows, time.perf_counter() - started


def run_reader(make: Callable[[], System], q: Query, repeat: int, counter: CountingS3 | None) -> dict[str, Any]:
    """Cold runs (a new reader each; requests counted from its open to its last row), then warm runs
    (the last reader again); median seconds of each, the requests of the first of each, and the rows."""
    cold: list[float] = []
    warm: list[float] = []
    figures: dict[str, Any] = {}
    for i in range(repeat):
        system = make()
        if counter is not None:
            counter.take()
        system.open()
        rows, seconds = _timed_query(system, q)
        cold.append(seconds)
        if counter is not None and i == 0:
            figures["cold_requests"] = asdict(counter.take())
        if i < repeat - 1:
            system.close()
    for i in range(repeat):
        if counter is not None:
            counter.take()
        _, seconds = _timed_query(system, q)
        warm.append(seconds)
        if counter is not None and i == 0:
            figures["warm_requests"] = asdict(counter.take())
    system.close()
    figures.update(cold_seconds=statistics.median(cold), warm_seconds=statistics.median(warm), rows=canonical_rows(rows))
    return figures


class ServerStores:
    """One server's stores: a copy of the warm lake archived to the bucket, and DuckLake loaded into it."""

    def __init__(self, work: Path, warm: Path, workload: Workload) -> None:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        self.work, self.warm = work, warm
        self.uri = f"s3://{BUCKET}/ticklake"
        shutil.copytree(warm, work / "ticklake")
        self.lake = TicklakeColdSystem(work / "ticklake", self.uri)
        _progress(f"archiving to {self.uri}")
        self.lake.archive()
        if HAS_DUCKLAKE:
            _progress(f"loading DuckLake into s3://{BUCKET}/ducklake")
            DuckLakeS3System(work / "ducklake", f"s3://{BUCKET}/ducklake").load(workload.files)
        self._caches = 0

    def _empty_cache(self) -> Path:
        self._caches += 1
        return self.work / "caches" / str(self._caches)

    def readers(self, q: Query) -> dict[str, Callable[[], System]]:
        """A fresh, unopened reader of each kind; `FILLED`'s cache already holds what `q` reads."""
        lake = self.work / "ticklake"
        filled = self.work / "caches" / f"filled-{q.name}"
        primer = TicklakeColdSystem(lake, self.uri, cache_dir=filled)
        primer.open()
        primer.query(q)
        primer.close()
        makers: dict[str, Callable[[], System]] = {
            LOCAL: lambda: TicklakeSystem(self.warm),
            CACHED: lambda: TicklakeColdSystem(lake, self.uri, cache_dir=self._empty_cache()),
            FILLED: lambda: TicklakeColdSystem(lake, self.uri, cache_dir=filled),
            DIRECT: lambda: TicklakeColdSystem(lake, self.uri, cache_bytes=0),
            GLOB: lambda: S3GlobSystem(self.work / "glob", f"{self.uri}/ticks"),
            DUCKLAKE: lambda: DuckLakeS3System(self.work / "ducklake", f"s3://{BUCKET}/ducklake"),
        }
        return {name: make for name, make in makers.items() if name in READERS}

    def measure(self, qs: list[Query], repeat: int, counter: CountingS3 | None) -> dict[str, dict[str, Any]]:
        """{reader: {query: figures}} on the server the environment points at."""
        out: dict[str, dict[str, Any]] = {name: {} for name in READERS}
        for q in qs:
            for name, make in self.readers(q).items():
                out[name][q.name] = run_reader(make, q, repeat, counter)
        return out

    def client_setup(self) -> dict[str, float]:
        """Seconds of the read cache's first GET of an archived object in a new process (its client,
        one per process, is made then) and of its next one.

        A reader on an empty cache pays the first.
        """
        assert self.lake.archived is not None
        uri = self.lake.archived.days[0].uri
        probe = (
            "import sys, time; from pathlib import Path; from ticklake.storage.objects import S3Access;"
            " a = S3Access.from_environment(); t = time.perf_counter(); a.download(sys.argv[1], Path(sys.argv[2]));"
            " f = time.perf_counter() - t; t = time.perf_counter(); a.download(sys.argv[1], Path(sys.argv[2]));"
            " print(f, time.perf_counter() - t)"
        )
        out = subprocess.run(
            [sys.executable, "-c", probe, uri, str(self.work / "client-probe.parquet")],
            capture_output=True, text=True, check=True,
        ).stdout.split()
        return {"first_get_seconds": float(out[0]), "next_get_seconds": float(out[1])}


def run(workload: Workload, work: Path, repeat: int, *, latency: bool = True) -> dict[str, Any]:
    """The warm lake, then both servers, every reader, Q2/Q5/Q6: the figures as a dict.

    Without `latency` SeaweedFS is not started and the latencies are moto's single runs (a smoke test).
    """
    qs = [q for q in make_queries(workload.facts) if q.name in QUERIES]
    warm = work / "warm"
    shutil.rmtree(warm, ignore_errors=True)
    warm.mkdir(parents=True)
    _progress("loading ticklake on local disk")
    lake = TicklakeSystem(warm)
    lake.load(workload.files)
    lake.open()
    reference = {q.name: canonical_rows(lake.query(q)) for q in qs}
    lake.close()
    counter = CountingS3(BUCKET)
    try:
        with aws_environment(counter.env()):
            _progress("moto: stores")
            stores = ServerStores(work / "moto", warm, workload)
            _progress("moto: counting requests")
            counts = stores.measure(qs, 1, counter)
            archived = stores.lake.archived
            warm_bpt, cold_bpt = stores.lake.bytes_per_tick()
            times, client = counts, stores.client_setup()
    finally:
        counter.stop()
    if latency:
        shutil.rmtree(work / "seaweedfs-data", ignore_errors=True)  # an earlier run's bucket would add to the glob
        with seaweedfs(work / "seaweedfs-data", BUCKET) as env, aws_environment(env):
            _progress("SeaweedFS: stores")
            stores = ServerStores(work / "seaweedfs", warm, workload)
            _progress(f"SeaweedFS: {repeat} runs per reader and query")
            times = stores.measure(qs, repeat, None)
            client = stores.client_setup()
    _progress("done")
    readers: dict[str, dict[str, Any]] = {}
    for name in READERS:
        readers[name] = {}
        for q in QUERIES:
            c, t = counts[name][q], times[name][q]
            readers[name][q] = {
                "cold_requests": c["cold_requests"],
                "warm_requests": c["warm_requests"],
                "cold_seconds": t["cold_seconds"],
                "warm_seconds": t["warm_seconds"],
                "identical": c["rows"] == t["rows"] == reference[q],
            }
    return {
        "scale": workload.scale.name,
        "ticks": workload.ticks,
        "days": len(workload.facts["days"]),  # type: ignore[arg-type]
        "repeat": repeat,
        "latency_server": "SeaweedFS" if latency else "moto",
        "archive": {
            "summary": archived.summary() if archived else "",
            "objects": len(archived.days) if archived else 0,
            "warm_bytes_per_tick": warm_bpt,
            "cold_bytes_per_tick": cold_bpt,
        },
        "s3fs_client": client,
        "readers": readers,
    }


def _times(mine: float, base: float) -> str:
    """How many times less `mine` is than `base` (∞ when `mine` is 0)."""
    if mine == 0:
        return "=" if base == 0 else "∞"
    return f"{base / mine:.1f}×"


def markdown(payload: dict[str, Any]) -> str:
    """One table per query (requests and bytes from moto, latency from SeaweedFS), then the targets."""
    a, client = payload["archive"], payload["s3fs_client"]
    lines = [
        f"### Q7, the cold tier: scale {payload['scale']}, {payload['ticks']:,} ticks over {payload['days']} days",
        "",
        f"{a['summary']}. Bytes per tick of the archived days: {a['warm_bytes_per_tick']:.2f} warm,"
        f" {a['cold_bytes_per_tick']:.2f} cold.",
        "",
        "Requests: GET/HEAD/LIST as the server (moto) counted them, and the KB it sent. Cold: a new reader"
        " (ticklake: on an empty cache) from its open to its last row; warm: the same reader again. Latency:"
        f" median of {payload['repeat']} runs on {payload['latency_server']}. `×`: how many times fewer requests, or how many"
        " times faster, than the DuckDB glob.",
    ]
    glob = payload["readers"][GLOB]
    for q in QUERIES:
        base = glob[q]
        lines += [
            "",
            f"**{q}**",
            "",
            "| reader | cold requests | cold KB | cold ms | warm requests | warm KB | warm ms"
            " | requests × | cold ms × | warm ms × |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for name, figures in payload["readers"].items():
            f = figures[q]
            cold, warm = Requests(**f["cold_requests"]), Requests(**f["warm_requests"])
            cells = [
                name + ("" if f["identical"] else " (rows differ)"),
                cold.cell(),
                f"{cold.bytes / 1024:,.0f}",
                f"{f['cold_seconds'] * 1000:.1f}",
                warm.cell(),
                f"{warm.bytes / 1024:,.0f}",
                f"{f['warm_seconds'] * 1000:.1f}",
                _times(cold.total, Requests(**base["cold_requests"]).total),
                _times(f["cold_seconds"], base["cold_seconds"]),
                _times(f["warm_seconds"], base["warm_seconds"]),
            ]
            lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        f"The read cache's first GET of an archived object in a new process (its botocore client made then) took"
        f" {client['first_get_seconds'] * 1000:.0f} ms, the next {client['next_get_seconds'] * 1000:.0f} ms.",
        "",
        "| target | value | goal | met |",
        "|---|---:|---|:---:|",
    ]
    for t in payload["targets"]:
        lines.append(f"| {t['target']} | {t['value']} | {t['goal']} | {'yes' if t['met'] else 'NO'} |")
    return "\n".join(lines)


def targets(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """Q7's targets, measured in this run: ticklake with its default cache against the DuckDB glob."""
    readers = payload["readers"]
    out: list[dict[str, Any]] = []

    def add(target: str, value: str, goal: str, met: bool) -> None:
        out.append({"target": target, "value": value, "goal": goal, "met": bool(met)})

    def requests(name: str, q: str, when: str) -> Requests:
        return Requests(**readers[name][q][f"{when}_requests"])

    lists = sum(requests(n, q, w).list for n in (CACHED, FILLED, DIRECT) for q in QUERIES for w in ("cold", "warm"))
    add("ticklake LIST requests (Q2, Q5, Q6; cache and httpfs; cold and warm)", str(lists), "0", lists == 0)
    for q in ("Q5", "Q6"):
        theirs, ours = requests(GLOB, q, "cold").total, requests(CACHED, q, "cold").total
        add(f"{q} cold requests: glob / ticklake", f"{theirs} / {ours}", "≥ 5×", ours * 5 <= theirs)
        for when in ("cold", "warm"):
            ratio = readers[CACHED][q][f"{when}_seconds"] / readers[GLOB][q][f"{when}_seconds"]
            add(f"{q} {when} latency vs glob (ratio)", f"{ratio:.2f}", "≤ 0.5", ratio <= 0.5)
    repeated = sum(requests(n, q, w).total for n, w in ((CACHED, "warm"), (FILLED, "cold")) for q in QUERIES)
    add("requests of a query served from the cache (same reader, and a new one)", str(repeated), "0", repeated == 0)
    a = payload["archive"]
    ratio = a["cold_bytes_per_tick"] / a["warm_bytes_per_tick"]
    add("cold bytes per tick vs warm, same ticks (ratio)", f"{ratio:.2f}", "≤ 0.85", ratio <= 0.85)
    identical = all(f["identical"] for figures in readers.values() for f in figures.values())
    add("every reader's rows equal ticklake's on local disk", "yes" if identical else "no", "yes", identical)
    return out


def main(argv: Iterable[str] | None = None) -> int:
    """The command line of Q7; exit status 1 when a reader's rows differ from ticklake's."""
    parser = argparse.ArgumentParser(prog="python -m bench.cold", description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="S", help="Data size (XS is a smoke test).")
    parser.add_argument("--days", type=int, help="Spread the scale's ticks over this many days (default: the scale's).")
    parser.add_argument("--data", type=Path, default=Path("bench-data"), help="Where generated JSONL is kept.")
    parser.add_argument("--work", type=Path, default=Path("bench-results") / "cold", help="Where the stores go.")
    parser.add_argument("--out", type=Path, help="Markdown file for the results, a .json beside it (default: stdout only).")
    parser.add_argument("--repeat", type=int, default=5, help="Runs per reader and query on SeaweedFS (the median is reported).")
    args = parser.parse_args(None if argv is None else list(argv))
    scale: Scale = SCALES[args.scale]
    if args.days and args.days != scale.days:
        scale = replace(scale, name=f"{scale.name}-{args.days}d", days=args.days)
    _progress(f"generating or reusing {scale.name}: {scale.ticks:,} ticks over {scale.days} days")
    workload = generate(scale, args.data)
    payload = run(workload, args.work / scale.name, args.repeat)
    payload["targets"] = targets(payload)
    text = markdown(payload)
    print(text)
    if args.out:
        write_results(args.out, text, payload)
    return 0 if payload["targets"][-1]["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
