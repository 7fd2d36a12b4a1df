"""``ticklake demo`` deletes only a lake it made itself: a live lake, or a folder of other files, is refused
with one line saying what it holds, unless --force (which says first what goes) or --keep."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from tests.conftest import jsonl, tick
from tests.test_cli_errors import fails_with, ingest, run
from ticklake.demo.ownership import MARKER

DEMO = ("demo", "--ticks", "2000", "--contracts", "20")
DEMO_ROWS = 2000 + 9500  # the synthetic ticks and the real EUR/USD quotes
HOW_TO = (
    "nothing deleted; use --force to delete its lake (catalog.sqlite, landing/, lake/), --root for another folder, "
    "or --keep to add the demo's data to it"
)


def contents(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()}


def catalog_state(root: Path) -> tuple[int, int]:
    """The current snapshot and its live rows, read straight from the catalog file."""
    with closing(sqlite3.connect(root / "catalog.sqlite")) as db, db:
        (snapshot,) = db.execute("SELECT max(snapshot_id) FROM snapshots").fetchone()
        (rows,) = db.execute("SELECT sum(rows) FROM files WHERE removed_snapshot IS NULL").fetchone()
    return snapshot, rows


def count_rows(root: Path) -> int:
    done = run("--root", str(root), "sql", "SELECT count(*) AS n FROM ticks", "--format", "csv")
    assert done.returncode == 0, done.stderr
    return int(done.stdout.split()[1])


@pytest.fixture
def live_lake(tmp_path: Path) -> Path:
    """A lake an operator built with the CLI: ticks ingested and compacted, one more segment waiting."""
    root = tmp_path / "lakehouse"
    ingest(root, jsonl([tick("2022-01-07T05:00:00Z", 7), tick("2022-01-07T06:00:00Z", 8, "bid_ask")]))
    assert run("--root", str(root), "compact", "--all").returncode == 0
    ingest(root, jsonl([tick("2022-01-07T09:00:00Z", 9)]))
    return root


def test_a_live_lake_is_refused_and_left_alone(live_lake: Path) -> None:
    before = contents(live_lake)
    data = sum(1 for _ in (live_lake / "lake").rglob("*.parquet"))
    snapshot, rows = catalog_state(live_lake)
    result = run(*DEMO, env={"TICKLAKE_ROOT": str(live_lake)})  # as the README has operators export it
    fails_with(
        result,
        f"Error: lake root {live_lake} holds {len(before)} files ({data} data files, catalog snapshot {snapshot}: "
        f"{rows} rows, 1 landing segment waiting), not just what `ticklake demo` left there: {HOW_TO}",
    )
    assert result.stdout == ""
    assert contents(live_lake) == before


def test_a_folder_of_other_files_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    (root / "notes.txt").write_text("mine")
    fails_with(
        run("--root", str(root), *DEMO),
        f"Error: lake root {root} holds 1 file (0 data files, no catalog, 0 landing segments waiting), "
        f"not just what `ticklake demo` left there: {HOW_TO}",
    )
    assert contents(root) == {"notes.txt": hashlib.sha256(b"mine").hexdigest()}


def test_a_damaged_catalog_is_described_not_raised(live_lake: Path) -> None:
    (live_lake / "catalog.sqlite").write_bytes(b"garbage " * 1000)
    for name in ("catalog.sqlite-wal", "catalog.sqlite-shm"):
        (live_lake / name).unlink(missing_ok=True)
    result = run("--root", str(live_lake), *DEMO)
    assert result.returncode == 1
    assert f"catalog unreadable: catalog {live_lake / 'catalog.sqlite'}: file is not a database, " in result.stderr
    assert result.stderr.count("\n") == 1


def test_keep_and_force_contradict_each_other(tmp_path: Path) -> None:
    fails_with(
        run("--root", str(tmp_path), *DEMO, "--keep", "--force"),
        "Error: give --keep (delete nothing) or --force (delete the lake there), not both",
    )


@pytest.mark.slow
def test_force_says_what_it_deletes_then_deletes_only_the_lake(live_lake: Path) -> None:
    (live_lake / "README.txt").write_text("the operator's notes")
    snapshot, rows = catalog_state(live_lake)
    landing = sum(1 for p in (live_lake / "landing").rglob("*") if p.is_file())
    data = sum(1 for p in (live_lake / "lake").rglob("*") if p.is_file())
    result = run("--root", str(live_lake), *DEMO, "--force")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == (
        f"--force: deleting in {live_lake}: catalog.sqlite (snapshot {snapshot}: {rows} rows), "
        f"landing/ ({landing} files), lake/ ({data} files); 1 other file stays"
    )
    assert (live_lake / "README.txt").read_text() == "the operator's notes"
    assert count_rows(live_lake) == DEMO_ROWS  # the operator's three ticks are gone, as announced


@pytest.mark.slow
def test_the_demo_resets_its_own_lake_and_only_while_nobody_else_wrote_to_it(tmp_path: Path) -> None:
    root = tmp_path / "lakehouse"
    root.mkdir()  # an empty folder is as good as none
    first = run("--root", str(root), *DEMO)
    assert first.returncode == 0, first.stderr
    marker = json.loads((root / MARKER).read_text())
    assert marker["made_by"] == "ticklake demo" and marker["snapshot"] == catalog_state(root)[0]
    assert any(name.startswith("lake/ticks/") for name in marker["files"])

    again = run("--root", str(root), *DEMO)  # its own lake, unchanged: reset without asking
    assert again.returncode == 0, again.stderr
    assert not again.stdout.startswith("--force") and count_rows(root) == DEMO_ROWS

    ingest(root, jsonl([tick("2022-01-07T09:00:00Z", 9)]))  # someone else's data arrives
    refused = run("--root", str(root), *DEMO)
    assert refused.returncode == 1 and "1 landing segment waiting), not just what `ticklake demo` left there" in refused.stderr

    kept = run("--root", str(root), *DEMO, "--keep")  # adds, deletes nothing, and does not adopt the lake
    assert kept.returncode == 0, kept.stderr
    assert run("--root", str(root), *DEMO).returncode == 1
