"""Tests for the bars_1m rollup: values by hand, stable ties, late data, empty hours, pruning, the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

import pyarrow.parquet as pq
import pytest

import ticklake
from tests.conftest import tick
from ticklake.build.compaction import compact_hour
from ticklake.build.rollups import BARS_SCHEMA, build_bars_1m
from ticklake.catalog import Catalog, Commit
from ticklake.config import LakeConfig
from ticklake.datasets import BARS_1M, TICKS
from ticklake.errors import NotFoundError
from ticklake.landing.writer import LandingWriter
from ticklake.storage.layout import parse_hour

H5 = parse_hour("2022-01-07T05")


def trade(ts: str, contract: int, price: float, size: float | None) -> dict[str, Any]:
    return tick(f"2022-01-07T{ts}Z", contract, "last", price=price, size=size)


# Arrival order is list order. Contract 1's first minute has two ties: at :10 (open is the first
# to arrive) and at :59.999999 (close is the last to arrive); one size is 0, one is missing.
TRADES = [
    trade("05:00:10", 1, 10.0, 100),
    trade("05:00:10", 1, 11.0, 50),
    trade("05:00:30", 1, 9.0, 0),
    trade("05:00:59.999999", 1, 12.0, None),
    trade("05:00:59.999999", 1, 8.5, 10),
    trade("05:01:00", 1, 13.0, 10),
    trade("05:00:20", 2, 20.0, 10),
    trade("05:02:40", 2, 22.0, 1),  # arrives before an earlier trade of the same minute
    trade("05:02:05", 2, 21.0, 2),
    trade("05:03:00", 4, 5.0, None),  # no size at all: no volume, no vwap
]
QUOTES = [tick("2022-01-07T05:00:15Z", 1, "bid_ask"), tick("2022-01-07T05:00:15Z", 3, "mid_point")]


def minute(m: int, hour: int = 5) -> datetime:
    return datetime(2022, 1, 7, hour, m, tzinfo=UTC)


EXPECTED = [
    # minute, contract, open, high, low, close, volume, vwap, trades
    (minute(0), 1, 10.0, 12.0, 8.5, 8.5, 160.0, (1000 + 550 + 0 + 85) / 160, 5),
    (minute(1), 1, 13.0, 13.0, 13.0, 13.0, 10.0, 13.0, 1),
    (minute(0), 2, 20.0, 20.0, 20.0, 20.0, 10.0, 20.0, 1),
    (minute(2), 2, 21.0, 22.0, 21.0, 22.0, 3.0, (22 + 42) / 3, 2),
    (minute(3), 4, 5.0, 5.0, 5.0, 5.0, None, None, 1),
]


def land(config: LakeConfig, ticks: list[dict[str, Any]]) -> None:
    with LandingWriter(config) as writer:
        writer.append(ticks)


def bars(config: LakeConfig, where: str = "") -> list[tuple[Any, ...]]:
    with ticklake.connect(config=config) as con:
        return con.sql(
            "SELECT minute, contract_id, open, high, low, close, volume, vwap, trades"
            f" FROM bars_1m {where} ORDER BY contract_id, minute"
        ).fetchall()


def live_bars(config: LakeConfig) -> list[Any]:
    with Catalog(config.catalog_path) as catalog:
        dataset = catalog.dataset(BARS_1M.name)
        assert dataset is not None
        return catalog.live_files(dataset.dataset_id)


def test_bars_of_one_hour_by_hand(config: LakeConfig) -> None:
    land(config, TRADES + QUOTES)
    compact_hour(config, H5)
    result = build_bars_1m(config, H5)
    assert (result.trades, result.rows, result.contracts, result.source_files) == (10, 5, 3, 1)
    assert result.snapshot == 2 and result.replaced_files == 0 and len(result.files) == 1
    assert result.files[0].startswith("lake/bars_1m/date=2022-01-07/hour=05/")
    assert bars(config) == EXPECTED
    # The file itself: sorted by (contract_id, minute), partition columns only in its path.
    table = pq.read_table(config.root / result.files[0])
    assert table.schema.equals(BARS_SCHEMA)
    keys = list(zip(table.column("contract_id").to_pylist(), table.column("minute").to_pylist(), strict=True))
    assert keys == sorted(keys)
    [file] = live_bars(config)
    assert (file.rows, file.ts_min, file.ts_max) == (5, int(minute(0).timestamp() * 1e6), int(minute(3).timestamp() * 1e6))


def test_late_trades_replace_the_hours_bars_and_keep_arrival_order(config: LakeConfig) -> None:
    land(config, TRADES)
    compact_hour(config, H5)
    first = build_bars_1m(config, H5)
    again = build_bars_1m(config, H5)
    assert again.snapshot is None and again.rows == 5 and again.files == first.files  # up to date: nothing written
    # A late trade tied with the hour's last one comes after it: it is the new close.
    land(config, [trade("05:00:59.999999", 1, 7.0, 10)])
    compact_hour(config, H5)
    late = build_bars_1m(config, H5)
    assert late.snapshot is not None and late.replaced_files == 1 and late.trades == 11
    assert [f.path for f in live_bars(config)] == late.files
    row = bars(config, "WHERE contract_id = 1 AND minute = TIMESTAMPTZ '2022-01-07 05:00:00+00'")
    assert row == [(minute(0), 1, 10.0, 12.0, 7.0, 7.0, 170.0, (1635 + 70) / 170, 6)]
    forced = build_bars_1m(config, H5, force=True)
    assert forced.snapshot == late.snapshot + 1 and forced.replaced_files == 1


def test_an_hour_without_trades_has_no_bars_and_loses_old_ones(config: LakeConfig) -> None:
    land(config, QUOTES)
    compact_hour(config, H5)
    empty = build_bars_1m(config, H5)
    assert (empty.rows, empty.files, empty.snapshot) == (0, [], None)
    assert bars(config) == []  # bars_1m is registered, and empty

    land(config, TRADES)
    compact_hour(config, H5)
    assert len(build_bars_1m(config, H5).files) == 1
    # The hour's trade file leaves the catalog (as a rewrite that dropped trades would do).
    with Catalog(config.catalog_path) as catalog:
        ticks = catalog.ensure_dataset(TICKS)
        [trades] = catalog.live_files(ticks.dataset_id, partition_paths=["tick_type=last/date=2022-01-07/hour=05"])
        catalog.commit(Commit(ticks.dataset_id, "test", remove_file_ids=(trades.file_id,)))
    gone = build_bars_1m(config, H5)
    assert gone.snapshot is not None and gone.replaced_files == 1 and gone.rows == 0 and gone.files == []
    assert live_bars(config) == [] and bars(config) == []


def test_a_lake_never_compacted_is_refused(config: LakeConfig) -> None:
    with pytest.raises(NotFoundError, match="no catalog.sqlite"):
        build_bars_1m(config, H5)
    assert not config.root.exists()  # and nothing was created


def test_an_hour_never_compacted_builds_nothing(config: LakeConfig) -> None:
    land(config, TRADES)
    compact_hour(config, H5)
    result = build_bars_1m(config, H5 + 1)
    assert (result.rows, result.snapshot, result.source_files) == (0, None, 0)


@pytest.fixture
def three_hours(config: LakeConfig) -> LakeConfig:
    """Hours 5, 6, 7 with trades: contract 1 in every hour, 2 only in hour 5, 3 only in hour 7."""
    land(
        config,
        [
            trade(f"{h:02d}:{m:02d}:00", c, 10.0 + m, 1)
            for h, cs in ((5, (1, 2)), (6, (1,)), (7, (1, 3)))
            for c in cs
            for m in (0, 45)
        ],
    )
    for h in (5, 6, 7):
        compact_hour(config, H5 + h - 5)
        build_bars_1m(config, H5 + h - 5)
    return config


@pytest.mark.parametrize(
    ("where", "steps", "rows"),
    [
        ("", [3, 3, 3, 3, 3], 10),
        ("WHERE hour = 6", [3, 1, 1, 1, 1], 2),
        ("WHERE minute >= TIMESTAMPTZ '2022-01-07 06:30:00+00'", [3, 2, 2, 2, 2], 5),
        ("WHERE contract_id = 2", [3, 3, 2, 1, 1], 2),
        ("WHERE contract_id = 99", [3, 3, 0, 0, 0], 0),
        ("WHERE contract_id = 3 AND date = DATE '2022-01-07'", [3, 3, 1, 1, 1], 2),
    ],
)
def test_bars_are_pruned_through_the_catalog_like_ticks(three_hours: LakeConfig, where: str, steps: list[int], rows: int) -> None:
    query = f"SELECT * FROM bars_1m {where}"
    with ticklake.connect(config=three_hours) as con:
        [ref] = con.plan(query).refs
        assert ref.dataset == "bars_1m"
        assert [s.files for s in ref.plan.steps] == steps
        assert len(con.sql(query).fetchall()) == rows


def test_bars_join_ticks_with_both_sides_pruned(three_hours: LakeConfig) -> None:
    query = (
        "SELECT b.minute, b.vwap, count(*) AS n FROM bars_1m b JOIN ticks t ON t.contract_id = b.contract_id"
        " AND time_bucket(INTERVAL 1 MINUTE, t.timestamp) = b.minute"
        " WHERE b.contract_id = 3 AND t.contract_id = 3 AND t.tick_type = 'last' GROUP BY ALL ORDER BY ALL"
    )
    with ticklake.connect(config=three_hours) as con:
        plan = con.plan(query)
        assert {r.dataset: len(r.plan.files) for r in plan.refs} == {"bars_1m": 1, "ticks": 1}
        assert con.sql(query).fetchall() == [(minute(0, 7), 10.0, 1), (minute(45, 7), 55.0, 1)]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKLAKE_")}
    return subprocess.run([sys.executable, "-m", "ticklake.cli", *args], env=env, capture_output=True, text=True, timeout=60)


def test_cli_rollup_and_sql_over_bars(config: LakeConfig) -> None:
    land(config, TRADES)
    compact_hour(config, H5)
    root = str(config.root)
    done = run_cli("--root", root, "rollup", "--hour", "2022-01-07T05", "--hour", "2022-01-07T06")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        done.stdout.splitlines()[0],
        "bars_1m 2022-01-07T06: up to date (0 rows in 0 files)",
        "rolled up 2 hours (1 changed): 5 bars",
    ]
    assert done.stdout.startswith("bars_1m 2022-01-07T05: 10 trades -> 5 rows for 3 contracts in 1 files (")
    out = run_cli(
        "--root", root, "sql", "SELECT contract_id, count(*) AS n FROM bars_1m GROUP BY ALL ORDER BY ALL", "--format", "csv"
    )
    assert out.stdout == "contract_id,n\n1,2\n2,2\n4,1\n", out.stderr
    bad = run_cli("--root", root, "rollup", "--hour", "07/01/2022")
    assert bad.returncode == 1
    assert bad.stderr == "Error: hour '07/01/2022': expected YYYY-MM-DDTHH, e.g. 2022-01-07T05\n"
