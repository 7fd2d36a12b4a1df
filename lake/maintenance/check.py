"""`ticklake check`: the catalog against storage, and the counts against each other.

Every file a readable snapshot holds must exist with its recorded size, SHA-256 (when recorded)
and a readable footer; every data file on disk must be in the catalog; index rows need their
file; one live file per partition; each hour's lines = rows stored + rows quarantined, and the
rows stored = the rows of its live files; the landing buffer holds only hour folders, segments,
their sidecars and producers' unsealed files. The per-hour Dagster checks
(`ticklake.build.health`) run the same functions on one hour.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from functools import partial
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ticklake.access import open_catalog
from ticklake.catalog import Catalog, CatalogCorrupt
from ticklake.catalog.maintenance import (
    INDEX_TABLES,
    HourCounts,
    StoredFile,
    doubled_segments,
    held_leases,
    live_rows_by_hour,
    orphan_index_rows,
    repeated_segments,
    rows_dropped,
    segment_counts,
    snapshots_needing,
    stored_files,
    unindexed_files,
    unreconciled_hours,
)
from ticklake.config import LakeConfig
from ticklake.datasets import TICKS
from ticklake.errors import NotFoundError, StorageError
from ticklake.landing.buffer import scan_buffer
from ticklake.maintenance.disk import DiskFile, DiskScan, lease_of, scan_disk
from ticklake.maintenance.findings import IN_FLIGHT_SECONDS, UNSEALED_SECONDS, Finding, Report
from ticklake.storage.files import file_sha256
from ticklake.storage.layout import HOUR_US, parse_hour
from ticklake.storage.objects import ObjectLocation, S3Access, object_errors
from ticklake.storage.tiers import tier_of


def check_lake(config: LakeConfig, *, now: float | None = None) -> Report:
    """Check the whole lake below `config.root`; never changes anything."""
    root = config.root
    if not root.is_dir():
        raise NotFoundError(f"lake {root}: no such folder")
    now = time.time() if now is None else now
    scan = scan_disk(root)
    report = Report()
    name = config.catalog_path.name
    if not config.catalog_path.exists():
        if scan.data:
            message = f"is missing while {len(scan.data):,} data files exist: `ticklake repair --rebuild-catalog` rebuilds it"
            report.findings.append(Finding("catalog", name, message, Path(name)))
        report.findings += leftover_findings(scan, set(scan.data), set(), now)  # orphans cannot be told without it
        report.findings += _stray_findings(config, scan, set())
    elif (problem := catalog_problem(config.catalog_path)) is not None:
        message = f"is damaged ({problem}): `ticklake repair --rebuild-catalog --force` moves it aside and rebuilds it"
        report.findings.append(Finding("catalog", name, message, Path(name)))
        report.findings += _stray_findings(config, scan, set())
    else:
        with open_catalog(config) as catalog:
            _check_with_catalog(config, catalog, scan, report, now)
    return report


def catalog_problem(path: Path) -> str | None:
    """What is wrong with a catalog file (not a ticklake catalog, damaged pages, unreadable tables), or None.

    Only damage: any other error of the catalog (a full disk, a read-only folder, a lock) is raised,
    since moving the catalog aside and rebuilding it would throw away its history for nothing.
    """
    try:
        with Catalog(path, read_only=True) as catalog:
            rows = catalog.db.execute("PRAGMA quick_check").fetchall()
            problems = [line for r in rows for line in str(r[0]).splitlines()]  # one message may span lines
            if problems != ["ok"]:
                return "; ".join(problems[:3])
            for table in ("datasets", "snapshots", "files", "segments", *INDEX_TABLES):
                catalog.db.execute(f"SELECT count(*) FROM {table}").fetchone()
    except CatalogCorrupt as e:  # damaged pages and unreadable tables; a full disk or a lock passes through as itself
        return "; ".join(str(e).removeprefix(f"catalog {path}: ").splitlines())
    return None


def _check_with_catalog(config: LakeConfig, catalog: Catalog, scan: DiskScan, report: Report, now: float) -> None:
    files = stored_files(catalog)
    report.files, report.bytes = len(files), sum(f.bytes for f in files)
    objects, orphans = _cold_objects(config, files)
    for f in files:
        report.findings += file_findings(config.root, catalog, f, objects)
    report.findings += orphans
    report.findings += leftover_findings(scan, {f.path for f in files}, held_leases(catalog, now), now)
    report.findings += index_findings(catalog, files)
    for dataset in catalog.datasets():
        live = [f for f in files if f.live and f.dataset_id == dataset.dataset_id]
        report.findings += overlap_findings(live, dataset.spec.location)
    report.findings += [
        Finding("segment", path, f"consumed {n} times: its rows are counted {n} times") for path, n in repeated_segments(catalog)
    ]
    ticks = catalog.dataset(TICKS.name)
    if ticks is not None:
        counts = segment_counts(catalog, ticks.dataset_id)
        live_rows = live_rows_by_hour(catalog, ticks.dataset_id)
        unreconciled, dropped = unreconciled_hours(catalog), rows_dropped(catalog, TICKS.name)
        hours = sorted(set(counts) | set(live_rows))
        report.hours = len(hours)
        report.segments = sum(c.segments for c in counts.values())
        for hour in hours:
            rows = live_rows.get(hour, (0, 0))[0]
            report.findings += reconcile_findings(hour, counts.get(hour), rows, dropped.get(hour, 0), hour in unreconciled)
        sealed = [s.path.relative_to(config.root).as_posix() for s in scan_buffer(config.root).segments]
        report.findings += doubled_findings(catalog, sealed)
        for path in sorted(catalog.consumed_paths(sealed)):
            report.findings.append(Finding("pending", path, "recorded as consumed: the next compaction of its hour retires it"))
    report.findings += _stray_findings(config, scan, {f.path for f in files})


def _cold_objects(config: LakeConfig, files: Sequence[StoredFile]) -> tuple[dict[str, int], list[Finding]]:
    """Sizes of the cold objects the catalog names, as the bucket lists them (one listing of the
    cold tier, a HEAD for any object outside it), and the data objects in the cold tier no file row names."""
    cold = {f.path for f in files if tier_of(f.path) == "cold"}
    if not cold and not config.cold_uri:
        return {}, []
    fs = S3Access.from_environment().filesystem()
    sizes: dict[str, int] = {}
    orphans: list[Finding] = []
    if config.cold_uri:
        location = ObjectLocation.parse(config.cold_uri)
        listed = object_errors(location.uri, lambda: fs.find(location.key(location.uri), detail=True))
        sizes = {"s3://" + key: int(info["size"]) for key, info in listed.items()}
        orphans = [
            Finding("orphan", uri, "is in the cold tier but no file of the catalog names it (a killed archive's upload)")
            for uri in sorted(sizes)
            if uri.endswith(".parquet") and uri not in cold
        ]
    for uri in sorted(cold - set(sizes)):
        try:
            sizes[uri] = int(object_errors(uri, partial(fs.info, uri.removeprefix("s3://")))["size"])
        except StorageError as e:
            if "no such object" not in str(e):
                raise
    return sizes, orphans


def _verify_object(f: StoredFile, objects: dict[str, int]) -> tuple[str, str] | None:
    """A cold object is checked by the bucket's listing: present, with the catalog's size."""
    size = objects.get(f.path)
    if size is None:
        return "missing", "is missing from the bucket"
    if size != f.bytes:
        return "size", f"has {size:,} bytes in the bucket, the catalog recorded {f.bytes:,}"
    return None


def file_findings(root: Path, catalog: Catalog, f: StoredFile, objects: dict[str, int] | None = None) -> list[Finding]:
    """What is wrong with one cataloged file on disk or in the bucket (nothing, for a sound one)."""
    if not f.needed:
        on_disk = f.path in objects if objects is not None and tier_of(f.path) == "cold" else (root / f.path).exists()
        message = "only expired snapshots hold it: the next vacuum " + ("deletes it" if on_disk else "forgets it")
        target = Path(f.path) if on_disk and tier_of(f.path) == "warm" else None
        return [Finding("pending", f.path, message, target, f.file_id)]
    problem = _verify_object(f, objects or {}) if tier_of(f.path) == "cold" else verify_file(root, f)
    if problem is None:
        return []
    kind, message = problem
    if not f.live:
        held = snapshots_needing(catalog, f)
        if held is not None:
            message += f"; snapshots {held[0]} to {held[1]} hold it (replaced in {f.removed_snapshot})"
        if f.lost:
            return [Finding("pending", f.path, f"{message}: dropped by repair, the next vacuum expires them", None, f.file_id)]
    return [Finding(kind, f.path, message, Path(f.path) if tier_of(f.path) == "warm" else None, f.file_id)]


def verify_file(root: Path, f: StoredFile) -> tuple[str, str] | None:
    """(kind, message) of the first thing wrong with a cataloged file on disk, or None.

    The message follows the path: ``<path> is missing``, ``<path> has 9 bytes, the catalog recorded 10``.
    """
    path = root / f.path
    try:
        size = path.stat().st_size
    except (FileNotFoundError, NotADirectoryError):
        return "missing", "is missing"
    if size != f.bytes:
        return "size", f"has {size:,} bytes, the catalog recorded {f.bytes:,}"
    if f.sha256 is not None and file_sha256(path) != f.sha256:
        return "checksum", "has other bytes than were written (its SHA-256 differs from the catalog's)"
    try:
        rows = pq.read_metadata(path).num_rows
    except (OSError, pa.ArrowException) as e:
        return "unreadable", f"has an unreadable Parquet footer ({_one_line(e)})"
    if rows != f.rows:
        return "unreadable", f"has {rows:,} rows by its footer, the catalog recorded {f.rows:,}"
    return None


def overlap_findings(live: Sequence[StoredFile], location: str = "") -> list[Finding]:
    """Partitions with more than one live file, and files holding times outside the hour they are in.

    `location` (the dataset's folder) prefixes the partition paths named.
    """
    by_partition: dict[str, list[StoredFile]] = {}
    for f in live:
        by_partition.setdefault(f.partition_path, []).append(f)
    found = [
        Finding("overlap", f"{location}/{p}" if location else p, f"has {len(fs)} live files")
        for p, fs in sorted(by_partition.items())
        if len(fs) > 1
    ]
    for f in live:
        hour = file_hour(f)
        if hour is not None and (f.ts_min < hour * HOUR_US or f.ts_max >= (hour + 1) * HOUR_US):
            found.append(Finding("overlap", f.path, "holds times outside its hour", file_id=f.file_id))
    return found


def reconcile_findings(hour: str, counts: HourCounts | None, rows: int, dropped: int, unreconciled: bool) -> list[Finding]:
    """What does not add up in one hour: lines in against rows stored and quarantined, and rows stored
    (less rows repair dropped with lost files) against the rows of the hour's live files."""
    found = []
    if counts is not None and counts.lines != counts.stored + counts.quarantined:
        message = f"{counts.lines:,} lines in != {counts.stored:,} stored + {counts.quarantined:,} quarantined"
        found.append(Finding("rows", hour, message))
    stored = (counts.stored if counts is not None else 0) - dropped
    if stored != rows:
        message = f"{stored:,} rows stored by its segments != {rows:,} rows in its live files"
        if dropped:
            message = f"{stored:,} rows stored by its segments (less {dropped:,} dropped) != {rows:,} rows in its live files"
        if unreconciled:
            found.append(Finding("unreconciled", hour, message + ": the catalog was rebuilt after its segments were purged"))
        else:
            found.append(Finding("rows", hour, message))
    return found


def doubled_findings(catalog: Catalog, sealed: Sequence[str]) -> list[Finding]:
    """Hours whose rebuilt files held the rows of segments then waiting, while any of those segments
    still waits or has been compacted since: their rows are (or will be) counted twice."""
    found = []
    for hour, paths in sorted(doubled_segments(catalog).items()):
        waiting, compacted = set(paths) & set(sealed), catalog.consumed_paths(paths)
        if waiting or compacted:
            message = (
                f"the rebuilt catalog kept files already holding the rows of {len(paths):,}"
                f" segment{'s' if len(paths) != 1 else ''} then waiting"
                f" ({len(waiting):,} still waiting, {len(compacted):,} compacted since): their rows count twice once compacted"
            )
            found.append(Finding("rows", hour, message))
    return found


def index_findings(catalog: Catalog, files: Iterable[StoredFile]) -> list[Finding]:
    """Index rows whose file row is gone, and live files whose index rows are incomplete."""
    found = [
        Finding("index", f"file_id {file_id}", f"has rows in {', '.join(tables)} but no file", file_id=file_id)
        for file_id, tables in orphan_index_rows(catalog).items()
    ]
    paths = {f.file_id: f.path for f in files}
    for file_id in unindexed_files(catalog):
        message = "has incomplete index rows (statistics, inverted index or Bloom filters)"
        found.append(Finding("index", paths.get(file_id, f"file_id {file_id}"), message, file_id=file_id))
    return found


def leftover_findings(
    scan: DiskScan, cataloged: set[str], leases: set[str], now: float, *, older_than: float = 0.0
) -> list[Finding]:
    """Orphan data files, temporary files, unsealed segments and orphan sidecars: leftovers of a crash
    (with a `target` to delete) once older than their in-flight grace and `older_than`, else in flight."""
    found = [
        _aged(f, "orphan", "is in no snapshot", IN_FLIGHT_SECONDS, older_than, leases, now)
        for f in scan.data.values()
        if f.rel not in cataloged
    ]
    found += [_aged(f, "temp", "is a temporary file", IN_FLIGHT_SECONDS, older_than, leases, now) for f in scan.temps]
    unsealed = "is a producer's unsealed segment"
    found += [_aged(f, "temp", unsealed, UNSEALED_SECONDS, older_than, leases, now) for f in scan.unsealed]
    found += [_aged(f, "sidecar", "has no segment", IN_FLIGHT_SECONDS, older_than, leases, now) for f in scan.sidecars]
    return found


def _stray_findings(config: LakeConfig, scan: DiskScan, cataloged: set[str]) -> list[Finding]:
    """What does not belong where it is: files under `lake/` ticklake did not write (a file the
    catalog holds is checked as data whatever its name), set-aside segments, and the landing
    buffer's odd folders and files."""
    message = "is not a file ticklake writes (data files are <13 digits>-<12 hex>.parquet in partition folders): left alone"
    found = [Finding("stray", f.rel, message) for f in scan.strays if f.rel not in cataloged]
    found += [
        Finding("conflict", f.rel, "a consumed segment name came back with other content: set aside, not compacted")
        for f in scan.conflicts
    ]
    for stray in scan_buffer(config.root).strays:
        rel = stray.path.relative_to(config.root).as_posix()
        found.append(Finding("stray", rel + ("/" if stray.path.is_dir() else ""), stray.reason + "; not compacted"))
    return found


def _aged(f: DiskFile, kind: str, message: str, grace: float, older_than: float, leases: set[str], now: float) -> Finding:
    """A finding of `kind` for a leftover file, or an in-flight one while it may still be someone's work
    (younger than `grace`, or in an hour whose lease is held); younger than `older_than` it is kept too."""
    lease = lease_of(f.rel)
    if lease is not None and lease in leases:
        return Finding("in-flight", f.rel, f"{message}, and lease {lease} is held: left to its holder", None)
    age = f.age(now)
    if age < grace:
        return Finding("in-flight", f.rel, f"{message}, {_duration(age)} old: may be a running process's work")
    if age < older_than:
        return Finding("pending", f.rel, f"{message} ({_duration(age)} old): younger than asked")
    return Finding(kind, f.rel, f"{message} ({_duration(age)} old)", target=Path(f.rel))


def file_hour(f: StoredFile) -> int | None:
    """The event hour a file's partition values name (None for a dataset not partitioned by date and hour)."""
    values = f.partition_values
    if "date" not in values or "hour" not in values:
        return None
    return parse_hour(f"{values['date']}T{int(values['hour']):02d}")


def _duration(seconds: float) -> str:
    """A short age.

    >>> _duration(42.5), _duration(4000), _duration(200000)
    ('42s', '67m', '56h')
    """
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.0f}h"


def _one_line(error: Exception) -> str:
    text = " ".join(str(error).split())
    return text if len(text) < 200 else text[:197] + "..."
