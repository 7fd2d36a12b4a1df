"""What every system under test provides, and helpers the DuckDB-based ones share."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from bench.queries import Query
from ticklake.query.duck import connect_duckdb
from ticklake.query.quoting import literal_list

# The JSONL columns as DuckDB reads them (explicit, so every system sees the same types).
JSON_COLUMNS = {
    "timestamp": "TIMESTAMPTZ",
    "contract_id": "BIGINT",
    "tick_type": "VARCHAR",
    "price": "DOUBLE",
    "size": "DOUBLE",
    "bid_price": "DOUBLE",
    "ask_price": "DOUBLE",
    "bid_size": "DOUBLE",
    "ask_size": "DOUBLE",
    "symbol": "VARCHAR",
    "exchange": "VARCHAR",
    "conditions": "VARCHAR[]",
}


@dataclass
class LoadReport:
    """How a system loaded the workload: one write per hourly file, then its own compaction."""

    ticks: int
    load_seconds: float
    compact_seconds: float = 0.0
    notes: str = ""

    @property
    def ticks_per_second(self) -> float:
        """End to end, JSONL to queryable table, compaction included."""
        return self.ticks / (self.load_seconds + self.compact_seconds)


@dataclass
class Plan:
    """What a system did before reading data: seconds spent choosing files, and files opened."""

    seconds: float
    files: int | None
    extra: dict[str, Any] = field(default_factory=dict)


class System:
    """A system under test, living in its own folder `workdir`."""

    name = "system"
    description = ""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir

    def load(self, files: list[Path]) -> LoadReport:
        """Load the hourly JSONL files into an empty store, one write per file, then compact."""
        raise NotImplementedError

    def open(self) -> None:
        """Connect to (attach) the loaded store; called after `load` or in a fresh process."""
        raise NotImplementedError

    def query(self, q: Query) -> list[tuple[Any, ...]]:
        """Run `q` and return all rows."""
        raise NotImplementedError

    def plan(self, q: Query) -> Plan:
        """Planning time and files opened for `q` (after `open`)."""
        raise NotImplementedError

    def storage(self) -> tuple[int, int]:
        """Bytes on disk of live data files, and how many there are."""
        raise NotImplementedError

    def close(self) -> None:
        """Release connections."""


def read_jsonl(con: duckdb.DuckDBPyConnection, path: Path) -> pa.Table:
    """One hourly JSONL file as Arrow, parsed by DuckDB with the benchmark's explicit columns."""
    columns = "{" + ", ".join(f"'{k}': '{v}'" for k, v in JSON_COLUMNS.items()) + "}"
    sql = f"SELECT * FROM read_json({literal_list([str(path)])}, format = 'newline_delimited', columns = {columns})"
    return con.execute(sql).to_arrow_table()


def files_read(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    """Parquet files DuckDB actually read for `sql` (``EXPLAIN ANALYZE``'s "Total Files Read")."""
    rows = con.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql).fetchall()
    total = 0

    def walk(node: Any) -> None:
        nonlocal total
        if isinstance(node, dict):
            extra = node.get("extra_info", {})
            if isinstance(extra, dict) and "Total Files Read" in extra:
                total += int(extra["Total Files Read"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads(rows[0][1]))
    return total


def timed(fn: Any, *args: Any) -> tuple[Any, float]:
    """Result and wall seconds of ``fn(*args)``."""
    started = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - started


def duck() -> duckdb.DuckDBPyConnection:
    """A DuckDB connection configured the project's way (UTC, no implicit downloads)."""
    return connect_duckdb()


def folder_size(folder: Path, suffix: str = ".parquet") -> tuple[int, int]:
    """Bytes and count of files with `suffix` below `folder`."""
    files = [p for p in folder.rglob(f"*{suffix}") if p.is_file()]
    return sum(p.stat().st_size for p in files), len(files)
