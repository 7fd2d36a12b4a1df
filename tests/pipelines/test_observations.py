"""The catalog sensor in process, against a real SQLite instance and real lakes: `ticklake demo`'s commits
become materializations of exactly their hours, once, with a run's metadata; a later CLI compaction is
reported on the next tick, hours that runs materialized are not reported again, a commit whose run is
still going waits for it, and archives, vacuum and a catalog made again do not confuse it. Also the
assets' definition metadata and where the partitions start.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from dagster import (
    AssetKey,
    AssetMaterialization,
    AssetRecordsFilter,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    Definitions,
    ExecuteInProcessResult,
    build_sensor_context,
    instance_for_test,
    materialize,
)

from tests.conftest import tick
from tests.objectstore import S3Server
from ticklake.build.archive import archive_lake
from ticklake.build.changes import hour_changes
from ticklake.build.compaction import compact_all
from ticklake.catalog import Catalog
from ticklake.catalog.maintenance import stored_files
from ticklake.config import LakeConfig
from ticklake.datasets import BARS_1M, TICKS
from ticklake.demo.run import run_demo
from ticklake.landing.writer import LandingWriter
from ticklake.maintenance.vacuum import vacuum_lake
from ticklake.pipelines.definitions import build_definitions
from ticklake.pipelines.metadata import dataset_metadata
from ticklake.pipelines.observations import SENSOR, Cursor, report
from ticklake.pipelines.partitions import lake_start, partition_hour, partition_key
from ticklake.pipelines.resources import LakeResource
from ticklake.pipelines.settings import PipelineSettings
from ticklake.storage.layout import hour_key, parse_hour

NEW_HOUR, RUN_HOURS, LATE_HOUR = "2022-01-08-03:00", ("2022-01-07-15:00", "2022-01-08-04:00"), "2022-01-08-05:00"
# What a run measures that the catalog does not keep; and what only the catalog says.
RUN_ONLY = {"duplicate_segments", "segments_set_aside", "warnings", "seconds", "contracts"}
CATALOG_ONLY = {"operation", "committed_at"}


@pytest.fixture(scope="module")
def defs() -> Definitions:
    return build_definitions(PipelineSettings(partitions_start="2020-01-01-00:00"))


def evaluate(
    defs: Definitions, instance: DagsterInstance, root: Path, cursor: str | None
) -> tuple[list[AssetMaterialization], str]:
    """One tick of the sensor; its events are recorded as the daemon records them."""
    context = build_sensor_context(
        instance=instance, cursor=cursor, resources={"lake": LakeResource(root=str(root))}, definitions=defs
    )
    data = defs.resolve_sensor_def(SENSOR).evaluate_tick(context)
    for event in data.asset_events:
        instance.report_runless_asset_event(event)
    assert data.cursor is not None
    return list(data.asset_events), data.cursor


def keys(events: list[AssetMaterialization], asset: str) -> list[str]:
    return [str(e.partition) for e in events if e.asset_key == AssetKey(asset)]


def values(event: AssetMaterialization) -> dict[str, Any]:
    return {k: v.value for k, v in event.metadata.items()}


def committed(root: Path) -> dict[str, list[str]]:
    """The partition keys of the catalog's compactions and rollups, in commit order."""
    with Catalog(root / "catalog.sqlite", read_only=True) as catalog:
        snapshots = catalog.snapshots()
    by: dict[str, list[str]] = {TICKS.name: [], BARS_1M.name: []}
    for s in snapshots:
        summary: Any = s["summary"]
        dataset = TICKS.name if s["operation"] == "compact" else BARS_1M.name
        by[dataset].append(partition_key(parse_hour(summary["hour"])))
    return by


def land(root: Path, ticks: list[dict[str, Any]]) -> None:
    with LandingWriter(LakeConfig(root=root), writer_id=f"w{uuid.uuid4().hex[:6]}") as writer:
        writer.append(ticks)


def trades(key: str, n: int) -> list[dict[str, Any]]:
    """`n` trades in the hour of partition `key`."""
    day, hour = key[:10], key[11:13]
    return [tick(f"{day}T{hour}:{i % 60:02d}:{i % 50:02d}Z", 1 + i % 3, size=1 + i) for i in range(n)]


