"""`ticklake repair --rebuild-catalog`: a deleted catalog comes back from the data files with the same
rows, retained segments are not compacted a second time, and an existing catalog is never lost."""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from tests.conftest import jsonl, tick
from tests.maintenance.conftest import backdate, ok, rows_of, ticklake
from tests.maintenance.test_check import findings, live

BARS = "SELECT * FROM bars_1m ORDER BY ALL"


def lose_catalog(root: Path) -> None:
    for name in ("catalog.sqlite", "catalog.sqlite-wal", "catalog.sqlite-shm"):
        (root / name).unlink(missing_ok=True)


def test_a_deleted_catalog_is_rebuilt_with_the_same_rows(lake: Path) -> None:
    ticks, bars = rows_of(lake), rows_of(lake, BARS)
    replaced = sorted(set((lake / "lake").rglob("*.parquet")) - {lake / p for p in live(lake).values()})
    replaced = [p for p in replaced if "bars_1m" not in p.as_posix()]
    lose_catalog(lake)
    result = ok(ticklake(lake, "repair", "--rebuild-catalog"))
    orphans = [p.relative_to(lake).as_posix() for p in replaced]
    assert result.stdout.splitlines()[:-1] == [
        f"orphan: {p}: another file of its partition was kept; `ticklake repair` deletes it" for p in orphans
    ]
    summary = result.stdout.splitlines()[-1]
    assert summary.startswith("rebuilt catalog.sqlite: 7 files (1 bars_1m, 6 ticks), 122 rows, ")
    assert summary.endswith("; 3 retained segments recorded as consumed; 3 orphans, 0 files left out")
    assert (rows_of(lake), rows_of(lake, BARS)) == (ticks, bars)

    for p in replaced:  # the files vacuum had not deleted yet, as old as they are in a real lake
        backdate(p)
    assert [line.split(": ")[0] for line in findings(ticklake(lake, "check").stdout)] == ["orphan"] * 3
    ok(ticklake(lake, "repair"))
    assert findings(ok(ticklake(lake, "check")).stdout) == []


def test_retained_segments_are_recorded_and_not_compacted_again(lake: Path) -> None:
    before = rows_of(lake)
    lose_catalog(lake)
    ok(ticklake(lake, "repair", "--rebuild-catalog"))
    consumed = lake / "landing" / "_consumed"
    for copy in consumed.rglob("*.jsonl"):  # delivered again under the names they were consumed by
        target = lake / "landing" / copy.relative_to(consumed)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(copy, target)
    compacted = ok(ticklake(lake, "compact", "--all")).stdout
    assert compacted.splitlines()[-1] == "compacted 2 hours (0 changed): 0 lines -> 0 stored, 0 quarantined"
    assert rows_of(lake) == before


def test_a_newer_crash_orphan_is_not_kept_over_the_file_the_segments_match(lake: Path) -> None:
    before = rows_of(lake)
    path = lake / live(lake)["tick_type=last/date=2022-01-07/hour=06"]
    table = pq.ParquetFile(path).read()
    crash = path.with_name("9999999999999-000000000000.parquet")  # newer by name, holding rows never committed
    pq.write_table(pa.concat_tables([table, table]), crash)
    lose_catalog(lake)
    result = ok(ticklake(lake, "repair", "--rebuild-catalog"))
    assert f"orphan: {crash.relative_to(lake).as_posix()}: another file of its partition was kept;" in result.stdout
    assert rows_of(lake) == before


def test_without_retained_segments_the_newest_file_is_kept_and_its_hours_are_unreconciled(lake: Path) -> None:
    before = rows_of(lake)
    shutil.rmtree(lake / "landing" / "_consumed")
    lose_catalog(lake)
    result = ok(ticklake(lake, "repair", "--rebuild-catalog"))
    assert "unreconciled hours (their segments are no longer retained): 2022-01-07T05, 2022-01-07T06" in result.stdout
    assert rows_of(lake) == before
    check = findings(ok(ticklake(lake, "check")).stdout)  # orphans young, hours unreconciled: nothing is damaged
    assert (
        "unreconciled: 2022-01-07T05: 0 rows stored by its segments != 69 rows in its live files:"
        " the catalog was rebuilt after its segments were purged"
    ) in check


def test_an_unreadable_data_file_is_left_out(lake: Path) -> None:
    bad = Path(live(lake)["tick_type=mid_point/date=2022-01-07/hour=06"]).with_name("0000000000002-000000000bad.parquet")
    (lake / bad).write_bytes(b"PAR1 not really")
    lose_catalog(lake)
    result = ok(ticklake(lake, "repair", "--rebuild-catalog"))
    [line] = [line for line in result.stdout.splitlines() if line.startswith("left out: ")]
    assert line.startswith(f"left out: {bad.as_posix()}: unreadable (")


