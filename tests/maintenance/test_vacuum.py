"""`ticklake vacuum`: late-data merges stop growing the lake, pinned readers keep their snapshot,
expired snapshots are refused, durations are checked, and the Dagster `vacuum_job` does the same."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from datetime import date, time
from pathlib import Path

import pytest
from dagster import instance_for_test

from tests.maintenance.conftest import backdate, ok, rows_of, ticklake
from tests.maintenance.test_check import findings, live
from ticklake.config import LakeConfig
from ticklake.demo.synthetic import make_contracts, synthetic_ticks, to_jsonl
from ticklake.errors import NotFoundError
from ticklake.maintenance.disk import tree_bytes
from ticklake.pipelines.definitions import build_definitions
from ticklake.pipelines.jobs import build_vacuum_job
from ticklake.pipelines.resources import LakeResource
from ticklake.pipelines.settings import PipelineSettings
from ticklake.query.connection import LakeConnection

FORMS = "expected a whole number followed by s, m, h or d (e.g. 0s, 90m, 36h, 7d)"


def live_bytes(root: Path) -> int:
    return sum((root / p).stat().st_size for p in live(root).values()) + sum(
        p.stat().st_size for p in (root / "lake" / "bars_1m").rglob("*.parquet")
    )


def synthetic_hour(root: Path, name: str, n: int, seed: int) -> None:
    """Ingest `n` realistic ticks (300 contracts, Zipf activity, random walks) of 2022-01-07T15."""
    contracts = make_contracts(300, seed=7)
    table = synthetic_ticks(date(2022, 1, 7), contracts, n, seed, session=(time(15, 0), time(15, 59, 59)))
    source = root.parent / f"{name}.jsonl"
    source.write_bytes(to_jsonl(table))
    ok(ticklake(root, "ingest", str(source)))


@pytest.mark.slow
def test_ten_late_merges_grow_the_lake_until_vacuum_takes_it_back_to_one_version(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    synthetic_hour(root, "hour", 100_000, seed=1)
    ok(ticklake(root, "compact", "--all"))
    one_version = tree_bytes(root / "lake")
    for merge in range(10):
        synthetic_hour(root, f"late-{merge}", 2_000, seed=100 + merge)
        ok(ticklake(root, "compact", "--all"))
    before, catalog_before = tree_bytes(root / "lake"), (root / "catalog.sqlite").stat().st_size
    rows = rows_of(root, "SELECT count(*), sum(size), round(sum(bid_price), 2) FROM ticks")
    result = ok(ticklake(root, "vacuum", "--older-than", "0s"))
    after, catalog_after = tree_bytes(root / "lake"), (root / "catalog.sqlite").stat().st_size
    print(
        f"\n10 late merges of one hour: lake/ {one_version:,} bytes after the first compaction,"
        f" {before:,} before vacuum, {after:,} after `vacuum --older-than 0s`;"
        f" catalog.sqlite {catalog_before:,} -> {catalog_after:,} bytes"
    )
    lines = result.stdout.splitlines()
    assert re.fullmatch(r"deleted 30 replaced data files \([\d,]+ bytes\): replaced before .+", lines[0])
    assert lines[1] == "expired snapshots 1-10 (10): the files they hold are gone, they can no longer be read"
    assert after == live_bytes(root) and before > 8 * after  # eleven versions of the hour, then one
    assert rows_of(root, "SELECT count(*), sum(size), round(sum(bid_price), 2) FROM ticks") == rows
    assert findings(ok(ticklake(root, "check")).stdout) == []
    # Once vacuumed, each further merge leaves one version behind, and the next vacuum takes it.
    synthetic_hour(root, "later", 2_000, seed=99)
    ok(ticklake(root, "compact", "--all"))
    ok(ticklake(root, "vacuum", "--older-than", "0s"))
    assert tree_bytes(root / "lake") == live_bytes(root) < after * 1.05
    assert (root / "catalog.sqlite").stat().st_size == catalog_after  # freed pages are reused


def test_an_expired_snapshot_is_refused(lake: Path) -> None:
    assert rows_of(lake, "SELECT count(*) AS n FROM ticks") == "n\n99\n"
    ok(ticklake(lake, "vacuum", "--older-than", "0s"))
    refused = ticklake(lake, "sql", "SELECT count(*) FROM ticks", "--snapshot", "2")
    assert refused.returncode == 1
    assert re.fullmatch(
        rf"Error: lake {re.escape(str(lake))}: snapshot 2 was expired by vacuum at \S+: its files are gone\n", refused.stderr
    )
    assert ok(ticklake(lake, "sql", "SELECT count(*) AS n FROM ticks", "--snapshot", "3", "--format", "csv")).stdout == "n\n99\n"
    listed = [json.loads(line) for line in ok(ticklake(lake, "snapshots", "--format", "json")).stdout.splitlines()]
    expired = {s["snapshot"] for s in listed if s["expired_at"]}
    assert 2 in expired and 3 not in expired and listed[-1]["expired_at"] is None  # what is refused is listed expired


def test_a_pinned_reader_keeps_the_files_of_its_snapshot(lake: Path) -> None:
    config = LakeConfig(root=lake)
    replaced = sorted(set((lake / "lake").rglob("*.parquet")) - {lake / p for p in live(lake).values()})
    replaced = [p for p in replaced if "bars_1m" not in p.as_posix()]
    assert len(replaced) == 3  # the late merge of hour 05 replaced its three files (snapshot 3)
    with LakeConnection(config, snapshot=2) as reader:
        kept = ok(ticklake(lake, "vacuum", "--older-than", "0s")).stdout
        assert re.search(
            rf"^kept 3 replaced files \([\d,]+ bytes\) for open readers: pid \d+ on {re.escape(socket.gethostname())}"
            r" reads snapshot 2 since \S+$",
            kept,
            re.M,
        )
        assert all(p.exists() for p in replaced)
        assert reader.execute("SELECT count(*) FROM ticks").fetchall() == [(90,)]  # before the late merge
        assert not re.search("^expired snapshots", kept, re.M)
    with LakeConnection(config) as newest:  # a reader of the newest snapshot needs none of them
        ok(ticklake(lake, "vacuum", "--older-than", "0s"))
        assert not any(p.exists() for p in replaced)
        assert newest.execute("SELECT count(*) FROM ticks").fetchall() == [(99,)]
    with pytest.raises(NotFoundError, match=r"snapshot 2 was expired by vacuum at "):
        LakeConnection(config, snapshot=2)
    assert list((lake / "_pins").iterdir()) == []


def test_a_pin_of_a_reader_that_is_gone_is_stale(lake: Path) -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pin = lake / "_pins" / "dead.json"
    pin.parent.mkdir()
    pin.write_text(json.dumps({"pid": int(gone.stdout), "host": socket.gethostname(), "snapshot": 1, "opened_at": "x"}))
    result = ok(ticklake(lake, "vacuum", "--older-than", "0s")).stdout
    assert "deleted 1 stale pins of readers that are gone" in result and "for open readers" not in result
    assert not pin.exists()


def test_leftovers_go_past_both_the_duration_and_the_in_flight_grace(lake: Path) -> None:
    folder = lake / Path(live(lake)["tick_type=last/date=2022-01-07/hour=06"]).parent
    old, young = folder / "0000000000001-00000000dead.parquet", folder / "9999999999999-0000000beef0.parquet"
    unsealed = lake / "landing/ticks/date=2022-01-07/hour=07/.rec-000001.jsonl.0a1b2c3d.tmp"
    unsealed.parent.mkdir(parents=True)
    for path in (old, young, unsealed):
        path.write_bytes(b"x" * 10)
    backdate(old)
    backdate(unsealed)  # 2 hours: a producer may still be filling it
    dry = ok(ticklake(lake, "vacuum", "--older-than", "90m", "--dry-run")).stdout
    assert f"would delete orphan {old.relative_to(lake).as_posix()} (10 bytes)" in dry.splitlines()
    assert dry.splitlines()[-1].startswith("vacuum (dry run): would free ") and old.exists()
    assert "would delete orphan" not in ok(ticklake(lake, "vacuum", "--older-than", "36h", "--dry-run")).stdout
    done = ok(ticklake(lake, "vacuum", "--older-than", "0s")).stdout
    assert f"deleted orphan {old.relative_to(lake).as_posix()} (10 bytes)" in done.splitlines()
    assert (old.exists(), young.exists(), unsealed.exists()) == (False, True, True)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), f"--older-than missing: {FORMS}"),
        (("--older-than", "7x"), f"--older-than '7x': {FORMS}"),
        (("--older-than", "1.5h"), f"--older-than '1.5h': {FORMS}"),
        (("--older-than", "-1d"), f"--older-than '-1d': {FORMS}"),
    ],
)
def test_a_missing_or_garbled_duration_is_refused(lake: Path, args: tuple[str, ...], message: str) -> None:
    result = ticklake(lake, "vacuum", *args)
    assert (result.returncode, result.stdout, result.stderr) == (1, "", f"Error: {message}\n")


def test_vacuum_of_a_lake_without_catalog_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "lake").mkdir()
    result = ticklake(tmp_path / "lake", "vacuum", "--older-than", "7d")
    assert (result.returncode, result.stderr) == (
        1,
        f"Error: lake {tmp_path / 'lake'}: no catalog.sqlite (nothing compacted yet?)\n",
    )


def test_the_dagster_vacuum_job(lake: Path, tmp_path: Path) -> None:
    defs = build_definitions(PipelineSettings())
    assert defs.resolve_job_def("vacuum_job").name == "vacuum_job"
    before = rows_of(lake)
    (tmp_path / "dagster").mkdir()
    with instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        job = build_vacuum_job()
        kept = job.execute_in_process(resources={"lake": LakeResource(root=str(lake))}, instance=instance)
        assert kept.success and kept.output_for_node("vacuum").startswith("vacuum: freed 0 bytes")  # default: 7d
        done = job.execute_in_process(
            run_config={"ops": {"vacuum": {"config": {"older_than": "0s"}}}},
            resources={"lake": LakeResource(root=str(lake))},
            instance=instance,
        )
        assert done.success
        [output] = [e for e in done.all_events if e.event_type_value == "STEP_OUTPUT"]
        assert output.event_specific_data.metadata["replaced_files_deleted"].value == 3
        bad = job.execute_in_process(
            run_config={"ops": {"vacuum": {"config": {"older_than": "soon"}}}},
            resources={"lake": LakeResource(root=str(lake))},
            instance=instance,
            raise_on_error=False,
        )
        assert not bad.success
        [failure] = [e for e in bad.all_events if e.event_type_value == "STEP_FAILURE"]
        assert failure.event_specific_data.error.message.strip().endswith(f"older_than 'soon': {FORMS}")
    assert rows_of(lake) == before
