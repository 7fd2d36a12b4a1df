"""kill -9 at every fault point of compaction, rollup, ingest, repair and vacuum, then the same
command again without the fault: the lake reconciles exactly (every tick stored once, the bad
lines in quarantine, the catalog's counts equal to SQL's, `ticklake check` clean). And a
LandingWriter process killed from outside while it appends.

The lakes are prepared once (`tests/faults/conftest.py`) and copied for each fault, so every
kill also meets existing files to replace.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import threading
import time
from pathlib import Path
from typing import IO

import pyarrow.parquet as pq
import pytest

import ticklake
from tests.faults.matrix import (
    BAD,
    HOURS,
    KILLED,
    REPO,
    A,
    B,
    Tally,
    assert_exact,
    check_exit,
    copy_lake,
    landing_files,
    lapse_leases,
    live_paths,
    producer,
    reconcile,
    record,
    run,
    seqs_in,
    tick_lines,
)
from tests.faults.producer import sealed_count
from tests.faults.test_archive_kill import ARCHIVE_POINTS
from tests.interop.test_iceberg import ICEBERG_POINTS

COMPACT_POINTS = ("compact.before_data_write", "compact.after_data_write", "compact.during_commit", "compact.before_retire")
ROLLUP_POINTS = ("rollup.before_data_write", "rollup.after_data_write", "rollup.during_commit", "rollup.after_commit")
INGEST_POINTS = ("ingest.after_segment", "ingest.before_checkpoint")
REPAIR_POINTS = ("repair.during_commit", "drop.during_commit")
# `ticklake.build.commit` kills at "<operation>.during_commit" for these operations' commits.
COMMIT_PATH_POINTS = ("compact.during_commit", "rollup.during_commit", "archive.during_commit", *REPAIR_POINTS)


def product_fault_points() -> set[str]:
    """Every fault point named in the product's source: ``fault_point("x.y")`` literally, and the
    commit path's ``<operation>.during_commit`` for the operations that commit through it."""
    text = "\n".join(p.read_text(encoding="utf-8") for p in (REPO / "lake").rglob("*.py"))
    return set(re.findall(r'fault_point\("([a-z_]+\.[a-z_]+)"\)', text)) | set(COMMIT_PATH_POINTS)


VACUUM_POINTS = tuple(sorted(p for p in product_fault_points() if p.startswith("vacuum.")))


def test_every_fault_point_of_the_product_is_in_the_matrix() -> None:
    covered = set(
        COMPACT_POINTS + ROLLUP_POINTS + INGEST_POINTS + REPAIR_POINTS + VACUUM_POINTS + ARCHIVE_POINTS + ICEBERG_POINTS
    )
    assert product_fault_points() <= covered, product_fault_points() - covered


@pytest.mark.parametrize("point", COMPACT_POINTS)
def test_compaction_killed_then_rerun_reconciles(tmp_path: Path, ingested: Path, point: str) -> None:
    root = copy_lake(ingested, tmp_path / "lake")
    killed = run("--root", str(root), "compact", "--all", env={"TICKLAKE_FAULT": point})
    assert killed.returncode == KILLED, killed.stderr
    again = run("--root", str(root), "compact", "--all")
    assert again.returncode == 0, again.stderr
    tally = reconcile(root, [*A, *B], len(BAD))
    checked = check_exit(root)
    record("compaction", f"kill -9 at {point}", tally, [killed.returncode, again.returncode], checked)
    assert_exact(root, tally)
    assert checked == 0
    assert landing_files(root, sealed=True) == [], "consumed segments are retired"


@pytest.mark.parametrize("point", INGEST_POINTS)
def test_ingest_killed_then_rerun_reconciles(tmp_path: Path, landed: Path, inputs: dict[str, Path], point: str) -> None:
    root = copy_lake(landed, tmp_path / "lake")
    sources = [str(inputs["b1"]), str(inputs["b2"])]
    killed = run("--root", str(root), "ingest", *sources, env={"TICKLAKE_FAULT": point})
    assert killed.returncode == KILLED, killed.stderr
    again = run("--root", str(root), "ingest", *sources)
    # Exit 1 for the five bad lines, reported again (quarantined once); the source is no rewrite.
    assert again.returncode == 1 and "5 of " in again.stderr and "changed since" not in again.stderr, again.stderr
    compact = run("--root", str(root), "compact", "--all")
    assert compact.returncode == 0, compact.stderr
    third = run("--root", str(root), "ingest", *sources)
    tally = reconcile(root, [*A, *B], len(BAD))
    checked = check_exit(root)
    record(
        "ingest",
        f"kill -9 at {point}",
        tally,
        [killed.returncode, again.returncode, compact.returncode, third.returncode],
        checked,
    )
    assert_exact(root, tally)
    assert checked == 0
    assert third.returncode == 0 and "0 appended" in third.stdout, third.stdout + third.stderr


