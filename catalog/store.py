"""The catalog: one SQLite file (WAL) that knows every dataset, snapshot, data file and consumed segment.

Readers never block writers (WAL); writers serialise on ``BEGIN IMMEDIATE`` and validate
what they read before committing (optimistic concurrency, as pyiceberg's SQL catalog does).
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from itertools import starmap
from pathlib import Path
from typing import Any

from ticklake.catalog.connection import CANNOT_OPEN, CatalogConnection, catalog_error, connect, probe, result_code
from ticklake.catalog.errors import CatalogCorrupt, CatalogError
from ticklake.catalog.records import Commit, ConsumedSegment, Dataset, DatasetSpec, LiveFile, LiveTotals, columns
from ticklake.catalog.writes import apply_commit
from ticklake.sql import load_sql, migration_names

LIVE = "added_snapshot <= :snapshot AND (removed_snapshot IS NULL OR removed_snapshot > :snapshot)"
"""SQL condition: a ``files`` row is live in snapshot ``:snapshot`` (added by then, not yet removed)."""

FILE_HOUR = "json_extract(partition_values, '$.date') || 'T' || printf('%02d', json_extract(partition_values, '$.hour'))"
"""SQL expression: the event hour (``'2022-01-07T05'``) of a ``files`` row partitioned by date and hour, else NULL."""

FILE_COLUMNS = columns(LiveFile)
"""Select list of ``files`` that reads a `LiveFile` (bind with ``LiveFile(*row)``)."""

SEGMENT_COLUMNS = columns(ConsumedSegment)
"""Select list of ``segments`` that reads a `ConsumedSegment` (bind with ``ConsumedSegment(*row)``)."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


