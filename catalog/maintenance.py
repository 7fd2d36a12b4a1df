"""The catalog's side of check, repair and vacuum: every file row with what still needs it, index
rows that lost their file, per-hour counts to reconcile, and the two vacuum commits (expire the
snapshots that lose files, then forget the files once they are deleted).

A file is *needed* while a snapshot that is not expired holds it (the current snapshot always
holds its live files); vacuum expires snapshots before it deletes their files, so a missing file
that no snapshot needs any more is work the next vacuum finishes, not damage.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from ticklake.catalog.records import NewFile
from ticklake.catalog.store import FILE_HOUR, Catalog
from ticklake.catalog.writes import insert_index_rows

INDEX_TABLES = ("file_stats", "file_values", "file_blooms", "file_hours", "file_footers")

_NEEDED = (
    "(f.removed_snapshot IS NULL OR EXISTS (SELECT 1 FROM snapshots s WHERE s.snapshot_id >= f.added_snapshot"
    " AND s.snapshot_id < f.removed_snapshot AND s.expired_at IS NULL))"
)
_STORED = (
    "SELECT f.file_id, f.dataset_id, f.path, f.partition_path, f.partition_values, f.rows, f.bytes, f.ts_min, f.ts_max,"
    " f.added_snapshot, f.removed_snapshot, f.sha256,"
    f" (SELECT operation FROM snapshots WHERE snapshot_id = f.removed_snapshot), {_NEEDED} FROM files f"
)
# Commits of `ticklake repair` that drop a lost file: what they replace is gone already, so vacuum
# deletes it (and expires the snapshots holding it) whatever its age.
LOST_OPERATIONS = ("repair", "drop")


@dataclass(frozen=True)
class StoredFile:
    """One row of ``files`` in any state, with whether a snapshot that can still be read holds it."""

    file_id: int
    dataset_id: int
    path: str
    partition_path: str
    partition_values_json: str
    rows: int
    bytes: int
    ts_min: int
    ts_max: int
    added_snapshot: int
    removed_snapshot: int | None
    sha256: str | None
    removed_by: str | None  # the operation of the snapshot that replaced it
    needed: bool

    @property
    def lost(self) -> bool:
        """Replaced by `ticklake repair` because its data was lost."""
        return self.removed_by in LOST_OPERATIONS

    @property
    def live(self) -> bool:
        """Live in the current snapshot."""
        return self.removed_snapshot is None

    @cached_property
    def partition_values(self) -> dict[str, Any]:
        """Partition key -> value, as the commit recorded it."""
        values: dict[str, Any] = json.loads(self.partition_values_json)
        return values


@dataclass(frozen=True)
class HourCounts:
    """What the segments consumed for one event hour say: lines in, rows stored, rows quarantined."""

    hour: str
    segments: int
    lines: int
    stored: int
    quarantined: int


def stored_files(
    catalog: Catalog, *, dataset_id: int | None = None, partition_paths: Sequence[str] | None = None, live: bool = False
) -> list[StoredFile]:
    """File rows (of one dataset, of some partitions, only the live ones), by path."""
    where: list[str] = ["1"]
    params: list[object] = []
    if dataset_id is not None:
        where.append("f.dataset_id = ?")
        params.append(dataset_id)
    if partition_paths is not None:
        where.append("f.partition_path IN (SELECT value FROM json_each(?))")
        params.append(json.dumps(list(partition_paths)))
    if live:
        where.append("f.removed_snapshot IS NULL")
    rows = catalog.db.execute(f"{_STORED} WHERE {' AND '.join(where)} ORDER BY f.path", params)
    return [_stored(row) for row in rows]


def has_file(catalog: Catalog, path: str) -> bool:
    """True when the catalog has a row for a file at `path` (relative to the root), in any state."""
    return catalog.db.execute("SELECT 1 FROM files WHERE path = ?", (path,)).fetchone() is not None


def snapshots_needing(catalog: Catalog, file: StoredFile) -> tuple[int, int] | None:
    """The first and last snapshot not expired that hold `file` (None: none does)."""
    hi = "s.snapshot_id < ?" if file.removed_snapshot is not None else "1"
    params = [file.added_snapshot] + ([file.removed_snapshot] if file.removed_snapshot is not None else [])
    low, high = catalog.db.execute(
        f"SELECT min(snapshot_id), max(snapshot_id) FROM snapshots s WHERE s.snapshot_id >= ? AND {hi} AND s.expired_at IS NULL",
        params,
    ).fetchone()
    return None if low is None else (int(low), int(high))


def held_leases(catalog: Catalog, now: float | None = None) -> set[str]:
    """Names of the leases held now (``ticks/2022-01-07T05``): their partitions are being rebuilt."""
    rows = catalog.db.execute("SELECT name FROM leases WHERE expires_at > ?", (time.time() if now is None else now,))
    return {row[0] for row in rows}


def orphan_index_rows(catalog: Catalog) -> dict[int, list[str]]:
    """File ids that have index rows but no ``files`` row, with the tables holding them."""
    found: dict[int, list[str]] = {}
    for table in INDEX_TABLES:
        rows = catalog.db.execute(
            f"SELECT DISTINCT file_id FROM {table} WHERE file_id NOT IN (SELECT file_id FROM files) ORDER BY file_id"
        )
        for (file_id,) in rows:
            found.setdefault(int(file_id), []).append(table)
    return found


def delete_orphan_index_rows(catalog: Catalog) -> int:
    """Delete the index rows of files the catalog no longer has; return how many rows went."""
    deleted = 0
    with catalog.transaction() as db:
        for table in INDEX_TABLES:
            deleted += db.execute(f"DELETE FROM {table} WHERE file_id NOT IN (SELECT file_id FROM files)").rowcount
    return deleted


def unindexed_files(catalog: Catalog) -> list[int]:
    """Live files whose index rows are incomplete: no statistics, no inverted-index values, or fewer
    Bloom filters than their dataset declares (every file has values of its partition columns)."""
    rows = catalog.db.execute(
        "SELECT f.file_id FROM files f JOIN datasets d ON d.dataset_id = f.dataset_id WHERE f.removed_snapshot IS NULL AND ("
        " NOT EXISTS (SELECT 1 FROM file_stats WHERE file_id = f.file_id)"
        " OR NOT EXISTS (SELECT 1 FROM file_values WHERE file_id = f.file_id)"
        " OR (SELECT count(*) FROM file_blooms WHERE file_id = f.file_id) < json_array_length(d.bloom_columns))"
        " ORDER BY f.path"
    )
    return [int(row[0]) for row in rows]


def replace_index_rows(catalog: Catalog, file_id: int, new: NewFile) -> None:
    """Swap the index rows of one file for those computed from its data, in one transaction."""
    with catalog.transaction() as db:
        for table in INDEX_TABLES:
            db.execute(f"DELETE FROM {table} WHERE file_id = ?", (file_id,))
        insert_index_rows(db, file_id, new)


def repeated_segments(catalog: Catalog) -> list[tuple[str, int]]:
    """Segment paths recorded as consumed more than once, with how often (a path is a segment's identity)."""
    rows = catalog.db.execute("SELECT path, count(*) FROM segments GROUP BY path HAVING count(*) > 1 ORDER BY path")
    return [(str(path), int(n)) for path, n in rows]


def segment_counts(catalog: Catalog, dataset_id: int, hour: str | None = None) -> dict[str, HourCounts]:
    """Per event hour (or for one), the consumed segments' lines, rows stored and rows quarantined."""
    rows = catalog.db.execute(
        "SELECT hour, count(*), sum(lines), sum(rows_stored), sum(rows_quarantined) FROM segments"
        " WHERE dataset_id = ? AND (? IS NULL OR hour = ?) GROUP BY hour",
        (dataset_id, hour, hour),
    )
    return {r[0]: HourCounts(*r) for r in rows}


def live_rows_by_hour(catalog: Catalog, dataset_id: int, hour: str | None = None) -> dict[str, tuple[int, int]]:
    """Per event hour (or for one), the rows and the number of the dataset's live files."""
    # An hourly file counts in its hour; a file spanning hours (an archived day) in each hour it holds.
    rows = catalog.db.execute(
        f"SELECT h, sum(n), count(*) FROM (SELECT {FILE_HOUR} AS h, rows AS n FROM files"
        " WHERE dataset_id = ? AND removed_snapshot IS NULL AND json_extract(partition_values, '$.hour') IS NOT NULL"
        " UNION ALL SELECT fh.hour, fh.rows FROM file_hours fh JOIN files f USING (file_id)"
        " WHERE f.dataset_id = ? AND f.removed_snapshot IS NULL)"
        " GROUP BY h HAVING ? IS NULL OR h = ?",
        (dataset_id, dataset_id, hour, hour),
    )
    return {h: (int(n), int(files)) for h, n, files in rows}


def unreconciled_hours(catalog: Catalog) -> set[str]:
    """Hours a rebuilt catalog could not reconcile: their segments were no longer retained."""
    rows = catalog.db.execute("SELECT summary FROM snapshots WHERE operation = 'rebuild'")
    return {h for (summary,) in rows for h in json.loads(summary).get("unreconciled_hours", [])}


def doubled_segments(catalog: Catalog) -> dict[str, list[str]]:
    """Per hour, the segments waiting in the buffer when the catalog was rebuilt whose rows a file
    the rebuild kept held already (`ticklake.maintenance.rebuild`): compacting them counts them twice."""
    found: dict[str, list[str]] = {}
    for (summary,) in catalog.db.execute("SELECT summary FROM snapshots WHERE operation = 'rebuild'"):
        for hour, paths in json.loads(summary).get("doubled_segments", {}).items():
            found.setdefault(hour, []).extend(paths)
    return found


def rows_dropped(catalog: Catalog, dataset: str) -> dict[str, int]:
    """Per event hour of `dataset`, the rows that went with lost files repair dropped and could not re-compact."""
    dropped: dict[str, int] = {}
    for (summary,) in catalog.db.execute("SELECT summary FROM snapshots WHERE operation = 'drop'"):
        record = json.loads(summary)
        if record.get("dataset") == dataset and record.get("rows_lost"):
            dropped[record["hour"]] = dropped.get(record["hour"], 0) + int(record["rows_lost"])
    return dropped


def expired_at(catalog: Catalog, snapshot: int) -> str | None:
    """When vacuum expired `snapshot` (None: it can be read)."""
    row = catalog.db.execute("SELECT expired_at FROM snapshots WHERE snapshot_id = ?", (snapshot,)).fetchone()
    return None if row is None else row[0]


def vacuum_candidates(catalog: Catalog, cutoff: str) -> list[StoredFile]:
    """Replaced files vacuum may delete: those replaced by snapshots committed at or before `cutoff`
    (ISO-8601 UTC, as snapshots record it), lost files repair dropped, and files only expired
    snapshots hold, whenever they were replaced."""
    rows = catalog.db.execute(
        f"{_STORED} JOIN snapshots r ON r.snapshot_id = f.removed_snapshot"
        f" WHERE r.committed_at <= ? OR r.operation IN (SELECT value FROM json_each(?)) OR NOT {_NEEDED} ORDER BY f.path",
        (cutoff, json.dumps(LOST_OPERATIONS)),
    )
    return [_stored(row) for row in rows]


def replaced_by(catalog: Catalog, operations: Sequence[str]) -> list[StoredFile]:
    """Files replaced by commits of the given operations (e.g. 'archive': their data moved to another file)."""
    rows = catalog.db.execute(
        f"{_STORED} JOIN snapshots r ON r.snapshot_id = f.removed_snapshot"
        " WHERE r.operation IN (SELECT value FROM json_each(?)) ORDER BY f.path",
        (json.dumps(list(operations)),),
    )
    return [_stored(row) for row in rows]


def expire_snapshots(catalog: Catalog, file_ids: Iterable[int], now: str) -> list[int]:
    """Mark expired every snapshot that holds one of the files (about to be deleted); return the newly expired."""
    ids = json.dumps(sorted(set(file_ids)))
    with catalog.transaction() as db:
        rows = db.execute(
            "UPDATE snapshots SET expired_at = ? WHERE expired_at IS NULL AND EXISTS (SELECT 1 FROM files f"
            " WHERE f.file_id IN (SELECT value FROM json_each(?)) AND f.added_snapshot <= snapshots.snapshot_id"
            " AND f.removed_snapshot > snapshots.snapshot_id) RETURNING snapshot_id",
            (now, ids),
        ).fetchall()
    return sorted(int(r[0]) for r in rows)


def forget_files(catalog: Catalog, file_ids: Iterable[int]) -> int:
    """Delete the rows (and index rows) of replaced files whose data is gone; return how many files."""
    ids = json.dumps(sorted(set(file_ids)))
    replaced = "SELECT file_id FROM files WHERE file_id IN (SELECT value FROM json_each(?)) AND removed_snapshot IS NOT NULL"
    with catalog.transaction() as db:
        for table in INDEX_TABLES:
            db.execute(f"DELETE FROM {table} WHERE file_id IN ({replaced})", (ids,))
        return int(db.execute(f"DELETE FROM files WHERE file_id IN ({replaced})", (ids,)).rowcount)


def expired_snapshots(catalog: Catalog) -> list[int]:
    """Snapshots vacuum expired, oldest first."""
    return [int(r[0]) for r in catalog.db.execute("SELECT snapshot_id FROM snapshots WHERE expired_at IS NOT NULL ORDER BY 1")]


def files_by_id(catalog: Catalog, file_ids: Iterable[int]) -> list[StoredFile]:
    """The rows of the given files, by path."""
    rows = catalog.db.execute(
        f"{_STORED} WHERE f.file_id IN (SELECT value FROM json_each(?)) ORDER BY f.path", (json.dumps(sorted(set(file_ids))),)
    )
    return [_stored(row) for row in rows]


def _stored(row: Any) -> StoredFile:
    values = list(row)
    values[-1] = bool(values[-1])  # SQLite answers EXISTS with 0 or 1
    return StoredFile(*values)