def bars_tally(root: Path) -> Tally:
    """The bars against the trades they come from: every trade counted in exactly one bar."""
    with ticklake.connect(root) as lake:
        trades = lake.sql("SELECT count(*) FROM ticks WHERE tick_type = 'last'").fetchone()
        counted, doubled = lake.sql(
            "SELECT coalesce(sum(trades), 0), count(*) - count(DISTINCT (contract_id, minute)) FROM bars_1m"
        ).fetchone()
        differ = lake.sql(
            """SELECT count(*) FROM (
                   SELECT contract_id, date_trunc('minute', timestamp) AS minute, count(*) AS trades, sum(size) AS volume
                   FROM ticks WHERE tick_type = 'last' GROUP BY ALL
               ) t FULL JOIN bars_1m b USING (contract_id, minute)
               WHERE t.trades IS DISTINCT FROM b.trades OR t.volume IS DISTINCT FROM b.volume"""
        ).fetchone()
    n = int(trades[0])
    return Tally(n, int(counted), 0, int(doubled), max(0, n - int(counted)), int(differ[0]))


@pytest.mark.parametrize("point", ROLLUP_POINTS)
def test_rollup_killed_then_rerun_reconciles(tmp_path: Path, compacted: Path, point: str) -> None:
    root = copy_lake(compacted, tmp_path / "lake")
    hours = [f"--hour={h}" for h in HOURS]
    killed = run("--root", str(root), "rollup", *hours, env={"TICKLAKE_FAULT": point})
    assert killed.returncode == KILLED, killed.stderr
    again = run("--root", str(root), "rollup", *hours)
    assert again.returncode == 0, again.stderr
    tally = bars_tally(root)
    checked = check_exit(root)
    record("rollup", f"kill -9 at {point} (bars vs trades)", tally, [killed.returncode, again.returncode], checked)
    assert tally.exact and tally.stored == tally.ticks_in == 1000, tally
    assert checked == 0
    assert reconcile(root, [*A, *B], len(BAD)).exact
    assert run("--root", str(root), "rollup", *hours).stdout.count("up to date") == len(HOURS)


def age_files(folder: Path, seconds: float) -> None:
    """Make every file below `folder` look `seconds` old (leftovers count as crash debris only when old)."""
    then = time.time() - seconds
    for path in folder.rglob("*"):
        if path.is_file():
            os.utime(path, (then, then))


@pytest.fixture(scope="module")
def littered(tmp_path_factory: pytest.TempPathFactory, compacted: Path) -> Path:
    """`compacted` plus two old crash orphans (a rollup killed after writing its file, twice), so a
    vacuum has replaced files to delete and a kill can fall between two leftovers."""
    root = copy_lake(compacted, tmp_path_factory.mktemp("littered") / "lake")
    for _ in range(2):
        orphan = run("--root", str(root), "rollup", f"--hour={HOURS[0]}", env={"TICKLAKE_FAULT": "rollup.after_data_write"})
        assert orphan.returncode == KILLED, orphan.stderr
    age_files(root / "lake", 2 * 3600)
    return root


@pytest.mark.parametrize("point", VACUUM_POINTS)
def test_vacuum_killed_then_rerun_reconciles(tmp_path: Path, littered: Path, point: str) -> None:
    root = copy_lake(littered, tmp_path / "lake")
    vacuum = ("vacuum", "--older-than", "0s")
    killed = run("--root", str(root), *vacuum, env={"TICKLAKE_FAULT": point})
    assert killed.returncode == KILLED, killed.stderr
    again = run("--root", str(root), *vacuum)
    assert again.returncode == 0, again.stderr
    tally = reconcile(root, [*A, *B], len(BAD))
    checked = check_exit(root)
    record("vacuum", f"kill -9 at {point}", tally, [killed.returncode, again.returncode], checked)
    assert_exact(root, tally)
    assert checked == 0
    on_disk = {p.relative_to(root).as_posix() for p in (root / "lake").rglob("*.parquet")}
    assert on_disk == live_paths(root), "vacuum leaves exactly the live files"
    assert "freed 0 bytes" in run("--root", str(root), *vacuum).stdout


def lose_file(root: Path, hour: str, tick_type: str = "last") -> list[int]:
    """Delete the live ticks file of one partition; return the sequence numbers it held."""
    date, hh = hour.split("T")
    folder = root / "lake" / "ticks" / f"tick_type={tick_type}" / f"date={date}" / f"hour={hh}"
    (path,) = [p for p in folder.glob("*.parquet") if p.relative_to(root).as_posix() in live_paths(root)]
    held = [int(s) for s in pq.read_table(path, columns=["size"]).column("size").to_pylist()]
    path.unlink()
    return held


