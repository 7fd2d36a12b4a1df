"""What commits changed, read by snapshot id, for observers that follow the catalog from outside
(the Dagster code location reports each commit of an hour as a materialization of that hour).

Snapshots are never deleted, so a snapshot id read once can be read again; vacuum forgets the rows
of files it deleted, so what a commit's file rows say (`hours_added`) may be gone for old commits,
while its summary stays.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ticklake.catalog.store import FILE_HOUR, Catalog

_COMMITS = (
    "SELECT s.snapshot_id, s.committed_at, s.operation, coalesce(d.name, json_extract(s.summary, '$.dataset')), s.summary"
    " FROM snapshots s LEFT JOIN dataset_snapshots ds ON ds.snapshot_id = s.snapshot_id"
    " LEFT JOIN datasets d ON d.dataset_id = ds.dataset_id"
)


@dataclass(frozen=True)
class CommitRecord:
    """One snapshot: when it was committed, by which operation, for which dataset, and its summary."""

    snapshot: int
    committed_at: str
    operation: str
    dataset: str | None  # None: a catalog older than version 2 that does not say (and a summary without it)
    summary: dict[str, Any]


@dataclass(frozen=True)
class HourFiles:
    """The data files one commit added to one event hour, as far as their rows are still in the catalog."""

    snapshot: int
    hour: str
    files: int
    rows: int
    bytes: int


def commits_after(catalog: Catalog, snapshot: int, limit: int) -> list[CommitRecord]:
    """The first `limit` snapshots after `snapshot`, oldest first."""
    rows = catalog.db.execute(f"{_COMMITS} WHERE s.snapshot_id > ? ORDER BY s.snapshot_id LIMIT ?", (snapshot, limit))
    return [_record(row) for row in rows]


def commits_by_id(catalog: Catalog, snapshots: Sequence[int]) -> list[CommitRecord]:
    """The given snapshots that exist, oldest first."""
    rows = catalog.db.execute(
        f"{_COMMITS} WHERE s.snapshot_id IN (SELECT value FROM json_each(?)) ORDER BY s.snapshot_id",
        (json.dumps(sorted(set(snapshots))),),
    )
    return [_record(row) for row in rows]


def hours_added(catalog: Catalog, snapshots: Sequence[int]) -> list[HourFiles]:
    """Per snapshot and event hour, the hourly files the snapshot added (live or replaced since);
    files without an hour (archived days) are not counted."""
    if not snapshots:
        return []
    rows = catalog.db.execute(
        f"SELECT added_snapshot, {FILE_HOUR} AS hour, count(*), sum(rows), sum(bytes) FROM files"
        " WHERE added_snapshot IN (SELECT value FROM json_each(?)) AND json_extract(partition_values, '$.hour') IS NOT NULL"
        " GROUP BY 1, 2 ORDER BY 1, 2",
        (json.dumps(sorted(set(snapshots))),),
    )
    return [HourFiles(int(s), str(h), int(n), int(r), int(b)) for s, h, n, r, b in rows]


def first_committed(catalog: Catalog) -> str | None:
    """When the catalog's first snapshot was committed: it names this catalog among others at the same
    place (a lake made again, a rebuilt catalog), whose snapshot ids start at 1 again."""
    row = catalog.db.execute("SELECT committed_at FROM snapshots ORDER BY snapshot_id LIMIT 1").fetchone()
    return None if row is None else str(row[0])


def first_data(catalog: Catalog, dataset_id: int) -> tuple[int | None, str | None]:
    """The earliest time of a data file of the dataset (epoch microseconds, any file ever committed) and
    the earliest event hour of a segment it consumed; each None when there is none. Both are index seeks."""
    (ts_min,) = catalog.db.execute("SELECT min(ts_min) FROM files WHERE dataset_id = ?", (dataset_id,)).fetchone()
    (hour,) = catalog.db.execute("SELECT min(hour) FROM segments WHERE dataset_id = ?", (dataset_id,)).fetchone()
    return (None if ts_min is None else int(ts_min)), (None if hour is None else str(hour))


def _record(row: Any) -> CommitRecord:
    snapshot, committed_at, operation, dataset, summary = row
    return CommitRecord(int(snapshot), str(committed_at), str(operation), dataset, json.loads(summary))
