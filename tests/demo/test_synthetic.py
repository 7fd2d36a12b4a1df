"""Tests for ticklake.demo.synthetic (generated ticks, JSONL landing format) and ticklake.demo.eurusd (real quotes)."""
from __future__ import annotations

import datetime
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from ticklake.demo.eurusd import EURUSD_CONTRACT_ID, EURUSD_EXCHANGE, EURUSD_SYMBOL, eurusd_path, eurusd_ticks
from ticklake.demo.synthetic import TICK_SCHEMA, Contract, make_contracts, synthetic_ticks, to_jsonl

DAY = datetime.date(2022, 1, 7)
N = 200_000
UTC = datetime.UTC
PRICE_FIELDS = ("price", "size", "bid_price", "ask_price", "bid_size", "ask_size")


@pytest.fixture(scope="module")
def contracts() -> list[Contract]:
    return make_contracts(100, seed=7)


@pytest.fixture(scope="module")
def ticks(contracts: list[Contract]) -> pa.Table:
    return synthetic_ticks(DAY, contracts, N, seed=7)


@pytest.fixture(scope="module")
def df(ticks: pa.Table) -> pd.DataFrame:
    return ticks.to_pandas()


def pd_row(*values: bool) -> pd.Series:
    """Expected presence of the price/size fields, in PRICE_FIELDS order."""
    return pd.Series(values, index=list(PRICE_FIELDS))


# --- make_contracts -------------------------------------------------------------------------

def test_make_contracts_realistic_and_deterministic(contracts: list[Contract]) -> None:
    assert make_contracts(100, seed=7) == contracts
    assert make_contracts(100, seed=8) != contracts
    ids = [c.contract_id for c in contracts]
    assert len(set(ids)) == 100 and ids != sorted(ids)
    assert all(100_000 <= i < 1_000_000_000 for i in ids)
    assert len({len(str(i)) for i in ids}) >= 3  # a mix of 6-9 digit ids
    symbols = [c.symbol for c in contracts]
    assert len(set(symbols)) == 100 and all(s.isalpha() and s.isupper() and 1 <= len(s) <= 5 for s in symbols)
    assert len({c.exchange for c in contracts}) >= 6
    assert all(c.tick_size == 0.01 and 5 <= c.start_price <= 500 for c in contracts)
    assert all(round(c.start_price * 100) / 100 == c.start_price for c in contracts)


# --- synthetic_ticks ------------------------------------------------------------------------

def test_schema_and_row_count(ticks: pa.Table) -> None:
    assert ticks.num_rows == N
    assert ticks.schema == TICK_SCHEMA
    assert ticks.column_names == ["timestamp", "contract_id", "tick_type", "price", "size", "bid_price",
                                  "ask_price", "bid_size", "ask_size", "symbol", "exchange", "conditions"]
    for name in ("timestamp", "contract_id", "tick_type", "symbol", "exchange"):
        assert ticks.column(name).null_count == 0


def test_deterministic_for_seed(contracts: list[Contract], ticks: pa.Table) -> None:
    assert synthetic_ticks(DAY, contracts, N, seed=7).equals(ticks)
    assert not synthetic_ticks(DAY, contracts, N, seed=8).equals(ticks)
    assert to_jsonl(synthetic_ticks(DAY, contracts, 5_000, seed=1)) == to_jsonl(
        synthetic_ticks(DAY, contracts, 5_000, seed=1))


def test_sorted_within_session_microseconds(df: pd.DataFrame) -> None:
    ts = df["timestamp"]
    assert ts.is_monotonic_increasing
    assert ts.min() >= datetime.datetime(2022, 1, 7, 14, 30, tzinfo=UTC)
    assert ts.max() < datetime.datetime(2022, 1, 7, 21, 0, tzinfo=UTC)
    assert (ts.dt.microsecond % 1000 != 0).mean() > 0.99  # genuinely microsecond precision
    hours = ts.dt.hour.value_counts()
    assert hours[20] > 1.5 * hours[17]  # intraday U-shape: the close is busier than midday


def test_tick_type_mix(df: pd.DataFrame) -> None:
    share = df["tick_type"].value_counts(normalize=True)
    assert set(share.index) == {"last", "bid_ask", "mid_point"}
    assert share["last"] == pytest.approx(0.40, abs=0.02)
    assert share["bid_ask"] == pytest.approx(0.50, abs=0.02)
    assert share["mid_point"] == pytest.approx(0.10, abs=0.02)