def ticklake(root: Path, *args: str) -> None:
    """`ticklake --root ROOT ARGS` as a user runs it, outside Dagster."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKLAKE_")}
    done = subprocess.run(
        [sys.executable, "-m", "ticklake.cli", "--root", str(root), *args], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


def run_hour(defs: Definitions, instance: DagsterInstance, root: Path, key: str) -> ExecuteInProcessResult:
    return materialize(
        [defs.get_assets_def("ticks"), defs.get_assets_def("bars_1m"), *defs.asset_checks],
        partition_key=key,
        resources={"lake": LakeResource(root=str(root))},
        instance=instance,
    )


@pytest.fixture(scope="module")
def story(defs: Definitions, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The demo's lake seen by a new instance; then a CLI compaction, two runs, and a run still going."""
    root = tmp_path_factory.mktemp("demo") / "lake"
    run_demo(LakeConfig(root=root), n_ticks=20_000, contracts=40, echo=lambda line: None)
    with instance_for_test(temp_dir=str(tmp_path_factory.mktemp("dagster_home"))) as instance:
        s: dict[str, Any] = {"root": root, "instance": instance, "demo": committed(root)}
        s["first"] = evaluate(defs, instance, root, None)
        s["second"] = evaluate(defs, instance, root, s["first"][1])

        land(root, trades(NEW_HOUR, 30))
        ticklake(root, "compact", "--all")
        s["cli"] = evaluate(defs, instance, root, s["second"][1])

        land(root, trades(RUN_HOURS[0], 5) + trades(RUN_HOURS[1], 8))  # late ticks for a demo hour, and a new hour
        s["runs"] = {key: run_hour(defs, instance, root, key) for key in RUN_HOURS}
        s["after_runs"] = evaluate(defs, instance, root, s["cli"][1])

        going = instance.add_run(
            DagsterRun(
                job_name="hourly_compaction_job",
                run_id=str(uuid.uuid4()),
                status=DagsterRunStatus.STARTED,
                tags={"dagster/partition": LATE_HOUR},
            )
        )
        land(root, trades(LATE_HOUR, 4))
        ticklake(root, "compact", "--hour", hour_key(partition_hour(LATE_HOUR)))  # as if the run had committed it
        s["while_running"] = evaluate(defs, instance, root, s["after_runs"][1])
        instance.report_run_failed(going)  # ended without recording its materialization
        s["after_failure"] = evaluate(defs, instance, root, s["while_running"][1])
        s["at_rest"] = evaluate(defs, instance, root, s["after_failure"][1])
        yield s


def test_the_first_tick_reports_exactly_the_committed_hours(story: dict[str, Any]) -> None:
    events, _ = story["first"]
    demo = story["demo"]
    assert len(demo[TICKS.name]) == 14 and len(demo[BARS_1M.name]) == 7  # EUR/USD quotes have no trades: no bars
    assert keys(events, TICKS.name) == demo[TICKS.name] and keys(events, BARS_1M.name) == demo[BARS_1M.name]
    assert story["second"][0] == []  # nothing new


def test_reported_hours_carry_what_the_catalog_knows(story: dict[str, Any]) -> None:
    events, _ = story["first"]
    with Catalog(story["root"] / "catalog.sqlite", read_only=True) as catalog:
        files = stored_files(catalog)  # replaced since or not
        for event in events:
            meta = values(event)
            summary = catalog.snapshot_summary(meta["snapshot"])
            assert meta["hour"] == summary["hour"] and partition_key(parse_hour(meta["hour"])) == event.partition
            mine = [f for f in files if f.added_snapshot == meta["snapshot"]]
            assert (meta["files"], meta["bytes"], meta["replaced_files"]) == (len(mine), sum(f.bytes for f in mine), 0)
            if event.asset_key == AssetKey(TICKS.name):
                assert meta["rows_in_hour"] == meta["rows_stored"] == sum(f.rows for f in mine) == summary["rows_in_hour"]
                assert meta["rows_in"] == meta["rows_stored"] + meta["rows_quarantined"] and meta["segments"] >= 1
                assert meta["span_end"] - meta["span_start"] == 3600 and meta["operation"] == "compact"
            else:
                assert meta["rows"] == sum(f.rows for f in mine) > 0 and meta["trades"] > 0 and meta["source_snapshot"] > 0
            assert f"snapshot {meta['snapshot']} ({meta['operation']}" in meta["summary"]


