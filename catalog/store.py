"""The catalog: one SQLite file (WAL) that knows every dataset, snapshot, data file and consumed segment.

Readers never block writers (WAL); writers serialise on ``BEGIN IMMEDIATE`` and validate
what they read before committing (optimistic concurrency, as pyiceberg's SQL catalog does).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from itertools import starmap
from pathlib import Path
from typing import Any

from ticklake.catalog.errors import CatalogCorrupt, CatalogError, CatalogLocked
from ticklake.catalog.records import Commit, ConsumedSegment, Dataset, DatasetSpec, LiveFile, LiveTotals, columns
from ticklake.catalog.writes import apply_commit
from ticklake.sql import load_sql, migration_names

LIVE = "added_snapshot <= :snapshot AND (removed_snapshot IS NULL OR removed_snapshot > :snapshot)"
"""SQL condition: a ``files`` row is live in snapshot ``:snapshot`` (added by then, not yet removed)."""

FILE_COLUMNS = columns(LiveFile)
"""Select list of ``files`` that reads a `LiveFile` (bind with ``LiveFile(*row)``)."""

SEGMENT_COLUMNS = columns(ConsumedSegment)
"""Select list of ``segments`` that reads a `ConsumedSegment` (bind with ``ConsumedSegment(*row)``)."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


