"""The Dagster code location with real Dagster and real files: in-process materializations of hourly
partitions (late data included), asset checks that block bars_1m, the schedule and the late-data
sensor evaluated against a temporary instance, and `dagster asset materialize` as a user runs it.
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from dagster import (
    AssetCheckSeverity,
    AssetKey,
    DagsterInstance,
    Definitions,
    ExecuteInProcessResult,
    build_schedule_context,
    build_sensor_context,
    instance_for_test,
    materialize,
)

import ticklake
from tests.conftest import jsonl, tick
from ticklake.catalog import Catalog, hold_lease
from ticklake.config import LakeConfig
from ticklake.datasets import TICKS
from ticklake.demo.eurusd import eurusd_ticks
from ticklake.demo.synthetic import make_contracts, synthetic_ticks
from ticklake.errors import ConfigError
from ticklake.landing.buffer import sealed_segments, write_segment
from ticklake.landing.writer import LandingWriter
from ticklake.pipelines.definitions import build_definitions
from ticklake.pipelines.partitions import partition_hour, partition_key
from ticklake.pipelines.resources import LakeResource
from ticklake.pipelines.settings import PIPELINE_SETTINGS, PipelineSettings
from ticklake.query.duck import connect_duckdb
from ticklake.storage.layout import parse_hour

ROOT = Path(__file__).resolve().parents[2]
H14, H15, H16 = "2022-01-07-14:00", "2022-01-07-15:00", "2022-01-07-16:00"


@pytest.fixture(scope="module")
def defs() -> Definitions:
    return build_definitions(PipelineSettings(partitions_start="2020-01-01-00:00"))


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DagsterInstance]:
    with instance_for_test(temp_dir=str(tmp_path_factory.mktemp("dagster_home"))) as instance:
        yield instance


def run_hour(defs: Definitions, instance: DagsterInstance, root: Path, key: str, **resource: Any) -> ExecuteInProcessResult:
    """Materialize ticks, its checks and bars_1m for one partition, in process."""
    return materialize(
        [defs.get_assets_def("ticks"), defs.get_assets_def("bars_1m"), *defs.asset_checks],
        partition_key=key,
        resources={"lake": LakeResource(root=str(root), **resource)},
        instance=instance,
        raise_on_error=False,
    )


def metadata(result: ExecuteInProcessResult, asset: str) -> dict[str, Any]:
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key == AssetKey(asset)]
    assert event.materialization.metadata is not None
    return {k: v.value for k, v in event.materialization.metadata.items()}


def checks(result: ExecuteInProcessResult) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def evaluate_sensor(defs: Definitions, instance: DagsterInstance, root: Path, cursor: str | None) -> tuple[list[Any], str | None]:
    sensor = defs.resolve_sensor_def("late_data_sensor")
    context = build_sensor_context(
        instance=instance, cursor=cursor, resources={"lake": LakeResource(root=str(root))}, definitions=defs
    )
    data = sensor.evaluate_tick(context)
    return list(data.run_requests or []), data.cursor


def land(root: Path, ticks: pa.Table | list[dict[str, Any]]) -> None:
    with LandingWriter(LakeConfig(root=root), writer_id="feed") as writer:
        writer.append(ticks.to_pylist() if isinstance(ticks, pa.Table) else ticks)


def in_hours(table: pa.Table, *hours: int) -> pa.Table:
    stamps = pc.cast(table.column("timestamp"), pa.int64())
    return table.filter(pc.is_in(pc.divide(stamps, 3_600_000_000), pa.array(hours, pa.int64())))


# -- one lake through first runs, late data, the sensor and re-runs --------------------------------------


@pytest.fixture(scope="module")
def story(defs: Definitions, instance: DagsterInstance, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Two hours of a synthetic day land in two waves: the first is materialized, the second arrives
    late, the sensor asks for exactly those hours, they are materialized again."""
    root = tmp_path_factory.mktemp("story") / "lake"
    day = synthetic_ticks(date(2022, 1, 7), make_contracts(25, seed=3), 60_000, seed=3)
    h14, h15 = partition_hour(H14), partition_hour(H15)
    raw = in_hours(day, h14, h15)
    n = raw.num_rows
    raw = raw.append_column("seq", pa.array(range(n), pa.int64()))
    wave = pc.equal(pc.bit_wise_and(raw.column("seq"), 3), 0)  # every fourth tick arrives late
    first, late = raw.filter(pc.invert(wave)), raw.filter(wave)
    # `seq` is arrival order, which settles ties: the first wave, a glitchy segment, the late
    # wave, then one last trade.
    late = late.set_column(late.schema.get_field_index("seq"), "seq", pc.add(late.column("seq"), 2 * n))
    s: dict[str, Any] = {"root": root, "raw": pa.concat_tables([first, late]), "first": first, "late": late}
    s["extra_trades"] = [
        {"timestamp": datetime(2022, 1, 7, 15, 59, tzinfo=UTC), "contract_id": 5, "price": 100.25, "size": 100.0, "seq": n},
        {"timestamp": datetime(2022, 1, 7, 15, tzinfo=UTC), "contract_id": 9, "price": 1.0, "size": 1.0, "seq": 4 * n},
    ]

    land(root, first.drop_columns(["seq"]))
    write_segment(root, h15, "glitch-000001.jsonl", jsonl([tick("2022-01-07T15:59:00Z", 5), b'{"broken": ']))
    s["quiet"] = evaluate_sensor(defs, instance, root, None)  # nothing materialized yet: not late
    s["run1"] = {key: run_hour(defs, instance, root, key) for key in (H14, H15)}
    s["idle"] = evaluate_sensor(defs, instance, root, s["quiet"][1])

    land(root, late.drop_columns(["seq"]))
    with LandingWriter(LakeConfig(root=root), writer_id="other") as writer:  # an hour never materialized
        writer.append([tick("2022-01-07T16:30:00Z", 9)])
    s["late_requests"], cursor = evaluate_sensor(defs, instance, root, s["idle"][1])
    s["again"] = evaluate_sensor(defs, instance, root, cursor)
    with LandingWriter(LakeConfig(root=root), writer_id="third") as writer:  # yet more for 15:00
        writer.append([tick("2022-01-07T15:00:00Z", 9, price=1.0, size=1.0)])
    s["more"] = evaluate_sensor(defs, instance, root, s["again"][1])

    s["run2"] = {request.partition_key: run_hour(defs, instance, root, request.partition_key) for request in s["late_requests"]}
    s["after"] = evaluate_sensor(defs, instance, root, s["more"][1])
    return s


