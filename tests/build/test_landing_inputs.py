"""What a producer can put in the landing buffer never stops the other hours: odd folders and
files are named in warnings, reused names are set aside, and the exit codes say what happened."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import jsonl, tick
from tests.test_cli import run


def test_odd_folders_are_warned_about_and_every_real_hour_is_compacted(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    source = tmp_path / "in.jsonl"
    source.write_bytes(jsonl([tick("2022-01-07T05:00:00Z"), tick("2022-01-07T06:00:00Z")]))
    assert run("--root", str(root), "ingest", str(source)).returncode == 0
    base = root / "landing" / "ticks"
    odd = [base / "date=2022-01-07" / "hour=5", base / "date=2022-01-07" / "hour=05.bak", base / "date=2022-13-45" / "hour=05"]
    for folder in odd:
        folder.mkdir(parents=True)
        (folder / "w-000001.jsonl").write_bytes(jsonl([tick()]))
    done = run("--root", str(root), "compact", "--all")
    assert done.returncode == 0, done.stderr
    warnings = sorted(line for line in done.stderr.splitlines() if line.startswith("warning: "))
    assert warnings == sorted(
        [
            f"warning: {odd[0]}: not a landing hour folder (hour=00 ... hour=23); left in place, not compacted",
            f"warning: {odd[1]}: not a landing hour folder (hour=00 ... hour=23); left in place, not compacted",
            f"warning: {odd[2].parent}: not a landing date folder (date=YYYY-MM-DD); left in place, not compacted",
        ]
    )
    assert done.stdout.splitlines()[-1].startswith("compacted 2 hours (2 changed): 2 lines -> 2 stored, 0 quarantined")
    assert all((folder / "w-000001.jsonl").exists() for folder in odd)  # nothing deleted that ticklake did not write
    status = run("--root", str(root), "status")
    assert status.returncode == 0 and status.stdout.startswith("snapshot 2: 2 files, 2 rows"), status.stdout + status.stderr


def test_a_rewritten_source_exits_1_and_appends_nothing(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    source = tmp_path / "day.jsonl"
    source.write_bytes(jsonl([tick(), tick(price=1.0)]))
    assert run("--root", str(root), "ingest", str(source)).returncode == 0
    source.write_bytes(jsonl([tick(), tick(price=2.0)]))
    done = run("--root", str(root), "ingest", str(source))
    assert done.returncode == 1 and done.stdout.startswith("ingested 0 lines: 0 appended")
    (error,) = done.stderr.splitlines()
    assert error.startswith(f"Error: {source}: changed since it was ingested")
    again = run("--root", str(root), "ingest", "--again", str(source))
    assert again.returncode == 0 and again.stdout.startswith("ingested 2 lines: 2 appended")


def test_a_producer_segment_starting_with_a_byte_order_mark_is_read_like_ingest_reads_it(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    folder = root / "landing" / "ticks" / "date=2022-01-07" / "hour=05"
    folder.mkdir(parents=True)
    (folder / "rec-000001.jsonl").write_bytes(b"\xef\xbb\xbf" + jsonl([tick(), tick(price=2.0)]))
    done = run("--root", str(root), "compact", "--all")
    assert done.returncode == 0 and "2 lines -> 2 stored, 0 quarantined" in done.stdout, done.stdout + done.stderr
