"""Health checks of one event hour of the lake, answered from the catalog and the file system.

Each returns a plain `CheckOutcome`; the Dagster asset checks in `ticklake.pipelines.checks` wrap them,
and anything else (a test, a cron job) can call them the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ticklake.access import find_catalog
from ticklake.build.hours import tick_partition_paths
from ticklake.catalog import Catalog, Dataset, LiveFile
from ticklake.config import LakeConfig
from ticklake.datasets import TICKS
from ticklake.storage.layout import HOUR_US, hour_key


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
    name = "rows_reconcile"
    with _open(config) as found:
        if found is None:
            return CheckOutcome(name, True, "nothing cataloged yet", {"segments": 0})
        catalog, ticks = found
        segments = catalog.segments_of_hour(ticks.dataset_id, hour_key(hour))
        files = catalog.live_files(ticks.dataset_id, partition_paths=tick_partition_paths(hour))
    lines = sum(s.lines for s in segments)
    stored = sum(s.rows_stored for s in segments)
    quarantined = sum(s.rows_quarantined for s in segments)
    in_files = sum(f.rows for f in files)
    metadata: dict[str, int | str] = {
        "segments": len(segments),
        "lines": lines,
        "rows_stored": stored,
        "rows_quarantined": quarantined,
        "rows_in_files": in_files,
    }
    problems = []
    if lines != stored + quarantined:
        problems.append(f"{lines:,} lines in != {stored:,} stored + {quarantined:,} quarantined")
    if stored != in_files:
        problems.append(f"{stored:,} rows stored by its segments != {in_files:,} rows in its live files")
    if problems:
        return CheckOutcome(name, False, f"{hour_key(hour)}: " + "; ".join(problems), metadata)
    message = f"{hour_key(hour)}: {lines:,} lines = {stored:,} stored + {quarantined:,} quarantined, all in {len(files)} files"
    return CheckOutcome(name, True, message, metadata)


def check_files_match_storage(config: LakeConfig, hour: int) -> CheckOutcome:
    """Every live file the catalog lists for the hour exists with the size it recorded."""
    name = "files_match_storage"
    files = _live_files(config, hour)
    if files is None:
        return CheckOutcome(name, True, "nothing cataloged yet", {"files": 0})
    problems = []
    for f in files:
        path = config.root / f.path
        size = _size(path)
        if size is None:
            problems.append(f"{f.path} is missing")
        elif size != f.bytes:
            problems.append(f"{f.path} has {size:,} bytes, the catalog recorded {f.bytes:,}")
    metadata: dict[str, int | str] = {"files": len(files), "bytes": sum(f.bytes for f in files), "problems": len(problems)}
    if problems:
        return CheckOutcome(name, False, f"{hour_key(hour)}: " + "; ".join(problems), metadata)
    return CheckOutcome(name, True, f"{hour_key(hour)}: {len(files)} files present with their recorded sizes", metadata)


def check_no_overlapping_files(config: LakeConfig, hour: int) -> CheckOutcome:
    """At most one live file per (tick_type, hour), and each file's time range inside its hour."""
    name = "no_overlapping_files"
    files = _live_files(config, hour)
    if files is None:
        return CheckOutcome(name, True, "nothing cataloged yet", {"files": 0})
    by_partition: dict[str, list[LiveFile]] = {}
    for f in files:
        by_partition.setdefault(f.partition_path, []).append(f)
    problems = [f"{p} has {len(fs)} live files" for p, fs in sorted(by_partition.items()) if len(fs) > 1]
    start, end = hour * HOUR_US, (hour + 1) * HOUR_US
    problems += [f"{f.path} holds times outside its hour" for f in files if f.ts_min < start or f.ts_max >= end]
    metadata: dict[str, int | str] = {"files": len(files), "partitions": len(by_partition), "problems": len(problems)}
    if problems:
        return CheckOutcome(name, False, f"{hour_key(hour)}: " + "; ".join(problems), metadata)
    return CheckOutcome(name, True, f"{hour_key(hour)}: one file per tick type, each inside the hour", metadata)


def check_hour(config: LakeConfig, hour: int) -> list[CheckOutcome]:
    """All checks of one hour."""
    return [check(config, hour) for check in (check_rows_reconcile, check_files_match_storage, check_no_overlapping_files)]


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


def _live_files(config: LakeConfig, hour: int) -> list[LiveFile] | None:
    """The hour's live ticks files, or None when nothing was ever compacted."""
    with _open(config) as found:
        if found is None:
            return None
        catalog, ticks = found
        return catalog.live_files(ticks.dataset_id, partition_paths=tick_partition_paths(hour))


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return None
