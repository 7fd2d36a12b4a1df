"""`ticklake archive --older-than 7d [--to s3://...]`: move old days to the cold tier, one object per day.

A day's hourly files of one partition (for ticks: one tick type) are packed into one object,
sorted by (contract_id, time), with large row groups and archival zstd (written once, read for
years), holding its partition columns as real columns, so it is read without Hive paths. The steps:

1. write the packed file to a local temporary file and describe it for the catalog;
2. record the object's URI in the upload journal (``_archive/uploads.json``), then upload it under
   its final, unique name (object stores have no rename: nothing reads an object the catalog does
   not name);
3. read it back from the bucket and verify its size, SHA-256 and row count;
4. swap the catalog entries in one commit (the hourly files out, the object in), conflicting with
   any compaction that changed one of those hours meanwhile (the day is then packed again);
5. forget the journal entry, and only then delete the local files (sparing those a pinned
   reader still reads: `ticklake vacuum` deletes them once it is done).

A kill at any step leaves the old state or the new one, both queryable: before the commit an
uploaded object is an orphan the next run deletes (the journal names it); after it, leftover local
files are replaced files the next run (or vacuum) deletes; so is the work folder of a run killed
while it packed a day (``_archive/packing-*``). One run at a time per lake: a run holds
``_archive/lock`` (``flock``, let go by the kernel when its process dies) and a second one waits
for it, then finds the days packed; otherwise the second's cleanup would take the first's uploads,
not yet committed, for a killed run's orphans and delete them.

Only ticks are archived. Rollups (``bars_1m``) are rebuilt per hour and replace that hour's files:
an hour's bars inside a day object could not be replaced without packing the day again, so a
rebuild would add to them.

**Late ticks** for an archived day are compacted as usual into an hourly warm file beside the
archive: queries read both (the catalog lists both), per-hour reconciliation counts both (the
archive records its rows per hour), and the next archive run packs the day again, the old object
and the late files into a new object, which replaces them in one commit. The files are packed in
the order they were committed, so ticks with the same timestamp keep their arrival order.
"""

from __future__ import annotations

import io
import json
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ticklake.access import open_catalog
from ticklake.build.commit import commit_once
from ticklake.catalog import Catalog, Commit, CommitConflict, Dataset, LiveFile, NewFile
from ticklake.config import LakeConfig
from ticklake.datasets import ARCHIVE_SCHEMAS, TICKS
from ticklake.errors import ConfigError, StorageError
from ticklake.faults import fault_point
from ticklake.storage.files import file_sha256, held_lock, sha256_hex, write_atomic
from ticklake.storage.layout import partition_path
from ticklake.storage.objects import ObjectLocation, S3Access, object_errors
from ticklake.storage.parquet import describe_file, file_footer, write_data_file
from ticklake.storage.tiers import ColdReads, delete_file, local_path, tier_of

_ATTEMPTS = 3
_PACKING = "packing-"  # work folders below _archive/, one per day being packed
ARCHIVED = (TICKS.name,)  # the datasets archive packs (see the module docstring: not the rollups)


@dataclass
class ArchivedDay:
    """One packed day of one partition: what went in and the object that came out."""

    dataset: str
    partition: str  # e.g. 'tick_type=last/date=2022-01-07'
    uri: str = ""
    files_in: int = 0
    rows: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    snapshot: int | None = None
    repacked: bool = False  # an archived object of the day was packed again with late files


@dataclass
class ArchiveResult:
    """What one archive run did (or, with `dry_run`, would do)."""

    location: str
    cutoff: str
    dry_run: bool = False
    days: list[ArchivedDay] = field(default_factory=list)
    deleted_local: int = 0  # local files deleted after their commit
    spared: int = 0  # replaced local files kept for pinned readers (vacuum deletes them later)
    orphans_removed: list[str] = field(default_factory=list)  # uploads of a killed run, deleted

    def summary(self) -> str:
        """One line with counts."""
        verb = "would archive" if self.dry_run else "archived"
        rows = sum(d.rows for d in self.days)
        before, after = sum(d.bytes_in for d in self.days), sum(d.bytes_out for d in self.days)
        ratio = f" ({after / before:.2f}x the bytes)" if before and after else ""
        tail = "" if self.dry_run else f"; {self.deleted_local} local files deleted, {self.spared} kept for readers"
        return (
            f"{verb} {len(self.days)} day partitions to {self.location}: {rows:,} rows,"
            f" {sum(d.files_in for d in self.days)} files -> {len(self.days)} objects{ratio}{tail}"
        )


