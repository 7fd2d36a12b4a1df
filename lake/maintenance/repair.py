"""`ticklake repair`: fix what `ticklake check` finds where that is safe, and say what it cannot fix.

Safe, always: delete crash leftovers past the in-flight grace (orphan data files, temporary
files, orphan sidecars, abandoned unsealed segments), delete index rows whose file is gone, and
rebuild incomplete index rows of live files from the files themselves (every live file with
`reindex`). With `drop_lost`: a lost live file (missing, resized, changed, unreadable) leaves
the catalog in a new snapshot; a ticks file is re-compacted in the same snapshot from the hour's
consumed segments when every one of them is still retained (and hashes as consumed), otherwise
its rows are reported gone; a bars file is rebuilt from the hour's trades.
Everything else (overlapping files, counts that do not add up, strays, a lost catalog) is reported.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq

from ticklake.access import open_catalog
from ticklake.build.commit import FileSink, Staged, commit_staged
from ticklake.build.hours import partition_lease
from ticklake.build.rollups import build_bars_1m
from ticklake.catalog import Catalog, Commit, Dataset, LeaseHeld
from ticklake.catalog.maintenance import (
    StoredFile,
    delete_orphan_index_rows,
    files_by_id,
    has_file,
    replace_index_rows,
    stored_files,
    unindexed_files,
)
from ticklake.config import LakeConfig
from ticklake.datasets import BARS_1M, TICKS
from ticklake.errors import NotFoundError
from ticklake.maintenance.check import check_lake, file_hour, verify_file
from ticklake.maintenance.findings import Report
from ticklake.maintenance.retained import hour_from_retained
from ticklake.storage.files import discard
from ticklake.storage.layout import hour_key, hour_partition, partition_path
from ticklake.storage.parquet import describe_file, sort_ticks

Echo = Callable[[str], None]
LEFTOVERS = ("orphan", "temp", "sidecar")
LOST = ("missing", "size", "checksum", "unreadable")


@dataclass
class RepairResult:
    """What one repair did (or, with `dry_run`, would do), and what it left for a person."""

    dry_run: bool = False
    deleted: int = 0
    deleted_bytes: int = 0
    index_rows_deleted: int = 0
    reindexed: int = 0
    dropped: int = 0
    recompacted: int = 0
    rows_lost: int = 0
    unfixed: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line with the counts."""
        head = "repair (dry run): would delete" if self.dry_run else "repair: deleted"
        return (
            f"{head} {self.deleted:,} files ({self.deleted_bytes:,} bytes), {self.index_rows_deleted:,} orphan index rows;"
            f" {self.reindexed:,} files reindexed, {self.dropped:,} lost files dropped ({self.recompacted:,} re-compacted,"
            f" {self.rows_lost:,} rows gone); {len(self.unfixed):,} problems left"
        )


def repair_lake(
    config: LakeConfig,
    *,
    drop_lost: bool = False,
    reindex: bool = False,
    dry_run: bool = False,
    echo: Echo = lambda line: None,
) -> RepairResult:
    """Check the lake, then fix what is safe (see the module docstring); `echo` gets each line of
    what will be done before it is done, and of what cannot be."""
    report = check_lake(config)
    result = RepairResult(dry_run)
    if catalog_problem := report.of_kind("catalog"):
        raise NotFoundError(f"lake {config.root}: catalog.sqlite {catalog_problem[0].message}")
    with open_catalog(config, write=True) as catalog:
        _delete_leftovers(config, catalog, report, result, echo)
        _fix_index(config, catalog, report, result, reindex, echo)
        _fix_lost(config, catalog, report, result, drop_lost, echo)
    handled = {*LEFTOVERS, "index", *LOST}
    for finding in report.problems:
        if finding.kind not in handled:
            _cannot(result, echo, finding.line())
    return result


