"""Apache Iceberg through pyiceberg: SQLite SqlCatalog, hour-partitioned table, pyiceberg plans, DuckDB executes.

DuckDB's own iceberg extension cannot be downloaded here, so the peer is the pure-Python stack:
pyiceberg writes (one ``append`` snapshot per hourly file) and plans (partition + manifest-stats
pruning in ``plan_files``), and DuckDB reads exactly the planned Parquet files.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
from pyiceberg import __version__ as pyiceberg_version
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.expressions import (
    AlwaysTrue,
    And,
    BooleanExpression,
    EqualTo,
    GreaterThanOrEqual,
    In,
    LessThan,
)
from pyiceberg.io import PY_IO_IMPL
from pyiceberg.io.pyarrow import PyArrowFileIO
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.transforms import HourTransform
from pyiceberg.types import DoubleType, IcebergType, ListType, LongType, NestedField, StringType, TimestamptzType

from bench.queries import Query
from bench.systems import base
from ticklake.query.quoting import literal_list, quote_identifier

TABLE = "bench.ticks"
# DuckDB column types of the workload (base.JSON_COLUMNS) as Iceberg types; timestamptz is µs UTC.
ICEBERG_TYPES: dict[str, IcebergType] = {
    "TIMESTAMPTZ": TimestamptzType(),
    "BIGINT": LongType(),
    "VARCHAR": StringType(),
    "DOUBLE": DoubleType(),
}


def iceberg_schema() -> Schema:
    """The Iceberg schema of base.JSON_COLUMNS, spelled out so field ids (and the partition source) are fixed."""
    fields: list[NestedField] = []
    next_id = len(base.JSON_COLUMNS) + 1  # ids after the top-level ones go to list elements
    for field_id, (name, duck_type) in enumerate(base.JSON_COLUMNS.items(), start=1):
        if duck_type.endswith("[]"):
            kind: IcebergType = ListType(next_id, ICEBERG_TYPES[duck_type[:-2]], element_required=False)
            next_id += 1
        else:
            kind = ICEBERG_TYPES[duck_type]
        fields.append(NestedField(field_id, name, kind, required=False))
    return Schema(*fields)


def predicate(kind: Callable[..., BooleanExpression], column: str, value: object) -> BooleanExpression:
    """``kind(column, value)``: pyiceberg's predicates take (term, literal) positionally, but mypy sees
    only the pydantic fields (type, term, value) as their constructor, so they are called through here."""
    return kind(column, value)


def row_filter(params: dict[str, object]) -> BooleanExpression:
    """The Iceberg predicate a query's parameters imply: time range, one contract, or Q4's two.

    Only what pyiceberg can prune on (partition values, column min/max); DuckDB applies the full SQL.
    """
    parts: list[BooleanExpression] = []
    if "from" in params:
        # pyiceberg parses ISO 8601 with a "T"; the queries' bounds are "YYYY-MM-DD HH:MM:SS+00:00".
        parts.append(predicate(GreaterThanOrEqual, "timestamp", dt.datetime.fromisoformat(str(params["from"])).isoformat()))
    if "to" in params:
        parts.append(predicate(LessThan, "timestamp", dt.datetime.fromisoformat(str(params["to"])).isoformat()))
    if "contract" in params:
        parts.append(predicate(EqualTo, "contract_id", int(str(params["contract"]))))
    if "a" in params and "b" in params:
        parts.append(predicate(In, "contract_id", {int(str(params["a"])), int(str(params["b"]))}))
    expr: BooleanExpression = AlwaysTrue()
    for part in parts:
        expr = And(expr, part)
    return expr


def local_path(uri: str) -> str:
    """A data file's location as DuckDB wants it (pyiceberg records ``file://`` URIs)."""
    return uri.removeprefix("file://")


