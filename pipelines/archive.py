"""The `cold_archive` asset and its daily schedule: ``ticklake archive`` run by Dagster.

The asset is not partitioned: each run packs every day old enough (``TICKLAKE_ARCHIVE_OLDER_THAN``,
or the run config's ``older_than``) into the cold tier (``TICKLAKE_COLD_URI``), re-packing days
that received late ticks. The schedule starts it once a day; without a cold tier it skips.
"""

# No `from __future__ import annotations`: Dagster reads the context, config and resource
# parameter annotations of decorated functions as classes.
from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    Config,
    DefaultScheduleStatus,
    MaterializeResult,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SkipReason,
    asset,
    define_asset_job,
    schedule,
)
from pydantic import Field

from ticklake.build.archive import archive_lake
from ticklake.config import LakeConfig
from ticklake.maintenance.duration import parse_duration
from ticklake.pipelines.assets import RETRY, _fail_fast
from ticklake.pipelines.resources import LakeResource

ARCHIVE = "cold_archive"


class ArchiveConfig(Config):
    """How old a day must be to move to the cold tier (empty: the pipeline setting)."""

    older_than: str = Field(default="", description="A duration: 36h, 7d (as `ticklake archive --older-than`).")


def build_archive_asset(default_older_than: str) -> AssetsDefinition:
    """The `cold_archive` asset; `default_older_than` applies when the run config gives none."""

    @asset(name=ARCHIVE, retry_policy=RETRY, group_name="lake", description="Days packed into the cold tier: `ticklake archive`.")
    def cold_archive(context: AssetExecutionContext, config: ArchiveConfig, lake: LakeResource) -> MaterializeResult:
        with _fail_fast():
            seconds = parse_duration(config.older_than or default_older_than, "older_than")
            result = archive_lake(lake.lake_config(), seconds)
        for day in result.days:
            context.log.info(f"{day.dataset} {day.partition}: {day.files_in} files, {day.rows:,} rows -> {day.uri}")
        return MaterializeResult(
            metadata={
                "summary": result.summary(),
                "days": len(result.days),
                "rows": sum(d.rows for d in result.days),
                "bytes_in": sum(d.bytes_in for d in result.days),
                "bytes_out": sum(d.bytes_out for d in result.days),
                "local_files_deleted": result.deleted_local,
                "orphans_removed": len(result.orphans_removed),
            }
        )

    return cold_archive


def build_archive_schedule(cron: str) -> ScheduleDefinition:
    """Materializes `cold_archive` on `cron` (UTC); skips while the lake has no cold tier."""
    job = define_asset_job("daily_archive_job", selection=[ARCHIVE], description="Move old days to the cold tier.")

    @schedule(
        name="daily_archive_schedule",
        job=job,
        cron_schedule=cron,
        execution_timezone="UTC",
        default_status=DefaultScheduleStatus.RUNNING,
        description=f"Packs days old enough into the cold tier ({cron}, UTC).",
    )
    def daily_archive_schedule(context: ScheduleEvaluationContext) -> RunRequest | SkipReason:
        if not LakeConfig.from_env().cold_uri:
            return SkipReason("no cold tier: set TICKLAKE_COLD_URI to s3://bucket/prefix")
        moment = context.scheduled_execution_time
        return RunRequest(run_key=moment.strftime("%Y-%m-%d") if moment else None, tags={"ticklake/trigger": "schedule"})

    return daily_archive_schedule