def test_fields_present_per_tick_type(df: pd.DataFrame) -> None:
    present = df[list(PRICE_FIELDS)].notna()
    last, quote, mid = (df["tick_type"] == t for t in ("last", "bid_ask", "mid_point"))
    assert present[last].eq(pd_row(True, True, False, False, False, False)).all(axis=None)
    assert present[mid].eq(pd_row(True, False, False, False, False, False)).all(axis=None)
    q = present[quote]
    assert not q["price"].any() and not q["size"].any()
    assert (q["bid_price"] == q["bid_size"]).all() and (q["ask_price"] == q["ask_size"]).all()
    assert (q["bid_price"] | q["ask_price"]).all()
    one_sided = (q["bid_price"] != q["ask_price"]).sum()
    assert 0 < one_sided < 0.05 * len(q)
    assert (~q["bid_price"]).sum() > 0 and (~q["ask_price"]).sum() > 0  # both kinds of one-sided quote
    conditions = df["conditions"].dropna()
    assert 0 < len(conditions) < 0.2 * last.sum()
    assert set(conditions.index) <= set(df.index[last])
    assert {"ODD_LOT"} <= {c for lst in conditions for c in lst}


def test_several_exchanges_and_symbols(df: pd.DataFrame, contracts: list[Contract]) -> None:
    assert df["exchange"].nunique() >= 6
    by_id = {c.contract_id: c for c in contracts}
    pairs = df[["contract_id", "symbol", "exchange"]].drop_duplicates()
    assert all(by_id[r.contract_id].symbol == r.symbol and by_id[r.contract_id].exchange == r.exchange
               for r in pairs.itertuples())


def test_prices_on_tick_grid_and_bid_below_ask(df: pd.DataFrame) -> None:
    quotes = df[df["bid_price"].notna() & df["ask_price"].notna()]
    spread_ticks = np.round((quotes["ask_price"] - quotes["bid_price"]) * 100)
    assert (quotes["bid_price"] < quotes["ask_price"]).all()
    assert set(spread_ticks.unique()) == {1, 2, 3}
    for name in ("bid_price", "ask_price"):
        cents = df[name].dropna() * 100
        assert np.allclose(cents, np.round(cents), rtol=0, atol=1e-6)
    last_cents = df.loc[df["tick_type"] == "last", "price"] * 100
    assert np.allclose(last_cents, np.round(last_cents), rtol=0, atol=1e-6)
    half_cents = df.loc[df["tick_type"] == "mid_point", "price"] * 200  # mid may sit on a half tick
    assert np.allclose(half_cents, np.round(half_cents), rtol=0, atol=1e-6)
    assert (df[list(PRICE_FIELDS)].min() > 0).all()
    # each price is the float nearest its 2-3 decimal text, i.e. it prints short and reads back exactly
    assert all(len(repr(float(p)).split(".")[-1]) <= 3 for p in df["price"].dropna().unique())


def test_sizes_positive_integers_mostly_round_lots(df: pd.DataFrame) -> None:
    for name in ("size", "bid_size", "ask_size"):
        sizes = df[name].dropna()
        assert (sizes > 0).all() and (sizes == np.floor(sizes)).all()
        assert (sizes % 100 == 0).mean() > 0.8


def test_prices_random_walk_per_contract(df: pd.DataFrame) -> None:
    trades = df[df["tick_type"] == "last"].groupby("contract_id")["price"]
    move = (trades.last() / trades.first() - 1).abs()
    assert move.median() < 0.05  # a plausible day, not white noise
    assert trades.nunique().max() > 10


def test_skewed_activity_uncorrelated_with_id(df: pd.DataFrame, contracts: list[Contract]) -> None:
    counts = df["contract_id"].value_counts()
    assert len(counts) == len(contracts)
    assert counts.iloc[0] > 20 * counts.median()
    ids = np.array([c.contract_id for c in contracts])
    per_id = counts.reindex(ids).to_numpy()
    rank_corr = np.corrcoef(np.argsort(np.argsort(ids)), np.argsort(np.argsort(per_id)))[0, 1]
    assert abs(rank_corr) < 0.4


def test_zipf_exponent_controls_skew(contracts: list[Contract]) -> None:
    flat = synthetic_ticks(DAY, contracts, 50_000, seed=1, zipf_exponent=0.0).to_pandas()["contract_id"].value_counts()
    assert flat.iloc[0] < 2 * flat.median()


