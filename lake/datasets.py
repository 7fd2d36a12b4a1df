"""The datasets of a lake, as the catalog registers them: raw ticks and the 1-minute bars rolled up from them."""

from __future__ import annotations

import pyarrow as pa

from ticklake.access import open_catalog
from ticklake.catalog import DatasetSpec
from ticklake.columns import PATH_COLUMNS, TIMESTAMP, Column, arrow_schema, numbered, sql_columns
from ticklake.config import LakeConfig
from ticklake.ticks import FILE_SCHEMA, SQL_COLUMNS, TICK_COLUMNS

TICKS = DatasetSpec(
    name="ticks",
    location="lake/ticks",
    partition_keys=tuple(c.name for c in TICK_COLUMNS if c.place != "file"),
    time_column="timestamp",
    columns=SQL_COLUMNS,
    indexed_columns=("contract_id", "tick_type", "exchange"),
    bloom_columns=("contract_id", "symbol"),
)

# One row per contract and minute with trades; built per event hour by `ticklake.build.rollups`.
# The one declaration of the bars columns (in field-ID order: append only).
BARS_COLUMNS: tuple[Column, ...] = numbered((
    Column("minute", TIMESTAMP),
    Column("contract_id", pa.int64()),
    *(Column(name, pa.float64()) for name in ("open", "high", "low", "close", "volume", "vwap")),
    Column("trades", pa.int64()),
    *PATH_COLUMNS,
))
# The Parquet columns of a bars file (date and hour come from its Hive path).
BARS_FILE_SCHEMA = arrow_schema(c for c in BARS_COLUMNS if c.place == "file")

BARS_1M = DatasetSpec(
    name="bars_1m",
    location="lake/bars_1m",
    partition_keys=tuple(c.name for c in BARS_COLUMNS if c.place != "file"),
    time_column="minute",
    columns=sql_columns(BARS_COLUMNS),
    indexed_columns=("contract_id",),
    bloom_columns=("contract_id",),
)

DATASETS: dict[str, DatasetSpec] = {spec.name: spec for spec in (TICKS, BARS_1M)}

# Each dataset's one declaration of columns, from which every schema of it is derived.
COLUMNS: dict[str, tuple[Column, ...]] = {TICKS.name: TICK_COLUMNS, BARS_1M.name: BARS_COLUMNS}

# The columns of a dataset's hourly (warm) file: its partition and path columns live in the Hive path.
FILE_SCHEMAS: dict[str, pa.Schema] = {TICKS.name: FILE_SCHEMA, BARS_1M.name: BARS_FILE_SCHEMA}

# The columns of an archived (cold) object: every column of the dataset, partition and path columns
# included, in the dataset's order, so an object is read without Hive paths.
ARCHIVE_SCHEMAS: dict[str, pa.Schema] = {name: arrow_schema(columns) for name, columns in COLUMNS.items()}


def create_catalog(config: LakeConfig) -> None:
    """Create (and migrate) a lake's catalog with every dataset's table, maybe empty, so each can be queried
    from then on: what the first compaction does before its workers race, and a server at its start."""
    with open_catalog(config, create=True) as catalog:
        for spec in DATASETS.values():
            catalog.ensure_dataset(spec)
