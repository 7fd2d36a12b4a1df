"""``python -m bench.serve --scale S``: `ticklake serve` under load, and what the network costs next to the CLI and Python.

On the scale's ticks, against one real ``ticklake serve`` process on 127.0.0.1:

* **Flight SQL overhead per query**: Q5 (one rare contract, one day: pruned) and Q2 through ADBC, the
  in-process API (`ticklake.connect`) and the CLI (`ticklake sql`, a new process each time): medians.
* **Streamed rows/s** of a full scan (``SELECT * FROM ticks``) through ADBC against the in-process
  Arrow reader of the same query.
* **Line-protocol ingest ticks/s** with QuestDB's official client (its DataFrame path, one flush per
  hour of ticks, each acknowledged only once durable) against ``ticklake ingest`` of the same ticks.
* **Load**: 8 query clients (Q2, Q5, Q6 in turn) and 2 ingest clients for ``--seconds``; query
  latency p50/p99, queries/s, ticks/s, errors; then every tick sent is reconciled with the lake
  (stored + quarantined) after a compaction.

Goals (issue: the serve endpoint): Flight SQL overhead <= 10 ms for a pruned query; streamed rows/s
>= 50% of in-process; line-protocol ticks/s >= 50% of ``ticklake ingest``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.queries import make_queries
from bench.workload import SCALES, generate

_READY = re.compile(r"Flight SQL on (?P<flight>\S+), HTTP on (?P<http>\S+) ")


@dataclass
class Serving:
    """A running ``ticklake serve`` process and how to reach it."""

    process: subprocess.Popen[str]
    flight: str
    http: str
    read_token: str
    write_token: str

    @property
    def http_port(self) -> int:
        return int(self.http.rsplit(":", 1)[1])


@contextlib.contextmanager
def serving(root: Path, *args: str, log: Path | None = None, env: dict[str, str] | None = None) -> Iterator[Serving]:
    """Start ``ticklake --root ROOT serve`` on free ports with a read and a write token; stop it with SIGTERM."""
    read_token, write_token = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    full_env = {**os.environ, **(env or {}), "TICKLAKE_SERVE_TOKENS": f"read:{read_token},write:{write_token}"}
    command = [sys.executable, "-m", "ticklake.cli", "--root", str(root), "serve", "--flight", "127.0.0.1:0"]
    command += ["--http", "127.0.0.1:0", *args]
    with contextlib.ExitStack() as stack:
        errors = stack.enter_context(open(log, "a")) if log else subprocess.DEVNULL  # noqa: SIM115 - closed by the stack
        process = stack.enter_context(subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, text=True, env=full_env))
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            found = _READY.search(line)
            if not found:
                raise RuntimeError(f"ticklake serve did not start (exit {process.poll()}): {line!r}")
            yield Serving(process, found["flight"], found["http"], read_token, write_token)
        finally:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def adbc_connect(serve: Serving) -> Any:
    import adbc_driver_flightsql.dbapi as flightsql  # noqa: PLC0415 - a test dependency

    header = {"adbc.flight.sql.authorization_header": f"Bearer {serve.read_token}"}
    return flightsql.connect(serve.flight, db_kwargs=header, autocommit=True)


def _median_ms(run: Any, repeat: int) -> float:
    run()  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        run()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def overhead(serve: Serving, root: Path, sql: str, repeat: int) -> dict[str, float]:
    """Median ms of one query through ADBC, in-process, and the CLI."""
    import ticklake  # noqa: PLC0415

    with adbc_connect(serve) as conn, conn.cursor() as cur, ticklake.connect(root) as lake:

        def remote() -> None:
            cur.execute(sql)
            cur.fetch_arrow_table()

        flight_ms = _median_ms(remote, repeat)
        local_ms = _median_ms(lambda: lake.execute(sql).to_arrow_table(), repeat)
    cli = [sys.executable, "-m", "ticklake.cli", "--root", str(root), "sql", "--format", "csv", sql]
    cli_ms = _median_ms(lambda: subprocess.run(cli, capture_output=True, check=True), max(3, repeat // 10))
    return {"flight_ms": flight_ms, "in_process_ms": local_ms, "cli_ms": cli_ms, "overhead_ms": flight_ms - local_ms}


def scan_rate(serve: Serving, root: Path) -> dict[str, float]:
    """Rows/s of ``SELECT * FROM ticks`` streamed through ADBC and through the in-process Arrow reader."""
    import ticklake  # noqa: PLC0415

    sql = "SELECT * FROM ticks"
    rates = {}
    with adbc_connect(serve) as conn, conn.cursor() as cur:
        t0 = time.perf_counter()
        cur.execute(sql)
        rows = sum(b.num_rows for b in cur.fetch_record_batch())
        rates["flight_rows_per_s"] = rows / (time.perf_counter() - t0)
    with ticklake.connect(root) as lake:
        t0 = time.perf_counter()
        lake.execute(sql)
        rows = sum(b.num_rows for b in lake.con.to_arrow_reader(65_536))
        rates["in_process_rows_per_s"] = rows / (time.perf_counter() - t0)
    rates["rows"] = rows
    rates["ratio"] = rates["flight_rows_per_s"] / rates["in_process_rows_per_s"]
    return rates


def _frames(files: list[Path]) -> Iterator[Any]:
    """The ticks of each hourly file as a DataFrame the questdb client sends: conditions as comma-separated text,
    missing prices and sizes as NaN (QuestDB's null, which the server takes as absent)."""
    import pandas as pd  # noqa: PLC0415
    import pyarrow.json as pj  # noqa: PLC0415

    for path in files:
        frame = pj.read_json(path).to_pandas()
        # naive UTC, which the client takes as UTC (pandas 3.1 deprecates the tz-aware path the client reads)
        frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True, format="ISO8601").dt.tz_convert(None)
        if "conditions" in frame:
            frame["conditions"] = frame["conditions"].map(lambda v: None if v is None else ",".join(v))
        yield frame


