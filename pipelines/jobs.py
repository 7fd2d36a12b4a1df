"""Jobs that are not per hour: `vacuum_job`, the Dagster face of ``ticklake vacuum``.

It runs when launched (from the UI's Launchpad, or a schedule someone adds), with the run config
``ops: {vacuum: {config: {older_than: 7d}}}``; nothing expires snapshots on its own.
"""

# No `from __future__ import annotations`: Dagster reads the context, config and resource
# parameter annotations of decorated functions as classes.
from dagster import Config, Failure, JobDefinition, OpExecutionContext, Output, job, op
from pydantic import Field

from ticklake.errors import TicklakeError
from ticklake.maintenance.duration import parse_duration
from ticklake.maintenance.vacuum import vacuum_lake
from ticklake.pipelines.resources import LakeResource


class VacuumConfig(Config):
    """How old replaced files and leftovers must be to go."""

    older_than: str = Field(default="7d", description="A duration: 0s, 90m, 36h, 7d (as `ticklake vacuum --older-than`).")


@op(name="vacuum", description="Delete data files replaced longer ago than older_than, and crash leftovers.")
def vacuum_op(context: OpExecutionContext, config: VacuumConfig, lake: LakeResource) -> Output[str]:
    """Vacuum the lake; each line of what was done goes to the run's log, the counts to its metadata."""
    try:
        result = vacuum_lake(lake.lake_config(), parse_duration(config.older_than, "older_than"))
    except TicklakeError as e:
        raise Failure(description=str(e), allow_retries=False) from e
    for line in result.lines():
        context.log.info(line)
    metadata = {
        "replaced_files_deleted": len(result.replaced),
        "leftovers_deleted": len(result.leftovers),
        "bytes_freed": result.freed,
        "snapshots_expired": len(result.expired),
        "files_kept_for_readers": len(result.spared),
    }
    return Output(result.summary(), metadata=metadata)


def build_vacuum_job() -> JobDefinition:
    """The `vacuum_job` (its `lake` resource comes from the Definitions)."""

    @job(name="vacuum_job", description="Delete what no readable snapshot needs: `ticklake vacuum` (older_than, default 7d).")
    def vacuum_job() -> None:
        vacuum_op()

    return vacuum_job
