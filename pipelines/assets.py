"""The hourly assets: `ticks` (compaction of the hour's landing segments) and `bars_1m` (its
1-minute bars). Each calls one `lake` function under the partition's lease; no Parquet or SQL here.

A run materializes one hour (the schedule's, the sensor's) or, in a backfill, a range of up to
``backfill_hours_per_run`` hours (`BackfillPolicy.multi_run`): one process start for many hours,
built in parallel inside it, each under its own lease and recorded as its own partition's
materialization with its own metadata.
"""

# No `from __future__ import annotations`: Dagster reads the context and resource parameter
# annotations of decorated functions as classes.
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar

from dagster import (
    AssetExecutionContext,
    AssetMaterialization,
    AssetsDefinition,
    BackfillPolicy,
    Backoff,
    BetaWarning,
    Failure,
    HourlyPartitionsDefinition,
    Jitter,
    MaterializeResult,
    MetadataValue,
    RetryPolicy,
    asset,
)

from ticklake.build.compaction import HourResult, compact_each, summarize_hours
from ticklake.build.hours import each_hour, hour_workers, partition_lease
from ticklake.build.rollups import RollupResult, build_bars_1m, summarize_rollups
from ticklake.catalog import CatalogLocked, CommitConflict, LeaseHeld
from ticklake.datasets import BARS_1M, TICKS
from ticklake.errors import TicklakeError
from ticklake.pipelines.metadata import dataset_metadata
from ticklake.pipelines.partitions import partition_hour
from ticklake.pipelines.resources import LakeResource

Metadata = str | int | float | MetadataValue


class _Result(Protocol):
    """An hour's result (HourResult, RollupResult): it tells what was done in one line."""

    def summary(self) -> str: ...


R = TypeVar("R", bound=_Result)

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


def build_assets(partitions: HourlyPartitionsDefinition, hours_per_run: int) -> tuple[AssetsDefinition, AssetsDefinition]:
    """The `ticks` and `bars_1m` assets over `partitions`; a backfill runs up to `hours_per_run` hours per run."""
    # The same policy on both: a backfill run then takes both assets (and the checks) for its range.
    policy = BackfillPolicy.multi_run(hours_per_run)

    def spans(key: str) -> dict[str, Metadata]:
        window = partitions.time_window_for_partition_key(key)
        return {"span_start": MetadataValue.timestamp(window.start), "span_end": MetadataValue.timestamp(window.end)}

    @_asset(
        name=TICKS.name,
        partitions_def=partitions,
        backfill_policy=policy,
        retry_policy=RETRY,
        group_name="lake",
        kinds={"parquet", "sqlite"},
        metadata=dataset_metadata(TICKS),
        description="Ticks of one event hour: the hour's sealed landing segments compacted into one sorted Parquet "
        "file per tick type and committed to the catalog (late segments are merged into the hour's files).",
    )
    def ticks(context: AssetExecutionContext, lake: LakeResource) -> MaterializeResult:
        config, owner, wait = lake.lake_config(), context.run.run_id, lake.effective_lease_wait()

        def describe(key: str, result: HourResult) -> dict[str, Metadata]:
            for warning in result.warnings:
                context.log.warning(warning)
            return {**_hour_metadata(result), **spans(key)}

        return _materialize(
            context, lambda hours: compact_each(config, hours, owner=owner, lease_wait=wait), describe, summarize_hours
        )

    @_asset(
        name=BARS_1M.name,
        deps=[ticks],
        partitions_def=partitions,
        backfill_policy=policy,
        retry_policy=RETRY,
        group_name="lake",
        kinds={"parquet", "duckdb"},
        metadata=dataset_metadata(BARS_1M),
        description="1-minute bars per contract (open, high, low, close, volume, vwap, trades) from the hour's "
        "trades, as the lake dataset bars_1m; rebuilt when the hour's trades changed.",
    )
    def bars_1m(context: AssetExecutionContext, lake: LakeResource) -> MaterializeResult:
        config, owner, wait = lake.lake_config(), context.run.run_id, lake.effective_lease_wait()

        def build(hour: int) -> RollupResult:
            with partition_lease(config, BARS_1M.name, hour, owner, wait=wait):
                return build_bars_1m(config, hour)

        def describe(key: str, result: RollupResult) -> dict[str, Metadata]:
            return _rollup_metadata(result)

        workers = hour_workers(config, len(context.partition_keys))
        return _materialize(context, lambda hours: each_hour(hours, build, workers=workers), describe, summarize_rollups)

    return ticks, bars_1m


def _asset(**kwargs: Any) -> Callable[[Callable[..., Any]], AssetsDefinition]:
    """`asset(**kwargs)`. Dagster warns that `backfill_policy` is a beta parameter; the warning is
    silenced here, where the parameter is used (a backfill policy is the only way to ranged runs)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=BetaWarning, message="Parameter `backfill_policy`")
        return asset(**kwargs)


def _materialize(
    context: AssetExecutionContext,
    build: Callable[[list[int]], Sequence[R | Exception]],
    describe: Callable[[str, R], dict[str, Metadata]],
    summarize: Callable[[Sequence[R]], str],
) -> MaterializeResult:
    """Build the run's hours (`build` gets them all, returns each one's outcome) and record one
    materialization per hour, with the metadata `describe` gives for it. The run's log gets one
    line: the hour's summary, or `summarize` over a range (each line is an event Dagster stores, at
    15 to 20 ms apiece; every hour's summary is in its metadata).

    A run of one hour lets its error through, as `_fail_fast` sorts it. In a run over a range, an
    hour with transient trouble is retried alone, on RETRY's delays (a retry of the step would
    build every hour again); the hours that built are then recorded, each as its partition's
    materialization, and the step fails without retries, naming the hours that did not.
    """
    keys = list(context.partition_keys)
    outcomes = dict(zip(keys, build([partition_hour(k) for k in keys]), strict=True))
    if len(keys) == 1:  # the schedule's, the sensor's: errors go to the retry policy as `_fail_fast` sorts them
        [outcome] = outcomes.values()
        if isinstance(outcome, Exception):
            with _fail_fast():
                raise outcome
    for attempt in range(1, RETRY.max_retries + 1):
        again = [k for k, o in outcomes.items() if isinstance(o, TRANSIENT)]
        if not again:
            break
        delay = RETRY.calculate_delay(attempt)
        context.log.warning(f"retrying {len(again)} hours alone in {delay:.0f}s: {outcomes[again[0]]}")
        time.sleep(delay)
        outcomes.update(zip(again, build([partition_hour(k) for k in again]), strict=True))
    failed = {k: o for k, o in outcomes.items() if isinstance(o, Exception)}
    built = {k: o for k, o in outcomes.items() if not isinstance(o, Exception)}
    if built:
        results = list(built.values())
        context.log.info(results[0].summary() if len(results) == 1 else summarize(results))
    if not failed:
        for key, result in built.items():
            context.add_asset_metadata(describe(key, result), partition_key=key)
        return MaterializeResult()
    # The step fails, so it has no output to derive materializations from: log them one by one.
    tags = {k: v for k, v in context.run.tags.items() if k == "dagster/backfill"}
    for key, result in built.items():
        context.log_event(
            AssetMaterialization(asset_key=context.asset_key, partition=key, metadata=describe(key, result), tags=tags)
        )
    for key, error in failed.items():
        context.log.error(f"{key}: {error}")
    lines = "; ".join(f"{key}: {error}" for key, error in failed.items())
    raise Failure(
        description=f"{len(failed)} of {len(keys)} hours failed ({len(built)} built and materialized): {lines}",
        allow_retries=False,
    ) from next(iter(failed.values()))


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
