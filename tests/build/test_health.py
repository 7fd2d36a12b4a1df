"""Tests for the hour checks: they pass on a healthy lake and name what is wrong on a broken one."""

from __future__ import annotations

import pytest

from tests.conftest import jsonl, tick
from ticklake.build.compaction import compact_hour
from ticklake.build.health import check_files_match_storage, check_hour, check_no_overlapping_files, check_rows_reconcile
from ticklake.catalog import Catalog, Commit, NewFile
from ticklake.config import LakeConfig
from ticklake.datasets import TICKS
from ticklake.landing.buffer import write_segment
from ticklake.landing.writer import LandingWriter
from ticklake.storage.layout import parse_hour

H5 = parse_hour("2022-01-07T05")


@pytest.fixture
def lake(config: LakeConfig) -> LakeConfig:
    """Hour 5 compacted from two segments (one with a bad line), then a late one merged in."""
    with LandingWriter(config) as writer:
        writer.append([tick(f"2022-01-07T05:{m:02d}:00Z", 1 + m % 3, ("last", "bid_ask", "mid_point")[m % 3]) for m in range(30)])
    write_segment(config.root, H5, "other-000001.jsonl", jsonl([tick("2022-01-07T05:59:00Z"), "{not json"]))
    compact_hour(config, H5)
    with LandingWriter(config) as writer:
        writer.append([tick("2022-01-07T05:30:00Z", 7)])
    compact_hour(config, H5)
    return config


def test_a_healthy_hour_passes_every_check(lake: LakeConfig) -> None:
    outcomes = check_hour(lake, H5)
    assert [(o.name, o.passed) for o in outcomes] == [
        ("rows_reconcile", True),
        ("files_match_storage", True),
        ("no_overlapping_files", True),
    ]
    rows = outcomes[0]
    assert rows.metadata == {"segments": 3, "lines": 33, "rows_stored": 32, "rows_quarantined": 1, "rows_in_files": 32}
    assert rows.message == "2022-01-07T05: 33 lines = 32 stored + 1 quarantined, all in 3 files"
    assert outcomes[1].metadata["files"] == 3 and outcomes[2].metadata["partitions"] == 3


def test_checks_of_a_lake_never_compacted_pass(config: LakeConfig) -> None:
    assert all(o.passed and o.message == "nothing cataloged yet" for o in check_hour(config, H5))


def test_a_missing_or_resized_file_fails_storage_check(lake: LakeConfig) -> None:
    with Catalog(lake.catalog_path) as catalog:
        files = catalog.live_files(catalog.ensure_dataset(TICKS).dataset_id)
    (lake.root / files[0].path).unlink()
    with open(lake.root / files[1].path, "ab") as f:
        f.write(b"x")
    outcome = check_files_match_storage(lake, H5)
    assert not outcome.passed and outcome.metadata["problems"] == 2
    assert f"{files[0].path} is missing" in outcome.message
    assert f"{files[1].path} has {files[1].bytes + 1:,} bytes, the catalog recorded {files[1].bytes:,}" in outcome.message
    assert check_files_match_storage(lake, H5 + 1).passed  # another hour is not affected


def test_counts_that_do_not_reconcile_fail(lake: LakeConfig) -> None:
    with Catalog(lake.catalog_path) as catalog:
        catalog.db.execute("UPDATE segments SET lines = lines + 2 WHERE path LIKE '%other-%'")
    outcome = check_rows_reconcile(lake, H5)
    assert not outcome.passed
    assert outcome.message == "2022-01-07T05: 35 lines in != 32 stored + 1 quarantined"


def test_rows_stored_but_missing_from_the_files_fail(lake: LakeConfig) -> None:
    with Catalog(lake.catalog_path) as catalog:
        ticks = catalog.ensure_dataset(TICKS)
        [mid] = catalog.live_files(ticks.dataset_id, partition_paths=["tick_type=mid_point/date=2022-01-07/hour=05"])
        catalog.commit(Commit(ticks.dataset_id, "test", remove_file_ids=(mid.file_id,)))
    outcome = check_rows_reconcile(lake, H5)
    assert not outcome.passed
    assert outcome.message == f"2022-01-07T05: 32 rows stored by its segments != {32 - mid.rows} rows in its live files"


def test_two_live_files_for_one_partition_fail(lake: LakeConfig) -> None:
    with Catalog(lake.catalog_path) as catalog:
        ticks = catalog.ensure_dataset(TICKS)
        [last] = catalog.live_files(ticks.dataset_id, partition_paths=["tick_type=last/date=2022-01-07/hour=05"])
        twin = NewFile(
            last.path.replace(".parquet", "-twin.parquet"),
            last.partition_path,
            last.partition_values,
            last.rows,
            last.bytes,
            last.ts_min,
            last.ts_max + 3_600_000_000,  # and it strays into the next hour
        )
        catalog.commit(Commit(ticks.dataset_id, "test", add_files=(twin,)))
    outcome = check_no_overlapping_files(lake, H5)
    assert not outcome.passed
    assert outcome.message == (
        f"2022-01-07T05: tick_type=last/date=2022-01-07/hour=05 has 2 live files; {twin.path} holds times outside its hour"
    )
    assert outcome.metadata == {"files": 4, "partitions": 3, "problems": 2}
