"""Hourly compaction as Dagster runs it: backfills requested through the webserver's GraphQL API, run by
the daemon under the project's instance configuration (queued runs), and the lake checked with `ticklake sql`.

The six hours of the first backfill are one run (the assets' backfill policy), each hour recorded as
its own partition. A second backfill covers an hour whose data file went missing after it was
compacted: its blocking asset check must fail the run, keep the hour's bars from being built, and
fail the backfill. An hour compacted with the CLI before the daemon starts shows as materialized
through the catalog sensor.
"""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import tick
from tests.pipelines.dagster_service import INSTANCE_YAML, DagsterService, shared_service, wait_for
from ticklake.build.compaction import compact_hour
from ticklake.config import LakeConfig
from ticklake.landing.writer import LandingWriter
from ticklake.storage.layout import parse_hour

pytestmark = pytest.mark.slow  # real servers (and a browser): run by the test command, skipped by -m 'not slow'

DAY = "2022-01-07"
LANDED = {3: 40, 4: 125, 5: 3, 6: 0, 7: 61, 8: 0}  # event hour -> ticks landed; two hours stay empty
LOST_HOUR, LOST_TICKS = 10, 5  # compacted beforehand, then one of its data files goes missing
OUTSIDE_HOUR, OUTSIDE_TICKS = 11, 9  # compacted with `ticklake compact` only: no run ever materializes it
TICK_TYPES = ("last", "bid_ask", "mid_point")
FINISHED = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}
# The daemon looks at backfills every 30 s: once to submit the runs, again to mark them done
# (~35 s here); the rest is headroom for a slow machine.
BACKFILL_TIMEOUT = 150

LAUNCH = """mutation($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) {
  __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message stack }
  ... on PartitionSetNotFoundError { message } ... on PartitionKeysNotFoundError { message }
  ... on UnauthorizedError { message } } }"""

BACKFILL = """query($id: String!) { partitionBackfillOrError(backfillId: $id) { __typename
  ... on PartitionBackfill { status partitionNames error { message } runs { runId status tags { key value } } }
  ... on BackfillNotFoundError { message } ... on PythonError { message } } }"""

RUN_EVENTS = """query($runId: ID!) { logsForRun(runId: $runId) { __typename ... on EventConnection { events {
  __typename ... on ExecutionStepFailureEvent { stepKey error { message } }
  ... on AssetCheckEvaluationEvent { evaluation { checkName partition success description
    targetMaterialization { runId } } } } } } }"""

INSTANCE = """{ instance { runQueuingSupported runQueueConfig { maxConcurrentRuns }
  daemonHealth { allDaemonStatuses { daemonType required healthy } } } }"""

MATERIALIZED = """query($path: [String!]!, $keys: [String!]) { assetOrError(assetKey: {path: $path}) { __typename
  ... on Asset { assetMaterializations(partitions: $keys) { partition } } } }"""

REPORTED = """query($keys: [String!]) { assetOrError(assetKey: {path: ["ticks"]}) { __typename
  ... on Asset { assetMaterializations(partitions: $keys) { partition runId metadataEntries { label
  ... on IntMetadataEntry { intValue } } } } } }"""


def partition_key(hour: int) -> str:
    """The Dagster partition key of an event hour of DAY."""
    return f"{DAY}-{hour:02d}:00"


def hour_ticks(hour: int, n: int) -> list[dict[str, Any]]:
    """`n` valid ticks spread over one hour of DAY: four contracts, every tick type."""
    return [
        tick(f"{DAY}T{hour:02d}:{i % 60:02d}:{(7 * i) % 60:02d}.{i:06d}Z", 1 + i % 4, TICK_TYPES[i % 3], symbol=f"S{i % 4}")
        for i in range(n)
    ]


