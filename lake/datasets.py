"""The datasets of a lake, as the catalog registers them: raw ticks and the 1-minute bars rolled up from them."""

from __future__ import annotations

from ticklake.catalog import DatasetSpec
from ticklake.ticks import SQL_COLUMNS

TICKS = DatasetSpec(
    name="ticks",
    location="lake/ticks",
    partition_keys=("tick_type", "date", "hour"),
    time_column="timestamp",
    columns=SQL_COLUMNS,
    indexed_columns=("contract_id", "tick_type", "exchange"),
    bloom_columns=("contract_id", "symbol"),
)

# One row per contract and minute with trades; built per event hour by `ticklake.build.rollups`.
BARS_1M = DatasetSpec(
    name="bars_1m",
    location="lake/bars_1m",
    partition_keys=("date", "hour"),
    time_column="minute",
    columns={
        "minute": "TIMESTAMP WITH TIME ZONE",
        "contract_id": "BIGINT",
        "open": "DOUBLE",
        "high": "DOUBLE",
        "low": "DOUBLE",
        "close": "DOUBLE",
        "volume": "DOUBLE",
        "vwap": "DOUBLE",
        "trades": "BIGINT",
        "date": "DATE",
        "hour": "INTEGER",
    },
    indexed_columns=("contract_id",),
    bloom_columns=("contract_id",),
)

DATASETS: dict[str, DatasetSpec] = {spec.name: spec for spec in (TICKS, BARS_1M)}
