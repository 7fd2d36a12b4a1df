"""`ticklake repair` on real damage: leftovers deleted (printed first), index rows rebuilt, lost files
dropped and re-compacted from the retained segments, and the rest reported; then `check` is clean."""

from __future__ import annotations

import re
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

from tests.maintenance.conftest import backdate, ok, rows_of, ticklake
from tests.maintenance.test_check import findings, live

INDEX = (
    "SELECT 'stats', file_id, column_name, min_value, max_value, null_count, NULL FROM file_stats"
    " UNION ALL SELECT 'values', file_id, column_name, value, rows, NULL, NULL FROM file_values"
    " UNION ALL SELECT 'blooms', file_id, column_name, num_bits, num_hashes, NULL, bits FROM file_blooms ORDER BY 1, 2, 3, 4"
)
NOTHING_LEFT = "0 problems left"


def index_rows(root: Path) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(root / "catalog.sqlite")) as db, db:
        return db.execute(INDEX).fetchall()


def test_leftovers_are_printed_then_deleted_and_young_ones_kept(lake: Path) -> None:
    files = live(lake)
    folder = Path(files["tick_type=last/date=2022-01-07/hour=06"]).parent
    orphan = (folder / "0000000000001-00000000dead.parquet").as_posix()
    temp = (folder / ".1796163612932-x.parquet.0123abcd.tmp").as_posix()
    sidecar = "landing/ticks/date=2022-01-07/hour=06/w-000001.arrow"
    young = (folder / "9999999999999-0000000beef0.parquet").as_posix()
    (lake / sidecar).parent.mkdir(parents=True, exist_ok=True)
    for rel, data in ((orphan, b"PAR1 crash"), (temp, b"half"), (sidecar, b"rows"), (young, b"being written")):
        (lake / rel).write_bytes(data)
    for rel in (orphan, temp, sidecar):
        backdate(lake / rel)

    dry = ok(ticklake(lake, "repair", "--dry-run"))
    assert dry.stdout.splitlines() == [
        f"would delete: orphan: {orphan}: is in no snapshot (2h old)",
        f"would delete: temp: {temp}: is a temporary file (2h old)",
        f"would delete: sidecar: {sidecar}: has no segment (2h old)",
        "repair (dry run): would delete 3 files (18 bytes), 0 orphan index rows; 0 files reindexed,"
        " 0 lost files dropped (0 re-compacted, 0 rows gone); 0 problems left",
    ]
    assert all((lake / rel).exists() for rel in (orphan, temp, sidecar, young))

    done = ok(ticklake(lake, "repair"))
    assert done.stdout.splitlines()[:3] == [line.replace("would delete", "will delete") for line in dry.stdout.splitlines()[:3]]
    assert done.stdout.splitlines()[-1].startswith("repair: deleted 3 files (18 bytes)")
    assert [(lake / rel).exists() for rel in (orphan, temp, sidecar, young)] == [False, False, False, True]
    assert findings(ok(ticklake(lake, "check")).stdout)[0].startswith(f"in-flight: {young}: is in no snapshot")


