"""The matrix's rows for a damaged lake: read-only, catalog deleted or corrupt, a data file deleted
or corrupt, the disk full. The behaviour of each is specified elsewhere (tests/test_cli_errors.py,
tests/maintenance/); here each is met through the commands a user runs, and the lake must come
back with every tick exactly once.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.faults.matrix import (
    BAD,
    A,
    B,
    assert_exact,
    catalog_rows,
    check_exit,
    copy_lake,
    error_line,
    landing_files,
    live_paths,
    reconcile,
    record,
    run,
    tick_lines,
)
from tests.mounts import fill, read_only, small_tmpfs
from tests.test_cli_errors import checkpointed, damage

SQL = ("sql", "SELECT count(*) FROM ticks", "--format", "csv", "--no-fresh")  # what is committed


def codes(*results: subprocess.CompletedProcess[str]) -> list[int]:
    return [r.returncode for r in results]


@pytest.mark.slow
def test_read_only_lake_answers_refuses_writes_and_loses_nothing(tmp_path: Path, ingested: Path, inputs: dict[str, Path]) -> None:
    root = copy_lake(ingested, tmp_path / "lake")
    checkpointed(root)  # readers of a read-only folder need the log folded into the file
    with read_only(root) as how:
        query = run("--root", str(root), *SQL)
        compact = run("--root", str(root), "compact", "--all")
        ingest = run("--root", str(root), "ingest", str(inputs["a"]))
        during = reconcile(root, A, len(BAD))
    error_line(compact)
    error_line(ingest)
    after = run("--root", str(root), "compact", "--all")
    tally = reconcile(root, [*A, *B], len(BAD))
    record("damage", f"lake folder read-only ({how}): sql, compact, ingest; writable again: compact", tally,
           codes(query, compact, ingest, after), check_exit(root))  # fmt: skip
    assert (query.returncode, query.stdout.splitlines()[-1]) == (0, str(len(A)))
    assert during.exact and during.stored == len(A)
    assert (compact.returncode, ingest.returncode, after.returncode) == (1, 1, 0), after.stderr
    assert tally.exact, (tally, after.stdout, after.stderr)
    assert_exact(root, tally)


@pytest.mark.parametrize("how", ["deleted", "random bytes"])
def test_lost_catalog_is_rebuilt_and_nothing_is_counted_twice(
    tmp_path: Path, compacted: Path, inputs: dict[str, Path], how: str
) -> None:
    root = copy_lake(compacted, tmp_path / "lake")
    path = checkpointed(root)
    if how == "deleted":
        path.unlink()
    else:
        damage(path, how)
    query = run("--root", str(root), *SQL)
    rebuild = run("--root", str(root), "repair", "--rebuild-catalog", *(["--force"] if how != "deleted" else []))
    compact = run("--root", str(root), "compact", "--all")  # the retained segments are known as consumed
    ingest = run("--root", str(root), "ingest", str(inputs["a"]), str(inputs["b1"]))  # the checkpoints survived
    tally = reconcile(root, [*A, *B], len(BAD))
    checked = check_exit(root)
    record("damage", f"catalog {how}: sql; repair --rebuild-catalog; compact; ingest again", tally,
           codes(query, rebuild, compact, ingest), checked)  # fmt: skip
    error_line(query)
    assert (rebuild.returncode, compact.returncode, ingest.returncode) == (0, 0, 0), rebuild.stdout + rebuild.stderr
    assert "0 appended" in ingest.stdout
    assert_exact(root, tally)
    assert checked == 0


@pytest.mark.parametrize("how", ["deleted", "overwritten"])
def test_lost_data_file_is_recompacted_from_the_retained_segments(tmp_path: Path, compacted: Path, how: str) -> None:
    root = copy_lake(compacted, tmp_path / "lake")
    (victim,) = [p for p in sorted(live_paths(root)) if "/tick_type=bid_ask/" in p and "/hour=06/" in p]
    if how == "deleted":
        (root / victim).unlink()
    else:
        data = bytearray((root / victim).read_bytes())
        data[len(data) // 2] ^= 0xFF
        (root / victim).write_bytes(bytes(data))
    checked_before = check_exit(root)
    query = run("--root", str(root), *SQL)
    repair = run("--root", str(root), "repair", "--drop-lost")
    tally = reconcile(root, [*A, *B], len(BAD))
    checked = check_exit(root)
    exits = [checked_before or 0, *codes(query, repair)]
    record("damage", f"data file {how}: check, sql; repair --drop-lost; check", tally, [*exits, checked], checked)
    assert checked_before == 1
    if how == "deleted":  # a flipped byte inside a page may still decode: only the checksum tells
        error_line(query)
    assert repair.returncode == 0, repair.stdout + repair.stderr
    assert_exact(root, tally)
    assert checked == 0


@pytest.mark.slow
def test_full_disk_at_ingest_and_at_compaction_loses_nothing(tmp_path: Path) -> None:
    """Ingest and compaction each meet a full disk (a 4 MB tmpfs): one line, exit 1; with room again
    the same commands finish, every tick once."""
    with small_tmpfs(tmp_path / "disk", size="4m") as disk:
        root = disk / "lake"
        first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
        first.write_bytes(tick_lines(range(0, 4000)))
        second.write_bytes(tick_lines(range(4000, 8000)))
        assert run("--root", str(root), "ingest", str(first)).returncode == 0
        assert run("--root", str(root), "compact", "--all").returncode == 0
        filler = fill(disk, leave=60_000)
        full_ingest = run("--root", str(root), "ingest", str(second))
        filler.unlink()
        assert not landing_files(root, sealed=False), "no temporary file left behind"
        ingest = run("--root", str(root), "ingest", str(second))
        filler = fill(disk, leave=60_000)
        full_compact = run("--root", str(root), "compact", "--all")
        filler.unlink()
        compact = run("--root", str(root), "compact", "--all")
        tally = reconcile(root, range(8000), 0)
        checked = check_exit(root)
        counted = catalog_rows(root)
        exits = codes(full_ingest, ingest, full_compact, compact)
    record("disk", "disk full at ingest, then at compaction (4 MB tmpfs); each run again with room", tally, exits, checked)
    error_line(full_ingest)
    error_line(full_compact)
    assert exits == [1, 0, 1, 0], [full_ingest.stderr, ingest.stderr, full_compact.stderr, compact.stderr]
    assert tally.exact and tally.stored == counted == 8000, tally
    assert checked == 0