def send_frames(serve: Serving, frames: list[Any]) -> int:
    """Send `frames` with the questdb client, one flush (one durable request) each; ticks sent."""
    from questdb import Sender  # noqa: PLC0415 - a test dependency

    sent = 0
    conf = f"http::addr={serve.http.split('://', 1)[1]};token={serve.write_token};auto_flush=off;request_timeout=120000;"
    with Sender.from_conf(conf) as sender:
        for frame in frames:
            symbols = [c for c in ("tick_type", "symbol", "exchange") if c in frame]
            sender.dataframe(frame, table_name="ticks", symbols=symbols, at="timestamp")
            sender.flush()
            sent += len(frame)
    return sent


def ingest_rates(files: list[Path], scratch: Path) -> dict[str, float]:
    """Ticks/s of ``ticklake ingest`` and of the questdb client sending the same ticks to a new server."""
    from ticklake.config import LakeConfig  # noqa: PLC0415
    from ticklake.landing.ingest import ingest_files  # noqa: PLC0415

    shutil.rmtree(scratch, ignore_errors=True)
    report = ingest_files(LakeConfig(root=scratch / "ingest"), files)
    frames = list(_frames(files))
    with serving(scratch / "http") as serve:
        t0 = time.perf_counter()
        sent = send_frames(serve, frames)
        seconds = time.perf_counter() - t0
    rates = {"ticks": sent, "ingest_ticks_per_s": report.lines / report.seconds, "line_protocol_ticks_per_s": sent / seconds}
    rates["ratio"] = rates["line_protocol_ticks_per_s"] / rates["ingest_ticks_per_s"]
    return rates