@pytest.mark.parametrize("point", REPAIR_POINTS)
def test_repair_killed_then_rerun_reconciles(tmp_path: Path, compacted: Path, point: str) -> None:
    """A lost data file, and repair --drop-lost killed in its commit: re-compacted from the retained
    segments (repair), or, with those purged, dropped with its rows reported gone (drop)."""
    root = copy_lake(compacted, tmp_path / "lake")
    held = lose_file(root, HOURS[1])
    gone: list[int] = []
    if point.startswith("drop."):  # the hour's retained segments purged: its rows cannot come back
        shutil.rmtree(root / "landing" / "_consumed" / "ticks" / f"date={HOURS[1][:10]}" / f"hour={HOURS[1][11:]}")
        gone = held
    killed = run("--root", str(root), "repair", "--drop-lost", env={"TICKLAKE_FAULT": point})
    assert killed.returncode == KILLED, killed.stderr
    # The killed repair's lease on the hour lapses one TTL (a minute) later: until then a rerun
    # leaves the hour alone and says so.
    waiting = run("--root", str(root), "repair", "--drop-lost")
    assert waiting.returncode == 1 and "run repair again" in waiting.stdout, waiting.stdout + waiting.stderr
    lapse_leases(root)
    again = run("--root", str(root), "repair", "--drop-lost")
    tally = reconcile(root, sorted((set(A) | set(B)) - set(gone)), len(BAD))
    checked = check_exit(root)
    what = "re-compacted" if not gone else f"{len(gone)} rows reported gone"
    exits = [killed.returncode, waiting.returncode, again.returncode]
    record("repair", f"kill -9 at {point} (lost file {what})", tally, exits, checked)
    assert again.returncode == 0, again.stdout + again.stderr
    assert_exact(root, tally)
    assert checked == 0
    if gone:
        assert f"{len(gone):,} rows gone" in again.stdout, again.stdout


def read_lines_into(stream: IO[str], lines: list[str]) -> threading.Thread:
    """Collect a process's output lines as they come (the test decides when to kill it)."""
    thread = threading.Thread(target=lambda: lines.extend(iter(stream.readline, "")), daemon=True)
    thread.start()
    return thread


def test_writer_killed_mid_append_keeps_exactly_its_sealed_ticks(tmp_path: Path) -> None:
    """A LandingWriter process SIGKILLed while it has unsealed data: everything it sealed is stored
    once, nothing unsealed appears; a torn temporary file (a producer killed inside a write) neither;
    vacuum sweeps both kinds once they are abandoned."""
    root = tmp_path / "lake"
    lines: list[str] = []
    with producer(root, "rec-1", 0, seconds=0, batch=1000, seal_every=4) as writer:
        reader = read_lines_into(writer.stdout, lines)  # type: ignore[arg-type]
        deadline = time.monotonic() + 60  # a bound for a stuck producer, not a timing assertion
        while time.monotonic() < deadline and writer.poll() is None:
            if sealed_count("".join(lines)) >= 8000 and any(p.stat().st_size for p in landing_files(root, sealed=False)):
                break  # unsealed ticks on disk: kill now
            time.sleep(0.01)
        os.kill(writer.pid, signal.SIGKILL)
        assert writer.wait() == KILLED, writer.stderr.read() if writer.stderr else ""
        reader.join()
    reported = sealed_count("".join(lines))
    torn = landing_files(root, sealed=True)[0].parent / ".rec-2-000001.jsonl.0badf00d.tmp"
    torn.write_bytes(tick_lines(range(10**6, 10**6 + 10)) + tick_lines([10**6 + 10])[:40])

    sealed = seqs_in(landing_files(root, sealed=True))
    unsealed_files = landing_files(root, sealed=False)
    unsealed = seqs_in(unsealed_files)
    cut = sum(1 for p in unsealed_files if not p.read_bytes().endswith(b"\n"))
    assert reported >= 8000 and len(unsealed_files) >= 2 and cut >= 1
    assert set(range(reported)) <= set(sealed), "every tick the writer saw sealed is in a sealed segment"
    assert len(sealed) == len(set(sealed)) and not set(sealed) & set(unsealed)

    compact = run("--root", str(root), "compact", "--all")
    tally = reconcile(root, sealed)
    checked = check_exit(root)
    assert compact.returncode == 0, compact.stderr
    assert tally.exact and tally.stored >= reported, tally
    assert checked == 0
    assert landing_files(root, sealed=False) == unsealed_files, "compaction leaves unsealed files alone"

    # Abandoned for more than a day, unsealed files are crash debris that vacuum sweeps.
    age = time.time() - 2 * 86400
    for path in unsealed_files:
        os.utime(path, (age, age))
    vacuum = run("--root", str(root), "vacuum", "--older-than", "1d")
    assert vacuum.returncode == 0, vacuum.stderr
    assert landing_files(root, sealed=False) == []
    after = reconcile(root, sealed)
    fault = f"LandingWriter SIGKILLed with {len(unsealed_files) - 1} unsealed files, plus one torn mid-line; then vacuum"
    record("writer", fault, after, [KILLED, compact.returncode, vacuum.returncode], check_exit(root))
    assert after.exact and after.stored == tally.stored
