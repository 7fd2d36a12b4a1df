"""The late-data sensor: sealed segments that land for hours already materialized request a
re-materialization of exactly those hours (ticks, its checks and bars_1m).

An hour counts as materialized when the catalog recorded consumed segments for it (whoever
compacted it: a run, a backfill or ``ticklake compact``) or, for an hour that was empty when its
run came, when the `ticks` asset has a materialization of its partition. Hours never
materialized are left to the schedule and to backfills.

No storm of duplicate runs: each request's run key names the hour and its set of waiting
segments (Dagster never launches a run key twice for a sensor), and the cursor, which Dagster
keeps in the instance across daemon restarts, remembers the set last requested per hour, so a
failed run is not re-requested until new segments land.
"""

# No `from __future__ import annotations`: Dagster reads the context and resource parameter
# annotations of decorated functions as classes.
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from dagster import (
    AssetKey,
    DagsterEventType,
    DefaultSensorStatus,
    HourlyPartitionsDefinition,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from ticklake.datasets import TICKS
from ticklake.landing.arrivals import WaitingHour, waiting_hours
from ticklake.pipelines.partitions import partition_hour, partition_key
from ticklake.pipelines.resources import LakeResource
from ticklake.pipelines.settings import PARTITION_FORMAT

if TYPE_CHECKING:
    from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition


def build_late_data_sensor(
    job: "UnresolvedAssetJobDefinition", partitions: HourlyPartitionsDefinition, interval: int
) -> SensorDefinition:
    """The `late_data_sensor` for `job`, evaluated every `interval` seconds."""
    first_hour = partition_hour(partitions.start.strftime(PARTITION_FORMAT))

    @sensor(
        name="late_data_sensor",
        job=job,
        minimum_interval_seconds=interval,
        default_status=DefaultSensorStatus.RUNNING,
        description="Re-materializes hours already materialized when new sealed segments land for them.",
    )
    def late_data_sensor(context: SensorEvaluationContext, lake: LakeResource) -> SensorResult:
        requested: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
        last_closed = int(datetime.now(UTC).timestamp()) // 3600 - 1
        waiting = [w for w in waiting_hours(lake.lake_config()) if first_hour <= w.hour <= last_closed]
        late = _late(context, waiting)
        cursor = {partition_key(w.hour): w.digest for w in late}
        requests = [
            RunRequest(
                run_key=f"late-{key}-{digest}",
                partition_key=key,
                tags={"ticklake/trigger": "late-data", "ticklake/segments": digest},
            )
            for key, digest in cursor.items()
            if requested.get(key) != digest
        ]
        if not requests:
            return SensorResult(skip_reason=SkipReason(_nothing(waiting, late)), cursor=json.dumps(cursor, sort_keys=True))
        context.log.info(f"late segments for {', '.join(r.partition_key or '' for r in requests)}")
        return SensorResult(run_requests=requests, cursor=json.dumps(cursor, sort_keys=True))

    return late_data_sensor


def _late(context: SensorEvaluationContext, waiting: list[WaitingHour]) -> list[WaitingHour]:
    """The waiting hours that were materialized before: by the catalog, else by Dagster's event log."""
    unknown = {partition_key(w.hour) for w in waiting if not w.compacted}
    materialized: set[str] = set()
    if unknown:
        latest = context.instance.get_latest_storage_id_by_partition(
            AssetKey(TICKS.name), DagsterEventType.ASSET_MATERIALIZATION, partitions=unknown
        )
        materialized = set(latest)
    return [w for w in waiting if w.compacted or partition_key(w.hour) in materialized]


def _nothing(waiting: list[WaitingHour], late: list[WaitingHour]) -> str:
    if not waiting:
        return "no sealed segments waiting for a closed hour"
    if not late:
        return f"{len(waiting)} hours have segments waiting, none of them materialized before (the schedule's work)"
    return f"{len(late)} late hours, each already requested for its current segments"


__all__ = ["build_late_data_sensor"]