def test_an_existing_catalog_is_refused_and_a_damaged_one_moved_aside(lake: Path) -> None:
    catalog = lake / "catalog.sqlite"
    sound = ticklake(lake, "repair", "--rebuild-catalog")
    assert (sound.returncode, sound.stdout) == (1, "")
    assert (
        sound.stderr == f"Error: catalog {catalog}: exists and is sound; --rebuild-catalog only replaces a lost or damaged one\n"
    )
    for extra in lake.glob("catalog.sqlite-*"):
        extra.unlink()
    damaged = b"this is no database, and it is long enough to be read as one" * 100
    catalog.write_bytes(damaged)
    refused = ticklake(lake, "repair", "--rebuild-catalog")
    assert refused.returncode == 1
    assert refused.stderr == f"Error: catalog {catalog}: file is not a database; add --force to move it aside and rebuild it\n"
    assert catalog.read_bytes() == damaged
    forced = ok(ticklake(lake, "repair", "--rebuild-catalog", "--force"))
    [aside] = lake.glob("catalog.sqlite.damaged-*")
    assert forced.stdout.splitlines()[0] == f"moved the damaged catalog aside to {aside.name}"
    assert aside.read_bytes() == damaged
    assert rows_of(lake, "SELECT count(*) AS n FROM ticks") == "n\n99\n"


def sized_ticks(hours: range, n: int, first_size: int) -> list[dict[str, object]]:
    """`n` ticks per hour, each with its own `size`, so every stored row can be told apart."""
    kinds = ("last", "bid_ask", "mid_point")
    return [
        tick(f"2022-01-07T{h:02d}:{i % 60:02d}:{(i * 7) % 60:02d}.{i:06d}Z", 100 + i % 3, kinds[i % 3], size=first_size + k)
        for k, (h, i) in enumerate((h, i) for h in hours for i in range(n))
    ]


PURGE = {"TICKLAKE_SEGMENT_RETENTION_HOURS": "0"}
COUNTS = "SELECT count(*) AS n, count(DISTINCT coalesce(size, bid_size)) AS sizes FROM ticks"


def crashed_merge(tmp_path: Path) -> tuple[Path, list[Path], list[Path], int]:
    """A lake whose segments are purged once compacted, where a compaction of hour 05 was killed
    after writing its merged files: (root, the committed files, the uncommitted merges, ticks in)."""
    root = tmp_path / "lake"
    first, second = sized_ticks(range(5, 7), 30, 1), sized_ticks(range(5, 7), 12, 1000)
    for name, records in (("q0", first), ("q1", second)):
        (tmp_path / f"{name}.jsonl").write_bytes(jsonl(records))
    ok(ticklake(root, "ingest", str(tmp_path / "q0.jsonl"), env=PURGE))
    ok(ticklake(root, "compact", "--all", env=PURGE))
    ok(ticklake(root, "ingest", str(tmp_path / "q1.jsonl"), env=PURGE))
    crashed = ticklake(root, "compact", "--hour", "2022-01-07T05", env={**PURGE, "TICKLAKE_FAULT": "compact.after_data_write"})
    assert crashed.returncode == -signal.SIGKILL
    hour05 = sorted((root / "lake" / "ticks").glob("tick_type=*/date=2022-01-07/hour=05/*.parquet"))
    assert len(hour05) == 6  # the committed file and the uncommitted merge, in each of three partitions
    older, newer = hour05[::2], hour05[1::2]  # names start with their write time
    lose_catalog(root)
    return root, older, newer, len(first) + len(second)


def test_a_crash_orphan_holding_waiting_segments_is_not_kept_once_segments_are_purged(tmp_path: Path) -> None:
    root, _, newer, n = crashed_merge(tmp_path)
    rebuilt = ok(ticklake(root, "repair", "--rebuild-catalog", env=PURGE))
    for p in newer:
        assert f"orphan: {p.relative_to(root).as_posix()}: an uncommitted compaction of segments" in rebuilt.stdout
    ok(ticklake(root, "compact", "--all", env=PURGE))
    assert rows_of(root, COUNTS) == f"n,sizes\n{n},{n}\n"
    ok(ticklake(root, "check"))


def test_a_file_holding_waiting_rows_that_no_other_file_explains_is_a_cannot_fix(tmp_path: Path) -> None:
    root, older, newer, n = crashed_merge(tmp_path)
    for p in older:
        p.unlink()
    rebuilt = ticklake(root, "repair", "--rebuild-catalog", env=PURGE)
    assert rebuilt.returncode == 1
    cannot = [line for line in rebuilt.stdout.splitlines() if line.startswith("cannot fix: ")]
    assert [line.split(": ")[1] for line in cannot] == [p.parent.relative_to(root / "lake/ticks").as_posix() for p in newer]
    assert f"kept {newer[0].relative_to(root).as_posix()}, which already holds the rows of segment landing/" in cannot[0]
    checked = ticklake(root, "check")
    assert checked.returncode == 1
    assert (
        "rows: 2022-01-07T05: the rebuilt catalog kept files already holding the rows of 1 segment then waiting"
        " (1 still waiting, 0 compacted since): their rows count twice once compacted"
    ) in checked.stdout
    stored = n - 12  # hour 06's second ingest still waits
    assert rows_of(root, COUNTS) == f"n,sizes\n{stored},{stored}\n"  # nothing lost, nothing doubled yet
