"""`ticklake check` on real lakes with real damage: one exact line per finding, a summary, exit 1."""

from __future__ import annotations

import re
import sqlite3
from contextlib import closing
from pathlib import Path

from tests.maintenance.conftest import backdate, ok, ticklake
from ticklake.build.health import check_files_match_storage, check_hour
from ticklake.catalog import Catalog, Commit, NewFile, hold_lease
from ticklake.config import LakeConfig
from ticklake.datasets import TICKS
from ticklake.storage.layout import parse_hour

H5 = parse_hour("2022-01-07T05")
SUMMARY = re.compile(r"check: (.+); checked (\d+) files \(([\d,]+) bytes\), (\d+) hours, (\d+) segments")


def live(root: Path) -> dict[str, str]:
    """The live ticks file of each partition path, e.g. ``{'tick_type=last/date=2022-01-07/hour=05': 'lake/ticks/...'}``."""
    with Catalog(root / "catalog.sqlite", read_only=True) as catalog:
        ticks = catalog.dataset(TICKS.name)
        assert ticks is not None
        return {f.partition_path: f.path for f in catalog.live_files(ticks.dataset_id)}


def findings(stdout: str) -> list[str]:
    """The finding lines of a check's output (all but the summary)."""
    *lines, summary = stdout.splitlines()
    assert SUMMARY.fullmatch(summary), summary
    return lines


