"""Rollups: datasets derived from one event hour of ticks, rebuilt whole whenever the hour changes.

`bars_1m` holds one row per contract and minute with trades: open, high, low, close, volume,
vwap and trade count. The SQL lives in ``sql/rollups/bars_1m.sql`` and runs in DuckDB over the
hour's trade files as the catalog lists them; the result is one sorted Parquet file per hour,
committed like a compaction (the hour's previous bars files are replaced in the same snapshot).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import pyarrow as pa

from ticklake.access import open_catalog
from ticklake.build.commit import FileSink, Staged, commit_staged
from ticklake.build.hours import tick_partitions
from ticklake.catalog import Catalog, Commit, Dataset, LiveFile, NewFile
from ticklake.config import LakeConfig
from ticklake.datasets import BARS_1M, TICKS
from ticklake.datasets import BARS_FILE_SCHEMA as BARS_SCHEMA  # the Parquet columns of a bars file
from ticklake.errors import QueryError
from ticklake.faults import fault_point
from ticklake.query.duck import connect_duckdb
from ticklake.sql import load_sql
from ticklake.storage.layout import hour_key, hour_partition, partition_path
from ticklake.storage.tiers import ColdReads, local_path, tier_of


@dataclass
class RollupResult:
    """What rebuilding one hour of a rollup did."""

    dataset: str
    hour: str
    source_snapshot: int = 0
    source_files: int = 0
    trades: int = 0
    rows: int = 0
    contracts: int = 0
    files: list[str] = field(default_factory=list)
    bytes: int = 0
    replaced_files: int = 0
    snapshot: int | None = None
    seconds: float = 0.0

    def summary(self) -> str:
        """A one-line account of the hour."""
        if self.snapshot is None:
            return f"{self.dataset} {self.hour}: up to date ({self.rows:,} rows in {len(self.files)} files)"
        return (
            f"{self.dataset} {self.hour}: {self.trades:,} trades -> {self.rows:,} rows for {self.contracts:,} contracts "
            f"in {len(self.files)} files ({self.bytes:,} bytes, {self.replaced_files} replaced), "
            f"snapshot {self.snapshot}, {self.seconds:.2f}s"
        )


def summarize_rollups(results: Sequence[RollupResult]) -> str:
    """One line over several rolled-up hours."""
    changed = sum(r.snapshot is not None for r in results)
    return f"rolled up {len(results)} hours ({changed} changed): {sum(r.rows for r in results):,} bars"


def build_bars_1m(config: LakeConfig, hour: int, *, force: bool = False) -> RollupResult:
    """Rebuild the 1-minute bars of one event hour from its trades and commit them.

    Skipped when the hour's bars were built from exactly the trade files live now (unless
    `force`); an hour without trades ends with no bars files.
    """
    started = time.perf_counter()
    with open_catalog(config, write=True) as catalog:
        ticks = catalog.ensure_dataset(TICKS)
        bars = catalog.ensure_dataset(BARS_1M)
        result, _ = commit_staged(catalog, config, lambda sink: _stage_bars(config, catalog, ticks, bars, hour, force, sink))
    result.seconds = time.perf_counter() - started
    return result


def _stage_bars(
    config: LakeConfig, catalog: Catalog, ticks: Dataset, bars: Dataset, hour: int, force: bool, sink: FileSink
) -> Staged[RollupResult]:
    result = RollupResult(BARS_1M.name, hour_key(hour))
    result.source_snapshot = snapshot = catalog.current_snapshot()
    partition = hour_partition(hour)
    trade_files = hour_files(catalog, ticks, tick_partitions(hour)["last"], snapshot)
    live = catalog.live_files(bars.dataset_id, snapshot=snapshot, partition_paths=[partition_path(partition)])
    sources = source_ids(catalog, trade_files, hour)
    result.source_files = len(trade_files)
    if not force and _built_from(catalog, live) == sources:
        result.rows = sum(f.rows for f in live)
        result.files = [f.path for f in live]
        result.bytes = sum(f.bytes for f in live)
        return Staged(result)

    files: list[NewFile] = []
    if trade_files:
        table = compute_bars(config, trade_files, hour)
        result.trades = sum(f.rows for f in trade_files)
        result.rows = table.num_rows
        result.contracts = len(set(table.column("contract_id").to_pylist()))
        if table.num_rows:
            fault_point("rollup.before_data_write")
            files.append(sink.write(BARS_1M, partition, table))
            fault_point("rollup.after_data_write")
    commit = Commit(
        dataset_id=bars.dataset_id,
        operation="rollup",
        add_files=tuple(files),
        remove_file_ids=tuple(f.file_id for f in live),
        replace_partitions=(partition_path(partition),),
        summary={
            "dataset": BARS_1M.name,
            "hour": hour_key(hour),
            "source_snapshot": snapshot,
            "source_file_ids": sources,
            "trades": result.trades,
            "rows": result.rows,
        },
    )

    def then(snapshot: int | None) -> None:
        fault_point("rollup.after_commit")
        result.snapshot = snapshot
        result.files = [f.path for f in files]
        result.bytes = sum(f.bytes for f in files)
        result.replaced_files = len(live)

    return Staged(result, commit, then)


def hour_files(catalog: Catalog, dataset: Dataset, partition: dict[str, Any], snapshot: int) -> list[LiveFile]:
    """The live files that hold rows of an hour partition: its hourly files, and the archived day
    objects (partition without the hour) whose rows include that hour."""
    day = {k: v for k, v in partition.items() if k != "hour"}
    paths = [partition_path(partition), partition_path(day)]
    hour = f"{partition['date']}T{int(partition['hour']):02d}"
    files = catalog.live_files(dataset.dataset_id, snapshot=snapshot, partition_paths=paths)
    return [f for f in files if "hour" in f.partition_values or hour in catalog.file_hours(f.file_id)]


def compute_bars(config: LakeConfig, trade_files: list[LiveFile], hour: int) -> pa.Table:
    """The bars of one event hour from the given trade files, sorted by (contract_id, minute), as BARS_SCHEMA."""
    cold = ColdReads(config)
    con = connect_duckdb(threads=config.threads)
    try:
        warm = [str(local_path(config.root, f.path)) for f in trade_files if tier_of(f.path) == "warm"]
        paths = warm + cold.locations([f for f in trade_files if tier_of(f.path) == "cold"], con)
        start = datetime.fromtimestamp(hour * 3600, UTC)
        window = {"hour_start": start, "hour_end": start + timedelta(hours=1)}
        table = con.execute(load_sql("rollups/bars_1m"), {"files": paths, **window}).to_arrow_table()
    except duckdb.Error as e:
        raise QueryError(f"bars_1m over {len(trade_files)} trade files ({trade_files[0].path}, ...): {e}") from e
    finally:
        con.close()
        cold.close()
    return table.cast(BARS_SCHEMA)


def source_ids(catalog: Catalog, trade_files: Sequence[LiveFile], hour: int) -> list[int]:
    """The ids of the hourly trade files an hour's bars are built from: an archived day object
    stands for the hourly files it packed (its lineage), so archiving leaves the bars up to date."""
    key = hour_key(hour)
    ids: list[int] = []
    for f in trade_files:
        if "hour" in f.partition_values:
            ids.append(f.file_id)
            continue
        packed = catalog.snapshot_summary(f.added_snapshot).get("lineage", {}).get(key)
        ids.extend(packed if isinstance(packed, list) else [f.file_id])
    return sorted(ids)


def bars_current(catalog: Catalog, live_bars: list[LiveFile], trade_files: Sequence[LiveFile], hour: int) -> bool:
    """Whether an hour's live bars were built from exactly its trade files live now (the rollup's rule)."""
    return _built_from(catalog, live_bars) == source_ids(catalog, trade_files, hour)


def _built_from(catalog: Catalog, live: list[LiveFile]) -> list[int] | None:
    """The trade file ids the hour's live bars were built from; no bars count as built from no trades,
    so an hour without trades and without bars needs no work. None: unknown, rebuild.
    """
    if not live:
        return []
    snapshots = {f.added_snapshot for f in live}
    if len(snapshots) != 1:
        return None
    ids = catalog.snapshot_summary(snapshots.pop()).get("source_file_ids")
    return sorted(ids) if isinstance(ids, list) else None
