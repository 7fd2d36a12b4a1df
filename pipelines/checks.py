"""Blocking asset checks on `ticks`, per partition: a failure (severity ERROR) keeps `bars_1m` of
that hour from being built. The checks themselves are `ticklake.build.health` functions: the
checks of ``ticklake check`` (`ticklake.maintenance.check`), run on one hour.
"""

# No `from __future__ import annotations`: Dagster reads the context and resource parameter
# annotations of decorated functions as classes.
import warnings
from collections.abc import Callable

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetsDefinition,
    HourlyPartitionsDefinition,
    PreviewWarning,
    asset_check,
)

from ticklake.build.health import CheckOutcome, check_files_match_storage, check_no_overlapping_files, check_rows_reconcile
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
    def check(context: AssetCheckExecutionContext, lake: LakeResource) -> AssetCheckResult:
        outcome = run(lake.lake_config(), partition_hour(context.partition_key))
        if not outcome.passed:
            context.log.error(outcome.message)
        return AssetCheckResult(
            passed=outcome.passed,
            severity=AssetCheckSeverity.ERROR,
            description=outcome.message,
            metadata=dict(outcome.metadata),
        )

    # Partitioned checks are a Dagster preview: each hour gets its own verdict, and a failure
    # blocks that hour's bars only. Its warning is silenced here, where the feature is used.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=PreviewWarning, message="Specifying a partitions_def on an AssetCheckSpec")
        return asset_check(
            asset=ticks, name=name, blocking=True, partitions_def=partitions, description=(run.__doc__ or "").strip()
        )(check)