class Catalog:
    """A connection to a catalog file; create it (and migrate it) on open.

    Every SQLite error of the connection, at open or later (a statement, a row fetched, a
    commit), is raised as the catalog's own naming the file (`ticklake.catalog.connection`).
    """

    def __init__(self, path: str | Path, *, timeout: float = 30.0, read_only: bool = False, shared: bool = False) -> None:
        """`shared`: the connection may be used from several threads, one at a time (the caller locks)."""
        self.path = Path(path)
        self.read_only = read_only
        try:
            size = self.path.stat().st_size if self.path.is_file() else None
            if read_only and not self.path.exists():
                raise CatalogCorrupt(f"catalog {self.path}: no such file")
            if size == 0:  # SQLite would take it for an empty database (and a writer would migrate it)
                raise CatalogCorrupt(f"catalog {self.path}: empty file (0 bytes), not a catalog")
            if read_only:
                self.db = self._open_read_only(timeout, shared)
            else:
                self._check_writable()
                if not self.path.exists():
                    self._create(timeout, shared)
                self.db = self._open_read_write(self.path, timeout, shared)
        except OSError as e:
            raise CatalogError(f"catalog {self.path}: {e.strerror or e}") from e
        try:
            if read_only:
                self._check_version()
            else:
                self._migrate()
        except BaseException:
            self.db.close()
            raise

    def close(self) -> None:
        """Close the connection."""
        self.db.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- opening ----------------------------------------------------------------------------------

    def _open_read_write(self, target: Path, timeout: float, shared: bool, *, wal: bool = True) -> CatalogConnection:
        db = connect(target, self.path, timeout=timeout, shared=shared)
        try:
            if wal:
                db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA foreign_keys=ON")
        except BaseException:
            db.close()
            raise
        return db

    def _open_read_only(self, timeout: float, shared: bool) -> CatalogConnection:
        """A read-only connection, also in a folder this process cannot write.

        SQLite reads a WAL database through its ``-shm`` file, which it must create when no
        writer has it open; in a read-only folder (a read-only mount, a lake owned by someone
        else) it cannot, and ``mode=ro`` fails. Then, and only when no write-ahead log holds
        commits the file lacks, the file is opened ``immutable``: no ``-shm``, no locks, the
        file read as it is. That is exact for a catalog no writer has open (a writer keeps
        ``-shm`` and ``-wal`` beside it, and then ``mode=ro`` works); immutable ignores the
        log, so with commits waiting in it this refuses instead of reading an older state.
        """
        uri = self.path.absolute().as_uri()
        db = connect(f"{uri}?mode=ro", self.path, timeout=timeout, shared=shared, uri=True)
        problem = probe(db)
        if problem is None:
            return db
        db.close()
        if result_code(problem) not in CANNOT_OPEN:
            raise catalog_error(problem, self.path) from problem
        wal = self.path.with_name(self.path.name + "-wal")
        if wal.exists() and wal.stat().st_size > 0:
            raise CatalogError(
                f"catalog {self.path}: read-only folder, and its write-ahead log {wal.name} holds commits"
                " not yet in the catalog; open it once where it can be written"
            ) from problem
        return connect(f"{uri}?mode=ro&immutable=1", self.path, timeout=timeout, shared=shared, uri=True)

    def _check_writable(self) -> None:
        """Refuse, naming what is read-only, before SQLite fails later with a vaguer error."""
        folder = self.path.parent
        for where in (self.path, folder):
            if not where.exists():
                continue
            if os.statvfs(where).f_flag & os.ST_RDONLY:
                raise CatalogError(f"catalog {self.path}: read-only ({folder} is on a read-only file system)")
            if not os.access(where, os.W_OK):
                what = "folder" if where == folder else "file"
                raise CatalogError(f"catalog {self.path}: read-only ({what} {where} is not writable)")

    def _create(self, timeout: float, shared: bool) -> None:
        """Create and migrate a new catalog under a temporary name, then link it into place.

        A creation that fails (a full disk, an unwritable folder) leaves no catalog.sqlite
        behind: an empty or half-migrated file would pass for a catalog. Of two processes
        creating it at once, one links first and the other opens the winner's file. The
        temporary file uses a rollback journal, so everything is in the one file that is
        linked; opening it read-write then switches it to WAL.
        """
        tmp = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = self._open_read_write(tmp, timeout, shared, wal=False)
            try:
                self._migrate()
            finally:
                self.db.close()
            _link_into_place(tmp, self.path)
        except OSError as e:
            raise CatalogError(f"catalog {self.path}: cannot create: {e.strerror or e}") from e
        finally:
            for leftover in (tmp, *(tmp.with_name(tmp.name + end) for end in ("-journal", "-wal", "-shm"))):
                with suppress(OSError):
                    leftover.unlink(missing_ok=True)

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
        found = self.db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'").fetchone()
        if found is None:
            raise CatalogCorrupt(f"catalog {self.path}: not a ticklake catalog (no such table: schema_migrations)")
        (version,) = self.db.execute("SELECT max(version) FROM schema_migrations").fetchone()
        if version is None or version > len(migration_names()):
            raise CatalogCorrupt(f"catalog {self.path}: unsupported schema version {version}")

    def schema_version(self) -> int:
        """The highest migration applied to this file."""
        return int(self.db.execute("SELECT max(version) FROM schema_migrations").fetchone()[0])

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction taken up front (``BEGIN IMMEDIATE``), rolled back on any error.

        CatalogLocked when another writer holds the lock past the timeout; a failed COMMIT
        (a full disk) is rolled back too, so the catalog stays as it was.
        """
        if self.read_only:
            raise CatalogError(f"catalog {self.path}: opened read-only; cannot write")
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
            self.db.execute("COMMIT")
        except BaseException:
            if self.db.in_transaction:
                # SQLite may have rolled back already (after SQLITE_FULL, say); the first error says more.
                with suppress(CatalogError):
                    self.db.execute("ROLLBACK")
            raise

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

    def file_hours(self, file_id: int) -> dict[str, int]:
        """Rows per event hour of a file that spans hours (an archived day); empty for an hourly file."""
        rows = self.db.execute("SELECT hour, rows FROM file_hours WHERE file_id = ?", (file_id,))
        return {h: int(n) for h, n in rows}

    def footers(self, file_ids: Sequence[int]) -> dict[int, bytes]:
        """The Parquet footers the catalog holds of these files (cold objects archived since version 6)."""
        if not file_ids or self.db.execute("SELECT 1 FROM sqlite_master WHERE name = 'file_footers'").fetchone() is None:
            return {}  # a reader's copy of an older catalog: objects are then read whole
        rows = self.db.execute(
            "SELECT file_id, footer FROM file_footers WHERE file_id IN (SELECT value FROM json_each(?))",
            (json.dumps(sorted(file_ids)),),
        )
        return {int(i): bytes(b) for i, b in rows}

    def object_buckets(self) -> list[str]:
        """Buckets that hold files of this catalog (paths ``s3://bucket/...``), live or not."""
        rows = self.db.execute(
            "SELECT DISTINCT substr(path, 6, instr(substr(path, 6), '/') - 1) FROM files WHERE path LIKE 's3://%'"
        )
        return sorted(r[0] for r in rows)

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

    def snapshot_at(self, moment: datetime) -> int | None:
        """The newest snapshot committed at or before `moment` (aware), or None when none is that old.

        ``committed_at`` is ISO text in UTC with microseconds, as `_now` writes it, so text order is time order.
        """
        stamp = moment.astimezone(UTC).isoformat(timespec="microseconds")
        row = self.db.execute("SELECT max(snapshot_id) FROM snapshots WHERE committed_at <= ?", (stamp,)).fetchone()
        return None if row[0] is None else int(row[0])

    def committed_at(self, snapshot: int) -> str | None:
        """When `snapshot` was committed (ISO text, UTC), or None when there is no such snapshot."""
        row = self.db.execute("SELECT committed_at FROM snapshots WHERE snapshot_id = ?", (snapshot,)).fetchone()
        return None if row is None else str(row[0])

    def snapshot_changes(self) -> list[tuple[Any, ...]]:
        """Per snapshot, oldest first, what its commit changed: ``(snapshot_id, committed_at, operation,
        dataset, hour, files_added, files_removed, rows_added, rows_removed, expired_at)``; one pass over ``files``."""
        return self.db.execute(
            "WITH added AS (SELECT added_snapshot AS snapshot_id, count(*) AS n, sum(rows) AS r FROM files GROUP BY 1),"
            " removed AS (SELECT removed_snapshot AS snapshot_id, count(*) AS n, sum(rows) AS r FROM files"
            "  WHERE removed_snapshot IS NOT NULL GROUP BY 1)"
            " SELECT s.snapshot_id, s.committed_at, s.operation, d.name, json_extract(s.summary, '$.hour'),"
            "  coalesce(a.n, 0), coalesce(r.n, 0), coalesce(a.r, 0), coalesce(r.r, 0), s.expired_at"
            " FROM snapshots s LEFT JOIN dataset_snapshots ds ON ds.snapshot_id = s.snapshot_id"
            " LEFT JOIN datasets d ON d.dataset_id = ds.dataset_id"
            " LEFT JOIN added a ON a.snapshot_id = s.snapshot_id LEFT JOIN removed r ON r.snapshot_id = s.snapshot_id"
            " ORDER BY s.snapshot_id"
        ).fetchall()

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

    def consumed(self, paths: Sequence[str]) -> dict[str, ConsumedSegment]:
        """Of the given segment paths (relative to the lake root), those already consumed, with their record.

        A segment is known by its path (its writer and sequence in its hour folder); the recorded
        content hash tells a second delivery of it from a changed segment under the same name.
        """
        return {s.path: s for s in self._consumed_where("path", paths)}

    def consumed_paths(self, paths: Sequence[str]) -> set[str]:
        """Of the given segment paths (relative to the lake root), those recorded as consumed."""
        return set(self.consumed(paths))

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
        """Consumed segments whose `column` (path or sha256) is one of `values`, in one query."""
        rows = self.db.execute(
            f"SELECT {SEGMENT_COLUMNS} FROM segments WHERE {column} IN (SELECT value FROM json_each(?))",
            (json.dumps(list(values)),),
        )
        return list(starmap(ConsumedSegment, rows))

    def commit(self, commit: Commit, *, before_end: Callable[[], None] | None = None) -> int:
        """Apply `commit` atomically as a new snapshot and return its id (one attempt).

        Raises CommitConflict when a file to replace is no longer live, the replaced partitions
        hold files the writer did not read, or a segment (by path) was consumed already;
        CatalogLocked when the write lock stays taken past the timeout. Retrying is the caller's
        policy (the lake's build steps retry both, on one schedule: `ticklake.build.commit`).
        `before_end` runs inside the transaction, after the writes and before COMMIT (fault tests).
        """
        with self.transaction() as db:
            snapshot = apply_commit(db, commit, _now())
            if before_end is not None:
                before_end()
            return snapshot


def _link_into_place(tmp: Path, path: Path) -> None:
    """Make the complete catalog `tmp` visible as `path` unless a catalog is there already, durably."""
    try:
        os.link(tmp, path)  # never replaces: a catalog another process created meanwhile wins
    except FileExistsError:
        return
    except OSError as e:
        if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
        if path.exists():  # a file system without hard links: a rename only where there is nothing yet
            return
        os.rename(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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


__all__ = ["FILE_COLUMNS", "FILE_HOUR", "LIVE", "SEGMENT_COLUMNS", "Catalog"]
