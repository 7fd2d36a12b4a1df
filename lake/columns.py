"""Column tables: each dataset declares its columns once, and its Arrow, DuckDB and landing schemas
are derived from that one table (as pyiceberg derives Arrow from one schema).

>>> cols = (Column("ts", TIMESTAMP, json="required"), Column("n", pa.float64(), json="price"), *PATH_COLUMNS)
>>> sql_columns(cols)
{'ts': 'TIMESTAMP WITH TIME ZONE', 'n': 'DOUBLE', 'date': 'DATE', 'hour': 'INTEGER'}
>>> arrow_schema(c for c in cols if c.place == "file").names
['ts', 'n']
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import pyarrow as pa

__all__ = [
    "PATH_COLUMNS",
    "TIMESTAMP",
    "Column",
    "arrow_schema",
    "duckdb_type",
    "sql_columns",
]

# How a landing JSON line carries a field, checked by `ticklake.ticks.validate`: "required" (present,
# with a rule of its own), "price" (a finite number), "size" (a finite number >= 0), "text" (a string),
# "text_list" (a list of strings). None: never read from JSON (e.g. `extra`, or a path column).
JsonRule = Literal["required", "price", "size", "text", "text_list"]
# Where a column's values live: "file" (a column of each Parquet file), "partition" (in every row,
# but written as a Hive partition key instead of a file column), "path" (only in the Hive path,
# derived from the time column: not a column of a row either).
Place = Literal["file", "partition", "path"]

TIMESTAMP = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class Column:
    """One column of a dataset: name, Arrow type, how landing JSON carries it, and where it is stored."""

    name: str
    type: pa.DataType
    json: JsonRule | None = None
    place: Place = "file"

    @property
    def sql_type(self) -> str:
        """The column's DuckDB type."""
        return duckdb_type(self.type)


# The Hive path columns every dataset of the lake is partitioned by (`date=YYYY-MM-DD/hour=HH`).
PATH_COLUMNS = (Column("date", pa.date32(), place="path"), Column("hour", pa.int32(), place="path"))

_DUCKDB_TYPES: dict[pa.DataType, str] = {
    TIMESTAMP: "TIMESTAMP WITH TIME ZONE",
    pa.int64(): "BIGINT",
    pa.int32(): "INTEGER",
    pa.float64(): "DOUBLE",
    pa.string(): "VARCHAR",
    pa.date32(): "DATE",
}


def duckdb_type(arrow_type: pa.DataType) -> str:
    """The DuckDB type DuckDB reads an Arrow (Parquet) column of `arrow_type` as.

    >>> duckdb_type(pa.timestamp("us", tz="UTC")), duckdb_type(pa.int64()), duckdb_type(pa.int32())
    ('TIMESTAMP WITH TIME ZONE', 'BIGINT', 'INTEGER')
    >>> duckdb_type(pa.float64()), duckdb_type(pa.string()), duckdb_type(pa.date32())
    ('DOUBLE', 'VARCHAR', 'DATE')
    >>> duckdb_type(pa.list_(pa.string()))
    'VARCHAR[]'
    >>> duckdb_type(pa.timestamp("ns"))
    Traceback (most recent call last):
    ...
    ValueError: no DuckDB type declared for Arrow type timestamp[ns]
    """
    if pa.types.is_list(arrow_type):
        return duckdb_type(arrow_type.value_type) + "[]"
    try:
        return _DUCKDB_TYPES[arrow_type]
    except KeyError:
        raise ValueError(f"no DuckDB type declared for Arrow type {arrow_type}") from None


def arrow_schema(columns: Iterable[Column]) -> pa.Schema:
    """The Arrow schema of `columns`, in order."""
    return pa.schema([pa.field(c.name, c.type) for c in columns])


def sql_columns(columns: Iterable[Column]) -> dict[str, str]:
    """Column name -> DuckDB type of `columns`, in order (a dataset's columns as SQL sees them)."""
    return {c.name: c.sql_type for c in columns}
