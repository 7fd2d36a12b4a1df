"""Applying a Commit inside an open write transaction: validation first, then inserts."""

from __future__ import annotations

import json
import sqlite3

from ticklake.catalog.errors import CommitConflict
from ticklake.catalog.records import Commit, NewFile


def apply_commit(db: sqlite3.Connection, commit: Commit, now: str) -> int:
    """Validate what the writer read against the catalog, then write the new snapshot; return its id."""
    parent = int(db.execute("SELECT coalesce(max(snapshot_id), 0) FROM snapshots").fetchone()[0])
    snapshot = parent + 1
    _check_replaced(db, commit)
    _check_segments(db, commit)

    summary = dict(commit.summary)
    summary.setdefault("files_added", len(commit.add_files))
    summary.setdefault("files_removed", len(commit.remove_file_ids))
    summary.setdefault("segments_consumed", len(commit.consume_segments))
    db.execute(
        "INSERT INTO snapshots (snapshot_id, parent_id, committed_at, operation, summary) VALUES (?, ?, ?, ?, ?)",
        (snapshot, parent or None, now, commit.operation, json.dumps(summary, sort_keys=True)),
    )
    if commit.remove_file_ids:
        ids = list(commit.remove_file_ids)
        marks = ", ".join("?" * len(ids))
        changed = db.execute(
            f"UPDATE files SET removed_snapshot = ? WHERE file_id IN ({marks}) AND removed_snapshot IS NULL",
            [snapshot, *ids],
        ).rowcount
        if changed != len(ids):
            raise CommitConflict(f"snapshot {snapshot}: {len(ids) - changed} file(s) to replace were already replaced")
    for new in commit.add_files:
        _insert_file(db, commit.dataset_id, snapshot, new)
    db.execute(
        "INSERT INTO dataset_snapshots (snapshot_id, dataset_id, live_files) VALUES (?, ?, "
        " (SELECT count(*) FROM files WHERE dataset_id = ? AND removed_snapshot IS NULL))",
        (snapshot, commit.dataset_id, commit.dataset_id),
    )
    if commit.add_files:
        span = max(f.ts_max - f.ts_min for f in commit.add_files)
        db.execute("UPDATE datasets SET max_file_span = max(max_file_span, ?) WHERE dataset_id = ?", (span, commit.dataset_id))
    db.executemany(
        "INSERT INTO segments (dataset_id, path, bytes, sha256, hour, lines, rows_stored, rows_quarantined,"
        " consumed_snapshot) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (commit.dataset_id, s.path, s.bytes, s.sha256, s.hour, s.lines, s.rows_stored, s.rows_quarantined, snapshot)
            for s in commit.consume_segments
        ],
    )
    return snapshot


def _check_replaced(db: sqlite3.Connection, commit: Commit) -> None:
    if not commit.replace_partitions:
        return
    marks = ", ".join("?" * len(commit.replace_partitions))
    live = {
        row[0]
        for row in db.execute(
            f"SELECT file_id FROM files WHERE dataset_id = ? AND removed_snapshot IS NULL AND partition_path IN ({marks})",
            [commit.dataset_id, *commit.replace_partitions],
        )
    }
    expected = set(commit.remove_file_ids)
    if live != expected:
        raise CommitConflict(
            f"partitions {', '.join(commit.replace_partitions)} changed since they were read"
            f" (live files {sorted(live)}, expected {sorted(expected)})"
        )


def _check_segments(db: sqlite3.Connection, commit: Commit) -> None:
    for segment in commit.consume_segments:
        row = db.execute("SELECT consumed_snapshot FROM segments WHERE path = ?", (segment.path,)).fetchone()
        if row is not None:
            raise CommitConflict(f"segment {segment.path}: already consumed by snapshot {row[0]}")


def _insert_file(db: sqlite3.Connection, dataset_id: int, snapshot: int, new: NewFile) -> None:
    file_id = db.execute(
        "INSERT INTO files (dataset_id, path, partition_path, partition_values, rows, bytes, ts_min, ts_max,"
        " added_snapshot, sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            dataset_id,
            new.path,
            new.partition_path,
            json.dumps(new.partition_values),
            new.rows,
            new.bytes,
            new.ts_min,
            new.ts_max,
            snapshot,
            new.sha256,
        ),
    ).lastrowid
    insert_index_rows(db, file_id, new)


def insert_index_rows(db: sqlite3.Connection, file_id: int | None, new: NewFile) -> None:
    """The statistics, inverted-index values and Bloom filters of one file (also `ticklake repair`'s rebuild)."""
    db.executemany(
        "INSERT INTO file_stats (file_id, column_name, min_value, max_value, null_count) VALUES (?, ?, ?, ?, ?)",
        [(file_id, col, s.min_value, s.max_value, s.null_count) for col, s in new.stats.items()],
    )
    db.executemany(
        "INSERT INTO file_values (column_name, value, file_id, rows) VALUES (?, ?, ?, ?)",
        [(col, value, file_id, rows) for col, counts in new.values.items() for value, rows in counts.items()],
    )
    db.executemany(
        "INSERT INTO file_blooms (file_id, column_name, num_bits, num_hashes, bits) VALUES (?, ?, ?, ?, ?)",
        [(file_id, col, b.num_bits, b.num_hashes, b.bits) for col, b in new.blooms.items()],
    )
    db.executemany(
        "INSERT INTO file_hours (file_id, hour, rows) VALUES (?, ?, ?)", [(file_id, h, n) for h, n in new.hours.items()]
    )
    if new.footer is not None:
        db.execute("INSERT INTO file_footers (file_id, footer) VALUES (?, ?)", (file_id, new.footer))