def test_the_metadata_keys_are_those_a_run_records(story: dict[str, Any]) -> None:
    run = story["runs"][RUN_HOURS[1]]
    by_run = {e.asset_key.to_user_string(): set(e.materialization.metadata) for e in run.get_asset_materialization_events()}
    reported = {e.asset_key.to_user_string(): set(e.metadata) for e in story["first"][0]}
    assert reported[TICKS.name] == by_run[TICKS.name] - RUN_ONLY | CATALOG_ONLY
    assert reported[BARS_1M.name] == by_run[BARS_1M.name] - RUN_ONLY | CATALOG_ONLY


def test_a_cli_compaction_is_reported_on_the_next_tick(story: dict[str, Any]) -> None:
    events, _ = story["cli"]
    assert [(e.asset_key.to_user_string(), e.partition) for e in events] == [(TICKS.name, NEW_HOUR)]
    assert values(events[0])["rows_stored"] == 30
    # Before its hour closed it would have waited: no partition yet.
    read = hour_changes(LakeConfig(root=story["root"]), values(events[0])["snapshot"] - 1, 1)
    before = datetime(2022, 1, 8, 3, 30, tzinfo=UTC)
    assert report(story["instance"], read, parse_hour("2020-01-01T00"), now=before)[:2] == ([], (values(events[0])["snapshot"],))


def test_hours_materialized_by_runs_are_not_reported_again(story: dict[str, Any]) -> None:
    assert all(result.success for result in story["runs"].values())
    assert story["after_runs"][0] == []
    instance: DagsterInstance = story["instance"]
    for key, run in story["runs"].items():
        for asset in (TICKS.name, BARS_1M.name):
            found = instance.fetch_materializations(AssetRecordsFilter(AssetKey(asset), asset_partitions=[key]), limit=10)
            snapshots = [r.asset_materialization.metadata["snapshot"].value for r in found.records if r.asset_materialization]
            assert found.records[0].run_id == run.run_id, (asset, key)  # the latest is the run's own
            assert len(snapshots) == len(set(snapshots)), (asset, key, snapshots)  # no commit twice


def test_a_commit_waits_for_the_run_that_is_materializing_its_hour(story: dict[str, Any]) -> None:
    events, cursor = story["while_running"]
    [waiting] = Cursor.parse(cursor).waiting
    assert events == [] and waiting == Cursor.parse(cursor).snapshot  # the newest commit, read again next tick
    events, cursor = story["after_failure"]
    assert [(e.asset_key.to_user_string(), e.partition, values(e)["snapshot"]) for e in events] == [
        (TICKS.name, LATE_HOUR, waiting)
    ]
    assert Cursor.parse(cursor).waiting == () and story["at_rest"][0] == []


def test_a_catalog_made_again_is_read_from_its_first_snapshot(defs: Definitions, tmp_path: Path) -> None:
    root = tmp_path / "lake"
    (tmp_path / "dagster").mkdir()
    with instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        land(root, trades("2022-01-07-05:00", 3))
        compact_all(LakeConfig(root=root))
        first, cursor = evaluate(defs, instance, root, None)
        shutil.rmtree(root)  # the lake made again at the same root: its snapshots start at 1 again
        land(root, trades("2022-01-07-06:00", 2) + trades("2022-01-07-05:00", 7))
        compact_all(LakeConfig(root=root))
        again, _ = evaluate(defs, instance, root, cursor)
    assert keys(first, TICKS.name) == ["2022-01-07-05:00"]
    assert sorted(keys(again, TICKS.name)) == ["2022-01-07-05:00", "2022-01-07-06:00"]
    assert sorted(values(e)["rows_stored"] for e in again) == [2, 7]