def _delete_leftovers(config: LakeConfig, catalog: Catalog, report: Report, result: RepairResult, echo: Echo) -> None:
    """Print every leftover to delete, then delete them."""
    doomed = [(f, f.target) for f in report.of_kind(*LEFTOVERS) if f.target is not None]
    for f, _ in doomed:
        echo(f"{'would delete' if result.dry_run else 'will delete'}: {f.line()}")
    for f, target in doomed:
        if f.kind == "orphan" and has_file(catalog, target.as_posix()):
            echo(f"kept: {f.subject}: committed since it was checked")
            continue
        size = _size(config.root / target)
        if not result.dry_run:
            discard(config.root / target)
        result.deleted += 1
        result.deleted_bytes += size


def _fix_index(config: LakeConfig, catalog: Catalog, report: Report, result: RepairResult, reindex: bool, echo: Echo) -> None:
    """Delete index rows without a file; rebuild incomplete (with `reindex`: all) index rows of live files."""
    verb = "would" if result.dry_run else "will"
    if orphaned := [f for f in report.of_kind("index") if f.subject.startswith("file_id ")]:
        echo(f"{verb} delete the index rows of {len(orphaned)} files the catalog no longer has")
        if not result.dry_run:
            result.index_rows_deleted = delete_orphan_index_rows(catalog)
    files = stored_files(catalog, live=True) if reindex else files_by_id(catalog, unindexed_files(catalog))
    lost = {f.file_id for f in report.of_kind(*LOST)}
    specs = {d.dataset_id: d.spec for d in catalog.datasets()}
    for f in files:
        if f.file_id in lost:
            continue  # its data is what is wrong: that is --drop-lost's business
        echo(f"{verb} rebuild the index rows of {f.path} from the file")
        if not result.dry_run:
            if verify_file(config.root, f) is not None:
                _cannot(result, echo, f"index: {f.path}: changed while repair ran; run repair again")
                continue
            table = pq.ParquetFile(config.root / f.path).read()  # not read_table: no Hive columns from the path
            new = describe_file(specs[f.dataset_id], f.path, f.partition_values, table, f.bytes, config, f.sha256)
            replace_index_rows(catalog, f.file_id, new)
        result.reindexed += 1


def _fix_lost(config: LakeConfig, catalog: Catalog, report: Report, result: RepairResult, drop_lost: bool, echo: Echo) -> None:
    """Drop lost live files (with `drop_lost`), re-compacting ticks where the segments allow and
    rebuilding the bars of every hour touched; say why the others stay."""
    findings = [f for f in report.of_kind(*LOST) if f.file_id is not None]
    files = {f.file_id: f for f in files_by_id(catalog, [f.file_id for f in findings if f.file_id is not None])}
    names = {d.dataset_id: d for d in catalog.datasets()}
    lost_bars: dict[int, int] = {}
    ticks_hours: set[int] = set()
    for finding in findings:
        f = files.get(finding.file_id) if finding.file_id is not None else None
        if f is None:
            continue
        if not f.live:
            _cannot(result, echo, f"{finding.line()}: only old snapshots hold it; `ticklake vacuum` expires them")
        elif not drop_lost:
            _cannot(result, echo, f"{finding.line()}: `ticklake repair --drop-lost` drops it from the catalog")
        elif names[f.dataset_id].spec.name == BARS_1M.name:
            hour = _file_hour(f)
            echo(f"{'would' if result.dry_run else 'will'} drop {f.path} and rebuild the bars of {hour_key(hour)}")
            lost_bars[hour] = lost_bars.get(hour, 0) + 1
        elif _drop_ticks_file(config, catalog, names[f.dataset_id], f, result, echo):
            ticks_hours.add(_file_hour(f))
    if result.dry_run:
        result.dropped += sum(lost_bars.values())
        return
    bars = catalog.dataset(BARS_1M.name)
    for hour in sorted(set(lost_bars) | ticks_hours):
        if hour not in lost_bars and (
            bars is None or not catalog.live_files(bars.dataset_id, partition_paths=[_bars_path(hour)])
        ):
            continue
        try:
            outcome = build_bars_1m(config, hour, force=hour in lost_bars)
        except LeaseHeld as e:
            _cannot(result, echo, f"missing: bars_1m {hour_key(hour)}: not rebuilt ({e}); run repair again")
            continue
        echo(outcome.summary())
        result.dropped += lost_bars.get(hour, 0)