def lines_of(table: pa.Table, key: str) -> int:
    return in_hours(table, partition_hour(key)).num_rows


def test_first_runs_compact_check_and_roll_up(story: dict[str, Any]) -> None:
    first = story["first"]
    for key, result in story["run1"].items():
        assert result.success
        ticks = metadata(result, "ticks")
        glitch = key == H15  # the glitch segment: one good line, one broken
        assert ticks["rows_in"] == lines_of(first, key) + 2 * glitch
        assert ticks["rows_stored"] == ticks["rows_in_hour"] == lines_of(first, key) + glitch
        assert ticks["rows_quarantined"] == glitch
        assert ticks["segments"] == 1 + glitch and ticks["replaced_files"] == 0
        assert ticks["files"] == 3 and ticks["bytes"] > 0 and isinstance(ticks["snapshot"], int)
        start = datetime.strptime(key, "%Y-%m-%d-%H:%M").replace(tzinfo=UTC).timestamp()
        assert (ticks["span_start"], ticks["span_end"]) == (start, start + 3600)
        bars = metadata(result, "bars_1m")
        assert (
            bars["trades"] == pc.sum(pc.equal(in_hours(first, partition_hour(key)).column("tick_type"), "last")).as_py() + glitch
        )
        assert bars["rows"] > 0 and bars["files"] == 1 and bars["contracts"] > 10
        assert checks(result) == {"rows_reconcile": True, "files_match_storage": True, "no_overlapping_files": True}


