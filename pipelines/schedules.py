"""The hourly schedule: a few minutes past every hour, materialize the hour that just closed.

Written out rather than built with `build_schedule_from_partitioned_job`, whose evaluation goes
through a Dagster function deprecated for 2.0; this is the same thing in a few lines.
"""

# No `from __future__ import annotations`: Dagster reads the context annotation as a class.
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from dagster import (
    DefaultScheduleStatus,
    HourlyPartitionsDefinition,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SkipReason,
    schedule,
)

from ticklake.pipelines.settings import PARTITION_FORMAT

if TYPE_CHECKING:
    from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition


def closed_hour(at: datetime) -> str:
    """The partition key of the last hour that closed before `at`.

    >>> closed_hour(datetime(2022, 1, 7, 6, 10, tzinfo=UTC))
    '2022-01-07-05:00'
    """
    start = at.astimezone(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    return start.strftime(PARTITION_FORMAT)


def build_hourly_schedule(
    job: "UnresolvedAssetJobDefinition", partitions: HourlyPartitionsDefinition, minute_of_hour: int
) -> ScheduleDefinition:
    """Runs `job` for the last closed hour at `minute_of_hour` past each hour (UTC).

    The minutes of delay let producers seal the hour's last segments; whatever seals later
    is picked up by the late-data sensor.
    """
    first = partitions.start.strftime(PARTITION_FORMAT)

    @schedule(
        name="hourly_compaction_schedule",
        job=job,
        cron_schedule=f"{minute_of_hour} * * * *",
        execution_timezone="UTC",
        default_status=DefaultScheduleStatus.RUNNING,
        description=f"Compacts the hour that just closed, {minute_of_hour} minutes past every hour (UTC).",
    )
    def hourly_compaction_schedule(context: ScheduleEvaluationContext) -> RunRequest | SkipReason:
        key = closed_hour(context.scheduled_execution_time or datetime.now(UTC))
        if datetime.strptime(key, PARTITION_FORMAT) < datetime.strptime(first, PARTITION_FORMAT):
            return SkipReason(f"hour {key} is before the first partition {first}")
        # One run per hour, however often a tick is evaluated.
        return RunRequest(run_key=key, partition_key=key, tags={"ticklake/trigger": "schedule"})

    return hourly_compaction_schedule
