"""`ticklake archive` killed (-9) at each of its fault points, then run again; two archives at once;
an archive racing a compaction of late ticks into the day it packs.

Each ends with every tick stored once (`reconcile`), the per-contract counts and sums of the lake
before, the bucket holding exactly the objects the catalog names (listed with s3fs below the test's
own prefix: no orphan upload), no replaced local file left, and `check` clean. The lakes start from
the prepared `compacted` lake (one day, three tick types: three day partitions to pack).
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
import uuid
from pathlib import Path
from subprocess import PIPE
from typing import Any

import pytest

import ticklake
from tests.faults.matrix import (
    BAD,
    KILLED,
    REPO,
    A,
    B,
    assert_exact,
    copy_lake,
    live_paths,
    reconcile,
    record,
    run,
    spawn,
    tick_lines,
    ticklake_env,
)
from tests.objectstore import S3Server
from ticklake.access import open_catalog
from ticklake.build.archive import archive_lake
from ticklake.build.compaction import compact_all
from ticklake.catalog.maintenance import stored_files
from ticklake.config import LakeConfig
from ticklake.landing.ingest import ingest_files
from ticklake.maintenance.check import check_lake
from ticklake.storage.objects import S3Access

ARCHIVE_POINTS = ("archive.after_upload", "archive.during_commit", "archive.before_delete")
LATE = range(5000, 5300)  # late ticks for the archived day, every hour and tick type of it
WEEK = "7d"

SUMS = (
    "SELECT tick_type, contract_id, count(*), sum(size), sum(price), sum(bid_price), sum(ask_price)"
    " FROM ticks GROUP BY ALL ORDER BY ALL"
)


def sums(root: Path) -> list[tuple[Any, ...]]:
    """Per tick type and contract: rows and sums (prices are multiples of 1/4: exact in any order)."""
    with ticklake.connect(root) as lake:
        return lake.sql(SUMS).fetchall()


class Lake:
    """One test's lake, its own cold prefix and cache folder, and the commands run on it."""

    def __init__(self, root: Path, prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
        self.root, self.prefix = root, prefix
        self.cache = root.parent / "cache"
        monkeypatch.setenv("TICKLAKE_CACHE_DIR", str(self.cache))  # for the queries of this process
        self.config = LakeConfig(root=root, cache_dir=str(self.cache))
        self.replaced: set[str] = set()

    @property
    def env(self) -> dict[str, str]:
        return {"TICKLAKE_CACHE_DIR": str(self.cache), "TICKLAKE_COLD_URI": self.prefix}

    def archive(self, fault: str | None = None) -> int:
        extra = {"TICKLAKE_FAULT": fault} if fault else {}
        done = run("--root", str(self.root), "archive", "--older-than", WEEK, env={**self.env, **extra})
        assert done.returncode == (KILLED if fault else 0), done.stdout + done.stderr
        return done.returncode

    def land_late(self, seqs: range = LATE) -> None:
        source = self.root.parent / f"late-{seqs.start}.jsonl"
        source.write_bytes(tick_lines(seqs))
        ingest_files(self.config, [source])
        compact_all(self.config)

    def objects(self) -> set[str]:
        """The data objects below the lake's prefix, as the bucket lists them (not the published catalog)."""
        fs = S3Access.from_environment().filesystem()
        key = self.prefix.removeprefix("s3://")
        return {"s3://" + k for k in fs.find(key) if k.endswith(".parquet")} if fs.exists(key) else set()

    def cataloged_objects(self) -> set[str]:
        """The objects the catalog names, in any state."""
        with open_catalog(self.config) as catalog:
            rows = catalog.db.execute("SELECT path FROM files WHERE path LIKE 's3://%'").fetchall()
        return {r[0] for r in rows}

    def local_files(self) -> set[str]:
        return {p.relative_to(self.root).as_posix() for p in (self.root / "lake").rglob("*.parquet")}

    def warm_ticks(self) -> set[str]:
        """The live ticks files on local disk (those an archive replaces)."""
        return {p for p in live_paths(self.root) if p.startswith("lake/ticks/")}

    def settle(self, area: str, fault: str, exits: list[int], seqs: list[int], sums_before: list[tuple[Any, ...]]) -> None:
        """Record the lake's row in the matrix, then assert it exact: every tick once, the sums of before,
        the bucket's data objects exactly those the catalog names, none of `replaced` left, check clean."""
        tally = reconcile(self.root, seqs, len(BAD))
        report = check_lake(LakeConfig(root=self.root, cache_dir=str(self.cache), cold_uri=self.prefix))
        record(area, fault, tally, exits, 0 if report.clean else 1)
        assert_exact(self.root, tally)
        assert report.clean, report.problems
        assert sums(self.root) == sums_before
        assert self.objects() == self.cataloged_objects() == {p for p in live_paths(self.root) if p.startswith("s3://")}
        assert self.warm_ticks() == set(), "every ticks day is one object"
        assert not {p for p in self.replaced if (self.root / p).exists()}, "the replaced local files are deleted"
        with open_catalog(self.config) as catalog:
            rows = {f.path: f.removed_by for f in stored_files(catalog)}
        on_disk = {p.relative_to(self.root).as_posix() for p in (self.root / "lake" / "ticks").rglob("*.parquet")}
        assert on_disk <= set(rows), "no local file the catalog does not know"
        assert "archive" not in rows.values(), "what archive replaced is deleted and forgotten"
        assert (self.root / "_archive" / "uploads.json").read_text() == "[]"

    def before_archive(self) -> list[tuple[Any, ...]]:
        """Note the files the next archive replaces; the sums it must keep."""
        self.replaced = self.warm_ticks()
        return sums(self.root)


@pytest.fixture
def lake(tmp_path: Path, compacted: Path, s3_prefix: str, monkeypatch: pytest.MonkeyPatch) -> Lake:
    return Lake(copy_lake(compacted, tmp_path / "lake"), s3_prefix, monkeypatch)


@pytest.mark.parametrize("point", ARCHIVE_POINTS)
def test_archive_killed_then_rerun_reconciles(lake: Lake, point: str) -> None:
    before = lake.before_archive()
    killed = lake.archive(point)
    again = lake.archive()
    lake.settle("archive", f"kill -9 at {point}", [killed, again], [*A, *B], before)


@pytest.mark.parametrize("point", ARCHIVE_POINTS)
def test_packing_again_killed_then_rerun_reconciles(lake: Lake, point: str) -> None:
    """The day archived, late ticks compacted beside it, and the archive that packs them together killed."""
    archive_lake(lake.config, 7 * 86400.0, to=lake.prefix)
    lake.land_late()
    first_objects = lake.objects()
    before = lake.before_archive()
    killed = lake.archive(point)
    again = lake.archive()
    lake.settle("archive", f"kill -9 at {point}, packing late ticks again", [killed, again], [*A, *B, *LATE], before)
    assert not first_objects & lake.objects(), "the objects packed again are deleted"


# A `ticklake archive` that pauses before its first commit (its object uploaded and verified) until
# the file `go` exists, having written `paused`: the window in which a second run's cleanup used to
# take the upload for a killed run's orphan and delete it, so that the commit named a missing object.
PAUSED_ARCHIVE = """
import sys, time
from pathlib import Path
import ticklake.build.archive as archive
from ticklake.cli import cli
paused, go = Path(sys.argv[1]), Path(sys.argv[2])
commit = archive.commit_once
def commit_after_go(*args):
    if not paused.exists():
        paused.write_text("")
        while not go.exists():
            time.sleep(0.01)
    return commit(*args)
archive.commit_once = commit_after_go
cli.main(args=sys.argv[3:], prog_name="ticklake")
"""


def test_a_second_archive_waits_for_the_first(lake: Lake) -> None:
    """The second (here one with no day old enough to pack, which only cleans up) waits for the first."""
    before = lake.before_archive()
    paused, go = lake.root.parent / "paused", lake.root.parent / "go"
    args = [str(paused), str(go), "--root", str(lake.root), "archive", "--older-than", WEEK]
    first = subprocess.Popen(
        [sys.executable, "-c", PAUSED_ARCHIVE, *args], cwd=REPO, env=ticklake_env(lake.env), stdout=PIPE, stderr=PIPE, text=True
    )
    while not paused.exists() and first.poll() is None:
        time.sleep(0.01)
    second = spawn("--root", str(lake.root), "archive", "--older-than", "36500d", env=lake.env)
    with contextlib.suppress(subprocess.TimeoutExpired):
        second.wait(timeout=5)  # unlocked, it would be done by now, the first's upload deleted
    go.touch()
    outputs = [p.communicate(timeout=120) for p in (first, second)]
    codes = [first.returncode, second.returncode]
    lake.settle("archive", "a second archive while the first's upload is not committed yet", codes, [*A, *B], before)
    assert codes == [0, 0], outputs
    assert outputs[1][0].splitlines()[-1].startswith("archived 0 day partitions"), outputs


def test_two_archives_at_once_are_exact(lake: Lake) -> None:
    before = lake.before_archive()
    runs = [spawn("--root", str(lake.root), "archive", "--older-than", WEEK, env=lake.env) for _ in range(2)]
    outputs = [p.communicate(timeout=120) for p in runs]
    codes = [p.returncode for p in runs]
    lake.settle("archive", "two archives at once", codes, [*A, *B], before)
    assert codes == [0, 0], outputs
    packed = [line for out, _ in outputs for line in out.splitlines() if ": packed " in line]
    assert len(packed) == 3, outputs  # each day partition packed once, by one of them


@pytest.mark.parametrize("archived", [False, True], ids=["warm-day", "archived-day"])
def test_archive_racing_a_compaction_of_late_ticks_is_exact(lake: Lake, archived: bool) -> None:
    """Late ticks for hours of the day being packed, compacted while the archive runs: whichever commits
    second conflicts and works from the new state, so the late ticks end in the object or beside it."""
    seqs = [*A, *B, *LATE]
    if archived:
        archive_lake(lake.config, 7 * 86400.0, to=lake.prefix)
        lake.land_late(range(6000, 6150))
        seqs += range(6000, 6150)
    source = lake.root.parent / "late.jsonl"
    source.write_bytes(tick_lines(LATE))
    ingest_files(lake.config, [source])
    archiving = spawn("--root", str(lake.root), "archive", "--older-than", WEEK, env=lake.env)
    compacting = spawn("--root", str(lake.root), "compact", "--all", env=lake.env)
    outputs = [p.communicate(timeout=120) for p in (archiving, compacting)]
    codes = [archiving.returncode, compacting.returncode]
    assert codes == [0, 0], outputs
    tally = reconcile(lake.root, seqs, len(BAD))
    assert_exact(lake.root, tally)
    before = lake.before_archive()
    codes.append(lake.archive())  # late ticks that ended beside the object are packed now
    day = "archived" if archived else "warm"
    lake.settle("archive", f"archive racing a compaction of late ticks ({day} day), archive again", codes, seqs, before)


def test_a_killed_runs_leftovers_are_cleaned_by_the_next(lake: Lake, s3_env: S3Server) -> None:
    """A run killed while it wrote or uploaded leaves a work folder (and maybe an object the journal names)."""
    work = lake.root / "_archive" / f"packing-{uuid.uuid4().hex[:8]}"
    work.mkdir(parents=True)
    (work / "1-dead.parquet").write_bytes(b"PAR1 half written")
    orphan = f"{lake.prefix}/ticks/tick_type=last/date=2022-01-07/1-dead.parquet"
    S3Access.from_environment().filesystem().pipe_file(orphan.removeprefix("s3://"), b"PAR1 half uploaded")
    (lake.root / "_archive" / "uploads.json").write_text(f'["{orphan}"]')
    lake.archive()
    assert not work.exists()
    assert orphan not in lake.objects()
    assert lake.objects() == lake.cataloged_objects()