def test_late_segments_are_merged_into_their_hours(story: dict[str, Any]) -> None:
    first, late = story["first"], story["late"]
    for key, result in story["run2"].items():
        assert result.success
        ticks = metadata(result, "ticks")
        extra = key == H15  # the glitch's good line, then the third wave's trade
        assert ticks["rows_in"] == ticks["rows_stored"] == lines_of(late, key) + extra
        assert ticks["rows_in_hour"] == lines_of(first, key) + lines_of(late, key) + 2 * extra
        assert ticks["replaced_files"] == 3 and ticks["files"] == 3
        assert metadata(result, "bars_1m")["replaced_files"] == 1
        assert all(checks(result).values())
    # What the runs committed (fresh=False): hour 16's segment waits for its schedule.
    with ticklake.connect(story["root"], fresh=False) as lakehouse:
        rows = lakehouse.sql("SELECT hour, count(*) FROM ticks GROUP BY ALL ORDER BY ALL").fetchall()
    assert rows == [(14, lines_of(story["raw"], H14)), (15, lines_of(story["raw"], H15) + 2)]


def test_the_sensor_requests_exactly_the_late_hours_once(story: dict[str, Any]) -> None:
    assert story["quiet"][0] == [] and story["idle"][0] == []
    requests = story["late_requests"]
    assert sorted(r.partition_key for r in requests) == [H14, H15]  # not 16:00: never materialized
    assert all(r.run_key.startswith(f"late-{r.partition_key}-") and r.tags["ticklake/trigger"] == "late-data" for r in requests)
    assert story["again"][0] == []  # the same segments: nothing new to ask for
    [more] = story["more"][0]
    assert more.partition_key == H15 and more.run_key not in {r.run_key for r in requests}
    assert story["after"][0] == [] and story["after"][1] == "{}"  # all compacted; 16:00 waits for its schedule


def test_bars_equal_duckdb_over_the_raw_ticks(story: dict[str, Any]) -> None:
    raw = story["raw"]
    trades = raw.filter(pc.equal(raw.column("tick_type"), "last")).select(["timestamp", "contract_id", "price", "size", "seq"])
    trades = pa.concat_tables([trades, pa.Table.from_pylist(story["extra_trades"], schema=trades.schema)])
    con = connect_duckdb()
    con.register("trades", trades)
    expected = con.execute(
        """
        WITH t AS (
            SELECT *, time_bucket(INTERVAL 1 MINUTE, timestamp) AS minute,
                   row_number() OVER (PARTITION BY contract_id, minute ORDER BY timestamp, seq) AS nth,
                   row_number() OVER (PARTITION BY contract_id, minute ORDER BY timestamp DESC, seq DESC) AS nth_last
            FROM trades)
        SELECT minute, contract_id, any_value(price) FILTER (nth = 1), max(price), min(price),
               any_value(price) FILTER (nth_last = 1), sum(size), sum(price * size) / sum(size), count(*)
        FROM t GROUP BY ALL ORDER BY contract_id, minute
        """
    ).fetchall()
    with ticklake.connect(story["root"], fresh=False) as lakehouse:  # the bars the runs rolled up
        got = lakehouse.sql(
            "SELECT minute, contract_id, open, high, low, close, volume, vwap, trades FROM bars_1m ORDER BY contract_id, minute"
        ).fetchall()
    assert len(got) == len(expected) > 500
    for mine, theirs in zip(got, expected, strict=True):
        assert mine[:7] == theirs[:7] and mine[8] == theirs[8], (mine, theirs)
        assert mine[7] == pytest.approx(theirs[7], rel=1e-12)


# -- checks that fail, empty hours, real data, leases ------------------------------------------------------