class IcebergSystem(base.System):
    """Iceberg table in a SQLite SqlCatalog; pyiceberg planning + DuckDB execution over the planned files."""

    name = "iceberg"
    description = (
        f"Apache Iceberg via pyiceberg {pyiceberg_version}: SqlCatalog on SQLite, table partitioned by hour(timestamp), "
        "one append snapshot per hourly file, no compaction; pyiceberg planning (partition + manifest-stats pruning) "
        "+ DuckDB execution over read_parquet of the planned files"
    )

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.catalog: SqlCatalog | None = None
        self.table: Table | None = None
        self.con: duckdb.DuckDBPyConnection | None = None
        self.open_seconds = 0.0

    def _catalog(self) -> SqlCatalog:
        """The SQLite-backed catalog in `workdir` (creates its tables on first use).

        The FileIO is named, and imported with this module, because pyiceberg otherwise imports it
        lazily inside the first ``load_table`` (~0.5 s of imports): the open time should measure
        catalog and metadata work, not module imports.
        """
        return SqlCatalog(
            "bench",
            uri=f"sqlite:///{self.workdir / 'catalog.sqlite'}",
            warehouse=f"file://{self.workdir / 'warehouse'}",
            **{PY_IO_IMPL: f"{PyArrowFileIO.__module__}.{PyArrowFileIO.__name__}"},
        )

    def load(self, files: list[Path]) -> base.LoadReport:
        """One ``append`` (one snapshot) per hourly file, as a recorder writing hourly would.

        Partitioned by hour(timestamp): pyiceberg 0.12 writes hour partitions correctly (one
        file per hour, partition value = hours since epoch). No sort order is declared: pyiceberg
        records one but does not sort on write (files keep arrival order, ``sort_order_id`` null).
        """
        self.workdir.mkdir(parents=True, exist_ok=True)
        catalog = self._catalog()
        catalog.create_namespace_if_not_exists("bench")
        spec = PartitionSpec(PartitionField(source_id=1, field_id=1000, transform=HourTransform(), name="timestamp_hour"))
        table = catalog.create_table(TABLE, schema=iceberg_schema(), partition_spec=spec)
        con = base.duck()
        ticks = 0
        started = time.perf_counter()
        for path in files:
            arrow = base.read_jsonl(con, path)
            table.append(arrow)
            ticks += arrow.num_rows
        load_seconds = time.perf_counter() - started
        con.close()
        catalog.engine.dispose()
        # pyiceberg 0.12 has expire_snapshots only: no rewrite_data_files / compaction.
        return base.LoadReport(ticks, load_seconds, 0.0, f"no compaction in pyiceberg {pyiceberg_version}")

    def open(self) -> None:
        """Load catalog and table metadata (timed as the open/attach cost), and a DuckDB connection."""
        started = time.perf_counter()
        self.catalog = self._catalog()
        self.table = self.catalog.load_table(TABLE)
        self.open_seconds = time.perf_counter() - started
        self.con = base.duck()

    def _planned_files(self, q: Query) -> list[str]:
        """Data files pyiceberg keeps for `q` after partition and manifest-stats pruning."""
        assert self.table is not None, "open() first"
        return [local_path(task.file.file_path) for task in self.table.scan(row_filter=row_filter(q.params)).plan_files()]

    def query(self, q: Query) -> list[tuple[Any, ...]]:
        """Plan with pyiceberg, then run q.sql in DuckDB with ``ticks`` as a view over the planned files."""
        assert self.con is not None, "open() first"
        files = self._planned_files(q)
        if files:
            # hive_partitioning off: pyiceberg's "timestamp_hour=..." folders must not become a column.
            source = f"SELECT * FROM read_parquet({literal_list(files)}, hive_partitioning = false)"
        else:
            columns = ", ".join(f"CAST(NULL AS {kind}) AS {quote_identifier(name)}" for name, kind in base.JSON_COLUMNS.items())
            source = f"SELECT {columns} WHERE false"
        self.con.execute(f"CREATE OR REPLACE TEMP VIEW ticks AS {source}")
        return self.con.execute(q.sql).fetchall()

    def plan(self, q: Query) -> base.Plan:
        """pyiceberg planning time (scan + plan_files) and how many files it keeps."""
        files, seconds = base.timed(self._planned_files, q)
        return base.Plan(seconds, len(files))

    def storage(self) -> tuple[int, int]:
        """Bytes and count of the current snapshot's data files, as the manifests record them."""
        assert self.table is not None, "open() first"
        data = [task.file for task in self.table.scan().plan_files()]
        return sum(f.file_size_in_bytes for f in data), len(data)

    def close(self) -> None:
        """Close DuckDB and the catalog's SQLAlchemy engine."""
        if self.con is not None:
            self.con.close()
            self.con = None
        if self.catalog is not None:
            self.catalog.engine.dispose()
            self.catalog = None
        self.table = None
