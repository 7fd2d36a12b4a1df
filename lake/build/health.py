"""Health checks of one event hour of the lake, answered from the catalog and the file system.

They are `ticklake check`'s own checks (`ticklake.maintenance.check`) scoped to the hour's ticks,
each returning a plain `CheckOutcome`; the Dagster asset checks in `ticklake.pipelines.checks`
wrap them, and anything else (a test, a cron job) can call them the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from ticklake.access import find_catalog
from ticklake.build.hours import tick_partition_paths
from ticklake.catalog import Catalog, Dataset
from ticklake.catalog.maintenance import (
    StoredFile,
    live_rows_by_hour,
    rows_dropped,
    segment_counts,
    stored_files,
    unreconciled_hours,
)
from ticklake.config import LakeConfig
from ticklake.datasets import TICKS
from ticklake.maintenance.check import file_findings, overlap_findings, reconcile_findings
from ticklake.maintenance.findings import Finding
from ticklake.storage.layout import hour_key


@dataclass(frozen=True)
class CheckOutcome:
    """The verdict of one check on one hour, with the figures behind it."""

    name: str
    passed: bool
    message: str
    metadata: dict[str, int | str] = field(default_factory=dict)


def check_rows_reconcile(config: LakeConfig, hour: int) -> CheckOutcome:
    """Lines of the hour's consumed segments = rows stored + rows quarantined, and the rows
    stored are exactly the rows of the hour's live files (nothing lost, nothing counted twice)."""
    name, key = "rows_reconcile", hour_key(hour)
    with _open(config) as found:
        if found is None:
            return CheckOutcome(name, True, "nothing cataloged yet", {"segments": 0})
        catalog, ticks = found
        counts = segment_counts(catalog, ticks.dataset_id, key).get(key)
        rows, files = live_rows_by_hour(catalog, ticks.dataset_id, key).get(key, (0, 0))
        dropped = rows_dropped(catalog, TICKS.name).get(key, 0)
        findings = reconcile_findings(key, counts, rows, dropped, key in unreconciled_hours(catalog))
    lines, stored, quarantined = (counts.lines, counts.stored, counts.quarantined) if counts else (0, 0, 0)
    metadata: dict[str, int | str] = {
        "segments": counts.segments if counts else 0,
        "lines": lines,
        "rows_stored": stored,
        "rows_quarantined": quarantined,
        "rows_in_files": rows,
    }
    if dropped:
        metadata["rows_dropped"] = dropped
    if findings:
        return _outcome(name, key, findings, metadata, lambda f: f.message)
    message = f"{key}: {lines:,} lines = {stored:,} stored + {quarantined:,} quarantined, all in {files} files"
    return CheckOutcome(name, True, message, metadata)


def check_files_match_storage(config: LakeConfig, hour: int) -> CheckOutcome:
    """Every live file the catalog lists for the hour exists with the size and SHA-256 it recorded,
    and its Parquet footer reads with the recorded row count."""
    name, key = "files_match_storage", hour_key(hour)
    with _open(config) as found:
        if found is None:
            return CheckOutcome(name, True, "nothing cataloged yet", {"files": 0})
        catalog, ticks = found
        files = _live_files_of_hour(catalog, ticks, hour)
        findings = [problem for f in files for problem in file_findings(config.root, catalog, f)]
    metadata: dict[str, int | str] = {"files": len(files), "bytes": sum(f.bytes for f in files), "problems": len(findings)}
    if findings:
        return _outcome(name, key, findings, metadata, lambda f: f"{f.subject} {f.message}")
    return CheckOutcome(name, True, f"{key}: {len(files)} files present with their recorded sizes and checksums", metadata)


def check_no_overlapping_files(config: LakeConfig, hour: int) -> CheckOutcome:
    """At most one live file per (tick_type, hour), and each file's time range inside its hour."""
    name, key = "no_overlapping_files", hour_key(hour)
    with _open(config) as found:
        if found is None:
            return CheckOutcome(name, True, "nothing cataloged yet", {"files": 0})
        catalog, ticks = found
        files = _live_files_of_hour(catalog, ticks, hour)
    findings = overlap_findings(files)
    partitions = len({f.partition_path for f in files})
    metadata: dict[str, int | str] = {"files": len(files), "partitions": partitions, "problems": len(findings)}
    if findings:
        return _outcome(name, key, findings, metadata, lambda f: f"{f.subject} {f.message}")
    return CheckOutcome(name, True, f"{key}: one file per tick type, each inside the hour", metadata)


def check_hour(config: LakeConfig, hour: int) -> list[CheckOutcome]:
    """All checks of one hour."""
    return [check(config, hour) for check in (check_rows_reconcile, check_files_match_storage, check_no_overlapping_files)]


def _outcome(
    name: str, key: str, findings: list[Finding], metadata: dict[str, int | str], say: Callable[[Finding], str]
) -> CheckOutcome:
    """The verdict on an hour with findings: failed when any is damage, the messages joined on one line."""
    return CheckOutcome(name, not any(f.damage for f in findings), f"{key}: " + "; ".join(say(f) for f in findings), metadata)


def _live_files_of_hour(catalog: Catalog, ticks: Dataset, hour: int) -> list[StoredFile]:
    """The live ticks files of one event hour, as the maintenance checks read them."""
    return stored_files(catalog, dataset_id=ticks.dataset_id, partition_paths=tick_partition_paths(hour), live=True)


@contextmanager
def _open(config: LakeConfig) -> Iterator[tuple[Catalog, Dataset] | None]:
    """The catalog (read-only) and its ticks dataset, or None when nothing was ever compacted."""
    catalog = find_catalog(config)
    if catalog is None:
        yield None
        return
    with catalog:
        dataset = catalog.dataset(TICKS.name)
        yield None if dataset is None else (catalog, dataset)