class Catalog:
    """A connection to a catalog file; create it (and migrate it) on open."""

    def __init__(self, path: str | Path, *, timeout: float = 30.0, read_only: bool = False, shared: bool = False) -> None:
        """`shared`: the connection may be used from several threads, one at a time (the caller locks)."""
        self.path = Path(path)
        self.read_only = read_only
        if read_only and not self.path.exists():
            raise CatalogCorrupt(f"catalog {self.path}: no such file")
        try:
            if read_only:
                uri = f"file:{self.path}?mode=ro"
                self.db = sqlite3.connect(uri, uri=True, timeout=timeout, isolation_level=None, check_same_thread=not shared)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.db = sqlite3.connect(self.path, timeout=timeout, isolation_level=None, check_same_thread=not shared)
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute("PRAGMA synchronous=FULL")
            self.db.execute("PRAGMA foreign_keys=ON")
            if not read_only:
                self._migrate()
            else:
                self._check_version()
        except sqlite3.DatabaseError as e:
            raise CatalogCorrupt(f"catalog {self.path}: {e}") from e

    def close(self) -> None:
        """Close the connection."""
        self.db.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- schema -----------------------------------------------------------------------------------

    def _applied(self) -> set[int]:
        """Migrations recorded in this file; refuses a database that holds other applications' tables."""
        tables = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "schema_migrations" not in tables:
            if any(not t.startswith("sqlite_") for t in tables):
                raise CatalogCorrupt(f"catalog {self.path}: not a ticklake catalog (it holds other tables)")
            return set()
        applied = {int(row[0]) for row in self.db.execute("SELECT version FROM schema_migrations")}
        known = len(migration_names())
        if applied and max(applied) > known:
            raise CatalogCorrupt(f"catalog {self.path}: schema version {max(applied)} is newer than this ticklake ({known})")
        return applied

    def _migrate(self) -> None:
        """Apply numbered migrations from ``sql/catalog`` that this file has not seen, in order.

        Takes the write lock only when something is missing, so opening an up-to-date
        catalog never waits for (or blocks) a writer.
        """
        known = migration_names()
        if len(self._applied()) == len(known):
            return
        with self.transaction():
            applied = self._applied()  # again, under the lock: another process may have migrated
            self.db.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
            for version, name in enumerate(known, start=1):
                if version in applied:
                    continue
                # Not executescript: it would COMMIT the BEGIN IMMEDIATE held here, so the migration and its
                # schema_migrations row would not be one transaction. SQLite's own parser finds the
                # statements, so a ';' inside a string is safe.
                for statement in _statements(load_sql(name)):
                    self.db.execute(statement)
                self.db.execute("INSERT INTO schema_migrations VALUES (?, ?, ?)", (version, name.split("/")[-1], _now()))

    def _check_version(self) -> None:
        try:
            (version,) = self.db.execute("SELECT max(version) FROM schema_migrations").fetchone()
        except sqlite3.OperationalError as e:
            raise CatalogCorrupt(f"catalog {self.path}: not a ticklake catalog ({e})") from e
        if version is None or version > len(migration_names()):
            raise CatalogCorrupt(f"catalog {self.path}: unsupported schema version {version}")

    def schema_version(self) -> int:
        """The highest migration applied to this file."""
        return int(self.db.execute("SELECT max(version) FROM schema_migrations").fetchone()[0])

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction taken up front (``BEGIN IMMEDIATE``), rolled back on any error."""
        if self.read_only:
            raise CatalogError(f"catalog {self.path}: opened read-only; cannot write")
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as e:
            if "locked" in str(e) or "busy" in str(e):
                raise CatalogLocked(f"catalog {self.path}: {e}") from e
            raise CatalogError(f"catalog {self.path}: {e}") from e
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        else:
            self.db.execute("COMMIT")

    # -- datasets ---------------------------------------------------------------------------------

    def ensure_dataset(self, spec: DatasetSpec) -> Dataset:
        """Register `spec` unless a dataset of that name exists; return the stored dataset."""
        found = self.dataset(spec.name)
        if found is not None:
            return found
        with self.transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO datasets (name, location, partition_keys, time_column, columns,"
                " indexed_columns, bloom_columns, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    spec.name,
                    spec.location,
                    json.dumps(list(spec.partition_keys)),
                    spec.time_column,
                    json.dumps(spec.columns),
                    json.dumps(list(spec.indexed_columns)),
                    json.dumps(list(spec.bloom_columns)),
                    _now(),
                ),
            )
        found = self.dataset(spec.name)
        assert found is not None
        return found

    def dataset(self, name: str) -> Dataset | None:
        """The dataset called `name`, or None."""
        row = self.db.execute(
            "SELECT dataset_id, name, location, partition_keys, time_column, columns, indexed_columns, bloom_columns"
            " FROM datasets WHERE name = ?",
            (name,),
        ).fetchone()
        if row is None:
            return None
        return Dataset(
            row[0],
            DatasetSpec(
                name=row[1],
                location=row[2],
                partition_keys=tuple(json.loads(row[3])),
                time_column=row[4],
                columns=json.loads(row[5]),
                indexed_columns=tuple(json.loads(row[6])),
                bloom_columns=tuple(json.loads(row[7])),
            ),
        )

    def datasets(self) -> list[Dataset]:
        """Every registered dataset, by name."""
        names = [r[0] for r in self.db.execute("SELECT name FROM datasets ORDER BY name")]
        return [d for d in (self.dataset(n) for n in names) if d is not None]

    # -- snapshots and files ----------------------------------------------------------------------

    def current_snapshot(self) -> int:
        """The newest snapshot id (0 for an empty catalog)."""
        return int(self.db.execute("SELECT coalesce(max(snapshot_id), 0) FROM snapshots").fetchone()[0])

    def live_file_count(self, dataset_id: int, snapshot: int) -> int:
        """Files of a dataset live in `snapshot`: recorded per commit, counted only for old snapshots."""
        row = self.db.execute(
            "SELECT live_files FROM dataset_snapshots WHERE dataset_id = ? AND snapshot_id <= ?"
            " ORDER BY snapshot_id DESC LIMIT 1",
            (dataset_id, snapshot),
        ).fetchone()
        if row is not None:
            return int(row[0])
        params = {"dataset": dataset_id, "snapshot": snapshot}
        return int(self.db.execute(f"SELECT count(*) FROM files WHERE dataset_id = :dataset AND {LIVE}", params).fetchone()[0])

    def live_totals(self) -> LiveTotals:
        """Files live in the current snapshot, over every dataset, with their rows and bytes."""
        files, rows, size = self.db.execute(
            "SELECT count(*), coalesce(sum(rows), 0), coalesce(sum(bytes), 0) FROM files WHERE removed_snapshot IS NULL"
        ).fetchone()
        return LiveTotals(files=files, rows=rows, bytes=size)

    def has_snapshot(self, snapshot: int) -> bool:
        """True when `snapshot` was committed."""
        return self.db.execute("SELECT 1 FROM snapshots WHERE snapshot_id = ?", (snapshot,)).fetchone() is not None

    def snapshots(self) -> list[dict[str, object]]:
        """Every snapshot, oldest first."""
        rows = self.db.execute(
            "SELECT snapshot_id, parent_id, committed_at, operation, summary FROM snapshots ORDER BY snapshot_id"
        )
        return [
            {"snapshot_id": r[0], "parent_id": r[1], "committed_at": r[2], "operation": r[3], "summary": json.loads(r[4])}
            for r in rows
        ]

    def snapshot_summary(self, snapshot: int) -> dict[str, Any]:
        """The summary a commit recorded with its snapshot (empty when there is no such snapshot)."""
        row = self.db.execute("SELECT summary FROM snapshots WHERE snapshot_id = ?", (snapshot,)).fetchone()
        summary: dict[str, Any] = json.loads(row[0]) if row else {}
        return summary

    def live_files(
        self,
        dataset_id: int,
        *,
        snapshot: int | None = None,
        partition_paths: Sequence[str] | None = None,
    ) -> list[LiveFile]:
        """Files live in `snapshot` (default: current), optionally only in the given partitions."""
        params: dict[str, object] = {
            "dataset": dataset_id,
            "snapshot": self.current_snapshot() if snapshot is None else snapshot,
        }
        sql = f"SELECT {FILE_COLUMNS} FROM files WHERE dataset_id = :dataset AND {LIVE}"
        if partition_paths is not None:
            if not partition_paths:
                return []
            params.update({f"p{i}": p for i, p in enumerate(partition_paths)})
            sql += " AND partition_path IN (" + ", ".join(f":p{i}" for i in range(len(partition_paths))) + ")"
        # Columns come typed from SQLite (INTEGER, TEXT): no conversion on this hot path.
        return list(starmap(LiveFile, self.db.execute(sql + " ORDER BY path", params)))

    def consumed(self, sha256s: Sequence[str]) -> dict[str, ConsumedSegment]:
        """Of the given content hashes, those already consumed, with their recorded segment."""
        return {s.sha256: s for s in self._consumed_where("sha256", sha256s)}

    def consumed_paths(self, paths: Sequence[str]) -> set[str]:
        """Of the given segment paths (relative to the lake root), those recorded as consumed."""
        return {s.path for s in self._consumed_where("path", paths)}

    def segments_of_hour(self, dataset_id: int, hour: str) -> list[ConsumedSegment]:
        """Segments consumed for one event hour (``'2022-01-07T05'``), in the order they were consumed."""
        rows = self.db.execute(
            f"SELECT {SEGMENT_COLUMNS} FROM segments WHERE dataset_id = ? AND hour = ? ORDER BY segment_id",
            (dataset_id, hour),
        )
        return list(starmap(ConsumedSegment, rows))

    def consumed_segment_count(self) -> int:
        """Landing segments consumed by any commit, over every dataset."""
        return int(self.db.execute("SELECT count(*) FROM segments").fetchone()[0])

    def hours_consumed(self, dataset_id: int, hours: Sequence[str]) -> set[str]:
        """Of the given event hours, those for which at least one segment was consumed."""
        rows = self.db.execute(
            "SELECT DISTINCT hour FROM segments WHERE dataset_id = ? AND hour IN (SELECT value FROM json_each(?))",
            (dataset_id, json.dumps(list(hours))),
        )
        return {row[0] for row in rows}

    def _consumed_where(self, column: str, values: Sequence[str]) -> list[ConsumedSegment]:
        """Consumed segments whose `column` (sha256 or path) is one of `values`, in one query."""
        rows = self.db.execute(
            f"SELECT {SEGMENT_COLUMNS} FROM segments WHERE {column} IN (SELECT value FROM json_each(?))",
            (json.dumps(list(values)),),
        )
        return list(starmap(ConsumedSegment, rows))

    def commit(self, commit: Commit) -> int:
        """Apply `commit` atomically as a new snapshot and return its id (one attempt).

        Raises CommitConflict when a file to replace is no longer live, the replaced partitions
        hold files the writer did not read, or a segment was consumed already; CatalogLocked when
        the write lock stays taken past the timeout. Retrying is the caller's policy (the lake's
        build steps retry both, on one schedule: `ticklake.build.commit`).
        """
        with self.transaction() as db:
            return apply_commit(db, commit, _now())


def _statements(script: str) -> Iterator[str]:
    """Complete statements of a script, found with SQLite's own parser (`sqlite3.complete_statement`)."""
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            yield pending
            pending = ""
    if any(line.strip() and not line.strip().startswith("--") for line in pending.splitlines()):
        raise CatalogCorrupt(f"incomplete SQL statement in migration: {pending.strip()[:80]}")


__all__ = ["FILE_COLUMNS", "LIVE", "SEGMENT_COLUMNS", "Catalog"]
