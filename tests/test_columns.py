"""The schemas derived from each dataset's one column table agree with each other, and with DuckDB."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ticklake.build.rollups import BARS_SCHEMA
from ticklake.catalog import DatasetSpec
from ticklake.columns import duckdb_type
from ticklake.datasets import BARS_1M, BARS_FILE_SCHEMA, TICKS
from ticklake.demo.synthetic import TICK_SCHEMA
from ticklake.demo.synthetic import TICK_TYPES as SYNTHETIC_TICK_TYPES
from ticklake.landing.jsonl import _raw_schema
from ticklake.query.duck import connect_duckdb
from ticklake.query.kinds import KIND_SQL_TYPES, PREDICATE_KINDS
from ticklake.ticks import (
    FILE_SCHEMA,
    KNOWN_FIELDS,
    NUMBER_FIELDS,
    PRICE_FIELDS,
    ROW_SCHEMA,
    SIZE_FIELDS,
    SQL_COLUMNS,
    TEXT_FIELDS,
    TICK_TYPES,
    TIMESTAMP,
)

PATH = ("date", "hour")


def without(schema: pa.Schema, *names: str) -> pa.Schema:
    return pa.schema([f for f in schema if f.name not in names])


def test_tick_schemas_agree() -> None:
    assert ROW_SCHEMA.names == [c for c in SQL_COLUMNS if c not in PATH]
    assert ROW_SCHEMA.names[:3] == ["timestamp", "contract_id", "tick_type"] and ROW_SCHEMA.names[-1] == "extra"
    assert list(SQL_COLUMNS)[-2:] == list(PATH)
    assert FILE_SCHEMA == without(ROW_SCHEMA, "tick_type")
    assert _raw_schema(TIMESTAMP) == without(ROW_SCHEMA, "extra")
    assert _raw_schema(pa.string()) == without(ROW_SCHEMA, "extra").set(0, pa.field("timestamp", pa.string()))
    assert TICK_SCHEMA == without(ROW_SCHEMA, "extra")
    assert SYNTHETIC_TICK_TYPES is TICK_TYPES
    assert {name: duckdb_type(ROW_SCHEMA.field(name).type) for name in ROW_SCHEMA.names} == {
        c: t for c, t in SQL_COLUMNS.items() if c not in PATH
    }
    assert TICKS.columns == SQL_COLUMNS
    assert TICKS.partition_keys == ("tick_type", *PATH)


def test_tick_field_groups() -> None:
    assert PRICE_FIELDS == ("price", "bid_price", "ask_price")
    assert SIZE_FIELDS == ("size", "bid_size", "ask_size")
    assert NUMBER_FIELDS == ("price", "size", "bid_price", "ask_price", "bid_size", "ask_size")
    assert TEXT_FIELDS == ("symbol", "exchange")
    assert KNOWN_FIELDS == set(_raw_schema(TIMESTAMP).names)
    assert all(ROW_SCHEMA.field(name).type == pa.float64() for name in NUMBER_FIELDS)


def test_bars_schemas_agree() -> None:
    assert BARS_SCHEMA == BARS_FILE_SCHEMA
    assert BARS_FILE_SCHEMA.names == [c for c in BARS_1M.columns if c not in PATH]
    assert {f.name: duckdb_type(f.type) for f in BARS_FILE_SCHEMA} == {
        c: t for c, t in BARS_1M.columns.items() if c not in PATH
    }
    assert BARS_1M.partition_keys == PATH
    assert BARS_1M.time_column in BARS_FILE_SCHEMA.names


def test_predicate_kinds_cover_the_column_types() -> None:
    assert set(PREDICATE_KINDS.values()) == set(KIND_SQL_TYPES)
    assert PREDICATE_KINDS[KIND_SQL_TYPES["integer"]] == "integer"
    for spec in (TICKS, BARS_1M):
        unpruned = {c for c, t in spec.columns.items() if t not in PREDICATE_KINDS}
        assert unpruned <= {"conditions"}, spec.name


@pytest.mark.parametrize(("spec", "schema"), [(TICKS, FILE_SCHEMA), (BARS_1M, BARS_FILE_SCHEMA)], ids=["ticks", "bars_1m"])
def test_duckdb_reads_a_written_file_as_the_sql_columns(tmp_path: Path, spec: DatasetSpec, schema: pa.Schema) -> None:
    values = {"tick_type": "last", "date": "2022-01-07", "hour": "05"}
    folder = tmp_path.joinpath(*(f"{k}={values[k]}" for k in spec.partition_keys))
    folder.mkdir(parents=True)
    pq.write_table(schema.empty_table(), folder / "part.parquet")
    con = connect_duckdb()
    try:
        one_file = "DESCRIBE SELECT * FROM read_parquet(?, hive_partitioning = false)"
        stored = con.execute(one_file, [str(folder / "part.parquet")]).fetchall()
        hive = "{" + ", ".join(f"'{k}': {spec.columns[k]}" for k in spec.partition_keys) + "}"
        sql = f"DESCRIBE SELECT * FROM read_parquet(?, hive_partitioning = true, hive_types = {hive})"
        full = con.execute(sql, [str(tmp_path / "**" / "*.parquet")]).fetchall()
    finally:
        con.close()
    assert [(name, sql_type) for name, sql_type, *_ in stored] == [(c, spec.columns[c]) for c in schema.names]
    assert {name: sql_type for name, sql_type, *_ in full} == spec.columns