def flip(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_sound_lake_is_clean(lake: Path) -> None:
    result = ok(ticklake(lake, "check"))
    m = SUMMARY.fullmatch(result.stdout.strip())
    assert m is not None and m.group(1) == "clean", result.stdout
    assert (m.group(2), m.group(4), m.group(5)) == ("10", "2", "3")  # 9 tick files (3 replaced by the late merge), 1 bars file


def test_a_missing_root_is_one_line(tmp_path: Path) -> None:
    result = ticklake(tmp_path / "nowhere", "check")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == f"Error: lake {tmp_path / 'nowhere'}: no such folder\n"


def test_deleted_truncated_and_flipped_files_orphans_and_strays(lake: Path) -> None:
    files = live(lake)
    deleted, truncated, flipped = (
        files["tick_type=last/date=2022-01-07/hour=05"],
        files["tick_type=bid_ask/date=2022-01-07/hour=05"],
        files["tick_type=mid_point/date=2022-01-07/hour=06"],
    )
    (lake / deleted).unlink()
    size = (lake / truncated).stat().st_size
    with open(lake / truncated, "r+b") as f:
        f.truncate(size - 10)
    flip(lake / flipped, 100)  # a data page: the footer still reads, the checksum does not match
    orphan = Path(flipped).with_name("0000000000001-aaaaaaaaaaaa.parquet").as_posix()
    (lake / orphan).write_bytes((lake / files["tick_type=last/date=2022-01-07/hour=06"]).read_bytes())
    backdate(lake / orphan)
    temp = Path(deleted).with_name(".x.parquet.0123abcd.tmp").as_posix()
    (lake / temp).write_bytes(b"half")
    backdate(lake / temp)
    (lake / "lake" / "ticks" / "README").write_text("notes")
    (lake / "landing/ticks/date=2022-01-07/hour=5").mkdir(parents=True)
    (lake / "landing/ticks/date=2022-13-45/hour=01").mkdir(parents=True)
    (lake / "landing/ticks/date=2022-01-07/hour=05").mkdir(parents=True, exist_ok=True)
    sidecar = "landing/ticks/date=2022-01-07/hour=05/w-000001.arrow"
    (lake / sidecar).write_bytes(b"rows")
    backdate(lake / sidecar)

    result = ticklake(lake, "check")
    assert result.returncode == 1 and result.stderr == ""
    assert findings(result.stdout) == [
        f"size: {truncated}: has {size - 10:,} bytes, the catalog recorded {size:,}",
        f"missing: {deleted}: is missing",
        f"checksum: {flipped}: has other bytes than were written (its SHA-256 differs from the catalog's)",
        f"orphan: {orphan}: is in no snapshot (2h old)",
        f"temp: {temp}: is a temporary file (2h old)",
        f"sidecar: {sidecar}: has no segment (2h old)",
        "stray: lake/ticks/README: is not a file ticklake writes (data files are <13 digits>-<12 hex>.parquet"
        " in partition folders): left alone",
        "stray: landing/ticks/date=2022-01-07/hour=5/: not a landing hour folder (hour=00 ... hour=23); not compacted",
        "stray: landing/ticks/date=2022-13-45/: not a landing date folder (date=YYYY-MM-DD); not compacted",
    ]
    assert result.stdout.splitlines()[-1].startswith(
        "check: 9 problems (1 checksum, 1 missing, 1 orphan, 1 sidecar, 1 size, 3 stray, 1 temp); checked 10 files"
    )


def test_an_old_file_without_checksum_is_checked_by_size_and_footer(lake: Path) -> None:
    path = live(lake)["tick_type=last/date=2022-01-07/hour=06"]
    with closing(sqlite3.connect(lake / "catalog.sqlite")) as db, db:
        db.execute("UPDATE files SET sha256 = NULL WHERE path = ?", (path,))  # as written before checksums
    size = (lake / path).stat().st_size
    flip(lake / path, size - 6)  # inside the footer's length field
    result = ticklake(lake, "check")
    assert result.returncode == 1
    [line] = findings(result.stdout)
    assert line.startswith(f"unreadable: {path}: has an unreadable Parquet footer (")


def test_index_rows_without_their_file_and_incomplete_index_rows(lake: Path) -> None:
    path = live(lake)["tick_type=bid_ask/date=2022-01-07/hour=06"]
    db = sqlite3.connect(lake / "catalog.sqlite")
    db.execute("PRAGMA foreign_keys = OFF")  # what a hand edit or a foreign tool does
    db.execute("INSERT INTO file_blooms VALUES (9999, 'symbol', 8, 1, x'00')")
    db.execute("DELETE FROM file_values WHERE file_id = (SELECT file_id FROM files WHERE path = ?)", (path,))
    db.commit()
    db.close()
    result = ticklake(lake, "check")
    assert result.returncode == 1
    assert findings(result.stdout) == [
        "index: file_id 9999: has rows in file_blooms but no file",
        f"index: {path}: has incomplete index rows (statistics, inverted index or Bloom filters)",
    ]


def test_two_live_files_in_one_partition_and_counts_that_do_not_reconcile(lake: Path) -> None:
    files = live(lake)
    original = files["tick_type=last/date=2022-01-07/hour=05"]
    twin = original.replace(".parquet", "-twin.parquet")
    (lake / twin).write_bytes((lake / original).read_bytes())
    with Catalog(lake / "catalog.sqlite") as catalog:
        ticks = catalog.ensure_dataset(TICKS)
        [f] = [f for f in catalog.live_files(ticks.dataset_id) if f.path == original]
        copy = NewFile(twin, f.partition_path, f.partition_values, f.rows, f.bytes, f.ts_min, f.ts_max + 3_600_000_000)
        catalog.commit(Commit(ticks.dataset_id, "test", add_files=(copy,)))
    result = ticklake(lake, "check")
    assert result.returncode == 1
    assert findings(result.stdout) == [
        f"index: {twin}: has incomplete index rows (statistics, inverted index or Bloom filters)",
        "overlap: lake/ticks/tick_type=last/date=2022-01-07/hour=05: has 2 live files",
        f"overlap: {twin}: holds times outside its hour",
        f"rows: 2022-01-07T05: 69 rows stored by its segments != {69 + f.rows} rows in its live files",
    ]


def test_a_segment_consumed_twice_is_counted_twice(lake: Path) -> None:
    with closing(sqlite3.connect(lake / "catalog.sqlite")) as db, db:
        (path,) = db.execute("SELECT path FROM segments WHERE hour = '2022-01-07T06'").fetchone()
        db.execute(
            "INSERT INTO segments (dataset_id, path, bytes, sha256, hour, lines, rows_stored, rows_quarantined,"
            " consumed_snapshot) SELECT dataset_id, path, bytes, sha256, hour, lines + 1, rows_stored, rows_quarantined,"
            " consumed_snapshot FROM segments WHERE path = ?",
            (path,),
        )
    result = ticklake(lake, "check")
    assert result.returncode == 1
    assert findings(result.stdout) == [
        f"segment: {path}: consumed 2 times: its rows are counted 2 times",
        "rows: 2022-01-07T06: 61 lines in != 60 stored + 0 quarantined",
        "rows: 2022-01-07T06: 60 rows stored by its segments != 30 rows in its live files",
    ]


def test_work_in_flight_is_reported_but_is_no_damage(lake: Path) -> None:
    files = live(lake)
    young = Path(files["tick_type=last/date=2022-01-07/hour=06"]).with_name("9999999999999-000000000a11.parquet").as_posix()
    (lake / young).write_bytes(b"being written")
    leased = Path(files["tick_type=last/date=2022-01-07/hour=05"]).with_name("9999999999999-000000000b22.parquet").as_posix()
    (lake / leased).write_bytes(b"being written")
    backdate(lake / leased)
    unsealed = "landing/ticks/date=2022-01-07/hour=07/.rec-000001.jsonl.0a1b2c3d.tmp"
    (lake / unsealed).parent.mkdir(parents=True)
    (lake / unsealed).write_bytes(b'{"timestamp": "2022-01-07T07:00:00Z"')
    backdate(lake / unsealed, 7200)  # a producer keeps a segment open for hours
    with Catalog(lake / "catalog.sqlite") as catalog, hold_lease(catalog, "ticks/2022-01-07T05", "compactor"):
        result = ok(ticklake(lake, "check"))
    leased_line, young_line, unsealed_line = findings(result.stdout)
    assert leased_line == f"in-flight: {leased}: is in no snapshot, and lease ticks/2022-01-07T05 is held: left to its holder"
    assert re.fullmatch(rf"in-flight: {young}: is in no snapshot, \d+s old: may be a running process's work", young_line)
    assert unsealed_line == f"in-flight: {unsealed}: is a producer's unsealed segment, 2h old: may be a running process's work"
    assert result.stdout.splitlines()[-1].startswith("check: clean; 3 in-flight; checked 10 files")
    backdate(lake / unsealed, 86400)  # a day without a write: its producer is gone
    result = ticklake(lake, "check")
    assert result.returncode == 1 and f"temp: {unsealed}: is a producer's unsealed segment (26h old)" in findings(result.stdout)


def test_a_lost_or_damaged_catalog(lake: Path) -> None:
    (lake / "catalog.sqlite").rename(lake / "elsewhere.sqlite")
    for extra in lake.glob("catalog.sqlite-*"):
        extra.unlink()
    result = ticklake(lake, "check")
    assert result.returncode == 1
    assert findings(result.stdout) == [
        "catalog: catalog.sqlite: is missing while 10 data files exist: `ticklake repair --rebuild-catalog` rebuilds it"
    ]
    (lake / "catalog.sqlite").write_bytes(b"not a database at all, but long enough to look like a header" * 100)
    result = ticklake(lake, "check")
    assert result.returncode == 1
    assert findings(result.stdout) == [
        "catalog: catalog.sqlite: is damaged (file is not a database):"
        " `ticklake repair --rebuild-catalog --force` moves it aside and rebuilds it"
    ]


def test_an_empty_lake_is_clean(tmp_path: Path) -> None:
    (tmp_path / "lake").mkdir()
    assert ok(ticklake(tmp_path / "lake", "check")).stdout == "check: clean; checked 0 files (0 bytes), 0 hours, 0 segments\n"


def test_the_hour_checks_are_the_same_functions(lake: Path) -> None:
    path = live(lake)["tick_type=bid_ask/date=2022-01-07/hour=05"]
    flip(lake / path, 100)
    config = LakeConfig(root=lake)
    outcome = check_files_match_storage(config, H5)
    message = "has other bytes than were written (its SHA-256 differs from the catalog's)"
    assert not outcome.passed and outcome.message == f"2022-01-07T05: {path} {message}"
    assert [o.passed for o in check_hour(config, H5 + 1)] == [True, True, True]  # hour 06 is sound
    assert f"checksum: {path}: {message}" in ticklake(lake, "check").stdout


def test_checking_changes_nothing(lake: Path) -> None:
    before = {p: p.stat().st_mtime_ns for p in lake.rglob("*") if p.is_file() and "catalog.sqlite" not in p.name}
    ticklake(lake, "check")
    after = {p: p.stat().st_mtime_ns for p in lake.rglob("*") if p.is_file() and "catalog.sqlite" not in p.name}
    assert after == before
