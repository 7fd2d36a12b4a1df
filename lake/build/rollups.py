"""Rollups: datasets derived from one event hour of ticks, rebuilt whole whenever the hour changes.

`bars_1m` holds one row per contract and minute with trades: open, high, low, close, volume,
vwap and trade count. The SQL lives in ``sql/rollups/bars_1m.sql`` and runs in DuckDB over the
hour's trade files as the catalog lists them; the result is one sorted Parquet file per hour,
committed like a compaction (the hour's previous bars files are replaced in the same snapshot).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import duckdb
import pyarrow as pa

from ticklake.catalog import Catalog, Commit, CommitConflict, Dataset, LiveFile, NewFile
from ticklake.config import LakeConfig
from ticklake.storage.parquet import describe_file, new_file_path, write_data_file
from ticklake.datasets import BARS_1M, TICKS
from ticklake.query.duck import connect_duckdb
from ticklake.errors import NotFoundError, QueryError
from ticklake.storage.layout import hour_key, hour_partition, partition_path
from ticklake.sql import load_sql

_ATTEMPTS = 5
# The Parquet columns of a bars file (date and hour come from its Hive path).
BARS_SCHEMA = pa.schema(
    [
        ("minute", pa.timestamp("us", tz="UTC")),
        ("contract_id", pa.int64()),
        *[(name, pa.float64()) for name in ("open", "high", "low", "close", "volume", "vwap")],
        ("trades", pa.int64()),
    ]
)


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


def build_bars_1m(config: LakeConfig, hour: int, *, force: bool = False) -> RollupResult:
    """Rebuild the 1-minute bars of one event hour from its trades and commit them.

    Skipped when the hour's bars were built from exactly the trade files live now (unless
    `force`); an hour without trades ends with no bars files.
    """
    if not config.catalog_path.exists():
        raise NotFoundError(f"lake {config.root}: no catalog.sqlite (nothing compacted yet?)")
    with Catalog(config.catalog_path) as catalog:
        ticks = catalog.ensure_dataset(TICKS)
        bars = catalog.ensure_dataset(BARS_1M)
        for attempt in range(_ATTEMPTS):
            try:
                return _build_once(config, catalog, ticks, bars, hour, force)
            except CommitConflict:
                if attempt == _ATTEMPTS - 1:
                    raise
                time.sleep(0.05 * 2**attempt)
    raise AssertionError("unreachable")


def _build_once(config: LakeConfig, catalog: Catalog, ticks: Dataset, bars: Dataset, hour: int, force: bool) -> RollupResult:
    started = time.perf_counter()
    result = RollupResult(BARS_1M.name, hour_key(hour))
    result.source_snapshot = snapshot = catalog.current_snapshot()
    partition = hour_partition(hour)
    trade_files = catalog.live_files(
        ticks.dataset_id, snapshot=snapshot, partition_paths=[partition_path({"tick_type": "last", **partition})]
    )
    live = catalog.live_files(bars.dataset_id, snapshot=snapshot, partition_paths=[partition_path(partition)])
    sources = sorted(f.file_id for f in trade_files)
    result.source_files = len(sources)
    if not force and _built_from(catalog, live) == sources:
        result.rows = sum(f.rows for f in live)
        result.files = [f.path for f in live]
        result.bytes = sum(f.bytes for f in live)
        result.seconds = time.perf_counter() - started
        return result

    files: list[NewFile] = []
    if trade_files:
        table = compute_bars(config, trade_files)
        result.trades = sum(f.rows for f in trade_files)
        result.rows = table.num_rows
        result.contracts = len(set(table.column("contract_id").to_pylist()))
        if table.num_rows:
            rel = new_file_path(BARS_1M, partition)
            size = write_data_file(config.root, rel, table, config)
            files.append(describe_file(BARS_1M, rel, partition, table, size, config))
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
    try:
        result.snapshot = catalog.commit(commit, retries=3)
    except BaseException:
        for f in files:  # the commit did not happen: nothing references them
            (config.root / f.path).unlink(missing_ok=True)
        raise
    result.files = [f.path for f in files]
    result.bytes = sum(f.bytes for f in files)
    result.replaced_files = len(live)
    result.seconds = time.perf_counter() - started
    return result


def compute_bars(config: LakeConfig, trade_files: list[LiveFile]) -> pa.Table:
    """The bars of the given trade files, sorted by (contract_id, minute), as BARS_SCHEMA."""
    paths = [str(config.root / f.path) for f in trade_files]
    con = connect_duckdb(threads=config.threads)
    try:
        table = con.execute(load_sql("rollups/bars_1m"), {"files": paths}).to_arrow_table()
    except duckdb.Error as e:
        raise QueryError(f"bars_1m over {len(paths)} trade files ({paths[0]}, ...): {e}") from e
    finally:
        con.close()
    return table.cast(BARS_SCHEMA)


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
