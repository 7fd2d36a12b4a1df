"""The datasets of a lake, as the catalog registers them (ticks now; rollups such as bars later)."""

from __future__ import annotations

from catalog import DatasetSpec
from lake.ticks import SQL_COLUMNS

TICKS = DatasetSpec(
    name="ticks",
    location="lake/ticks",
    partition_keys=("tick_type", "date", "hour"),
    time_column="timestamp",
    columns=SQL_COLUMNS,
    indexed_columns=("contract_id", "tick_type", "exchange"),
    bloom_columns=("contract_id", "symbol"),
)

DATASETS: dict[str, DatasetSpec] = {TICKS.name: TICKS}