def test_lost_files_are_dropped_and_recompacted_from_retained_segments(lake: Path) -> None:
    before = rows_of(lake)
    bars_before = rows_of(lake, "SELECT * FROM bars_1m ORDER BY ALL")
    files = live(lake)
    deleted, truncated = files["tick_type=last/date=2022-01-07/hour=05"], files["tick_type=mid_point/date=2022-01-07/hour=06"]
    (lake / deleted).unlink()
    with open(lake / truncated, "r+b") as f:
        f.truncate(50)

    refused = ticklake(lake, "repair")
    assert refused.returncode == 1
    assert f"cannot fix: missing: {deleted}: is missing: `ticklake repair --drop-lost` drops it from the catalog" in (
        refused.stdout.splitlines()
    )
    assert refused.stdout.splitlines()[-1].endswith("2 problems left")

    done = ok(ticklake(lake, "repair", "--drop-lost"))
    lines = done.stdout.splitlines()
    assert f"will drop {deleted} and re-compact it from the hour's retained segments (23 rows)" in lines
    assert f"will drop {truncated} and re-compact it from the hour's retained segments (10 rows)" in lines
    assert any(line.startswith("bars_1m 2022-01-07T05: 23 trades -> ") for line in lines)  # the hour's bars follow its trades
    assert lines[-1].endswith("2 lost files dropped (2 re-compacted, 0 rows gone); 0 problems left")
    assert rows_of(lake) == before and rows_of(lake, "SELECT * FROM bars_1m ORDER BY ALL") == bars_before

    pending = findings(ok(ticklake(lake, "check")).stdout)  # the old snapshots that held them wait for vacuum
    assert [line.split(": ")[0:2] for line in pending] == [["pending", deleted], ["pending", truncated]]
    assert pending[0].endswith(
        "is missing; snapshots 3 to 4 hold it (replaced in 5): dropped by repair, the next vacuum expires them"
    )
    vacuumed = ok(ticklake(lake, "vacuum", "--older-than", "7d")).stdout  # lost files go whatever their age
    # Which hour compacted first (snapshot 1 or 2) is up to the parallel workers; 3 to 5 held a lost file.
    assert re.search(
        r"^expired snapshots [12]-5 \([45]\): the files they hold are gone, they can no longer be read$", vacuumed, re.M
    )
    assert findings(ok(ticklake(lake, "check")).stdout) == []


def test_without_retained_segments_the_rows_are_reported_gone_and_counts_still_reconcile(lake: Path) -> None:
    shutil.rmtree(lake / "landing" / "_consumed")  # retention is over
    lost = live(lake)["tick_type=bid_ask/date=2022-01-07/hour=05"]
    count = int(rows_of(lake, "SELECT count(*) AS n FROM ticks").split()[1])
    (lake / lost).unlink()
    done = ok(ticklake(lake, "repair", "--drop-lost"))
    lines = done.stdout.splitlines()
    segment = "landing/ticks/date=2022-01-07/hour=05/ingest-"
    assert lines[0].startswith(f"will drop {lost}: 23 rows are gone (segment {segment}")
    assert lines[0].endswith(" is no longer retained)")
    assert any(re.fullmatch(rf"dropped {lost} in snapshot \d+: 23 rows gone", line) for line in lines)
    assert lines[-1].endswith("1 lost files dropped (0 re-compacted, 23 rows gone); 0 problems left")
    assert rows_of(lake, "SELECT count(*) AS n FROM ticks") == f"n\n{count - 23}\n"
    result = ok(ticklake(lake, "check"))  # the hour's counts allow for the rows dropped
    assert [line.split(": ")[0] for line in findings(result.stdout)] == ["pending"]


def test_index_rows_are_rebuilt_from_the_files(lake: Path) -> None:
    expected = index_rows(lake)
    path = live(lake)["tick_type=last/date=2022-01-07/hour=06"]
    db = sqlite3.connect(lake / "catalog.sqlite")
    db.execute("PRAGMA foreign_keys = OFF")
    (file_id,) = db.execute("SELECT file_id FROM files WHERE path = ?", (path,)).fetchone()
    for table in ("file_stats", "file_values", "file_blooms"):
        db.execute(f"DELETE FROM {table} WHERE file_id = ?", (file_id,))
    db.execute("INSERT INTO file_stats VALUES (4242, 'price', 1, 2, 0)")
    db.commit()
    db.close()
    assert ticklake(lake, "check").returncode == 1
    done = ok(ticklake(lake, "repair"))
    assert done.stdout.splitlines()[:2] == [
        "will delete the index rows of 1 files the catalog no longer has",
        f"will rebuild the index rows of {path} from the file",
    ]
    assert "1 orphan index rows; 1 files reindexed" in done.stdout
    assert index_rows(lake) == expected
    assert findings(ok(ticklake(lake, "check")).stdout) == []
    has = ok(ticklake(lake, "has", "--contract", "103", "--date", "2022-01-07")).stdout  # the inverted index answers again
    assert has.startswith("yes: contract 103 has ")