def _drop_ticks_file(
    config: LakeConfig, catalog: Catalog, ticks: Dataset, lost: StoredFile, result: RepairResult, echo: Echo
) -> bool:
    """Replace a lost ticks file, in one snapshot, by its partition re-compacted from the retained
    segments, or by nothing when they are not all retained; True when the catalog changed."""
    hour = _file_hour(lost)
    tick_type = lost.partition_values["tick_type"]
    rebuilt = hour_from_retained(config.root, catalog.segments_of_hour(ticks.dataset_id, hour_key(hour)), hour)
    table = None
    if not isinstance(rebuilt, str):
        part = rebuilt.filter(pc.equal(rebuilt.column("tick_type"), tick_type)).drop_columns(["tick_type"])
        if part.num_rows == lost.rows:
            table = sort_ticks(part)
        else:
            rebuilt = f"its retained segments give {part.num_rows:,} rows of {tick_type}, the file held {lost.rows:,}"
    verb = "would" if result.dry_run else "will"
    if table is not None:
        echo(f"{verb} drop {lost.path} and re-compact it from the hour's retained segments ({lost.rows:,} rows)")
    else:
        echo(f"{verb} drop {lost.path}: {lost.rows:,} rows are gone ({rebuilt})")
    if result.dry_run:
        result.dropped += 1
        result.recompacted += table is not None
        result.rows_lost += 0 if table is not None else lost.rows
        return False

    def stage(sink: FileSink) -> Staged[bool]:
        live = catalog.live_files(ticks.dataset_id, partition_paths=[lost.partition_path])
        if lost.file_id not in {f.file_id for f in live}:
            return Staged(False)  # replaced meanwhile: nothing left to drop
        alone = len(live) == 1
        add = (sink.write(TICKS, lost.partition_values, table),) if table is not None and alone else ()
        summary: dict[str, Any] = {"dataset": TICKS.name, "hour": hour_key(hour), "dropped": lost.path}
        summary.update({"rows": lost.rows} if add else {"rows_lost": lost.rows})
        commit = Commit(
            dataset_id=ticks.dataset_id,
            operation="repair" if add else "drop",
            add_files=add,
            remove_file_ids=(lost.file_id,),
            replace_partitions=(lost.partition_path,) if alone else (),
            summary=summary,
        )
        return Staged(bool(add), commit)

    owner = f"repair-{socket.gethostname()}-{os.getpid()}"
    try:
        with partition_lease(config, TICKS.name, hour, owner):
            recompacted, snapshot = commit_staged(catalog, config, stage)
    except LeaseHeld as e:
        _cannot(result, echo, f"missing: {lost.path}: not dropped ({e}); run repair again")
        return False
    if snapshot is None:
        return False
    result.dropped += 1
    if recompacted:
        result.recompacted += 1
    else:
        result.rows_lost += lost.rows
    echo(f"dropped {lost.path} in snapshot {snapshot}" + (", re-compacted" if recompacted else f": {lost.rows:,} rows gone"))
    return True


def _file_hour(f: StoredFile) -> int:
    hour = file_hour(f)
    assert hour is not None, f.path  # every dataset is partitioned by date and hour
    return hour


def _bars_path(hour: int) -> str:
    return partition_path(hour_partition(hour))


def _cannot(result: RepairResult, echo: Echo, line: str) -> None:
    result.unfixed.append(line)
    echo(f"cannot fix: {line}")


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
