"""Blocking asset checks on `ticks`, per partition: a failure (severity ERROR) keeps `bars_1m` of
that hour from being built. The checks themselves are `ticklake.build.health` functions: the
checks of ``ticklake check`` (`ticklake.maintenance.check`), run on one hour.

A backfill run covers a range of hours: each check then runs on every hour of it (in parallel) and
records one evaluation per hour, against that hour's materialization, as a run of one hour does.
One failed hour fails the check's step, so the run builds no bars at all: Dagster gates the steps
of a run, and a step covers its whole range.
"""

# No `from __future__ import annotations`: Dagster reads the context and resource parameter
# annotations of decorated functions as classes.
import warnings
from collections.abc import Callable, Iterator

from dagster import (
    AssetCheckEvaluation,
    AssetCheckExecutionContext,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetKey,
    AssetRecordsFilter,
    AssetsDefinition,
    DagsterEventType,
    DagsterInstance,
    HourlyPartitionsDefinition,
    Output,
    PreviewWarning,
    asset_check,
)

# Dagster exports no name for it: the pointer from an evaluation to the materialization it checked.
from dagster._core.definitions.asset_checks.asset_check_evaluation import AssetCheckEvaluationTargetMaterializationData

from ticklake.build.health import CheckOutcome, check_files_match_storage, check_no_overlapping_files, check_rows_reconcile
from ticklake.build.hours import each_hour, hour_workers
from ticklake.config import LakeConfig
from ticklake.pipelines.partitions import partition_hour
from ticklake.pipelines.resources import LakeResource

CHECKS: tuple[tuple[str, Callable[[LakeConfig, int], CheckOutcome]], ...] = (
    ("rows_reconcile", check_rows_reconcile),
    ("files_match_storage", check_files_match_storage),
    ("no_overlapping_files", check_no_overlapping_files),
)


def build_checks(ticks: AssetsDefinition, partitions: HourlyPartitionsDefinition) -> list[AssetChecksDefinition]:
    """One blocking, partitioned asset check on `ticks` per entry of CHECKS."""
    return [_build_check(ticks, partitions, name, run) for name, run in CHECKS]


def _build_check(
    ticks: AssetsDefinition,
    partitions: HourlyPartitionsDefinition,
    name: str,
    run: Callable[[LakeConfig, int], CheckOutcome],
) -> AssetChecksDefinition:
    def check(context: AssetCheckExecutionContext, lake: LakeResource) -> Iterator[AssetCheckEvaluation | Output[None]]:
        config = lake.lake_config()
        keys = list(context.partition_keys)  # one hour, or a backfill's range
        outcomes = each_hour([partition_hour(k) for k in keys], lambda h: run(config, h), workers=hour_workers(config, len(keys)))
        checked = _checked_materializations(context.instance, ticks.key, keys)
        for key, outcome in zip(keys, outcomes, strict=True):
            if isinstance(outcome, Exception):
                continue  # raised below, once the other hours' verdicts are recorded
            if not outcome.passed:
                context.log.error(outcome.message)
            # An evaluation per hour, not an AssetCheckResult: that one takes the run's single partition key.
            yield AssetCheckEvaluation(
                asset_key=ticks.key,
                check_name=name,
                passed=outcome.passed,
                metadata=dict(outcome.metadata),
                target_materialization_data=checked.get(key),
                severity=AssetCheckSeverity.ERROR,
                description=outcome.message,
                blocking=True,
                partition=key,
            )
        errors = [o for o in outcomes if isinstance(o, Exception)]
        if errors:
            raise errors[0]
        [output] = context.op_def.output_defs  # the check's output, which blocks bars_1m until it is there
        yield Output(None, output_name=output.name)

    # Partitioned checks are a Dagster preview: each hour gets its own verdict, and a failure
    # blocks that hour's bars (in a backfill run, the bars of its whole range). Its warning is
    # silenced here, where the feature is used.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=PreviewWarning, message="Specifying a partitions_def on an AssetCheckSpec")
        return asset_check(
            asset=ticks, name=name, blocking=True, partitions_def=partitions, description=(run.__doc__ or "").strip()
        )(check)  # type: ignore[arg-type]  # typed for AssetCheckResult; a generator of events runs as in any op


def _checked_materializations(
    instance: DagsterInstance, asset: AssetKey, partitions: list[str]
) -> dict[str, AssetCheckEvaluationTargetMaterializationData]:
    """The latest materialization of each partition: the one the check looked at (the UI ties the
    verdict to it). Two queries for the whole range: one per hour would cost seconds in a backfill."""
    latest = instance.get_latest_storage_id_by_partition(asset, DagsterEventType.ASSET_MATERIALIZATION, set(partitions))
    if not latest:
        return {}
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=asset, storage_ids=list(latest.values())), limit=len(latest)
    ).records
    return {
        record.partition_key: AssetCheckEvaluationTargetMaterializationData(
            storage_id=record.storage_id, run_id=record.event_log_entry.run_id, timestamp=record.timestamp
        )
        for record in records
        if record.partition_key is not None
    }