def test_reindex_rebuilds_every_live_file_identically(lake: Path) -> None:
    expected = index_rows(lake)
    done = ok(ticklake(lake, "repair", "--reindex"))
    assert done.stdout.count("will rebuild the index rows of ") == 7 and "7 files reindexed" in done.stdout
    assert index_rows(lake) == expected


def test_a_lost_bars_file_is_rebuilt_from_the_trades(lake: Path) -> None:
    before = rows_of(lake, "SELECT * FROM bars_1m ORDER BY ALL")
    with closing(sqlite3.connect(lake / "catalog.sqlite")) as db, db:
        (path,) = db.execute("SELECT path FROM files WHERE path LIKE 'lake/bars_1m/%' AND removed_snapshot IS NULL").fetchone()
    (lake / path).write_bytes(b"overwritten")
    done = ok(ticklake(lake, "repair", "--drop-lost"))
    assert f"will drop {path} and rebuild the bars of 2022-01-07T05" in done.stdout.splitlines()
    assert "1 lost files dropped" in done.stdout
    assert rows_of(lake, "SELECT * FROM bars_1m ORDER BY ALL") == before


def test_what_repair_cannot_fix_it_says(lake: Path) -> None:
    (lake / "landing/ticks/date=2022-01-07/hour=5").mkdir(parents=True)
    result = ticklake(lake, "repair")
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "cannot fix: stray: landing/ticks/date=2022-01-07/hour=5/: not a landing hour folder (hour=00 ... hour=23);"
        " not compacted",
        "repair: deleted 0 files (0 bytes), 0 orphan index rows; 0 files reindexed, 0 lost files dropped"
        " (0 re-compacted, 0 rows gone); 1 problems left",
    ]


def test_repair_needs_a_catalog_and_its_options_go_together(lake: Path) -> None:
    for name in ("catalog.sqlite", "catalog.sqlite-wal", "catalog.sqlite-shm"):
        (lake / name).unlink(missing_ok=True)
    result = ticklake(lake, "repair")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        f"Error: lake {lake}: catalog.sqlite is missing while 10 data files exist:"
        " `ticklake repair --rebuild-catalog` rebuilds it\n"
    )
    assert ticklake(lake, "repair", "--force").stderr == "Error: --force only goes with --rebuild-catalog\n"
    assert (
        ticklake(lake, "repair", "--rebuild-catalog", "--dry-run").stderr
        == "Error: --rebuild-catalog takes no other option than --force\n"
    )


def test_parquet_files_ticklake_did_not_write_are_strays_and_never_deleted(lake: Path) -> None:
    saved = lake / "lake" / "backup" / "saved.parquet"  # a user's copy of a real data file
    saved.parent.mkdir()
    shutil.copy2(lake / live(lake)["tick_type=last/date=2022-01-07/hour=05"], saved)
    output = lake / "lake" / "x.parquet"  # a query's result, moved in by hand (`sql --output` refuses lake/)
    ok(ticklake(lake, "sql", "SELECT * FROM ticks", "--output", str(lake.parent / "x.parquet")))
    shutil.move(lake.parent / "x.parquet", output)
    loose = lake / live(lake)["tick_type=last/date=2022-01-07/hour=06"]
    named = loose.with_name("saved.parquet")  # in a partition folder, but not a name ticklake gives
    shutil.copy2(loose, named)
    kept = {p: p.read_bytes() for p in (saved, output, named)}
    for p in kept:
        backdate(p, 30 * 86400)

    stray = "is not a file ticklake writes (data files are <13 digits>-<12 hex>.parquet in partition folders): left alone"
    checked = ticklake(lake, "check")
    assert checked.returncode == 1
    assert findings(checked.stdout) == [f"stray: {p.relative_to(lake).as_posix()}: {stray}" for p in sorted(kept)]
    repaired = ticklake(lake, "repair")
    assert repaired.returncode == 1 and "will delete" not in repaired.stdout
    assert repaired.stdout.splitlines()[-1].startswith("repair: deleted 0 files (0 bytes)")
    vacuumed = ok(ticklake(lake, "vacuum", "--older-than", "0s"))
    assert " 0 leftovers;" in vacuumed.stdout.splitlines()[-1]
    assert {p: p.read_bytes() for p in kept} == kept
