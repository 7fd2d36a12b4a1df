"""`ticklake repair --rebuild-catalog`: a lost catalog rebuilt from the data files, and the retained
consumed segments recorded as consumed again, so compaction never counts them a second time.

Each partition keeps one file. Several can be on disk: replaced files vacuum has not deleted yet
(older) and a crash orphan of a compaction that never committed (newer). The file kept is the
newest (names start with their write time in milliseconds) whose row count matches what the
hour's retained segments stored for it, or simply the newest when no file matches (segments
purged); the others are reported as orphans, for `ticklake repair` to delete. Hours whose files
do not reconcile with their retained segments are recorded as such in the rebuilt snapshot, so
`ticklake check` reports them as unreconciled, not as damage.

Sealed segments still waiting in the landing buffer are compacted after the rebuild, so no file
kept may hold their rows already. A file whose rows are an older file's (or none) plus whole
waiting segments' rows of its tick type is a compaction that crashed before its commit: it is an
orphan, whatever its age. When the file kept still holds all rows of a waiting segment, which
file is the truth cannot be told: the rebuild says so (`cannot fix`), and records the hour so
that `ticklake check` reports it until the segments are gone.

With a cold tier (``cold_uri``), its objects are cataloged too (the tier is listed once): per day
and tick type the newest object is kept (an older one is a day packed again whose old object was
not deleted yet), and the day's warm hourly files older than it are the archive's inputs, left over
by a run killed before its delete: orphans. Warm files newer than the object are late ticks beside it.

The new catalog is built under a temporary name and renamed into place when complete; a damaged
catalog is moved aside (``catalog.sqlite.damaged-<time>``), never deleted.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ticklake.catalog import Catalog, CatalogCorrupt, Commit, ConsumedSegment, DatasetSpec, NewFile
from ticklake.config import LakeConfig
from ticklake.datasets import DATASETS, TICKS
from ticklake.errors import ConfigError, NotFoundError
from ticklake.landing.buffer import sealed_segments
from ticklake.maintenance.check import catalog_problem
from ticklake.maintenance.disk import DiskFile, DiskScan, scan_disk
from ticklake.maintenance.retained import read_segment_rows, recorded_path
from ticklake.storage.files import discard, file_sha256, move_atomic, publish, sha256_hex, temp_name
from ticklake.storage.layout import consumed_dir, hour_key, landing_folder_hour, partition_path
from ticklake.storage.parquet import describe_file, footer_of
from ticklake.ticks import FILE_SCHEMA


@dataclass
class RebuildResult:
    """What a rebuild cataloged, recorded, set aside and left out."""

    moved_aside: Path | None = None
    files: Counter[str] = field(default_factory=Counter)  # per dataset
    rows: int = 0
    bytes: int = 0
    segments: int = 0
    orphans: list[str] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)  # 'path: why'
    unreconciled: list[str] = field(default_factory=list)
    merges: list[str] = field(default_factory=list)  # uncommitted compactions of waiting segments
    unfixed: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """One line per notable thing, for the CLI."""
        out = [f"moved the damaged catalog aside to {self.moved_aside.name}"] if self.moved_aside else []
        out += [f"orphan: {p}: another file of its partition was kept; `ticklake repair` deletes it" for p in self.orphans]
        out += [
            f"orphan: {p}: an uncommitted compaction of segments still waiting in landing/; `ticklake repair` deletes it"
            for p in self.merges
        ]
        out += [f"left out: {line}" for line in self.left_out]
        if self.unreconciled:
            out.append(f"unreconciled hours (their segments are no longer retained): {', '.join(self.unreconciled)}")
        return out + [f"cannot fix: {line}" for line in self.unfixed]

    def summary(self) -> str:
        """One line with the counts."""
        per = ", ".join(f"{n:,} {name}" for name, n in sorted(self.files.items())) or "none"
        return (
            f"rebuilt catalog.sqlite: {sum(self.files.values()):,} files ({per}), {self.rows:,} rows, {self.bytes:,} bytes;"
            f" {self.segments:,} retained segments recorded as consumed; {len(self.orphans) + len(self.merges):,} orphans,"
            f" {len(self.left_out):,} files left out"
        )


def rebuild_catalog(config: LakeConfig, *, force: bool = False) -> RebuildResult:
    """Rebuild a lost catalog from the lake's files; refuses when one exists, unless it is damaged and `force`."""
    root, path = config.root, config.catalog_path
    if not root.is_dir():
        raise NotFoundError(f"lake {root}: no such folder")
    result = RebuildResult()
    if path.exists():
        problem = catalog_problem(path)
        if problem is None:
            raise ConfigError(f"catalog {path}: exists and is sound; --rebuild-catalog only replaces a lost or damaged one")
        if not force:
            raise CatalogCorrupt(f"catalog {path}: {problem}; add --force to move it aside and rebuild it")
        result.moved_aside = _move_aside(path)
    scan = scan_disk(root)
    segments = _retained_segments(root)
    waiting = _waiting_segments(root, {s.path for items in segments.values() for s, _ in items})
    tmp = temp_name(path)
    try:
        with Catalog(tmp) as catalog:
            for spec in DATASETS.values():
                ticks = spec.name == TICKS.name
                _catalog_dataset(config, catalog, spec, scan, segments if ticks else {}, waiting if ticks else {}, result)
        publish(tmp, path, exclusive=True)
    finally:
        for leftover in (tmp, tmp.with_name(tmp.name + "-wal"), tmp.with_name(tmp.name + "-shm")):
            discard(leftover)
    return result