def ticklake(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`ticklake --root ROOT ARGS` as a new process, as a user runs it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKLAKE_")}
    return subprocess.run(
        [sys.executable, "-m", "ticklake.cli", "--root", str(root), *args], env=env, capture_output=True, text=True, timeout=120
    )


def sql_rows(root: Path, query: str) -> list[list[str]]:
    """The CSV rows (header first) of `ticklake sql QUERY` over what the runs committed (no hot tier)."""
    result = ticklake(root, "sql", query, "--format", "csv", "--no-fresh")
    assert result.returncode == 0, result.stderr
    return list(csv.reader(io.StringIO(result.stdout)))


def partition_set(dagster: DagsterService, job: str) -> dict[str, Any]:
    """The partition-set selector of `job`, as the webserver names it."""
    query = """{ repositoriesOrError { __typename ... on RepositoryConnection { nodes { name location { name }
      partitionSets { name pipelineName } } } ... on PythonError { message } } }"""
    repos = dagster.graphql(query)["repositoriesOrError"]
    assert repos["__typename"] == "RepositoryConnection", repos
    for repo in repos["nodes"]:
        for ps in repo["partitionSets"]:
            if ps["pipelineName"] == job:
                return {
                    "partitionSetName": ps["name"],
                    "repositorySelector": {"repositoryName": repo["name"], "repositoryLocationName": repo["location"]["name"]},
                }
    raise AssertionError(f"no partition set for job {job}: {repos}")


def launch_backfill(dagster: DagsterService, selector: dict[str, Any], keys: list[str], title: str) -> str:
    """Request a backfill of `keys`; its id."""
    params = {"selector": selector, "partitionNames": keys, "title": title}
    launched = dagster.graphql(LAUNCH, {"params": params})["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    return str(launched["backfillId"])


def finished_backfill(dagster: DagsterService, backfill_id: str) -> dict[str, Any]:
    """The backfill once the daemon has marked it finished (all its runs done)."""

    def poll() -> dict[str, Any] | None:
        dagster.check_alive()
        found = dagster.graphql(BACKFILL, {"id": backfill_id})["partitionBackfillOrError"]
        assert found["__typename"] == "PartitionBackfill", found
        return found if found["status"] in FINISHED else None

    try:
        return dict(wait_for(f"backfill {backfill_id}", poll, BACKFILL_TIMEOUT, interval=1))
    except TimeoutError as e:
        raise AssertionError(f"{e}\n{dagster.logs()}") from None


@pytest.fixture(scope="module")
def backfills(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Land ticks, lose a data file of one compacted hour, request two backfills, start the daemon, wait for both."""
    dagster = shared_service(request.config, tmp_path_factory)
    config = LakeConfig(root=dagster.lake_root)
    with LandingWriter(config, writer_id="e2e") as writer:
        for hour, n in {**LANDED, LOST_HOUR: LOST_TICKS, OUTSIDE_HOUR: OUTSIDE_TICKS}.items():
            writer.append(hour_ticks(hour, n))
    compact_hour(config, parse_hour(f"{DAY}T{LOST_HOUR:02d}"))
    compacted = ticklake(dagster.lake_root, "compact", "--hour", f"{DAY}T{OUTSIDE_HOUR:02d}")
    assert compacted.returncode == 0, compacted.stderr
    lost = sorted(dagster.lake_root.glob(f"lake/ticks/*/date={DAY}/hour={LOST_HOUR:02d}/*.parquet"))[0]
    aside = lost.with_name(lost.name + ".aside")
    lost.rename(aside)

    selector = partition_set(dagster, "hourly_compaction_job")
    good = launch_backfill(dagster, selector, [partition_key(h) for h in LANDED], "e2e: six hours")
    bad = launch_backfill(dagster, selector, [partition_key(LOST_HOUR)], "e2e: an hour with a lost file")
    # Requested before the daemon starts, so its first backfill pass submits them at once
    # instead of up to 30 s later.
    dagster.start_daemon()
    try:
        return {
            "dagster": dagster,
            "good": finished_backfill(dagster, good),
            "bad": finished_backfill(dagster, bad),
            "lost": lost,
        }
    finally:
        aside.rename(lost)  # the lake is whole again for the queries below


def materialized(dagster: DagsterService, asset: str, keys: list[str]) -> set[str]:
    """Which of `keys` Dagster recorded a materialization of `asset` for."""
    found = dagster.graphql(MATERIALIZED, {"path": [asset], "keys": keys})["assetOrError"]
    assert found["__typename"] == "Asset", found
    return {m["partition"] for m in found["assetMaterializations"]}


def test_a_backfill_runs_its_hours_in_one_run_recorded_per_hour(backfills: dict[str, Any]) -> None:
    """The six hours are one run (the backfill policy's range), yet each hour has its own materialization
    with its own rows, and its own verdict of each check, tied to that materialization."""
    dagster, good = backfills["dagster"], backfills["good"]
    assert good["status"] == "COMPLETED_SUCCESS", (good, dagster.logs())
    [run] = good["runs"]
    tags = {t["key"]: t["value"] for t in run["tags"]}
    assert run["status"] == "SUCCESS" and "dagster/partition" not in tags
    assert (tags["dagster/asset_partition_range_start"], tags["dagster/asset_partition_range_end"]) == (
        partition_key(min(LANDED)),
        partition_key(max(LANDED)),
    )
    found = dagster.graphql(REPORTED, {"keys": [partition_key(h) for h in LANDED]})["assetOrError"]
    rows = {
        m["partition"]: {e["label"]: e.get("intValue") for e in m["metadataEntries"]}["rows_stored"]
        for m in found["assetMaterializations"]
        if m["runId"] == run["runId"]
    }
    assert rows == {partition_key(h): n for h, n in LANDED.items()}
    events = dagster.graphql(RUN_EVENTS, {"runId": run["runId"]})["logsForRun"]["events"]
    verdicts = [e["evaluation"] for e in events if e["__typename"] == "AssetCheckEvaluationEvent"]
    by_hour = {(v["checkName"], v["partition"]): v["success"] for v in verdicts}
    assert len(verdicts) == len(by_hour) == 3 * len(LANDED) and all(by_hour.values())
    assert all(v["targetMaterialization"]["runId"] == run["runId"] for v in verdicts)


def test_lake_holds_every_landed_tick_per_hour(backfills: dict[str, Any]) -> None:
    root = backfills["dagster"].lake_root
    rows = sql_rows(root, "SELECT date, hour, count(*) AS n FROM ticks GROUP BY ALL ORDER BY ALL")
    landed = {**LANDED, LOST_HOUR: LOST_TICKS, OUTSIDE_HOUR: OUTSIDE_TICKS}
    assert rows == [["date", "hour", "n"]] + [[DAY, str(h), str(n)] for h, n in sorted(landed.items()) if n]
    status = ticklake(root, "status")
    assert status.returncode == 0, status.stderr


def test_bars_roll_up_every_hours_trades(backfills: dict[str, Any]) -> None:
    expected = [["date", "hour", "bars", "trades", "volume"]]
    for hour, n in LANDED.items():  # not LOST_HOUR: its failed check kept its bars from being built
        trades = [t for t in hour_ticks(hour, n) if t["tick_type"] == "last"]
        if trades:
            bars = {(t["contract_id"], t["timestamp"][:16]) for t in trades}
            expected.append([DAY, str(hour), str(len(bars)), str(len(trades)), str(sum(t["size"] for t in trades))])
    query = (
        "SELECT date, hour, count(*) AS bars, sum(trades) AS trades, CAST(sum(volume) AS BIGINT) AS volume"
        " FROM bars_1m GROUP BY ALL ORDER BY ALL"
    )
    assert sql_rows(backfills["dagster"].lake_root, query) == expected


def test_dagster_records_each_assets_partitions(backfills: dict[str, Any]) -> None:
    dagster, keys = backfills["dagster"], [partition_key(h) for h in (*LANDED, LOST_HOUR)]
    good = {partition_key(h) for h in LANDED}
    assert materialized(dagster, "ticks", keys) == good | {partition_key(LOST_HOUR)}  # compacted; its check failed after
    assert materialized(dagster, "bars_1m", keys) == good


def test_an_hour_compacted_outside_dagster_shows_as_materialized(backfills: dict[str, Any]) -> None:
    """The daemon runs the catalog sensor (running by default): the CLI's commit is the hour's materialization."""
    dagster: DagsterService = backfills["dagster"]

    def reported() -> list[dict[str, Any]]:
        found = dagster.graphql(REPORTED, {"keys": [partition_key(OUTSIDE_HOUR)]})["assetOrError"]
        return [m for m in found["assetMaterializations"] if m["runId"] == ""]  # runless: reported, not run

    [event] = wait_for("the catalog sensor's report of the CLI's hour", reported, 90, interval=1)
    metadata = {e["label"]: e.get("intValue") for e in event["metadataEntries"]}
    assert metadata["rows_stored"] == OUTSIDE_TICKS and metadata["files"] == 3 and metadata["snapshot"] >= 1


def test_a_lost_file_fails_its_hours_backfill_through_the_blocking_check(backfills: dict[str, Any]) -> None:
    bad = backfills["bad"]
    assert bad["status"] == "COMPLETED_FAILED", bad
    assert [r["status"] for r in bad["runs"]] == ["FAILURE"]
    events = backfills["dagster"].graphql(RUN_EVENTS, {"runId": bad["runs"][0]["runId"]})["logsForRun"]["events"]
    failed_checks = [
        e["evaluation"] for e in events if e["__typename"] == "AssetCheckEvaluationEvent" and not e["evaluation"]["success"]
    ]
    lost = backfills["lost"].relative_to(backfills["dagster"].lake_root).as_posix()
    assert [(c["checkName"], c["description"]) for c in failed_checks] == [
        ("files_match_storage", f"{DAY}T{LOST_HOUR:02d}: {lost} is missing")
    ]
    failed_steps = [e["stepKey"] for e in events if e["__typename"] == "ExecutionStepFailureEvent"]
    assert failed_steps == ["ticks_files_match_storage"]


def test_servers_run_with_the_projects_instance_configuration(backfills: dict[str, Any]) -> None:
    """The shipped dagster_home/dagster.yaml is the one in effect, and every daemon it needs is healthy."""
    shipped = yaml.safe_load(INSTANCE_YAML.read_text())
    instance = backfills["dagster"].graphql(INSTANCE)["instance"]
    daemons = {d["daemonType"]: d["healthy"] for d in instance["daemonHealth"]["allDaemonStatuses"] if d["required"]}
    assert {"BACKFILL", "QUEUED_RUN_COORDINATOR", "SCHEDULER", "SENSOR"} <= set(daemons), daemons
    assert all(daemons.values()), daemons
    assert instance["runQueuingSupported"]
    queue = shipped.get("run_coordinator", {}).get("config", {})
    if "max_concurrent_runs" in queue:
        assert instance["runQueueConfig"]["maxConcurrentRuns"] == queue["max_concurrent_runs"]


def test_a_backfill_from_the_command_line_runs_through_the_daemon(backfills: dict[str, Any]) -> None:
    """`dagster job backfill` as the README shows it: the daemon runs the requested hours."""
    dagster: DagsterService = backfills["dagster"]
    hours = {12: 30, 13: 0}
    with LandingWriter(LakeConfig(root=dagster.lake_root), writer_id="cli") as writer:
        writer.append(hour_ticks(12, hours[12]))
    args = ["-m", "ticklake.pipelines.definitions", "-j", "hourly_compaction_job", "--noprompt"]
    args += ["--from", partition_key(12), "--to", partition_key(13)]
    done = subprocess.run(
        [str(Path(sys.executable).with_name("dagster")), "job", "backfill", *args],
        cwd=Path(__file__).resolve().parents[2],  # from the project, as the README runs it
        env=dagster.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    query = f"SELECT hour, count(*) AS n FROM ticks WHERE date = '{DAY}' AND hour >= 12 GROUP BY ALL ORDER BY ALL"

    def compacted() -> bool:
        dagster.check_alive()
        return materialized(dagster, "bars_1m", [partition_key(h) for h in hours]) == {partition_key(h) for h in hours}

    wait_for("the command line backfill's runs", compacted, BACKFILL_TIMEOUT, interval=1)
    assert sql_rows(dagster.lake_root, query) == [["hour", "n"], ["12", "30"]]