def load(serve: Serving, root: Path, queries: list[Any], seconds: float, frames: list[Any]) -> dict[str, Any]:
    """8 query clients and 2 ingest clients for `seconds`: latencies, rates, errors; what was sent."""
    stop = time.monotonic() + seconds
    latencies: list[float] = []
    errors: list[str] = []
    sent = [0, 0]
    lock = threading.Lock()

    def query_client(k: int) -> None:
        with adbc_connect(serve) as conn, conn.cursor() as cur:
            i = k
            while time.monotonic() < stop:
                sql = queries[i % len(queries)].sql
                t0 = time.perf_counter()
                try:
                    cur.execute(sql)
                    cur.fetch_arrow_table()
                except Exception as e:  # noqa: BLE001 - counted and reported
                    with lock:
                        errors.append(str(e)[:200])
                with lock:
                    latencies.append((time.perf_counter() - t0) * 1000)
                i += 1

    def ingest_client(k: int) -> None:
        i = k
        while time.monotonic() < stop:
            frame = frames[i % len(frames)].copy()
            frame["size"] = range(i * 10_000_000, i * 10_000_000 + len(frame))  # unique per send: doubles are countable
            try:
                sent[k] += send_frames(serve, [frame])
            except Exception as e:  # noqa: BLE001
                with lock:
                    errors.append(str(e)[:200])
            i += 2

    threads = [threading.Thread(target=query_client, args=(k,)) for k in range(8)]
    threads += [threading.Thread(target=ingest_client, args=(k,)) for k in range(2)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    ordered = sorted(latencies)
    return {
        "seconds": wall,
        "queries": len(latencies),
        "queries_per_s": len(latencies) / wall,
        "p50_ms": ordered[len(ordered) // 2] if ordered else None,
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else None,
        "ticks_sent": sum(sent),
        "ticks_per_s": sum(sent) / wall,
        "errors": errors,
    }


def main(argv: list[str] | None = None) -> int:
    """The command line of the serve benchmark."""
    parser = argparse.ArgumentParser(prog="python -m bench.serve", description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="S", help="Data size (XS is a smoke test).")
    parser.add_argument("--data", type=Path, default=Path("bench-data"), help="Where generated JSONL is kept.")
    parser.add_argument("--out", type=Path, default=Path("bench-results"), help="Where scratch lakes and results go.")
    parser.add_argument("--seconds", type=float, default=60.0, help="Length of the load test.")
    parser.add_argument("--repeat", type=int, default=30, help="Runs per query for the medians.")
    args = parser.parse_args(argv)

    from ticklake.build.compaction import compact_all  # noqa: PLC0415
    from ticklake.config import LakeConfig  # noqa: PLC0415
    from ticklake.landing.ingest import ingest_files  # noqa: PLC0415

    scale = SCALES[args.scale]
    workload = generate(scale, args.data)
    out = args.out / scale.name / "serve"
    shutil.rmtree(out, ignore_errors=True)
    root = out / "lake"
    config = LakeConfig(root=root)
    ingest_files(config, workload.files)
    compact_all(config)
    queries = {q.name: q for q in make_queries(workload.facts)}
    figures: dict[str, Any] = {"scale": scale.name, "ticks": workload.ticks}
    with serving(root, "--queries", "8", log=out / "serve.log") as serve:
        figures["overhead"] = {name: overhead(serve, root, queries[name].sql, args.repeat) for name in ("Q5", "Q2")}
        figures["scan"] = scan_rate(serve, root)
        frames = list(_frames(workload.files[:2]))
        figures["load"] = load(serve, root, [queries[n] for n in ("Q2", "Q5", "Q6")], args.seconds, frames)
    figures["ingest"] = ingest_rates(workload.files, out / "ingest")
    compact_all(config)
    figures["load"]["reconciled"] = reconcile(root, workload.ticks, figures["load"]["ticks_sent"])
    (out.parent / f"serve-{scale.name}.json").write_text(json.dumps(figures, indent=2))
    print(report(figures))
    return 0


def reconcile(root: Path, before: int, sent: int) -> dict[str, int]:
    """Ticks stored after the load against the lake before it plus the ticks the load sent."""
    import ticklake  # noqa: PLC0415
    from ticklake.landing.quarantine import read_quarantine  # noqa: PLC0415

    with ticklake.connect(root) as lake:
        stored = lake.execute("SELECT count(*) FROM ticks").fetchall()[0][0]
        doubled = lake.execute(
            "SELECT count(*) - count(DISTINCT (size, timestamp, contract_id)) FROM ticks WHERE size >= 10000000"
        ).fetchall()[0][0]
    quarantined = len(read_quarantine(root))
    return {"expected": before + sent, "stored": stored, "quarantined": quarantined, "lost": before + sent - stored - quarantined,
            "doubled": doubled}  # fmt: skip


def report(f: dict[str, Any]) -> str:
    """The figures as markdown, with the goals."""
    lines = [f"### ticklake serve, scale {f['scale']} ({f['ticks']:,} ticks)", ""]
    lines += ["| query | Flight SQL (ADBC) ms | in-process ms | CLI ms | overhead ms |", "|---|---:|---:|---:|---:|"]
    for name, o in f["overhead"].items():
        lines.append(f"| {name} | {o['flight_ms']:.1f} | {o['in_process_ms']:.1f} | {o['cli_ms']:.0f} | {o['overhead_ms']:.1f} |")
    s, i, ld = f["scan"], f["ingest"], f["load"]
    lines += [
        "",
        f"Full scan streamed: {s['flight_rows_per_s']:,.0f} rows/s over Flight SQL, {s['in_process_rows_per_s']:,.0f}"
        f" in-process ({s['ratio']:.0%}; goal >= 50%).",
        f"Ingest: {i['line_protocol_ticks_per_s']:,.0f} ticks/s with the questdb client (line protocol, durable per flush),"
        f" {i['ingest_ticks_per_s']:,.0f} with `ticklake ingest` ({i['ratio']:.0%}; goal >= 50%).",
        f"Q5 overhead {f['overhead']['Q5']['overhead_ms']:.1f} ms (goal <= 10 ms).",
        "",
        f"Load, 8 query + 2 ingest clients for {ld['seconds']:.0f} s: {ld['queries']:,} queries ({ld['queries_per_s']:.1f}/s),"
        f" p50 {ld['p50_ms']:.1f} ms, p99 {ld['p99_ms']:.1f} ms; {ld['ticks_sent']:,} ticks sent ({ld['ticks_per_s']:,.0f}/s);"
        f" {len(ld['errors'])} errors; reconciled: {ld['reconciled']}",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