def _cold_objects(config: LakeConfig, spec: DatasetSpec, result: RebuildResult) -> tuple[list[NewFile], dict[str, str]]:
    """The newest object of each archived day in the cold tier, described from its bytes; older
    objects of a day are orphans. Returns the records and, per day partition, the kept object's name."""
    import io  # noqa: PLC0415

    from ticklake.build.archive import hours_of  # noqa: PLC0415 - the archive's own rule for file_hours
    from ticklake.storage.objects import ObjectLocation, S3Access, object_errors  # noqa: PLC0415

    location = ObjectLocation.parse(config.cold_uri)
    fs = S3Access.from_environment().filesystem()
    base = location.join(spec.location.split("/")[-1])
    listed = object_errors(base, lambda: fs.find(base.removeprefix("s3://"), detail=True))
    days: dict[str, list[tuple[str, int]]] = {}
    for key, info in listed.items():
        uri = "s3://" + key
        rel = uri.removeprefix(base + "/")
        parts = rel.split("/")
        if len(parts) != 3 or not parts[2].endswith(".parquet"):
            result.left_out.append(f"{uri}: not an archived object of {spec.name}")
            continue
        days.setdefault("/".join(parts[:2]), []).append((uri, int(info["size"])))
    added: list[NewFile] = []
    kept_names: dict[str, str] = {}
    for day, objects in sorted(days.items()):
        objects.sort(key=lambda o: o[0].rsplit("/", 1)[-1], reverse=True)
        uri, size = objects[0]
        result.orphans += [o[0] for o in objects[1:]]
        data = object_errors(uri, partial(fs.cat_file, uri.removeprefix("s3://")))
        try:
            table = pq.read_table(io.BytesIO(data))
        except (OSError, pa.ArrowException) as e:
            result.left_out.append(f"{uri}: unreadable ({' '.join(str(e).split())[:120]})")
            continue
        values = dict(part.split("=", 1) for part in day.split("/"))
        new = describe_file(spec, uri, values, table, size, config, sha256_hex(data), footer_of(data))
        new.hours.update(hours_of(table, spec.time_column))
        added.append(new)
        kept_names[day] = uri.rsplit("/", 1)[-1]
    return added, kept_names


def _move_aside(path: Path) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    aside = path.with_name(f"{path.name}.damaged-{stamp}")
    for suffix in ("-wal", "-shm"):
        extra = path.with_name(path.name + suffix)
        if extra.exists():
            move_atomic(extra, aside.with_name(aside.name + suffix))
    move_atomic(path, aside)
    return aside


def _retained_segments(root: Path) -> dict[str, list[tuple[ConsumedSegment, pa.Table]]]:
    """Per event hour, the retained segments (in the order they were retired) and their stored rows."""
    base = consumed_dir(root) / "ticks"
    found: dict[str, list[tuple[float, ConsumedSegment, pa.Table]]] = {}
    for copy in sorted(base.glob("date=*/hour=*/*.jsonl")) if base.is_dir() else []:
        hour = landing_folder_hour(copy.parent.parent.name, copy.parent.name)
        if hour is None or copy.name.startswith("."):
            continue
        rows = read_segment_rows(copy, hour)
        record = rows.record(recorded_path(root, copy), hour)
        found.setdefault(hour_key(hour), []).append((copy.stat().st_mtime, record, rows.table))
    return {h: [(s, t) for _, s, t in sorted(items, key=lambda i: (i[0], i[1].path))] for h, items in found.items()}


