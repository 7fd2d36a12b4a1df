"""The baseline every user tries first: DuckDB COPY into Hive-partitioned Parquet, queried through a glob."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import duckdb

from bench.queries import Query
from bench.systems.base import LoadReport, Plan, System, duck, files_read, folder_size, read_jsonl
from ticklake.query.quoting import quote_literal


class RawDuckDBSystem(System):
    """Plain DuckDB: one COPY ... PARTITION_BY (date, hour) per hourly file; no catalog, no compaction."""

    name = "duckdb-hive"
    description = "DuckDB 1.5.5: COPY to zstd Parquet PARTITION_BY (date, hour); read_parquet glob with hive_partitioning"

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.folder = workdir / "hive"
        self.con: duckdb.DuckDBPyConnection | None = None

    def load(self, files: list[Path]) -> LoadReport:
        """One COPY per hourly file, appending new files to the partition folders."""
        con = duck()
        target = quote_literal(str(self.folder))
        ticks = 0
        started = time.perf_counter()
        for path in files:
            batch = read_jsonl(con, path)
            con.register("batch", batch)
            con.execute(
                "COPY (SELECT *, strftime(timestamp, '%Y-%m-%d') AS date, hour(timestamp) AS hour FROM batch)"
                f" TO {target} (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (date, hour), APPEND,"
                " FILENAME_PATTERN 'part-{uuid}')"
            )
            con.unregister("batch")
            ticks += batch.num_rows
        seconds = time.perf_counter() - started
        con.close()
        return LoadReport(ticks, seconds, 0.0, notes="no compaction step")

    def open(self) -> None:
        """A view over the glob, as a user would write it."""
        self.con = duck()
        glob = quote_literal(str(self.folder / "**" / "*.parquet"))
        self.con.execute(
            "CREATE VIEW ticks AS SELECT * FROM read_parquet("
            f"{glob}, hive_partitioning = true, hive_types = {{'date': DATE, 'hour': INTEGER}})"
        )

    def _con(self) -> duckdb.DuckDBPyConnection:
        if self.con is None:
            raise RuntimeError("open() first")
        return self.con

    def query(self, q: Query) -> list[tuple[Any, ...]]:
        """Run the SQL as written."""
        return self._con().execute(q.sql).fetchall()

    def plan(self, q: Query) -> Plan:
        """Planning is DuckDB's own EXPLAIN (glob expansion and hive filter pushdown); files from EXPLAIN ANALYZE."""
        con = self._con()
        started = time.perf_counter()
        con.execute("EXPLAIN " + q.sql).fetchall()
        seconds = time.perf_counter() - started
        return Plan(seconds, files_read(con, q.sql))

    def storage(self) -> tuple[int, int]:
        """Every Parquet file below the folder (all are live)."""
        return folder_size(self.folder)

    def close(self) -> None:
        """Close DuckDB."""
        if self.con is not None:
            self.con.close()
            self.con = None
