"""ticklake itself: hourly JSONL through `ticklake ingest` into the landing buffer, then `compact_all`;
SQL through the catalog."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from bench.queries import Query
from bench.systems.base import LoadReport, Plan, System
from ticklake.build.compaction import compact_all
from ticklake.config import LakeConfig
from ticklake.landing.ingest import ingest_files
from ticklake.query.connection import LakeConnection


class TicklakeSystem(System):
    """The lake under test; the hourly files are ingested (validated once), compaction does the rest."""

    name = "ticklake"
    description = "ticklake: ingest -> hourly compaction (sorted zstd Parquet, SQLite catalog), catalog-pruned DuckDB"

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.config = LakeConfig(root=workdir / "lake")
        self.lake: LakeConnection | None = None

    def load(self, files: list[Path]) -> LoadReport:
        """`ticklake ingest` the hourly files (validated segments with their parsed rows), then compact every hour."""
        started = time.perf_counter()
        ingest_files(self.config, files)
        landed = time.perf_counter() - started
        started = time.perf_counter()
        results = compact_all(self.config)
        compacted = time.perf_counter() - started
        stored = sum(r.stored for r in results)
        return LoadReport(stored, landed, compacted, notes=f"ingest {landed:.2f}s, compaction {compacted:.2f}s")

    def open(self) -> None:
        """Open the catalog (read-only) and a DuckDB connection."""
        self.lake = LakeConnection(self.config)

    def _lake(self) -> LakeConnection:
        if self.lake is None:
            raise RuntimeError("open() first")
        return self.lake

    def query(self, q: Query) -> list[tuple[Any, ...]]:
        """The query through the catalog-pruned SQL path, as `ticklake sql` runs it."""
        return self._lake().sql(q.sql).fetchall()

    def plan(self, q: Query) -> Plan:
        """Catalog planning time (parse, prune, rewrite) and the files handed to DuckDB."""
        lake = self._lake()
        started = time.perf_counter()
        plan = lake.plan(q.sql)
        seconds = time.perf_counter() - started
        return Plan(seconds, sum(len(r.plan.files) for r in plan.refs))

    def storage(self) -> tuple[int, int]:
        """Live data files of the current snapshot."""
        with LakeConnection(self.config) as lake:
            totals = lake.catalog.live_totals()
        return totals.bytes, totals.files

    def close(self) -> None:
        """Close the lake connection."""
        if self.lake is not None:
            self.lake.close()
            self.lake = None