def _waiting_segments(root: Path, retained: set[str]) -> dict[str, list[tuple[str, pa.Table]]]:
    """Per event hour, the sealed segments waiting in the buffer (path relative to the root, rows it
    stores), less those retained as consumed: the rebuild records those, so they are not compacted."""
    found: dict[str, list[tuple[str, pa.Table]]] = {}
    for segment in sealed_segments(root):
        rel = segment.path.relative_to(root).as_posix()
        if rel not in retained:
            found.setdefault(hour_key(segment.hour), []).append((rel, read_segment_rows(segment.path, segment.hour).table))
    return found


def _catalog_dataset(
    config: LakeConfig,
    catalog: Catalog,
    spec: DatasetSpec,
    scan: DiskScan,
    segments: dict[str, list[tuple[ConsumedSegment, pa.Table]]],
    waiting: dict[str, list[tuple[str, pa.Table]]],
    result: RebuildResult,
) -> None:
    """One commit: the kept file of every partition of `spec`, and (ticks) the retained segments."""
    dataset = catalog.ensure_dataset(spec)
    added: list[NewFile] = []
    packed: dict[str, str] = {}  # day partition -> name of the object kept for it
    if spec.name == TICKS.name and config.cold_uri:
        added, packed = _cold_objects(config, spec, result)
    partitions: dict[str, list[tuple[DiskFile, dict[str, Any]]]] = {}
    for rel, f in scan.data.items():
        if not rel.startswith(spec.location + "/"):
            continue
        values = _partition_values(spec, rel)
        day = partition_path({k: v for k, v in (values or {}).items() if k != "hour"})
        if values is not None and day in packed and rel.rsplit("/", 1)[-1] < packed[day]:
            result.orphans.append(rel)  # an input of the archived object, written before it
            continue
        if values is None:
            result.left_out.append(f"{rel}: not in a partition folder of {spec.name}")
            continue
        partitions.setdefault(partition_path(values), []).append((f, values))
    expected = _expected_rows(segments)
    doubled: dict[str, list[str]] = {}
    for part, candidates in sorted(partitions.items()):
        readable = []
        for f, values in sorted(candidates, key=lambda c: c[0].rel.rsplit("/", 1)[-1], reverse=True):
            try:
                readable.append((f, values, pq.read_metadata(config.root / f.rel).num_rows))
            except (OSError, pa.ArrowException) as e:
                result.left_out.append(f"{f.rel}: unreadable ({' '.join(str(e).split())[:120]})")
        if not readable:
            continue
        want = expected.get(part)
        values = readable[0][1]
        hour = f"{values['date']}T{int(values['hour']):02d}"
        pending = [(p, _row_counts(t, values["tick_type"])) for p, t in waiting.get(hour, [])] if spec.name == TICKS.name else []
        held: list[str] = []
        if pending := [(p, rows) for p, rows in pending if rows]:
            kept, held = _choose_beside_waiting(config.root, part, readable, want, pending, result)
            doubled.setdefault(hour, []).extend(p for p in held if p not in doubled.get(hour, []))
        else:
            kept = next((c for c in readable if c[2] == want), readable[0])
            result.orphans += [c[0].rel for c in readable if c is not kept]
        if kept is None:
            continue
        f, values, _ = kept
        table = pq.ParquetFile(config.root / f.rel).read()  # not read_table: no Hive columns from the path
        added.append(describe_file(spec, f.rel, values, table, f.bytes, config, file_sha256(config.root / f.rel)))
    records = [s for hour in sorted(segments) for s, _ in segments[hour]]
    unreconciled = _unreconciled(added, segments) if spec.name == TICKS.name else []
    if added or records:
        catalog.commit(
            Commit(
                dataset_id=dataset.dataset_id,
                operation="rebuild",
                add_files=tuple(added),
                consume_segments=tuple(records),
                summary={
                    "dataset": spec.name,
                    "files": len(added),
                    "unreconciled_hours": unreconciled,
                    "doubled_segments": doubled,
                },
            )
        )
    result.files[spec.name] += len(added)
    result.rows += sum(f.rows for f in added)
    result.bytes += sum(f.bytes for f in added)
    result.segments += len(records)
    result.unreconciled += unreconciled


Candidate = tuple[DiskFile, dict[str, Any], int]