def archive_lake(
    config: LakeConfig,
    older_than: float,
    *,
    to: str | None = None,
    dry_run: bool = False,
    now: float | None = None,
) -> ArchiveResult:
    """Pack every day older than `older_than` seconds into one cold object per partition (see the module docstring).

    A day is old enough when it ended at least `older_than` seconds before `now`.
    """
    target = to or config.cold_uri
    if not target:
        raise ConfigError("archive: no cold tier: pass --to s3://bucket/prefix or set TICKLAKE_COLD_URI")
    location = ObjectLocation.parse(target)
    now = time.time() if now is None else now
    last_day = (datetime.fromtimestamp(now - older_than, UTC) - timedelta(days=1)).date()
    result = ArchiveResult(location.uri, last_day.isoformat(), dry_run)
    cold = ColdReads(config)
    journal = _Journal(config.root)
    fs: Any = None  # one s3fs instance for the run (a new one costs a client: about half a second)
    with open_catalog(config, write=True) as catalog, _one_run(config.root, dry_run):
        if not dry_run:
            _remove_work_folders(config.root)
            result.orphans_removed = journal.clean(catalog, cold.access)
            _delete_moved(config, catalog, cold.access, result)
        for dataset in catalog.datasets():
            if dataset.spec.name not in ARCHIVED:
                continue
            for day_partition, files in _old_days(catalog, dataset, last_day):
                day = ArchivedDay(dataset.spec.name, partition_path(day_partition))
                if dry_run:
                    day.files_in, day.rows = len(files), sum(f.rows for f in files)
                    day.bytes_in = sum(f.bytes for f in files)
                    result.days.append(day)
                    continue
                fs = fs or cold.access.filesystem()
                _archive_day(config, catalog, dataset, day_partition, location, fs, journal, day)
                if day.snapshot is not None:
                    result.days.append(day)
        if not dry_run:
            fault_point("archive.before_delete")
            _delete_moved(config, catalog, cold.access, result)
    cold.close()
    return result


@contextmanager
def _one_run(root: Path, dry_run: bool) -> Iterator[None]:
    """Hold the lake's archive lock for the block (waiting for a run that holds it); a dry run changes
    nothing and takes none."""
    if dry_run:
        yield
        return
    with held_lock(_work_dir(root) / "lock", "the archive lock"):
        yield


def _old_days(catalog: Catalog, dataset: Dataset, last_day: date) -> list[tuple[dict[str, Any], list[LiveFile]]]:
    """(day partition, live files) of every day up to `last_day` with files to pack: warm files, or
    more than one object (a day packed again)."""
    groups: dict[str, tuple[dict[str, Any], list[LiveFile]]] = {}
    for f in catalog.live_files(dataset.dataset_id):
        values = f.partition_values
        if "date" not in values or date.fromisoformat(str(values["date"])) > last_day:
            continue
        day = {k: v for k, v in values.items() if k != "hour"}
        groups.setdefault(partition_path(day), (day, []))[1].append(f)
    return [
        (day, files)
        for _, (day, files) in sorted(groups.items())
        if any(tier_of(f.path) == "warm" for f in files) or len(files) > 1
    ]


