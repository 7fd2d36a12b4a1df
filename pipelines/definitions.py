"""The code location: the one `Definitions` Dagster loads (``[tool.dagster] module_name``).

`defs` is built when Dagster imports this module, which is when a code location reads its
settings (TICKLAKE_PARTITIONS_START, ...) and, without a partitions start, where the lake's data
starts; tests build their own with `build_definitions`.
"""

from __future__ import annotations

from dagster import AssetSelection, Definitions, define_asset_job, in_process_executor

from ticklake.datasets import BARS_1M, TICKS
from ticklake.pipelines.archive import build_archive_asset, build_archive_schedule
from ticklake.pipelines.assets import build_assets
from ticklake.pipelines.checks import build_checks
from ticklake.pipelines.jobs import build_vacuum_job
from ticklake.pipelines.observations import build_catalog_sensor
from ticklake.pipelines.partitions import hourly_partitions, lake_start
from ticklake.pipelines.resources import LakeResource
from ticklake.pipelines.schedules import build_hourly_schedule
from ticklake.pipelines.sensors import build_late_data_sensor
from ticklake.pipelines.settings import PipelineSettings


def build_definitions(settings: PipelineSettings | None = None) -> Definitions:
    """Assets, checks, jobs (hourly compaction, vacuum), schedules, sensors and the `lake` resource, for
    `settings` (default: from the environment); without a partitions start, the partitions start where
    the lake's data does (`lake_start`)."""
    settings = settings or PipelineSettings.from_env()
    partitions = hourly_partitions(settings.partitions_start or lake_start(LakeResource().lake_config()))
    ticks, bars_1m = build_assets(partitions, settings.backfill_hours_per_run)
    job = define_asset_job(
        "hourly_compaction_job",
        selection=AssetSelection.assets(TICKS.name, BARS_1M.name),
        description="One event hour (in a backfill, a range of hours): compact its ticks, check them, roll up its 1-minute bars.",
    )
    # An hour's steps are short and run one after another; a process per step would add a few
    # seconds of imports to each (the multiprocess executor's default) for no parallelism.
    return Definitions(
        assets=[ticks, bars_1m, build_archive_asset(settings.archive_older_than)],
        asset_checks=build_checks(ticks, partitions),
        jobs=[job, build_vacuum_job()],
        schedules=[
            build_hourly_schedule(job, partitions, settings.schedule_minute),
            build_archive_schedule(settings.archive_cron),
        ],
        sensors=[
            build_late_data_sensor(job, partitions, settings.sensor_interval),
            build_catalog_sensor(partitions, settings.sensor_interval),
        ],
        resources={"lake": LakeResource(lease_wait=settings.lease_wait)},
        executor=in_process_executor,
    )


defs = build_definitions()