def _choose_beside_waiting(
    root: Path,
    part: str,
    readable: list[Candidate],
    want: int | None,
    pending: list[tuple[str, Counter[tuple[Any, ...]]]],
    result: RebuildResult,
) -> tuple[Candidate | None, list[str]]:
    """The file to keep of a partition (newest first in `readable`) whose hour has segments waiting
    (their rows of its tick type), and the waiting segments whose rows it holds already (none, unless
    a `cannot fix` was reported); None when every file is an uncommitted compaction of them."""
    counts = [_row_counts(pq.ParquetFile(root / c[0].rel).read()) for c in readable]
    merges = {
        i for i in range(len(readable)) if any(_is_merge(counts[i], older, pending) for older in [*counts[i + 1 :], Counter()])
    }
    result.merges += [readable[i][0].rel for i in sorted(merges)]
    rest = [i for i in range(len(readable)) if i not in merges]
    if not rest:
        return None, []  # the hour's first compaction crashed: compacting the waiting segments writes it again
    kept = next((i for i in rest if readable[i][2] == want), rest[0])
    result.orphans += [readable[i][0].rel for i in rest if i != kept]
    held = [path for path, rows in pending if rows <= counts[kept]]
    if held:
        more = f" and {len(held) - 1:,} more" if len(held) > 1 else ""
        result.unfixed.append(
            f"{part}: kept {readable[kept][0].rel}, which already holds the rows of segment {held[0]}{more} still waiting"
            " in landing/, and no other file tells whether that merge was committed: compacting the hour would count"
            " them twice; delete those segments if it was, or the file if it was not, then rebuild again"
        )
    return readable[kept], held


def _is_merge(
    rows: Counter[tuple[Any, ...]], older: Counter[tuple[Any, ...]], pending: list[tuple[str, Counter[tuple[Any, ...]]]]
) -> bool:
    """True when `rows` are exactly `older` plus the rows of one or more whole waiting segments."""
    if not older <= rows:
        return False
    rest, used = rows - older, 0
    for _, segment in pending:
        if segment <= rest:
            rest, used = rest - segment, used + 1
    return used > 0 and not rest


def _row_counts(table: pa.Table, tick_type: str | None = None) -> Counter[tuple[Any, ...]]:
    """The rows of a data file (or, with `tick_type`, of a segment's rows of that tick type) as a
    multiset of value tuples in the file's column order, to compare files and segments by content."""
    if tick_type is not None:
        table = table.filter(pc.equal(table.column("tick_type"), tick_type))
    columns = [table.column(name).to_pylist() for name in FILE_SCHEMA.names]
    return Counter(tuple(tuple(v) if isinstance(v, list) else v for v in row) for row in zip(*columns, strict=True))


def _partition_values(spec: DatasetSpec, rel: str) -> dict[str, Any] | None:
    """The partition values a data file's folders name, when they are exactly the dataset's partition path.

    >>> _partition_values(TICKS, "lake/ticks/tick_type=last/date=2022-01-07/hour=05/1.parquet")
    {'tick_type': 'last', 'date': '2022-01-07', 'hour': 5}
    >>> _partition_values(TICKS, "lake/ticks/tick_type=last/date=2022-01-07/hour=5/1.parquet") is None
    True
    """
    folders = rel[len(spec.location) + 1 :].split("/")[:-1]
    pairs = [folder.split("=", 1) for folder in folders]
    if [p[0] for p in pairs] != list(spec.partition_keys) or any(len(p) != 2 for p in pairs):
        return None
    values: dict[str, Any] = {}
    for key, text in pairs:
        if key == "hour":
            if not (text.isdigit() and len(text) == 2 and int(text) < 24):
                return None
            values[key] = int(text)
        else:
            values[key] = text
    return values if partition_path(values) == "/".join(folders) else None


def _expected_rows(segments: dict[str, list[tuple[ConsumedSegment, pa.Table]]]) -> dict[str, int]:
    """Rows per ticks partition path that the retained segments stored."""
    expected: Counter[str] = Counter()
    for hour, items in segments.items():
        for _, table in items:
            for tick_type, n in Counter(table.column("tick_type").to_pylist()).items():
                expected[partition_path({"tick_type": tick_type, "date": hour[:10], "hour": int(hour[11:13])})] += n
    return dict(expected)


def _unreconciled(added: list[NewFile], segments: dict[str, list[tuple[ConsumedSegment, pa.Table]]]) -> list[str]:
    """Hours whose kept files hold other than the rows their retained segments stored."""
    in_files: Counter[str] = Counter()
    for f in added:
        if f.hours:  # an archived day: its rows per hour
            in_files.update(f.hours)
        else:
            in_files[f"{f.partition_values['date']}T{int(f.partition_values['hour']):02d}"] += f.rows
    stored = Counter({hour: sum(s.rows_stored for s, _ in items) for hour, items in segments.items()})
    return sorted(h for h in set(in_files) | set(stored) if in_files[h] != stored[h])
