"""DuckLake as a system under test: the same DuckDB engine, but DuckLake owns files and metadata.

DuckLake (format 1.0, extension of DuckDB 1.5.5) keeps its catalog in a SQLite file here and writes
Parquet below ``data/``. Both extensions are loaded from their PyPI wheels, since nothing can be
downloaded at run time. Layout choices, and why:

* partitioned by ``year, month, day, hour(timestamp)`` — DuckLake's transforms are calendar parts
  (``hour`` is the hour of the day), so the four together give one folder per UTC date and hour,
  which is what the project's own lake does. Connections run in UTC, so the parts are UTC parts.
* ``SET SORTED BY (contract_id, timestamp)`` — DuckLake sorts on insert and when compacting, so
  per-contract queries can skip row groups inside a file.
* data inlining off (``DATA_INLINING_ROW_LIMIT 0``) — every write lands in Parquet, as in the
  other systems; inlined rows would sit in SQLite and hide the file costs being measured.

File pruning happens inside DuckLake's scan, from per-file min/max statistics in the catalog; that
catalog query runs when the scan starts, not while planning. ``plan`` therefore reports the
``EXPLAIN`` wall time as asked, plus the catalog queries DuckLake logged during a real run.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import duckdb

from bench.queries import Query
from bench.systems.base import JSON_COLUMNS, LoadReport, Plan, System, duck, files_read, read_jsonl
from ticklake.query.duck import load_extension
from ticklake.query.quoting import quote_identifier, quote_literal

LAKE = "lake"
PARTITIONS = "year(timestamp), month(timestamp), day(timestamp), hour(timestamp)"
SORT = "contract_id, timestamp"
ELAPSED = re.compile(r"'elapsed_ms': (\d+)")


class DuckLakeSystem(System):
    """Ticks in a DuckLake table: one snapshot per hourly file, then DuckLake's own compaction."""

    name = "ducklake"
    description = (
        "DuckLake 1.5.5, SQLite catalog, DuckDB engine; partitioned by year/month/day/hour(timestamp), "
        "sorted by (contract_id, timestamp), no data inlining"
    )

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self._con: duckdb.DuckDBPyConnection | None = None

    @property
    def catalog(self) -> Path:
        """The SQLite file holding DuckLake's metadata (snapshots, files, statistics)."""
        return self.workdir / "catalog.sqlite"

    def _connect(self, *, read_only: bool) -> duckdb.DuckDBPyConnection:
        """A project-configured DuckDB connection with the lake attached as ``lake``.

        ducklake needs sqlite_scanner for a SQLite catalog; both come from their wheels because
        ``INSTALL`` would try the network. Readers attach read-only so a query can never commit.
        """
        con = duck()
        load_extension(con, "sqlite_scanner")
        load_extension(con, "ducklake")
        target = quote_literal(f"ducklake:sqlite:{self.catalog}")
        if read_only:
            con.execute(f"ATTACH {target} AS {LAKE} (READ_ONLY)")
        else:
            data = quote_literal(f"{self.workdir / 'data'}/")
            con.execute(f"ATTACH {target} AS {LAKE} (DATA_PATH {data}, DATA_INLINING_ROW_LIMIT 0)")
        return con

    def load(self, files: list[Path]) -> LoadReport:
        """One INSERT transaction (one DuckLake snapshot) per hourly file, then merge and clean up."""
        if self.catalog.exists():
            raise FileExistsError(f"{self.catalog} exists: load wants an empty workdir")
        self.workdir.mkdir(parents=True, exist_ok=True)
        con = self._connect(read_only=False)
        try:
            columns = ", ".join(f"{quote_identifier(k)} {v}" for k, v in JSON_COLUMNS.items())
            con.execute(f"CREATE TABLE {LAKE}.ticks ({columns})")
            con.execute(f"ALTER TABLE {LAKE}.ticks SET PARTITIONED BY ({PARTITIONS})")
            con.execute(f"ALTER TABLE {LAKE}.ticks SET SORTED BY ({SORT})")
            ticks = 0
            started = time.perf_counter()
            for path in files:
                batch = read_jsonl(con, path)
                con.register("batch", batch)
                con.execute("BEGIN TRANSACTION")
                con.execute(f"INSERT INTO {LAKE}.ticks BY NAME SELECT * FROM batch")
                con.execute("COMMIT")
                con.unregister("batch")
                ticks += batch.num_rows
            load_seconds = time.perf_counter() - started
            before = self._live_files(con)[1]
            started = time.perf_counter()
            con.execute(f"CALL ducklake_merge_adjacent_files({quote_literal(LAKE)})").fetchall()
            # Merged-away files are only scheduled for deletion (readers may still scan them);
            # nobody else reads this lake, so delete them now and measure what is really live.
            removed = con.execute(f"CALL ducklake_cleanup_old_files({quote_literal(LAKE)}, cleanup_all => true)").fetchall()
            compact_seconds = time.perf_counter() - started
            after = self._live_files(con)[1]
            snapshots = con.execute(f"SELECT count(*) FROM {LAKE}.snapshots()").fetchone()
        finally:
            con.close()
        notes = (
            f"{snapshots[0] if snapshots else '?'} snapshots; merge_adjacent_files: {before} -> {after} data files, "
            f"cleanup_old_files deleted {len(removed)}; rows sorted by ({SORT}) on insert"
        )
        return LoadReport(ticks, load_seconds, compact_seconds, notes)

    def open(self) -> None:
        """Attach the lake read-only and make it the default catalog, so ``ticks`` is the lake table."""
        self.close()
        self._con = self._connect(read_only=True)
        self._con.execute(f"USE {LAKE}")

    def _open_con(self) -> duckdb.DuckDBPyConnection:
        """The reader connection, or a clear error if `open` was not called."""
        if self._con is None:
            raise RuntimeError("DuckLakeSystem.open() not called")
        return self._con

    def query(self, q: Query) -> list[tuple[Any, ...]]:
        """All rows of `q`, with DuckLake resolving files from the latest snapshot."""
        return self._open_con().execute(q.sql).fetchall()

    def plan(self, q: Query) -> Plan:
        """``EXPLAIN`` wall time, files DuckDB read, and DuckLake's catalog work during a real run.

        ``EXPLAIN`` only reads the snapshot and table statistics; DuckLake's file list (with the
        min/max pruning) is queried when the scan starts, so it is reported separately in `extra`
        (``catalog_ms`` has DuckLake's millisecond resolution).
        """
        con = self._open_con()
        started = time.perf_counter()
        con.execute("EXPLAIN " + q.sql).fetchall()
        seconds = time.perf_counter() - started
        con.execute("CALL truncate_duckdb_logs()")
        con.execute("CALL enable_logging('DuckLakeMetadata')")
        try:
            files = files_read(con, q.sql)
            logged = con.execute("SELECT message FROM duckdb_logs() WHERE type = 'DuckLakeMetadata'").fetchall()
        finally:
            con.execute("CALL disable_logging()")
            con.execute("CALL truncate_duckdb_logs()")
        catalog_ms = sum(int(m) for (message,) in logged for m in ELAPSED.findall(str(message)))
        return Plan(seconds, files, {"catalog_queries": len(logged), "catalog_ms": catalog_ms})

    @staticmethod
    def _live_files(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
        """Bytes and count of data (and delete) files of the current snapshot, per DuckLake's catalog."""
        row = con.execute(
            "SELECT coalesce(sum(data_file_size_bytes + coalesce(delete_file_size_bytes, 0)), 0)::BIGINT,"
            " count(*) + count(delete_file) FROM ducklake_list_files(?, 'ticks')",
            [LAKE],
        ).fetchone()
        return (int(row[0]), int(row[1])) if row else (0, 0)

    def storage(self) -> tuple[int, int]:
        """Bytes and count of live files: what the current snapshot references, not what is on disk."""
        if self._con is not None:
            return self._live_files(self._con)
        con = self._connect(read_only=True)
        try:
            return self._live_files(con)
        finally:
            con.close()

    def close(self) -> None:
        """Detach by closing the reader connection."""
        if self._con is not None:
            self._con.close()
            self._con = None