def test_a_failing_check_is_visible_and_blocks_bars(defs: Definitions, instance: DagsterInstance, tmp_path: Path) -> None:
    root = tmp_path / "lake"
    land(root, [tick("2022-01-07T05:10:00Z", 1), tick("2022-01-07T05:20:00Z", 2, "bid_ask")])
    key = "2022-01-07-05:00"
    assert run_hour(defs, instance, root, key).success
    bars_before = instance.get_latest_materialization_event(AssetKey("bars_1m"))
    with Catalog(root / "catalog.sqlite") as catalog:
        [quotes] = [f for f in catalog.live_files(catalog.ensure_dataset(TICKS).dataset_id) if "bid_ask" in f.path]
    (root / quotes.path).unlink()
    result = run_hour(defs, instance, root, key)
    assert not result.success
    [failed] = [e for e in result.get_asset_check_evaluations() if not e.passed]
    assert failed.check_name == "files_match_storage" and failed.severity == AssetCheckSeverity.ERROR
    assert failed.description == f"2022-01-07T05: {quotes.path} is missing"
    assert [e.asset_key for e in result.get_asset_materialization_events()] == [AssetKey("ticks")]
    assert instance.get_latest_materialization_event(AssetKey("bars_1m")) == bars_before


def test_an_empty_hour_succeeds_quickly(defs: Definitions, instance: DagsterInstance, tmp_path: Path) -> None:
    root = tmp_path / "lake"
    started = time.perf_counter()
    result = run_hour(defs, instance, root, "2022-01-07-03:00")
    assert result.success and time.perf_counter() - started < 5
    assert {k: metadata(result, "ticks")[k] for k in ("rows_in", "rows_stored", "files", "snapshot")} == {
        "rows_in": 0,
        "rows_stored": 0,
        "files": 0,
        "snapshot": "unchanged",
    }
    assert (metadata(result, "bars_1m")["rows"], metadata(result, "bars_1m")["files"]) == (0, 0)
    assert all(checks(result).values())
    # Data arriving later for this hour, materialized while empty, is late data.
    with LandingWriter(LakeConfig(root=root), writer_id="late") as writer:
        writer.append([tick("2022-01-07T03:59:59Z", 3)])
    requests, _ = evaluate_sensor(defs, instance, root, None)
    assert [r.partition_key for r in requests] == ["2022-01-07-03:00"]


def test_real_eurusd_quotes_hour_has_ticks_and_no_bars(defs: Definitions, instance: DagsterInstance, tmp_path: Path) -> None:
    root = tmp_path / "lake"
    quotes = eurusd_ticks()
    land(root, quotes)
    key = "2020-01-01-20:00"
    result = run_hour(defs, instance, root, key)
    assert result.success and all(checks(result).values())
    assert metadata(result, "ticks")["rows_stored"] == lines_of(quotes, key) > 1000
    assert metadata(result, "bars_1m")["rows"] == 0
    waiting = {s.hour for s in sealed_segments(root)}
    assert partition_hour(key) not in waiting and len(waiting) >= 4  # the other hours wait for their own runs


def test_the_ticks_asset_waits_for_the_partitions_lease(defs: Definitions, instance: DagsterInstance, tmp_path: Path) -> None:
    root = tmp_path / "lake"
    land(root, [tick("2022-01-07T05:10:00Z", 1)])
    released: list[float] = []
    holding = threading.Event()

    def hold() -> None:
        with Catalog(root / "catalog.sqlite") as catalog, hold_lease(catalog, "ticks/2022-01-07T05", "someone-else"):
            holding.set()
            time.sleep(0.8)
            released.append(time.time())

    holder = threading.Thread(target=hold)
    holder.start()
    holding.wait(10)
    result = run_hour(defs, instance, root, "2022-01-07-05:00", lease_wait=20.0)
    holder.join()
    assert result.success
    with Catalog(root / "catalog.sqlite") as catalog:
        [snapshot] = [s for s in catalog.snapshots() if s["operation"] == "compact"]
    assert datetime.fromisoformat(str(snapshot["committed_at"])).timestamp() > released[0]


def retries(result: ExecuteInProcessResult) -> int:
    return sum(e.event_type_value == "STEP_UP_FOR_RETRY" for e in result.all_events)


def test_a_permanent_lake_error_fails_at_once(defs: Definitions, instance: DagsterInstance, tmp_path: Path) -> None:
    root = tmp_path / "lake"
    land(root, [tick("2022-01-07T05:10:00Z", 1)])
    (root / "lake").write_text("a file where the data folder belongs")
    started = time.perf_counter()
    result = run_hour(defs, instance, root, "2022-01-07-05:00")
    assert not result.success and retries(result) == 0 and time.perf_counter() - started < 10
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert ".parquet: cannot write: Not a directory" in str(failure.event_specific_data)
    assert sealed_segments(root)  # nothing consumed: the next run finds the hour as it was


