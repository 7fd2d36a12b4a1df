"""The datasets of a lake, as the catalog registers them (raw ticks and the 1-minute bars rolled up from
them), and the one way to open a lake's catalog."""

from __future__ import annotations

import pyarrow as pa

from ticklake.catalog import Catalog, DatasetSpec
from ticklake.columns import PATH_COLUMNS, TIMESTAMP, Column, arrow_schema, sql_columns
from ticklake.config import LakeConfig
from ticklake.errors import NotFoundError
from ticklake.ticks import SQL_COLUMNS, TICK_COLUMNS

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
# The one declaration of the bars columns.
BARS_COLUMNS: tuple[Column, ...] = (
    Column("minute", TIMESTAMP),
    Column("contract_id", pa.int64()),
    *(Column(name, pa.float64()) for name in ("open", "high", "low", "close", "volume", "vwap")),
    Column("trades", pa.int64()),
    *PATH_COLUMNS,
)
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

NO_CATALOG = "no catalog.sqlite (nothing compacted yet?)"


def open_catalog(config: LakeConfig, *, write: bool = False, create: bool = False, shared: bool = False) -> Catalog:
    """The lake's catalog: read-only unless `write`; created (and migrated) on first use only with `create`.

    The one way the library opens a catalog, so a lake without one is reported one way.
    `shared`: the connection is used from several threads, one at a time (the caller locks).
    """
    if not create and not config.catalog_path.exists():
        raise NotFoundError(f"lake {config.root}: {NO_CATALOG}")
    return Catalog(config.catalog_path, read_only=not (write or create), shared=shared)


def find_catalog(config: LakeConfig, *, shared: bool = False) -> Catalog | None:
    """The lake's catalog opened read-only, or None while nothing has been compacted yet."""
    return open_catalog(config, shared=shared) if config.catalog_path.exists() else None
