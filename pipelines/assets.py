"""The hourly assets: `ticks` (compaction of the hour's landing segments) and `bars_1m` (its
1-minute bars). Each calls one `lake` function under the partition's lease; no Parquet or SQL here.
"""

# No `from __future__ import annotations`: Dagster reads the context and resource parameter
# annotations of decorated functions as classes.
from collections.abc import Iterator
from contextlib import contextmanager

from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    Backoff,
    Failure,
    HourlyPartitionsDefinition,
    Jitter,
    MaterializeResult,
    MetadataValue,
    RetryPolicy,
    asset,
)

from ticklake.build.compaction import HourResult, compact_hours
from ticklake.build.hours import partition_lease
from ticklake.build.rollups import RollupResult, build_bars_1m
from ticklake.catalog import CatalogLocked, CommitConflict, LeaseHeld
from ticklake.datasets import BARS_1M, TICKS
from ticklake.errors import TicklakeError
from ticklake.pipelines.partitions import partition_hour
from ticklake.pipelines.resources import LakeResource

Metadata = str | int | float | MetadataValue

# Transient trouble (a catalog busy past its timeout, a lease still held by a run that is
# finishing, a commit that lost a race five times) clears up by itself: retry after 2, 4, 8
# seconds, give or take a little. Anything else the lake reports is permanent (`_fail_fast`).
RETRY = RetryPolicy(max_retries=3, delay=2, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS)
TRANSIENT = (CatalogLocked, LeaseHeld, CommitConflict)


@contextmanager
def _fail_fast() -> Iterator[None]:
    """Let transient errors reach the retry policy; fail at once, without retries, on the rest
    (a missing folder or a corrupt catalog is not fixed by waiting, and would hold a queue slot)."""
    try:
        yield
    except TRANSIENT:
        raise
    except TicklakeError as e:
        raise Failure(description=str(e), allow_retries=False) from e


def build_assets(partitions: HourlyPartitionsDefinition) -> tuple[AssetsDefinition, AssetsDefinition]:
    """The `ticks` and `bars_1m` assets over `partitions`."""

    @asset(
        name=TICKS.name,
        partitions_def=partitions,
        retry_policy=RETRY,
        group_name="lake",
        kinds={"parquet", "sqlite"},
        description="Ticks of one event hour: the hour's sealed landing segments compacted into one sorted Parquet "
        "file per tick type and committed to the catalog (late segments are merged into the hour's files).",
    )
    def ticks(context: AssetExecutionContext, lake: LakeResource) -> MaterializeResult:
        config = lake.lake_config()
        hour = partition_hour(context.partition_key)
        with _fail_fast():
            with partition_lease(config, TICKS.name, hour, context.run.run_id, wait=lake.effective_lease_wait()):
                (result,) = compact_hours(config, [hour])
        context.log.info(result.summary())
        for warning in result.warnings:
            context.log.warning(warning)
        window = context.partition_time_window
        return MaterializeResult(
            metadata={
                **_hour_metadata(result),
                "span_start": MetadataValue.timestamp(window.start),
                "span_end": MetadataValue.timestamp(window.end),
            }
        )

    @asset(
        name=BARS_1M.name,
        deps=[ticks],
        partitions_def=partitions,
        retry_policy=RETRY,
        group_name="lake",
        kinds={"parquet", "duckdb"},
        description="1-minute bars per contract (open, high, low, close, volume, vwap, trades) from the hour's "
        "trades, as the lake dataset bars_1m; rebuilt when the hour's trades changed.",
    )
    def bars_1m(context: AssetExecutionContext, lake: LakeResource) -> MaterializeResult:
        config = lake.lake_config()
        hour = partition_hour(context.partition_key)
        with _fail_fast(), partition_lease(config, BARS_1M.name, hour, context.run.run_id, wait=lake.effective_lease_wait()):
            result = build_bars_1m(config, hour)
        context.log.info(result.summary())
        return MaterializeResult(metadata=_rollup_metadata(result))

    return ticks, bars_1m


def _hour_metadata(result: HourResult) -> dict[str, Metadata]:
    return {
        "hour": result.hour,
        "rows_in": result.lines,
        "rows_stored": result.stored,
        "rows_quarantined": result.quarantined,
        "rows_in_hour": result.rows,
        "segments": result.segments,
        "duplicate_segments": result.duplicate_segments,
        "segments_set_aside": len(result.set_aside),
        "warnings": "\n".join(result.warnings) or "none",
        "files": len(result.files),
        "bytes": result.bytes,
        "replaced_files": result.replaced_files,
        "snapshot": result.snapshot if result.snapshot is not None else "unchanged",
        "seconds": round(result.seconds, 3),
        "summary": result.summary(),
    }


def _rollup_metadata(result: RollupResult) -> dict[str, Metadata]:
    return {
        "hour": result.hour,
        "trades": result.trades,
        "rows": result.rows,
        "contracts": result.contracts,
        "files": len(result.files),
        "bytes": result.bytes,
        "replaced_files": result.replaced_files,
        "source_snapshot": result.source_snapshot,
        "snapshot": result.snapshot if result.snapshot is not None else "unchanged",
        "seconds": round(result.seconds, 3),
        "summary": result.summary(),
    }