def test_a_transient_error_is_retried(defs: Definitions, instance: DagsterInstance, tmp_path: Path) -> None:
    root = tmp_path / "lake"
    land(root, [tick("2022-01-07T05:10:00Z", 1)])
    holding = threading.Event()

    def hold() -> None:  # longer than the run waits for the lease
        with Catalog(root / "catalog.sqlite") as catalog, hold_lease(catalog, "ticks/2022-01-07T05", "someone-else"):
            holding.set()
            time.sleep(1.0)

    holder = threading.Thread(target=hold)
    holder.start()
    holding.wait(10)
    result = run_hour(defs, instance, root, "2022-01-07-05:00", lease_wait=0.2)
    holder.join()
    assert result.success and retries(result) >= 1  # the jittered delay may end before the lease does
    assert metadata(result, "ticks")["rows_stored"] == 1


# -- definitions, schedule, settings ----------------------------------------------------------------------


def test_definitions_expose_the_interface(defs: Definitions) -> None:
    job = defs.resolve_job_def("hourly_compaction_job")
    graph = job.asset_layer.asset_graph
    assert {str(k.to_user_string()) for k in graph.get_all_asset_keys()} >= {"ticks", "bars_1m"}
    assert {k.name for k in graph.asset_check_keys} == {"rows_reconcile", "files_match_storage", "no_overlapping_files"}
    partitions = job.partitions_def
    assert partitions is not None
    keys = partitions.get_partition_keys(current_time=datetime(2020, 1, 1, 3, 30, tzinfo=UTC))
    assert keys == ["2020-01-01-00:00", "2020-01-01-01:00", "2020-01-01-02:00"]
    assert defs.resolve_sensor_def("late_data_sensor").minimum_interval_seconds == 60
    assert defs.resolve_sensor_def("catalog_commits_sensor").minimum_interval_seconds == 60
    assert set(defs.resources or {}) == {"lake"}
    # The module Dagster loads builds the same thing from the environment.
    module = importlib.import_module("ticklake.pipelines.definitions")
    assert isinstance(module.defs, Definitions)
    assert module.defs.resolve_job_def("hourly_compaction_job").partitions_def is not None


def test_partition_keys_are_event_hours() -> None:
    assert partition_hour("2022-01-07-06:00") == parse_hour("2022-01-07T06")
    assert partition_key(parse_hour("2022-01-07T06")) == "2022-01-07-06:00"


def test_settings_come_from_the_environment() -> None:
    settings = PipelineSettings.from_env({"TICKLAKE_PARTITIONS_START": "2021-06-01-05:00", "TICKLAKE_SCHEDULE_MINUTE": "25"})
    assert (settings.partitions_start, settings.schedule_minute, settings.sensor_interval) == ("2021-06-01-05:00", 25, 60)
    defs = build_definitions(settings)
    job = defs.resolve_job_def("hourly_compaction_job")
    assert job.partitions_def is not None
    assert job.partitions_def.get_first_partition_key() == "2021-06-01-05:00"
    assert defs.resolve_schedule_def("hourly_compaction_schedule").cron_schedule == "25 * * * *"
    with pytest.raises(ConfigError, match="TICKLAKE_SCHEDULE_MINUTE='60': must be between 0 and 59"):
        PipelineSettings.from_env({"TICKLAKE_SCHEDULE_MINUTE": "60"})
    with pytest.raises(ConfigError, match="TICKLAKE_PARTITIONS_START='2021-06-01': expected YYYY-MM-DD-HH:MM"):
        PipelineSettings.from_env({"TICKLAKE_PARTITIONS_START": "2021-06-01"})
    with pytest.raises(ConfigError, match="TICKLAKE_SENSOR_INTERVAL='often': expected an integer"):
        PipelineSettings.from_env({"TICKLAKE_SENSOR_INTERVAL": "often"})