def test_same_microsecond_ticks_of_a_contract_exist(df: pd.DataFrame) -> None:
    dup = df.duplicated(["timestamp", "contract_id"], keep="first")
    assert 0.001 * N <= dup.sum() <= 0.01 * N


def test_session_argument_and_empty(contracts: list[Contract]) -> None:
    t = synthetic_ticks(DAY, contracts, 1_000, seed=2, session=(datetime.time(8, 0), datetime.time(9, 0)))
    ts = t.column("timestamp").to_pandas()
    assert ts.min() >= datetime.datetime(2022, 1, 7, 8, tzinfo=UTC) and ts.max() < datetime.datetime(2022, 1, 7, 9, tzinfo=UTC)
    assert synthetic_ticks(DAY, contracts, 0).num_rows == 0
    assert to_jsonl(synthetic_ticks(DAY, contracts, 0)) == b""
    with pytest.raises(ValueError):
        synthetic_ticks(DAY, contracts, 10, session=(datetime.time(9), datetime.time(8)))
    with pytest.raises(ValueError):
        synthetic_ticks(DAY, [], 10)


# --- to_jsonl -------------------------------------------------------------------------------

def iso(ts: datetime.datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def assert_round_trip(table: pa.Table) -> None:
    """Parse to_jsonl(table) back line by line and compare every field to the table."""
    data = to_jsonl(table)
    assert data.endswith(b"\n")
    lines = data.decode("utf-8").split("\n")[:-1]
    assert len(lines) == table.num_rows
    rows = table.to_pylist()
    for line, row in zip(lines, rows, strict=False):
        obj = json.loads(line)
        expected = {k: v for k, v in row.items() if v is not None}
        assert list(obj) == list(expected)  # same field order, nulls omitted
        assert obj["timestamp"] == iso(expected["timestamp"])
        assert type(obj["contract_id"]) is int and obj["contract_id"] == expected["contract_id"]
        for key in expected.keys() - {"timestamp"}:
            assert obj[key] == expected[key], (key, line)
            if isinstance(expected[key], float):
                assert float(obj[key]) == expected[key]  # exact, no float drift


def test_to_jsonl_round_trip(ticks: pa.Table) -> None:
    assert_round_trip(ticks.slice(0, 50_000))
    tail = to_jsonl(ticks.slice(N - 3))
    assert tail == b"".join(to_jsonl(ticks.slice(i, 1)) for i in range(N - 3, N))


def test_to_jsonl_format_details(ticks: pa.Table) -> None:
    lines = to_jsonl(ticks.slice(0, 2_000)).splitlines()
    for line, tick_type in zip(lines, ticks.column("tick_type").to_pylist(), strict=False):
        assert line.startswith(b'{"timestamp":"2022-01-07T') and b'Z","contract_id":' in line
        assert b"null" not in line and b" " not in line
        if tick_type == "mid_point":
            assert b'"size"' not in line and b'"bid_price"' not in line
    assert to_jsonl(ticks.slice(0, 2_000)).count(b"\n") == 2_000


def test_to_jsonl_edge_cases() -> None:
    table = pa.table({
        "timestamp": pa.array([datetime.datetime(1999, 12, 31, 23, 59, 59, 999999), None, datetime.datetime(2024, 2, 29)],
                              pa.timestamp("us", tz="UTC")),
        "contract_id": pa.array([1, None, 2**62], pa.int64()),
        "x": pa.array([0.1, None, 1e-7], pa.float64()),
        "s": pa.array(['a"b\\c\n\u00e9', None, ""], pa.string()),
        "conditions": pa.array([["ODD_LOT", "X"], None, []], pa.list_(pa.string())),
    })
    data = to_jsonl(table)
    assert data.split(b"\n")[1] == b"{}"
    assert [json.loads(line) for line in data.splitlines()] == [
        {"timestamp": "1999-12-31T23:59:59.999999Z", "contract_id": 1, "x": 0.1, "s": 'a"b\\c\n\u00e9',
         "conditions": ["ODD_LOT", "X"]},
        {},
        {"timestamp": "2024-02-29T00:00:00.000000Z", "contract_id": 2**62, "x": 1e-7, "s": "", "conditions": []},
    ]
    with pytest.raises(ValueError):
        to_jsonl(pa.table({"x": pa.array([float("nan")])}))


def test_to_jsonl_chunked_and_float32(ticks: pa.Table) -> None:
    a, b = ticks.slice(10, 700), ticks.slice(5_000, 300)
    both = pa.concat_tables([a, b])
    assert both.column("price").num_chunks == 2
    assert to_jsonl(both) == to_jsonl(a) + to_jsonl(b)
    f32 = pa.table({"x": pa.array([0.1, 1.5], pa.float32())})
    assert [json.loads(line)["x"] for line in to_jsonl(f32).splitlines()] == f32.column("x").to_pylist()


def test_to_jsonl_converts_other_timezones_to_utc() -> None:
    t = pa.table({"timestamp": pa.array([0], pa.timestamp("us", tz="America/New_York"))})
    assert to_jsonl(t) == b'{"timestamp":"1970-01-01T00:00:00.000000Z"}\n'


# --- EUR/USD real quotes --------------------------------------------------------------------

@pytest.fixture(scope="module")
def eurusd() -> pa.Table:
    return eurusd_ticks()


def test_eurusd_data_file_is_packaged() -> None:
    path = eurusd_path()
    assert path.is_file() and path.parent == Path(__file__).resolve().parents[2] / "lake" / "demo" / "data"
    assert "LGPL-3.0" in (path.parent / "README.md").read_text()
    assert len(path.read_bytes().splitlines()) == 9_500


def test_eurusd_ticks(eurusd: pa.Table) -> None:
    assert eurusd.num_rows == 9_500
    assert eurusd.schema == TICK_SCHEMA
    ts = eurusd.column("timestamp").to_pylist()
    assert ts[0] == datetime.datetime(2020, 1, 1, 17, 0, 0, 65_000, tzinfo=UTC)
    assert ts[-1] == datetime.datetime(2020, 1, 1, 23, 0, 52, 125_000, tzinfo=UTC)
    assert all(a <= b for a, b in zip(ts, ts[1:], strict=False))  # file order, which is time order
    assert all(t.microsecond % 1000 == 0 for t in ts)
    assert eurusd.column("bid_price")[0].as_py() == 1.1212
    assert eurusd.column("ask_price")[0].as_py() == 1.12172
    assert pc.all(pc.equal(eurusd.column("tick_type"), "bid_ask")).as_py()
    assert set(eurusd.column("contract_id").to_pylist()) == {EURUSD_CONTRACT_ID}
    assert set(eurusd.column("symbol").to_pylist()) == {EURUSD_SYMBOL}
    assert set(eurusd.column("exchange").to_pylist()) == {EURUSD_EXCHANGE}
    for name in ("price", "size", "bid_size", "ask_size", "conditions"):
        assert eurusd.column(name).null_count == 9_500
    assert eurusd.column("bid_price").null_count == 0 and eurusd.column("ask_price").null_count == 0


def test_eurusd_prices_exact_and_every_line_kept(eurusd: pa.Table) -> None:
    lines = eurusd_path().read_text().splitlines()
    parsed = [line.split(",") for line in lines]
    assert eurusd.column("bid_price").to_pylist() == [float(p[1]) for p in parsed]
    assert eurusd.column("ask_price").to_pylist() == [float(p[2]) for p in parsed]
    quotes = list(zip(eurusd.column("bid_price").to_pylist(), eurusd.column("ask_price").to_pylist(), strict=False))
    assert sum(a == b for a, b in zip(quotes, quotes[1:], strict=False)) > 0  # unchanged repeated quotes are kept


def test_eurusd_same_millisecond_lines_kept(tmp_path: Path) -> None:
    src = tmp_path / "q.csv"
    src.write_text("20200101 170000065,1.121200,1.121720,0\n20200101 170000065,1.121200,1.121720,0\n"
                   "20200101 170000065,1.121300,1.121720,0\n")
    t = eurusd_ticks(src)
    assert t.num_rows == 3 and t.column("timestamp").unique().to_pylist() == [
        datetime.datetime(2020, 1, 1, 17, 0, 0, 65_000, tzinfo=UTC)]
    src.write_text("20200101 170000065,1.121200,1.121720,0\n20200101 1700000,1.1,1.2,0\n")
    with pytest.raises(ValueError, match=":2:"):
        eurusd_ticks(src)


def test_eurusd_to_jsonl_round_trip(eurusd: pa.Table) -> None:
    assert_round_trip(eurusd)
    first = json.loads(to_jsonl(eurusd.slice(0, 1)))
    assert first == {"timestamp": "2020-01-01T17:00:00.065000Z", "contract_id": EURUSD_CONTRACT_ID,
                     "tick_type": "bid_ask", "bid_price": 1.1212, "ask_price": 1.12172,
                     "symbol": EURUSD_SYMBOL, "exchange": EURUSD_EXCHANGE}