def _archive_day(
    config: LakeConfig,
    catalog: Catalog,
    dataset: Dataset,
    day: dict[str, Any],
    location: ObjectLocation,
    fs: Any,
    journal: _Journal,
    out: ArchivedDay,
) -> None:
    """Pack, upload, verify and commit one day; a lost race packs the day again from the new state."""
    spec = dataset.spec
    for attempt in range(_ATTEMPTS):
        files = _day_files(catalog, dataset, day)
        if not files or (all(tier_of(f.path) == "cold" for f in files) and len(files) == 1):
            return  # another archive run packed it meanwhile
        table = _read_day(config, dataset, files, fs)
        name = f"{time.time_ns() // 1_000_000:013d}-{_token()}.parquet"
        uri = location.join(spec.location.split("/")[-1], partition_path(day), name)
        with tempfile.TemporaryDirectory(prefix=_PACKING, dir=_work_dir(config.root)) as tmp:
            local = Path(tmp) / name
            size = write_data_file(local, table, config, ARCHIVE_SCHEMAS[spec.name], archive=True)
            digest = file_sha256(local)
            new = describe_file(spec, uri, day, table, size, config, digest, file_footer(local))
            new = _with_hours(new, table, spec.time_column)
            journal.add(uri)
            object_errors(uri, partial(fs.put_file, str(local), location.key(uri)))
        fault_point("archive.after_upload")
        _verify(fs, location, uri, size, digest, table.num_rows)
        commit = Commit(
            dataset_id=dataset.dataset_id,
            operation="archive",
            add_files=(new,),
            remove_file_ids=tuple(f.file_id for f in files),
            replace_partitions=tuple(sorted({f.partition_path for f in files})),
            summary={
                "dataset": spec.name,
                "partition": partition_path(day),
                "object": uri,
                "files_in": len(files),
                "rows": table.num_rows,
                "bytes_in": sum(f.bytes for f in files),
                "bytes_out": size,
                "lineage": _lineage(catalog, files),
            },
        )
        try:
            snapshot = commit_once(catalog, config, commit)
        except CommitConflict:
            object_errors(uri, partial(fs.rm_file, location.key(uri)))
            journal.remove(uri)
            if attempt == _ATTEMPTS - 1:
                raise
            continue
        journal.remove(uri)
        out.uri, out.snapshot, out.rows = uri, snapshot, table.num_rows
        out.files_in, out.bytes_in, out.bytes_out = len(files), sum(f.bytes for f in files), size
        out.repacked = any(tier_of(f.path) == "cold" for f in files)
        return


def _lineage(catalog: Catalog, files: Sequence[LiveFile]) -> dict[str, list[int]]:
    """Per event hour, the hourly files an object packs, through the objects it packs again: what the
    hour's bars were built from stays what they were built from (`ticklake.build.rollups.source_ids`)."""
    lineage: dict[str, list[int]] = {}
    for f in files:
        values = f.partition_values
        if "hour" in values:
            lineage.setdefault(f"{values['date']}T{int(values['hour']):02d}", []).append(f.file_id)
            continue
        for hour, ids in catalog.snapshot_summary(f.added_snapshot).get("lineage", {}).items():
            lineage.setdefault(hour, []).extend(ids)
    return {h: sorted(ids) for h, ids in sorted(lineage.items())}


def _day_files(catalog: Catalog, dataset: Dataset, day: dict[str, Any]) -> list[LiveFile]:
    """The live files of one day partition: its hourly files and its archived object(s)."""
    day_path = partition_path(day)
    return [
        f
        for f in catalog.live_files(dataset.dataset_id)
        if partition_path({k: v for k, v in f.partition_values.items() if k != "hour"}) == day_path
    ]


def _read_day(config: LakeConfig, dataset: Dataset, files: Sequence[LiveFile], fs: Any) -> pa.Table:
    """Every row of a day's files with its partition columns as real columns, sorted by (contract_id, time)."""
    schema = ARCHIVE_SCHEMAS[dataset.spec.name]
    pieces: list[pa.Table] = []
    # In commit order, so the stable sort below keeps tied ticks in arrival order (late ones last).
    for f in sorted(files, key=lambda f: (f.added_snapshot, f.path)):
        if tier_of(f.path) == "cold":
            data = object_errors(f.path, partial(fs.cat_file, f.path.removeprefix("s3://")))
            if len(data) != f.bytes or (f.sha256 and sha256_hex(data) != f.sha256):
                raise StorageError(f"{f.path}: object differs from the catalog's size or checksum; not packed again")
            table = pq.read_table(io.BytesIO(data))
        else:
            path = local_path(config.root, f.path)
            try:
                table = pq.read_table(path)
            except (OSError, pa.ArrowException) as e:
                raise StorageError(f"{path}: cannot read data file listed in the catalog ({e}); see `ticklake check`") from e
            for key, value in f.partition_values.items():
                column = schema.field(key)
                table = table.append_column(column, pa.array([value] * table.num_rows).cast(column.type))
        pieces.append(table.select(schema.names).cast(schema))
    table = pa.concat_tables(pieces)
    return table.take(pc.sort_indices(table, [("contract_id", "ascending"), (dataset.spec.time_column, "ascending")]))


