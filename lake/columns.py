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
from dataclasses import dataclass, replace
from typing import Literal

import pyarrow as pa

__all__ = [
    "PATH_COLUMNS",
    "TIMESTAMP",
    "Column",
    "arrow_schema",
    "duckdb_type",
    "numbered",
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
    # Parquet field IDs (an Iceberg table's column identity), given by `numbered`; a list's element has its own.
    field_id: int | None = None
    element_id: int | None = None

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


def numbered(columns: Iterable[Column]) -> tuple[Column, ...]:
    """A dataset's columns with their field IDs: 1, 2, ... for its plain columns in declaration order,
    then its list columns, then one per list element.

    Every Parquet file is written with them, so an engine that reads the lake as an Iceberg table
    (`ticklake.interop.iceberg`) maps columns by ID, never by name. An Iceberg catalog numbers a new
    table's columns itself, breadth-first (pyiceberg, Java) or depth-first (SeaweedFS); with the list
    columns last, both give these IDs.

    >>> [(c.name, c.field_id, c.element_id) for c in numbered((Column("a", pa.list_(pa.string())), Column("b", pa.int64())))]
    [('a', 2, 3), ('b', 1, None)]
    """
    columns = tuple(columns)
    order = [c for c in columns if not pa.types.is_list(c.type)] + [c for c in columns if pa.types.is_list(c.type)]
    ids = {c.name: i for i, c in enumerate(order, start=1)}
    elements = {c.name: len(order) + i for i, c in enumerate((c for c in order if pa.types.is_list(c.type)), start=1)}
    return tuple(replace(c, field_id=ids[c.name], element_id=elements.get(c.name)) for c in columns)


def _field_id(field_id: int | None) -> dict[bytes, bytes] | None:
    return None if field_id is None else {b"PARQUET:field_id": str(field_id).encode()}


def arrow_field(c: Column) -> pa.Field:
    """The Arrow field of a column, with its field IDs as Parquet writes them (``PARQUET:field_id``)."""
    arrow_type = c.type
    if pa.types.is_list(arrow_type) and c.element_id is not None:
        arrow_type = pa.list_(pa.field(arrow_type.value_field.name, arrow_type.value_type, metadata=_field_id(c.element_id)))
    return pa.field(c.name, arrow_type, metadata=_field_id(c.field_id))


def arrow_schema(columns: Iterable[Column]) -> pa.Schema:
    """The Arrow schema of `columns`, in order, with their field IDs."""
    return pa.schema([arrow_field(c) for c in columns])


def sql_columns(columns: Iterable[Column]) -> dict[str, str]:
    """Column name -> DuckDB type of `columns`, in order (a dataset's columns as SQL sees them)."""
    return {c.name: c.sql_type for c in columns}
