"""A damaged catalog, a damaged lake, a full disk, a read-only folder: as a user meets them on the command line.

Each is a real process of ``ticklake`` over real files; each failure is one line, ``Error: ...``,
exit status 1, no traceback, and nothing is lost.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from tests.conftest import jsonl, tick
from tests.mounts import fill, read_only, small_tmpfs

STATUS = "status"
HAS = ("has", "--contract", "11", "--date", "2022-01-07")
SQL = ("sql", "SELECT count(*) AS n FROM ticks", "--format", "csv")
COMPACT = ("compact", "--all")
REBUILD = "rebuild it with `ticklake repair --rebuild-catalog`"


def run(*args: str, env: dict[str, str] | None = None, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``ticklake ARGS`` in a new process, with no TICKLAKE_* setting but those in `env`."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TICKLAKE_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "ticklake.cli", *args],
        env=full_env,
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        timeout=120,
    )


def fails_with(result: subprocess.CompletedProcess[str], line: str) -> None:
    """Exit status 1 and exactly one line on stderr: `line`."""
    assert (result.returncode, result.stderr) == (1, line + "\n"), result.stderr


def ticks_of_hour(hour: int, n: int, seed: int = 1) -> bytes:
    rng = random.Random(seed)
    return jsonl(
        tick(
            f"2022-01-07T{hour:02d}:{i % 60:02d}:{i % 59:02d}.{i:06d}Z",
            rng.randrange(1, 60),
            rng.choice(["last", "bid_ask", "mid_point"]),
            symbol=f"S{rng.randrange(500)}",
            exchange="NYSE",
        )
        for i in range(n)
    )


def ingest(root: Path, data: bytes) -> None:
    done = run("--root", str(root), "ingest", "-", stdin=data)
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A lake built as a user builds one: two hours ingested and compacted with the CLI."""
    root = tmp_path_factory.mktemp("cli-errors") / "lake"
    ingest(root, jsonl([tick("2022-01-07T05:00:00Z", 11), tick("2022-01-07T06:00:00Z", 22, "bid_ask")]))
    ingest(root, ticks_of_hour(7, 3000))
    done = run("--root", str(root), *COMPACT)
    assert done.returncode == 0, done.stderr
    return root


@pytest.fixture
def lake(template: Path, tmp_path: Path) -> Path:
    root = tmp_path / "lake"
    shutil.copytree(template, root)
    return root