def _with_hours(new: NewFile, table: pa.Table, time_column: str) -> NewFile:
    """The file's record with its rows per event hour (its partition holds no hour)."""
    new.hours.update(hours_of(table, time_column))
    return new


def hours_of(table: pa.Table, time_column: str) -> dict[str, int]:
    """Rows per event hour ('2022-01-07T05') of a table spanning hours (the catalog's file_hours)."""
    hours = pc.strftime(table.column(time_column), format="%Y-%m-%dT%H", locale="C")
    counts = pc.value_counts(hours)
    return dict(zip(counts.field("values").to_pylist(), (int(n) for n in counts.field("counts").to_pylist()), strict=True))


def _verify(fs: Any, location: ObjectLocation, uri: str, size: int, digest: str, rows: int) -> None:
    """Read the object back from the bucket: its bytes must be what was written, its footer the row count."""
    data = object_errors(uri, lambda: fs.cat_file(location.key(uri)))
    if len(data) != size or sha256_hex(data) != digest:
        raise StorageError(f"{uri}: read back {len(data)} bytes that differ from the {size} uploaded; nothing committed")
    found = pq.read_metadata(io.BytesIO(data)).num_rows
    if found != rows:
        raise StorageError(f"{uri}: read back {found} rows, {rows} written; nothing committed")


def _delete_moved(config: LakeConfig, catalog: Catalog, access: S3Access, result: ArchiveResult) -> None:
    """Delete the files archive commits replaced (local hourly files, objects packed again), but those a
    pinned reader may still read; forget their rows."""
    from ticklake.maintenance.vacuum import delete_replaced  # noqa: PLC0415 - maintenance builds on build

    deleted, spared = delete_replaced(config, catalog, operations=("archive",), access=access)
    result.deleted_local += deleted
    result.spared = spared


def _work_dir(root: Path) -> Path:
    folder = root / "_archive"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _remove_work_folders(root: Path) -> None:
    """Delete the work folders of runs killed while they packed a day (call it holding the lock: no run is packing)."""
    for folder in _work_dir(root).glob(f"{_PACKING}*"):
        shutil.rmtree(folder, ignore_errors=True)


def _token() -> str:
    import uuid  # noqa: PLC0415

    return uuid.uuid4().hex[:12]


class _Journal:
    """URIs uploaded but not yet committed (``_archive/uploads.json``): after a kill, the next run
    deletes those the catalog does not name. Written before each upload, so no orphan goes unnamed."""

    def __init__(self, root: Path) -> None:
        self.path = root / "_archive" / "uploads.json"

    def _read(self) -> list[str]:
        try:
            return list(json.loads(self.path.read_text()))
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as e:
            raise StorageError(f"{self.path}: unreadable upload journal ({e}); move it aside to go on") from e

    def _write(self, uris: list[str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path, json.dumps(sorted(set(uris))).encode())

    def add(self, uri: str) -> None:
        self._write([*self._read(), uri])

    def remove(self, uri: str) -> None:
        self._write([u for u in self._read() if u != uri])

    def clean(self, catalog: Catalog, access: S3Access) -> list[str]:
        """Delete the journal's objects the catalog does not name; return their URIs."""
        from ticklake.catalog.maintenance import has_file  # noqa: PLC0415

        removed = []
        for uri in self._read():
            if not has_file(catalog, uri):
                delete_file(Path("/"), uri, access)
                removed.append(uri)
            self.remove(uri)
        return removed


__all__ = ["ArchiveResult", "ArchivedDay", "archive_lake"]
