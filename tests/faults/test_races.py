"""Races between real processes: producers, compactions and queries at once; two and three
compactions of the same hours; two ingests of one file; ingest of a file while it grows.

Every run ends reconciled: each tick stored exactly once, every command's exit code right, and
every query in between saw a consistent lake (no tick twice, never fewer ticks than before).
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.faults.matrix import (
    HOURS,
    bad_lines,
    check_exit,
    copy_lake,
    landing_files,
    make_tick,
    producer,
    reconcile,
    record,
    run,
    spawn,
    tick_lines,
)
from tests.faults.producer import sealed_count
from ticklake.config import LakeConfig
from ticklake.landing.writer import LandingWriter

COUNT_QUERY = "SELECT count(*) AS n, count(DISTINCT size) AS d FROM ticks"


def finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    """Wait for a started command; its exit code and output."""
    out, err = process.communicate(timeout=300)
    return process.returncode, out, err


@pytest.mark.slow
def test_writers_compactions_and_queries_at_once_stay_consistent(tmp_path: Path) -> None:
    """Three LandingWriter processes, `compact --all` in a loop and `ticklake sql` in a loop, for
    at least 4 compactions and 6 queries (and 5 seconds): every query sees each tick once and
    never fewer than the query before."""
    root = tmp_path / "lake"
    stop = tmp_path / "stop"
    firsts = [k * 10_000_000 for k in range(3)]
    writers = [
        producer(root, f"rec-{k}", first, stop_file=stop, batch=50, seal_every=4, pause=0.1) for k, first in enumerate(firsts)
    ]
    compactions: list[int] = []
    queries: list[tuple[int, int, int, str]] = []
    writing = threading.Event()
    writing.set()

    def compact_loop() -> None:
        while writing.is_set():
            compactions.append(run("--root", str(root), "compact", "--all").returncode)

    def query_loop() -> None:
        while writing.is_set():
            done = run("--root", str(root), "sql", COUNT_QUERY, "--format", "csv")
            rows = done.stdout.splitlines()
            n, d = (int(x) for x in rows[1].split(",")) if done.returncode == 0 and len(rows) == 2 else (-1, -1)
            queries.append((done.returncode, n, d, done.stderr))

    while not landing_files(root, sealed=True):
        time.sleep(0.05)  # a sealed segment exists, so the first compaction creates the catalog
    first = run("--root", str(root), "compact", "--all")
    assert first.returncode == 0, first.stderr
    loops = [threading.Thread(target=compact_loop), threading.Thread(target=query_loop)]
    for loop in loops:
        loop.start()
    started, bound = time.monotonic(), time.monotonic() + 60  # a bound for a stuck lake, not a timing assertion
    while time.monotonic() < bound and (time.monotonic() - started < 5 or len(compactions) < 4 or len(queries) < 6):
        time.sleep(0.1)
    stop.touch()
    outputs = [finish(w) for w in writers]
    writing.clear()
    for loop in loops:
        loop.join()
    last = run("--root", str(root), "compact", "--all")

    sealed = [sealed_count(out) for _, out, _ in outputs]
    expected = [s for first, n in zip(firsts, sealed, strict=True) for s in range(first, first + n)]
    tally = reconcile(root, expected)
    checked = check_exit(root)
    exits = sorted({rc for rc, *_ in outputs} | set(compactions) | {rc for rc, *_ in queries} | {last.returncode})
    fault = f"3 LandingWriters + {len(compactions) + 2} compact --all + {len(queries)} sql, at once (exit codes seen)"
    record("races", fault, tally, exits, checked)
    assert [rc for rc, *_ in outputs] == [0, 0, 0], [err for *_, err in outputs]
    assert set(compactions) == {0} and last.returncode == 0, last.stderr
    assert queries and all(rc == 0 for rc, *_ in queries), [q[3] for q in queries if q[0]][:1]
    counts = [n for _, n, _, _ in queries]
    assert all(n == d for _, n, d, _ in queries), "a query saw a tick twice"
    assert counts == sorted(counts), "a query saw fewer ticks than the one before"
    assert tally.exact and tally.stored == sum(sealed), tally
    assert checked == 0
    assert landing_files(root, sealed=True) == []


@pytest.fixture(scope="module")
def many_segments(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A lake with 300 sealed segments of 3 ticks in each of three hours, none compacted."""
    root = tmp_path_factory.mktemp("segments") / "lake"
    seq = 0
    with LandingWriter(LakeConfig(root=root), writer_id="rec") as writer:
        for _ in range(300):
            for hour in range(len(HOURS)):
                writer.append(make_tick(s, hour) for s in range(seq, seq + 3))
                seq += 3
            writer.seal()
    return root


