"""Backfill runs over ranges of hours, in process: one run materializes several hourly partitions,
each recorded with its own metadata and check verdicts as a run of one hour records it; a failing
hour is reported for that hour and the others' commits stand; schedule and sensor stay per hour.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from dagster import (
    AssetKey,
    DagsterEventType,
    DagsterInstance,
    Definitions,
    ExecuteInProcessResult,
    build_schedule_context,
    instance_for_test,
    materialize,
)
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

import ticklake
from tests.conftest import tick
from tests.pipelines.test_pipelines import evaluate_sensor, land, run_hour
from ticklake.catalog import Catalog
from ticklake.datasets import TICKS
from ticklake.landing.buffer import sealed_segments
from ticklake.pipelines.definitions import build_definitions
from ticklake.pipelines.partitions import partition_hour
from ticklake.pipelines.resources import LakeResource
from ticklake.pipelines.settings import PipelineSettings

DAY = "2022-01-07"
LANDED = {3: 7, 4: 11, 5: 0, 6: 5}  # event hour -> ticks; 05:00 stays empty


def key(hour: int) -> str:
    return f"{DAY}-{hour:02d}:00"


def hour_ticks(hour: int, n: int) -> list[dict[str, Any]]:
    kinds = ("last", "bid_ask", "mid_point")
    return [tick(f"{DAY}T{hour:02d}:{i:02d}:00Z", 1 + i % 3, kinds[i % 3]) for i in range(n)]


@pytest.fixture(scope="module")
def defs() -> Definitions:
    return build_definitions(PipelineSettings(partitions_start=f"{DAY}-00:00", backfill_hours_per_run=24))


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DagsterInstance]:
    with instance_for_test(temp_dir=str(tmp_path_factory.mktemp("dagster_home"))) as instance:
        yield instance


def run_range(defs: Definitions, instance: DagsterInstance, root: Path, first: int, last: int) -> ExecuteInProcessResult:
    """One run over the hours `first`..`last`, tagged with its range as a backfill's run is."""
    return materialize(
        [defs.get_assets_def("ticks"), defs.get_assets_def("bars_1m"), *defs.asset_checks],
        tags={ASSET_PARTITION_RANGE_START_TAG: key(first), ASSET_PARTITION_RANGE_END_TAG: key(last)},
        resources={"lake": LakeResource(root=str(root))},
        instance=instance,
        raise_on_error=False,
    )


def by_partition(instance: DagsterInstance, result: ExecuteInProcessResult, asset: str) -> dict[str, dict[str, Any]]:
    """Each partition's materialization metadata, as the instance (and so the UI) has it for the run;
    an asserted error if a partition has two."""
    found: dict[str, dict[str, Any]] = {}
    for record in instance.get_records_for_run(result.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION).records:
        event = record.event_log_entry.get_dagster_event()
        if event.asset_key == AssetKey(asset):
            assert event.partition is not None and event.partition not in found, event.partition
            metadata = event.step_materialization_data.materialization.metadata
            found[event.partition] = {k: v.value for k, v in metadata.items()}
    return found


def verdicts(result: ExecuteInProcessResult) -> dict[tuple[str, str | None], bool]:
    return {(e.check_name, e.partition): e.passed for e in result.get_asset_check_evaluations()}


def test_a_range_records_each_hour_as_its_own_partition(defs: Definitions, instance: DagsterInstance, tmp_path: Path) -> None:
    root = tmp_path / "lake"
    land(root, [t for h, n in LANDED.items() for t in hour_ticks(h, n)])
    result = run_range(defs, instance, root, 3, 6)
    assert result.success
    ticks, bars = by_partition(instance, result, "ticks"), by_partition(instance, result, "bars_1m")
    assert set(ticks) == set(bars) == {key(h) for h in LANDED}
    assert {k: m["rows_stored"] for k, m in ticks.items()} == {key(h): n for h, n in LANDED.items()}
    assert {k: m["hour"] for k, m in ticks.items()} == {key(h): f"{DAY}T{h:02d}" for h in LANDED}
    assert {k: m["span_start"] for k, m in ticks.items()} == {k: partition_hour(k) * 3600.0 for k in ticks}
    snapshots = [ticks[key(h)]["snapshot"] for h in LANDED if LANDED[h]]
    assert len(set(snapshots)) == 3 and ticks[key(5)]["snapshot"] == "unchanged"  # a commit per hour
    assert {k: m["trades"] for k, m in bars.items()} == {key(h): len(range(0, n, 3)) for h, n in LANDED.items()}
    names = {"rows_reconcile", "files_match_storage", "no_overlapping_files"}
    assert verdicts(result) == {(name, key(h)): True for name in names for h in LANDED}
    # Each verdict points at its own hour's materialization, as in a run of one hour.
    targets = {
        (e.partition, e.target_materialization_data.storage_id)
        for e in result.get_asset_check_evaluations()
        if e.target_materialization_data
    }
    assert len(targets) == len(LANDED) and len({s for _, s in targets}) == len(LANDED)
    # The same metadata as a run of one hour shows.
    land(root, hour_ticks(7, 4))
    single = run_hour(defs, instance, root, key(7))
    assert set(by_partition(instance, single, "ticks")[key(7)]) == set(ticks[key(3)])
    assert set(by_partition(instance, single, "bars_1m")[key(7)]) == set(bars[key(3)])
    with ticklake.connect(root, fresh=False) as lake:
        rows = lake.sql("SELECT hour, count(*) FROM ticks GROUP BY ALL ORDER BY ALL").fetchall()
    assert rows == [(h, n) for h, n in {**LANDED, 7: 4}.items() if n]


