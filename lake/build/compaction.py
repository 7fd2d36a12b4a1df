"""Hourly compaction: an hour's sealed landing segments (plus its existing Parquet, for late data)
become one sorted zstd Parquet file per tick type, committed to the catalog in one transaction.

Exactly-once: a segment is known by its path (writer and sequence in its hour folder); the catalog
refuses to consume a path twice and to replace files another writer replaced first
(CommitConflict, then a retry re-reads the hour; `ticklake.build.commit`). A consumed name that
comes back with the same content is a second delivery (retired, counted once); with other content
it is set aside, never merged. Segments are retired only after the commit, so a crash anywhere
leaves either the old state or the new one, never a half of each; a segment that vanishes under
a compaction was consumed by another one, which is progress, not an error.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ticklake.access import open_catalog
from ticklake.build.commit import FileSink, Staged, commit_staged
from ticklake.build.hours import each_hour, hour_workers, partition_lease, tick_partition_paths, tick_partitions
from ticklake.catalog import Catalog, Commit, CommitConflict, ConsumedSegment, Dataset, LiveFile, NewFile
from ticklake.config import LakeConfig
from ticklake.datasets import TICKS, create_catalog
from ticklake.errors import StorageError
from ticklake.faults import fault_point
from ticklake.landing.buffer import (
    Segment,
    retire_segment,
    scan_buffer,
    sealed_segments,
    set_aside_segment,
    stray_folders,
    tidy_buffer,
)
from ticklake.landing.quarantine import write_quarantine
from ticklake.landing.reading import read_segment
from ticklake.storage.files import read_bytes, sha256_hex
from ticklake.storage.layout import hour_key
from ticklake.storage.parquet import sort_ticks
from ticklake.ticks import FILE_SCHEMA


@dataclass
class HourResult:
    """What compacting one hour did; ``lines == stored + quarantined`` over the new segments."""

    hour: str
    snapshot: int | None = None
    segments: int = 0
    duplicate_segments: int = 0  # consumed names delivered again with the same content: retired, counted once
    from_sidecar: int = 0  # segments whose rows were read from their sidecar instead of parsed
    lines: int = 0
    stored: int = 0
    quarantined: int = 0
    rows: int = 0
    files: list[str] = field(default_factory=list)
    replaced_files: int = 0
    bytes: int = 0
    seconds: float = 0.0
    set_aside: list[str] = field(default_factory=list)  # segments moved to landing/_conflicts/
    warnings: list[str] = field(default_factory=list)  # one line each: paths left alone or set aside

    def summary(self) -> str:
        """A one-line account of the hour."""
        aside = f", {len(self.set_aside)} set aside (see warnings)" if self.set_aside else ""
        if self.snapshot is None and not self.segments:
            extra = f" ({self.duplicate_segments} already-consumed segments retired)" if self.duplicate_segments else ""
            return f"{self.hour}: nothing new{extra}{aside}"
        return (
            f"{self.hour}: {self.segments} segments, {self.lines:,} lines -> {self.stored:,} stored, "
            f"{self.quarantined:,} quarantined; hour now {self.rows:,} rows in {len(self.files)} files "
            f"({self.bytes:,} bytes, {self.replaced_files} replaced), snapshot {self.snapshot}, {self.seconds:.2f}s{aside}"
        )


def summarize_hours(results: Sequence[HourResult]) -> str:
    """One line over several compacted hours."""
    changed = sum(r.snapshot is not None for r in results)
    lines = sum(r.lines for r in results)
    stored = sum(r.stored for r in results)
    quarantined = sum(r.quarantined for r in results)
    head = f"compacted {len(results)} hours ({changed} changed)"
    return f"{head}: {lines:,} lines -> {stored:,} stored, {quarantined:,} quarantined"


def pending_hours(config: LakeConfig) -> list[int]:
    """Event hours with sealed segments in the landing buffer."""
    return sorted({s.hour for s in sealed_segments(config.root)})


def folder_warnings(config: LakeConfig) -> list[str]:
    """One line per folder in the landing buffer that is not an hour partition (left alone; the
    strays inside an hour folder are in that hour's `HourResult.warnings`)."""
    return [stray.warning() for stray in stray_folders(config.root)]


def compact_all(config: LakeConfig, progress: Callable[[str], None] | None = None) -> list[HourResult]:
    """Compact every hour that has sealed segments (see `compact_hours`)."""
    return compact_hours(config, pending_hours(config), progress)


def compact_hours(config: LakeConfig, hours: Sequence[int], progress: Callable[[str], None] | None = None) -> list[HourResult]:
    """Compact the given event hours, then tidy the landing buffer (`tidy_buffer`).

    The one entry point of ``ticklake compact --hour`` and ``--all`` (and, as `compact_each`, of the
    Dagster asset), so what follows a compaction is the same wherever it runs. An hour that fails
    raises its error once the other hours are done (their commits stand).
    """
    results: list[HourResult] = []
    for outcome in compact_each(config, hours, progress=progress):
        if isinstance(outcome, Exception):
            raise outcome
        results.append(outcome)
    return results


def compact_each(
    config: LakeConfig,
    hours: Sequence[int],
    *,
    owner: str | None = None,
    lease_wait: float = 0.0,
    progress: Callable[[str], None] | None = None,
) -> list[HourResult | Exception]:
    """Compact the given event hours; each hour's result, or the error it raised, in their order.

    Hours are independent, so they run in parallel (``threads`` workers, default one per core), each
    with its own catalog connection (commits still serialise in SQLite) and, when `owner` is given,
    under its partition lease (`partition_lease`, waiting up to `lease_wait` seconds). One hour's
    failure is that hour's outcome: a Dagster run over a range of hours reports it for that hour and
    records the others. The landing buffer is tidied once, when every hour succeeded.
    """
    create_catalog(config)  # once, before the workers race
    workers = hour_workers(config, len(hours))
    # Parallel hours already use every core: parsing inside an hour then stays single-threaded.
    threads = None if workers == 1 else False

    def one(hour: int) -> HourResult:
        if owner is None:
            return compact_hour(config, hour, parse_threads=threads)
        with partition_lease(config, TICKS.name, hour, owner, wait=lease_wait):
            return compact_hour(config, hour, parse_threads=threads)

    def report(outcome: HourResult | Exception) -> None:
        if progress and isinstance(outcome, HourResult):
            progress(outcome.summary())

    outcomes = each_hour(hours, one, workers=workers, done=report)
    if not any(isinstance(o, Exception) for o in outcomes):
        tidy_buffer(config.root, config.segment_retention_hours)
    return outcomes


def compact_hour(
    config: LakeConfig, hour: int, *, catalog: Catalog | None = None, parse_threads: bool | None = None
) -> HourResult:
    """Compact one event hour (hours since the epoch; see `ticklake.storage.layout.parse_hour`).

    `catalog`: a connection to use instead of opening one. The landing buffer is not tidied
    here (`compact_hours` does it once for all its hours).
    """
    started = time.perf_counter()
    with nullcontext(catalog) if catalog is not None else open_catalog(config, create=True) as cat:
        dataset = cat.ensure_dataset(TICKS)
        result, _ = commit_staged(cat, config, lambda sink: _stage_hour(config, cat, dataset, hour, sink, parse_threads))
    result.seconds = time.perf_counter() - started
    return result


def _stage_hour(
    config: LakeConfig, catalog: Catalog, dataset: Dataset, hour: int, sink: FileSink, parse_threads: bool | None
) -> Staged[HourResult]:
    """Read the hour's new segments and its live files, write the merged hour, stage the commit."""
    result = HourResult(hour_key(hour))
    scan = scan_buffer(config.root, hour)
    result.warnings.extend(stray.warning() for stray in scan.strays)
    contents: dict[Path, bytes] = {}
    for s in scan.segments:
        try:
            contents[s.path] = read_bytes(s.path)
        except StorageError:
            if s.path.exists():
                raise
            # Retired by a concurrent compaction after the listing: its progress, not an error.
    segments = [s for s in scan.segments if s.path in contents]
    source = {s.path: s.path.relative_to(config.root).as_posix() for s in segments}
    hashes = {s.path: sha256_hex(contents[s.path]) for s in segments}
    known = catalog.consumed(list(source.values()))
    fresh: list[Segment] = []
    retire: list[Segment] = []
    conflicts: list[Segment] = []
    for s in segments:
        record = known.get(source[s.path])
        if record is None:
            fresh.append(s)
        elif record.sha256 == hashes[s.path]:
            result.duplicate_segments += 1  # the same segment delivered again: counted once
            retire.append(s)
        else:
            conflicts.append(s)

    def set_aside() -> None:
        for s in conflicts:
            target = set_aside_segment(config.root, s.path)
            if target is not None:
                result.set_aside.append(target.relative_to(config.root).as_posix())
                result.warnings.append(
                    f"{s.path}: a segment of this name was consumed already with other content; set aside to"
                    f" {target} (ingest it from there to add its ticks under new names)"
                )

    if not fresh:

        def tidy(_: int | None) -> None:
            _retire(config, retire)
            set_aside()

        return Staged(result, then=tidy)

    new_tables: list[pa.Table] = []
    consumed_records: list[ConsumedSegment] = []
    for s in fresh:
        read = read_segment(s.path, contents[s.path], hashes[s.path], hour, parse_threads)
        table, rejects, lines = read.table, read.rejects, read.lines
        result.from_sidecar += read.from_sidecar
        if rejects:
            # Written before the commit (kept durably first) and taken back with the data files when
            # the commit does not happen; the name follows the segment, so a retry rewrites the same file.
            written = write_quarantine(config.root, _quarantine_name(s), source[s.path], rejects)
            if written is not None:
                sink.written.append(written.relative_to(config.root).as_posix())
        new_tables.append(table)
        consumed_records.append(
            ConsumedSegment(
                path=source[s.path],
                bytes=s.bytes,
                sha256=hashes[s.path],
                hour=hour_key(hour),
                lines=lines,
                rows_stored=table.num_rows,
                rows_quarantined=len(rejects),
            )
        )
        result.lines += lines
        result.stored += table.num_rows
        result.quarantined += len(rejects)

    partitions, paths = tick_partitions(hour), tick_partition_paths(hour)
    live = catalog.live_files(dataset.dataset_id, partition_paths=paths)
    merged = _merge(config, catalog, dataset, paths, live, new_tables)
    fault_point("compact.before_data_write")
    files: list[NewFile] = []
    for tick_type, partition in partitions.items():
        part = merged.filter(pc.equal(merged.column("tick_type"), tick_type))
        if part.num_rows:
            files.append(sink.write(TICKS, partition, sort_ticks(part.drop_columns(["tick_type"]))))
    fault_point("compact.after_data_write")
    commit = Commit(
        dataset_id=dataset.dataset_id,
        operation="compact",
        add_files=tuple(files),
        remove_file_ids=tuple(f.file_id for f in live),
        replace_partitions=tuple(paths),
        consume_segments=tuple(consumed_records),
        summary={
            "hour": hour_key(hour),
            "lines": result.lines,
            "rows_stored": result.stored,
            "rows_quarantined": result.quarantined,
            "rows_in_hour": merged.num_rows,
        },
    )

    def then(snapshot: int | None) -> None:
        fault_point("compact.before_retire")
        # Only now: a crash before this leaves the segments to be recognised by name.
        _retire(config, fresh + retire)
        set_aside()
        result.snapshot = snapshot
        result.segments = len(fresh)
        result.rows = merged.num_rows
        result.files = [f.path for f in files]
        result.bytes = sum(f.bytes for f in files)
        result.replaced_files = len(live)

    return Staged(result, commit, then)


def _quarantine_name(segment: Segment) -> str:
    """The quarantine file of a segment, named after the segment (its identity).

    >>> _quarantine_name(Segment(Path("/l/landing/ticks/date=2022-01-07/hour=05/rec-1-000003.jsonl"), 455981, 1, 0))
    'segment-2022-01-07T05-rec-1-000003'
    """
    return f"segment-{hour_key(segment.hour)}-{segment.path.stem}"


def _merge(
    config: LakeConfig,
    catalog: Catalog,
    dataset: Dataset,
    partition_paths: Sequence[str],
    live: list[LiveFile],
    new_tables: list[pa.Table],
) -> pa.Table:
    """Existing rows of the hour (from its live files) followed by the new rows, as ROW_SCHEMA.

    A live file that is gone because another compaction replaced it meanwhile is a lost race
    (CommitConflict: the retry reads the new state); one the catalog still lists is damage.
    """
    pieces: list[pa.Table] = []
    for f in live:
        path = config.root / f.path
        try:
            existing = pq.read_table(path, schema=FILE_SCHEMA)
        except (OSError, pa.ArrowException) as e:
            still = {x.file_id for x in catalog.live_files(dataset.dataset_id, partition_paths=partition_paths)}
            if f.file_id not in still:
                raise CommitConflict(f"{path}: replaced by another writer while this hour was read") from e
            raise StorageError(
                f"{path}: cannot read data file listed in the catalog ({e}); `ticklake check` reports it,"
                " `ticklake repair --drop-lost` rebuilds its hour from the retained segments"
            ) from e
        tick = pa.array([f.partition_values["tick_type"]] * existing.num_rows, pa.string())
        pieces.append(existing.add_column(2, "tick_type", tick))
    pieces.extend(new_tables)
    return pa.concat_tables(pieces)


def _retire(config: LakeConfig, segments: list[Segment]) -> None:
    for s in segments:
        retire_segment(config.root, s.path, config.segment_retention_hours)