@pytest.mark.slow
@pytest.mark.parametrize("n", [2, 3])
def test_concurrent_compactions_of_the_same_hours_all_succeed_exactly(tmp_path: Path, many_segments: Path, n: int) -> None:
    """Losers of the commit race retry from the new state, and a segment another compaction retired
    meanwhile is progress, not an error (losers used to exit 1 here)."""
    root = copy_lake(many_segments, tmp_path / "lake")
    running = [spawn("--root", str(root), "compact", "--all") for _ in range(n)]
    results = [finish(p) for p in running]
    tally = reconcile(root, range(300 * 3 * len(HOURS)))
    checked = check_exit(root)
    record("races", f"{n} x compact --all of 3 hours x 300 segments at once", tally, [rc for rc, *_ in results], checked)
    assert [rc for rc, *_ in results] == [0] * n, [err for *_, err in results]
    assert tally.exact, tally
    assert checked == 0
    assert landing_files(root, sealed=True) == []


def test_two_ingests_of_one_file_at_once_append_it_once(tmp_path: Path) -> None:
    """The source's lock makes the second wait; it then finds the first's checkpoint and appends nothing."""
    source = tmp_path / "day.jsonl"
    source.write_bytes(tick_lines(range(20_000)) + bad_lines(range(90_000, 90_003)))
    root = tmp_path / "lake"
    results = [finish(p) for p in [spawn("--root", str(root), "ingest", str(source)) for _ in range(2)]]
    compact = run("--root", str(root), "compact", "--all")
    tally = reconcile(root, range(20_000), 3)
    exits = [rc for rc, *_ in results] + [compact.returncode]
    record("races", "2 x ingest of one file at once", tally, exits, check_exit(root))
    # One ingest read the file (exit 1: its three bad lines); the other found it ingested.
    assert sorted(exits[:2]) == [0, 1], [err for *_, err in results]
    assert any("0 appended" in out for _, out, _ in results)
    assert compact.returncode == 0, compact.stderr
    assert tally.exact and tally.quarantined == 3, tally


def test_ingest_of_a_growing_file_takes_each_line_once(tmp_path: Path) -> None:
    """A recorder appends to a file in pieces that end mid-line while `ingest` runs on it again
    and again: each run takes the complete lines added since the last, none twice."""
    source = tmp_path / "live.jsonl"
    total = 6000
    source.write_bytes(tick_lines([0]))  # the first line complete: it is the source's fingerprint
    growing = threading.Event()
    growing.set()

    def grow() -> None:
        data = tick_lines(range(1, total))
        with open(source, "ab") as f:
            for start in range(0, len(data), 7919):  # pieces that end anywhere, mostly mid-line
                f.write(data[start : start + 7919])
                f.flush()
                time.sleep(0.02)
        growing.clear()

    recorder = threading.Thread(target=grow)
    recorder.start()
    root = tmp_path / "lake"
    exits = []
    while growing.is_set():
        exits.append(run("--root", str(root), "ingest", str(source)).returncode)
    recorder.join()
    exits.append(run("--root", str(root), "ingest", str(source)).returncode)
    compact = run("--root", str(root), "compact", "--all")
    tally = reconcile(root, range(total))
    checked = check_exit(root)
    record("races", f"ingest x {len(exits)} of a file while it grows", tally, sorted(set(exits)) + [compact.returncode], checked)
    assert set(exits) == {0} and compact.returncode == 0, compact.stderr
    assert len(exits) >= 2 and tally.exact, tally
    assert checked == 0


def test_ingest_of_a_growing_file_whose_first_line_was_unterminated_takes_it_once(tmp_path: Path) -> None:
    source = tmp_path / "live.jsonl"
    source.write_bytes(json.dumps(make_tick(0)).encode())  # complete JSON, the newline not written yet
    root = tmp_path / "lake"
    first = run("--root", str(root), "ingest", str(source))
    with open(source, "ab") as f:
        f.write(b"\n" + tick_lines([1]))
    second = run("--root", str(root), "ingest", str(source))
    compact = run("--root", str(root), "compact", "--all")
    tally = reconcile(root, [0, 1])
    record("races", "ingest, newline of the first line arrives, ingest", tally, [first.returncode, second.returncode])
    assert (first.returncode, second.returncode, compact.returncode) == (0, 0, 0)
    assert tally.exact, tally