def test_a_failing_hour_is_reported_for_that_hour_and_the_others_stand(
    defs: Definitions, instance: DagsterInstance, tmp_path: Path
) -> None:
    root = tmp_path / "lake"
    land(root, [t for h in (3, 4, 6) for t in hour_ticks(h, 6)])
    blocker = root / "lake" / "ticks" / "tick_type=last" / f"date={DAY}" / "hour=04"
    blocker.parent.mkdir(parents=True)
    blocker.write_text("a file where hour 04's trades folder belongs")
    started = time.perf_counter()
    result = run_range(defs, instance, root, 3, 6)
    assert not result.success and time.perf_counter() - started < 20  # no retries of a permanent error
    ticks = by_partition(instance, result, "ticks")
    assert {k: m["rows_stored"] for k, m in ticks.items()} == {key(3): 6, key(5): 0, key(6): 6}
    assert ticks[key(3)]["snapshot"] != ticks[key(6)]["snapshot"]
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failure.step_key == "ticks"
    message = str(failure.event_specific_data)
    assert f"1 of 4 hours failed (3 built and materialized): {key(4)}: " in message and "Not a directory" in message
    assert not any(e.event_type_value == "STEP_UP_FOR_RETRY" for e in result.all_events)
    assert by_partition(instance, result, "bars_1m") == {} and verdicts(result) == {}  # the steps after a failed step do not run
    assert [s.hour for s in sealed_segments(root)] == [partition_hour(key(4))]  # 04's segment waits, nothing consumed
    # Once the obstacle is gone, the hour's own run compacts it: nothing lost, nothing doubled.
    blocker.unlink()
    assert run_hour(defs, instance, root, key(4)).success
    with ticklake.connect(root, fresh=False) as lake:
        rows = lake.sql("SELECT hour, count(*) FROM ticks GROUP BY ALL ORDER BY ALL").fetchall()
    assert rows == [(3, 6), (4, 6), (6, 6)]


def test_a_failed_check_is_recorded_for_its_hour_and_blocks_the_runs_bars(
    defs: Definitions, instance: DagsterInstance, tmp_path: Path
) -> None:
    root = tmp_path / "lake"
    land(root, [t for h in (3, 4) for t in hour_ticks(h, 6)])
    assert run_range(defs, instance, root, 3, 4).success
    with Catalog(root / "catalog.sqlite") as catalog:
        [lost] = [
            f for f in catalog.live_files(catalog.ensure_dataset(TICKS).dataset_id) if "hour=04" in f.path and "last" in f.path
        ]
    (root / lost.path).unlink()
    result = run_range(defs, instance, root, 3, 4)
    assert not result.success
    failed = {(n, p) for (n, p), ok in verdicts(result).items() if not ok}
    assert failed == {("files_match_storage", key(4))}
    assert verdicts(result)[("files_match_storage", key(3))] and len(verdicts(result)) == 6
    [evaluation] = [e for e in result.get_asset_check_evaluations() if not e.passed]
    assert evaluation.description == f"{DAY}T04: {lost.path} is missing" and evaluation.blocking
    assert by_partition(instance, result, "bars_1m") == {}  # blocked for the hour, and for the rest of the run's range


def test_schedule_and_sensor_runs_stay_single_hour(defs: Definitions, instance: DagsterInstance, tmp_path: Path) -> None:
    """The backfill policy groups a backfill's hours; the schedule and the sensor request one partition each."""
    for asset in ("ticks", "bars_1m"):
        policy = defs.get_assets_def(asset).backfill_policy
        assert policy is not None and policy.max_partitions_per_run == 24
    at = build_schedule_context(instance, datetime(2022, 1, 7, 6, 10, tzinfo=UTC), repository_def=defs.get_repository_def())
    [scheduled] = defs.resolve_schedule_def("hourly_compaction_schedule").evaluate_tick(at).run_requests or []
    root = tmp_path / "lake"
    land(root, hour_ticks(3, 2))
    assert run_hour(defs, instance, root, key(3)).success
    land(root, hour_ticks(3, 1))  # late data for an hour already materialized
    [late], _ = evaluate_sensor(defs, instance, root, None)
    for request in (scheduled, late):
        assert request.partition_key is not None and request.asset_graph_subset is None
        assert not {ASSET_PARTITION_RANGE_START_TAG, ASSET_PARTITION_RANGE_END_TAG} & set(request.tags)
    assert (scheduled.partition_key, late.partition_key) == (key(5), key(3))