def test_the_lake_resource_resolves_like_the_cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("TICKLAKE_ROOT", raising=False)
    assert LakeResource().lake_config().root == Path("lakehouse")
    monkeypatch.setenv("TICKLAKE_ROOT", str(tmp_path / "env"))
    monkeypatch.setenv("TICKLAKE_ROW_GROUP_ROWS", "1000")
    assert LakeResource().lake_config().root == tmp_path / "env"
    assert LakeResource(root=str(tmp_path / "given")).lake_config() == LakeConfig.from_env(root=tmp_path / "given")
    assert LakeResource().lake_config().row_group_rows == 1000


def test_the_schedule_asks_for_the_hour_that_just_closed(defs: Definitions, instance: DagsterInstance) -> None:
    schedule = defs.resolve_schedule_def("hourly_compaction_schedule")
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("10 * * * *", "UTC")
    repo = defs.get_repository_def()
    tick_at = build_schedule_context(instance, datetime(2022, 1, 7, 6, 10, tzinfo=UTC), repository_def=repo)
    [request] = schedule.evaluate_tick(tick_at).run_requests or []
    assert (request.partition_key, request.run_key) == ("2022-01-07-05:00", "2022-01-07-05:00")
    before = build_schedule_context(instance, datetime(2020, 1, 1, 0, 10, tzinfo=UTC), repository_def=repo)
    assert schedule.evaluate_tick(before).skip_message == "hour 2019-12-31-23:00 is before the first partition 2020-01-01-00:00"


def test_every_pipeline_setting_is_documented() -> None:
    readme = (ROOT / "README.md").read_text()
    for setting in PIPELINE_SETTINGS:
        row = next((line for line in readme.splitlines() if line.startswith(f"| `{setting.env}` |")), None)
        assert row is not None and str(setting.default) in row, setting.name


def test_instance_yaml_queues_runs_one_per_partition(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    shutil.copy(ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    with DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        config = instance.run_coordinator.get_run_queue_config()  # type: ignore[attr-defined]
        assert config.max_concurrent_runs == 2
        assert config.tag_concurrency_limits == [
            {"key": "dagster/partition", "value": {"applyLimitPerUniqueValue": True}, "limit": 1}
        ]
    ignore = (ROOT / ".gitignore").read_text().splitlines()
    assert "/dagster_home/*" in ignore and "!/dagster_home/dagster.yaml" in ignore  # runs are not committed


def test_the_library_never_imports_dagster() -> None:
    imports = re.compile(r"^\s*(?:import|from)\s+(?:dagster|pipelines)\b", re.MULTILINE)
    for package in ("lake", "catalog"):
        for path in (ROOT / package).glob("*.py"):
            assert not imports.search(path.read_text()), path


# -- as a user runs it ------------------------------------------------------------------------------------


def test_dagster_cli_materializes_a_partition(tmp_path: Path) -> None:
    # Not "lake": Dagster puts its working directory on sys.path, where a folder named lake would shadow the package.
    root, home = tmp_path / "lakehouse", tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    land(root, [tick(f"2022-01-07T06:{m:02d}:00Z", 1 + m % 2, price=100.0 + m) for m in range(20)])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TICKLAKE_", "DAGSTER_"))}
    env.update(TICKLAKE_ROOT=str(root), DAGSTER_HOME=str(home))
    dagster = Path(sys.executable).with_name("dagster")
    args = [str(dagster), "asset", "materialize", "-m", "ticklake.pipelines.definitions", "--select", "ticks,bars_1m"]
    done = subprocess.run(
        [*args, "--partition", "2022-01-07-06:00"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "RUN_SUCCESS" in done.stderr and "Asset check 'rows_reconcile' on 'ticks' passed" in done.stderr
    query = "SELECT count(*) AS bars, sum(trades) AS trades FROM bars_1m WHERE hour = 6"
    out = subprocess.run(
        [sys.executable, "-m", "ticklake.cli", "sql", query, "--format", "csv"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.stdout == "bars,trades\n20,20\n", out.stderr
    assert (home / "history" / "runs.db").exists()  # the run is recorded in the instance's SQLite storage
    assert (home / "history" / "runs.db").stat().st_size > 0