def test_archives_and_vacuum_do_not_confuse_it(defs: Definitions, tmp_path: Path, s3_env: S3Server, s3_prefix: str) -> None:
    root = tmp_path / "lake"
    config = LakeConfig(root=root, cache_dir=str(tmp_path / "cache"))
    land(root, trades("2022-01-05-05:00", 4) + trades("2022-01-06-06:00", 3))
    compact_all(config)
    land(root, trades("2022-01-05-05:00", 2))  # late: replaces the hour's file
    compact_all(config)
    assert vacuum_lake(config, 0).replaced  # deletes the replaced file and forgets its row
    (tmp_path / "dagster").mkdir()
    with instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        events, cursor = evaluate(defs, instance, root, None)
        archive = archive_lake(config, 0, to=s3_prefix, now=datetime(2022, 1, 10, tzinfo=UTC).timestamp())
        assert len(archive.days) == 2 and archive.deleted_local  # every hour's files moved to the cold tier
        assert evaluate(defs, instance, root, cursor)[0] == []  # moved, not changed
    assert sorted(keys(events, TICKS.name)) == ["2022-01-05-05:00", "2022-01-05-05:00", "2022-01-06-06:00"]
    by = {(e.partition, values(e)["rows_in_hour"]): values(e) for e in events}
    forgotten, kept, late = by["2022-01-05-05:00", 4], by["2022-01-06-06:00", 3], by["2022-01-05-05:00", 6]
    assert "bytes" not in forgotten and forgotten["files"] == 1  # vacuum forgot its file's row
    assert kept["bytes"] > 0 and late["bytes"] > 0 and late["replaced_files"] == 1

    # The whole history read after the archive (which forgot the hourly files' rows): the same hours.
    (tmp_path / "dagster2").mkdir()
    with instance_for_test(temp_dir=str(tmp_path / "dagster2")) as instance:
        again, _ = evaluate(defs, instance, root, None)
    assert [(e.partition, values(e)["snapshot"], values(e)["files"]) for e in again] == [
        (e.partition, values(e)["snapshot"], values(e)["files"]) for e in events
    ]
    assert not any("bytes" in e.metadata for e in again)


def test_definition_metadata_is_the_datasets_columns_and_location(tmp_path: Path) -> None:
    for spec in (TICKS, BARS_1M):
        meta = dataset_metadata(spec, LakeConfig(root=tmp_path / "lake"))
        schema = meta["dagster/column_schema"]
        assert {c.name: c.type for c in schema.columns} == spec.columns
        assert meta["dagster/uri"] == (tmp_path / "lake" / spec.location).as_uri() and meta["dagster/table_name"] == spec.name
    columns = {c.name: c.description for c in dataset_metadata(TICKS, LakeConfig(root=tmp_path))["dagster/column_schema"].columns}
    assert columns["tick_type"] == "partition key (Hive path); inverted index" and columns["price"] is None


def test_the_assets_carry_the_definition_metadata(defs: Definitions) -> None:
    for asset in (TICKS.name, BARS_1M.name):
        spec = defs.get_assets_def(asset).specs_by_key[AssetKey(asset)]
        assert {"dagster/column_schema", "dagster/table_name", "dagster/uri"} <= set(spec.metadata)


def test_partitions_start_where_the_lakes_data_starts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "lake"
    now = datetime(2026, 3, 4, 5, 6, tzinfo=UTC)
    assert lake_start(LakeConfig(root=root), now) == "2026-03-04-00:00"  # no data: today
    land(root, trades("2022-01-07-15:00", 2))
    assert lake_start(LakeConfig(root=root), now) == "2022-01-07-00:00"  # landed, not compacted yet
    compact_all(LakeConfig(root=root))
    land(root, trades("2022-01-09-01:00", 2))
    assert lake_start(LakeConfig(root=root), now) == "2022-01-07-00:00"  # committed
    (root / "catalog.sqlite").write_bytes(b"not a catalog")
    assert lake_start(LakeConfig(root=root), now) == now.strftime("%Y-%m-%d-00:00")  # unreadable: today, with a warning
    (root / "catalog.sqlite").unlink()

    other = tmp_path / "other"
    land(other, trades("2021-03-02-10:00", 1))
    monkeypatch.setenv("TICKLAKE_ROOT", str(other))
    job = build_definitions(PipelineSettings.from_env({})).resolve_job_def("hourly_compaction_job")
    assert job.partitions_def is not None and job.partitions_def.get_first_partition_key() == "2021-03-02-00:00"
    given = build_definitions(PipelineSettings(partitions_start="2022-01-01-05:00")).resolve_job_def("hourly_compaction_job")
    assert given.partitions_def is not None and given.partitions_def.get_first_partition_key() == "2022-01-01-05:00"