def snapshot_of(root: Path) -> dict[str, str]:
    """Every file below `root` with the SHA-256 of its content; not the catalog's -shm, nor an empty -wal:
    connections create and remove those as they come and go."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "catalog.sqlite-shm" and not (p.name == "catalog.sqlite-wal" and not p.stat().st_size)
    }


def checkpointed(root: Path) -> Path:
    path = root / "catalog.sqlite"
    # Closed before -wal and -shm go (the context manager of a connection only commits): an open one
    # keeps the deleted WAL index, which later connections of this process to the file would share.
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for end in ("-wal", "-shm"):
        path.with_name(path.name + end).unlink(missing_ok=True)
    return path


# --- a damaged catalog ---------------------------------------------------------------------------


def damage(path: Path, how: str) -> str:
    """Damage the catalog file `how`; return the message SQLite's finding becomes."""
    size = path.stat().st_size
    if how == "random bytes":
        path.write_bytes(random.Random(5).randbytes(size))
        return "file is not a database"
    if how == "truncated":
        os.truncate(path, size // 2)
        return "database disk image is malformed"
    if how == "zero bytes":
        path.write_bytes(b"")
        return "empty file (0 bytes), not a catalog"
    with closing(sqlite3.connect(path)) as db, db:  # a page overwritten in the middle: the root page of `files`
        (page,) = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'files'").fetchone()
    with open(path, "r+b") as f:
        f.seek((page - 1) * 4096)
        f.write(random.Random(page).randbytes(4096))
    return "database disk image is malformed"


@pytest.mark.parametrize("how", ["random bytes", "truncated", "zero bytes", "page overwritten"])
def test_a_damaged_catalog_is_one_line_from_every_command(lake: Path, how: str) -> None:
    path = checkpointed(lake)
    message = damage(path, how)
    before = path.read_bytes()
    commands: list[tuple[str, ...]] = [(STATUS,), SQL]
    if how != "page overwritten":  # these two read no page of `files`: they may well succeed
        commands += [HAS, COMPACT]
    for command in commands:
        fails_with(run("--root", str(lake), *command), f"Error: catalog {path}: {message}")
    assert path.read_bytes() == before
    verbose = run("--root", str(lake), "--verbose", STATUS)
    assert verbose.returncode == 1 and verbose.stderr.startswith("Traceback")
    assert verbose.stderr.splitlines()[-1] == f"Error: catalog {path}: {message}"


def test_a_deleted_catalog_is_not_an_empty_lake(lake: Path) -> None:
    for name in ("catalog.sqlite", "catalog.sqlite-wal", "catalog.sqlite-shm"):
        (lake / name).unlink(missing_ok=True)
    files = sum(1 for _ in (lake / "lake").rglob("*.parquet"))
    ingest(lake, ticks_of_hour(8, 10))  # new data waiting: compaction would start a catalog without the old files
    line = f"Error: {lake}: no catalog.sqlite but {files} data files under lake/ — {REBUILD}"
    for command in ((STATUS,), SQL, HAS, COMPACT):
        fails_with(run("--root", str(lake), *command), line)
    assert not (lake / "catalog.sqlite").exists()


# --- a damaged lake root -------------------------------------------------------------------------


def test_a_root_that_is_a_file(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    root.write_text("not a folder")
    for command in ((STATUS,), SQL, HAS, COMPACT, ("demo", "--ticks", "100")):
        fails_with(run(*command, env={"TICKLAKE_ROOT": str(root)}), f"Error: lake root {root} is a file, not a folder")
    assert root.read_text() == "not a folder"


def test_a_root_that_does_not_exist(tmp_path: Path) -> None:
    root = tmp_path / "nowhere"
    for command in ((STATUS,), SQL, HAS):
        fails_with(run("--root", str(root), *command), f"Error: no lake at {root} (no such folder, so no catalog.sqlite)")
    assert not root.exists()


# --- a read-only lake ----------------------------------------------------------------------------


@pytest.fixture
def read_only_lake(lake: Path) -> Iterator[tuple[Path, str]]:
    """The lake after every connection closed (no -wal, no -shm), made read-only; yields it and how."""
    checkpointed(lake)
    ingest(lake, ticks_of_hour(9, 5))  # a segment waiting, so compaction has something to write
    with read_only(lake) as how:
        yield lake, how


@pytest.mark.slow
def test_a_read_only_lake_answers_queries(read_only_lake: tuple[Path, str], template: Path) -> None:
    lake, _ = read_only_lake
    for command in ((STATUS,), (*SQL, "--no-fresh"), HAS):  # what is committed: the template's answers
        there, here = run("--root", str(template), *command), run("--root", str(lake), *command)
        assert here.returncode == 0, here.stderr
        if command != (STATUS,):
            assert here.stdout == there.stdout
    assert run("--root", str(lake), *SQL, "--no-fresh").stdout == "n\n3002\n"
    assert run("--root", str(lake), *SQL).stdout == "n\n3007\n"  # and the 5 ticks of the sealed segment (fresh)
    assert "1 sealed segments" in run("--root", str(lake), STATUS).stdout


@pytest.mark.slow
def test_writing_to_a_read_only_lake_names_the_path(read_only_lake: tuple[Path, str]) -> None:
    lake, how = read_only_lake
    before = snapshot_of(lake)
    path = lake / "catalog.sqlite"
    reason = f"{lake} is on a read-only file system" if how == "read-only mount" else f"folder {lake} is not writable"
    fails_with(run("--root", str(lake), *COMPACT), f"Error: catalog {path}: read-only ({reason})")
    result = run("--root", str(lake), "ingest", "-", stdin=ticks_of_hour(9, 5, seed=2))
    assert result.returncode == 1 and len(result.stderr.splitlines()) >= 1
    last = result.stderr.splitlines()[-1]
    assert last.startswith(f"Error: {lake}/") and "Traceback" not in result.stderr
    if how == "read-only mount":
        assert last.endswith("Read-only file system")
    assert snapshot_of(lake) == before


# --- a full disk (a 2 MB tmpfs) ------------------------------------------------------------------


def files_below(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*") if p.is_file()}


@pytest.mark.slow
def test_a_full_disk_at_the_first_compaction_leaves_no_catalog(tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "disk") as disk:
        root = disk / "lake"
        ingest(root, ticks_of_hour(5, 2000))
        landed = files_below(root)
        filler = fill(disk, leave=40_000)  # less than a new, migrated catalog needs
        fails_with(run("--root", str(root), *COMPACT), f"Error: catalog {root / 'catalog.sqlite'}: database or disk is full")
        assert files_below(root) == landed  # no catalog.sqlite, no temporary file, segments in place
        filler.unlink()
        done = run("--root", str(root), *COMPACT)
        assert done.returncode == 0, done.stderr
        assert run("--root", str(root), *SQL).stdout == "n\n2000\n"


@pytest.mark.slow
@pytest.mark.parametrize("leave", [20_000, 120_000])
def test_a_full_disk_in_a_later_compaction_loses_nothing(tmp_path: Path, leave: int) -> None:
    with small_tmpfs(tmp_path / "disk") as disk:
        root = disk / "lake"
        ingest(root, ticks_of_hour(5, 10))
        assert run("--root", str(root), *COMPACT).returncode == 0
        ingest(root, ticks_of_hour(6, 3000, seed=2))
        before = snapshot_of(root)
        status = run("--root", str(root), STATUS).stdout
        filler = fill(disk, leave=leave)
        result = run("--root", str(root), *COMPACT)
        assert result.returncode == 1 and len(result.stderr.splitlines()) == 1, result.stderr
        # Which write meets the full disk first depends on the room left: a data file or the catalog's commit.
        line = result.stderr.strip()
        data_file = rf"{re.escape(str(root))}/lake/ticks/tick_type=\w+/date=2022-01-07/hour=06/[\w-]+\.parquet"
        assert re.fullmatch(rf"Error: {data_file}: cannot write: .*No space left on device", line) or line in (
            f"Error: catalog {root / 'catalog.sqlite'}: database or disk is full",
            f"Error: catalog {root / 'catalog.sqlite'}: disk I/O error",
        ), line
        filler.unlink()
        assert snapshot_of(root) == before  # the catalog as it was, the segments in place, no partial file
        assert run("--root", str(root), STATUS).stdout == status
        done = run("--root", str(root), *COMPACT)
        assert done.returncode == 0, done.stderr
        assert json.loads(run("--root", str(root), "sql", "SELECT count(*) AS n FROM ticks", "--format", "json").stdout) == {
            "n": 3010
        }


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ("vacuum", "--older-than", "3000000d"),
            "Error: --older-than '3000000d': longer than the lake can be old (at most 36500d)",
        ),
        (
            ("vacuum", "--older-than", " 5s"),
            "Error: --older-than ' 5s': expected a whole number followed by s, m, h or d (e.g. 0s, 90m, 36h, 7d)",
        ),
        (
            ("sql", "--snapshot", "99999999999999999999999", "SELECT 1"),
            "Error: lake {root}: no snapshot 99999999999999999999999 (snapshots are 1 to 3)",
        ),
        (
            ("sql", "--as-of", "0001-01-01T00:00:00+01:00", "SELECT 1"),
            "Error: as-of '0001-01-01T00:00:00+01:00': out of range; expected an ISO-8601 time with Z or an offset"
            " (2022-01-07T06:30:00Z, 2022-01-07T01:30:00-05:00) or a date (2022-01-07)",
        ),
        (("compact", "--hour", "0001-01-01T00"), "Error: hour '0001-01-01T00': outside 1970-2099, the years ticks may have"),
        (("rollup", "--hour", "2100-01-01T00"), "Error: hour '2100-01-01T00': outside 1970-2099, the years ticks may have"),
    ],
)
def test_out_of_range_values_are_one_line_errors(lake: Path, args: tuple[str, ...], line: str) -> None:
    fails_with(run("--root", str(lake), *args), line.format(root=lake))
