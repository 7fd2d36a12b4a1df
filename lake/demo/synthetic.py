"""Synthetic, realistic tick data and its JSONL landing format.

Why: the demo and the tests need data that behaves like a real feed, not a tidy grid: skewed
activity (a few contracts dominate, Zipf-like, uncorrelated with contract id), irregular
timestamps with an intraday U-shape, same-microsecond ticks of one contract (real feeds have
them and they must not be dropped), all three tick types (including one-sided quotes), several
exchanges, prices on the tick grid and occasional trade conditions. Everything is deterministic
for a seed and numpy-vectorised: a million ticks generate and serialise in about two seconds.

>>> cs = make_contracts(3, seed=1)
>>> t = synthetic_ticks(datetime.date(2022, 1, 7), cs, 1000, seed=1)
>>> t.num_rows, t.column_names[:3]
(1000, ['timestamp', 'contract_id', 'tick_type'])
>>> to_jsonl(t.slice(0, 1)).startswith(b'{"timestamp":"2022-01-07T14:30:')
True
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import time
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ticklake.ticks import LANDING_SCHEMA, TICK_TYPES

__all__ = ["Contract", "EXCHANGES", "TICK_SCHEMA", "TICK_TYPES", "make_contracts", "synthetic_ticks", "to_jsonl"]

EXCHANGES: tuple[str, ...] = ("NASDAQ", "NYSE", "ARCA", "BATS", "IEX", "ISLAND", "EDGX", "AMEX")
_EXCHANGE_WEIGHTS = np.array([0.28, 0.24, 0.12, 0.10, 0.05, 0.09, 0.07, 0.05])
_TYPE_WEIGHTS = np.array([0.40, 0.50, 0.10])
DUPLICATE_RATE = 0.003  # share of ticks repeating another tick's (contract, microsecond)
_DAILY_VOL = 0.015  # daily price standard deviation, as a fraction of the start price

# What a feed sends: every landing field of a tick (no `extra`), typed as the ingest reads them.
TICK_SCHEMA = LANDING_SCHEMA


@dataclass(frozen=True)
class Contract:
    """One instrument: IB-style numeric id, ticker, primary exchange, tick size, opening price."""

    contract_id: int
    symbol: str
    exchange: str
    tick_size: float
    start_price: float


def make_contracts(n: int, seed: int = 0) -> list[Contract]:
    """Return ``n`` contracts with distinct random 6-9 digit ids, unique 1-5 letter symbols,
    one of eight exchanges each, tick size 0.01 and start prices log-uniform in 5..500.

    >>> [c.symbol for c in make_contracts(2)] != [c.symbol for c in make_contracts(2, seed=1)]
    True
    """
    if not 0 <= n <= 1_000_000:
        raise ValueError(f"n must be in 0..1,000,000, got {n}")
    rng = np.random.default_rng([seed, 0xC0C0])
    ids: dict[int, None] = {}
    while len(ids) < n:  # log-uniform so that 6, 7, 8 and 9 digit ids all occur
        for v in np.exp(rng.uniform(np.log(1e5), np.log(1e9), 2 * (n - len(ids)) + 8)).astype(np.int64):
            ids.setdefault(int(v))
    symbols: dict[str, None] = {}
    letters = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
    while len(symbols) < n:
        m = 2 * (n - len(symbols)) + 8
        lengths = rng.choice([1, 2, 3, 4, 5], size=m, p=[0.02, 0.08, 0.35, 0.45, 0.10])
        chars = letters[rng.integers(0, 26, size=(m, 5))]
        for row, k in zip(chars, lengths, strict=False):
            symbols.setdefault("".join(row[:k]))
    exchanges = rng.choice(len(EXCHANGES), size=n, p=_EXCHANGE_WEIGHTS)
    start_cents = np.rint(np.exp(rng.uniform(np.log(5.0), np.log(500.0), n)) * 100).astype(np.int64)
    return [
        Contract(i, s, EXCHANGES[e], 0.01, int(p) / 100)
        for i, s, e, p in zip(list(ids)[:n], list(symbols)[:n], exchanges, start_cents, strict=False)
    ]


def _decimals(x: float) -> int:
    exponent = Decimal(repr(x)).normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def synthetic_ticks(
    day: datetime.date,
    contracts: Sequence[Contract],
    n_ticks: int,
    seed: int = 0,
    *,
    zipf_exponent: float = 1.15,
    session: tuple[datetime.time, datetime.time] = (time(14, 30), time(21, 0)),
    ranks: Sequence[int] | None = None,
) -> pa.Table:
    """Generate ``n_ticks`` ticks for ``contracts`` during ``session`` (UTC) of ``day``, sorted by time.

    Activity share of a contract is proportional to ``1 / rank**zipf_exponent`` with ranks randomly
    permuted against the contracts. Tick types are ~40% last, ~50% bid_ask (about 1% one-sided),
    ~10% mid_point; about ``DUPLICATE_RATE`` of ticks share contract and microsecond with another.
    Prices follow a per-contract random walk on the tick grid (spread 1-3 ticks, mid may be on a
    half tick); sizes are positive integers, mostly lots of 100. The result has ``TICK_SCHEMA``.
    The same arguments always give the same table. `ranks` (1 = most active) fixes each
    contract's activity rank instead of drawing it, so several days can share one ranking.
    """
    if n_ticks < 0:
        raise ValueError(f"n_ticks must be >= 0, got {n_ticks}")
    if n_ticks and not contracts:
        raise ValueError("contracts must not be empty")
    start = datetime.datetime.combine(day, session[0], tzinfo=datetime.UTC)
    end = datetime.datetime.combine(day, session[1], tzinfo=datetime.UTC)
    duration_us = (end - start) // datetime.timedelta(microseconds=1)
    if duration_us <= 0:
        raise ValueError(f"session must end after it starts: {session}")
    if n_ticks == 0:
        return TICK_SCHEMA.empty_table()
    rng = np.random.default_rng([seed, day.toordinal()])
    k = len(contracts)

    # Who trades when: Zipf shares over permuted ranks; U-shaped time of day (ends ~3x midday).
    rank = np.asarray(ranks, dtype=np.float64) if ranks is not None else rng.permutation(np.arange(1, k + 1))
    if len(rank) != k:
        raise ValueError(f"ranks must have one entry per contract ({k}), got {len(rank)}")
    share = 1.0 / rank**zipf_exponent
    n_dup = min(n_ticks - 1, max(1, round(n_ticks * DUPLICATE_RATE))) if n_ticks >= 2 else 0
    n_base = n_ticks - n_dup
    cidx = rng.choice(k, size=n_base, p=share / share.sum())
    u = rng.random(n_base)
    edge = rng.random(n_base) < 0.4  # mixture: 60% uniform, 40% density ∝ (2u-1)^2
    v = np.cbrt(rng.random(n_base)) * np.where(rng.random(n_base) < 0.5, -1.0, 1.0)
    u = np.where(edge, (v + 1.0) / 2.0, u)
    offset = np.minimum((u * duration_us).astype(np.int64), duration_us - 1)
    ttype = rng.choice(3, size=n_base, p=_TYPE_WEIGHTS)
    src = rng.integers(0, n_base, n_dup)  # same contract, same microsecond as an existing tick
    dup_type = np.where(rng.random(n_dup) < 0.5, ttype[src], rng.choice(3, size=n_dup, p=_TYPE_WEIGHTS))
    cidx, offset = np.concatenate([cidx, cidx[src]]), np.concatenate([offset, offset[src]])
    ttype = np.concatenate([ttype, dup_type])
    order = np.argsort(offset, kind="stable")
    cidx, offset, ttype = cidx[order], offset[order], ttype[order]

    # Per-contract random walk in whole ticks (Skellam steps sized for ~1.5% daily volatility).
    tick = np.array([c.tick_size for c in contracts])
    dec = np.array([_decimals(c.tick_size) for c in contracts])
    den = 10**dec  # price = ticks * units / den: integer math, then one correctly rounded division
    units = np.rint(tick * den).astype(np.int64)
    start_ticks = np.rint(np.array([c.start_price for c in contracts]) / tick).astype(np.int64)
    counts = np.bincount(cidx, minlength=k)
    lam = ((_DAILY_VOL * start_ticks) ** 2 / np.maximum(counts, 1) / 2.0)[cidx]
    steps = rng.poisson(lam) - rng.poisson(lam)
    by_contract = np.argsort(cidx, kind="stable")
    cs = np.cumsum(steps[by_contract])
    first = np.flatnonzero(np.r_[True, np.diff(cidx[by_contract]) != 0])
    walk = np.empty(n_ticks, dtype=np.int64)
    walk[by_contract] = cs - np.repeat(cs[first] - steps[by_contract][first], np.diff(np.r_[first, n_ticks]))
    spread = rng.choice([1, 2, 3], size=n_ticks, p=[0.6, 0.3, 0.1])
    bid_t = np.maximum(start_ticks[cidx] + walk, 1)
    ask_t = bid_t + spread
    u_row, d_row = units[cidx], den[cidx].astype(np.float64)

    is_last, is_quote, is_mid = ttype == 0, ttype == 1, ttype == 2
    side = rng.random(n_ticks)  # ~1% of quotes one-sided: 0.5% bid only, 0.5% ask only
    has_bid = is_quote & (side >= 0.005)
    has_ask = is_quote & ((side < 0.005) | (side >= 0.01))
    last_t = bid_t + (rng.random(n_ticks) * (spread + 1)).astype(np.int64)
    price = np.where(is_last, (last_t * u_row) / d_row, ((bid_t + ask_t) * u_row) / (2 * d_row))

    def lots(p_odd: float) -> np.ndarray:
        odd = rng.random(n_ticks) < p_odd
        return np.where(odd, rng.integers(1, 100, n_ticks), 100 * rng.geometric(0.35, n_ticks)).astype(np.float64)

    size = lots(0.06)
    cond = np.where(is_last & (size < 100), 1, np.where(is_last & (rng.random(n_ticks) < 0.01), 2, 0))
    offsets = np.r_[0, np.cumsum(cond > 0)].astype(np.int32)
    cond_values = pa.array(np.array(["ODD_LOT", "INTERMARKET_SWEEP"])[cond[cond > 0] - 1], pa.string())

    def f64(values: np.ndarray, present: np.ndarray) -> pa.Array:
        return pa.array(values, pa.float64(), mask=~present)

    epoch = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
    ts = (start - epoch) // datetime.timedelta(microseconds=1) + offset
    columns = [
        pa.array(ts, pa.int64()).cast(TICK_SCHEMA.field("timestamp").type),
        pa.array(np.array([c.contract_id for c in contracts], dtype=np.int64)[cidx]),
        pa.array(TICK_TYPES, pa.string()).take(pa.array(ttype)),
        f64(price, is_last | is_mid),
        f64(size, is_last),
        f64((bid_t * u_row) / d_row, has_bid),
        f64((ask_t * u_row) / d_row, has_ask),
        f64(lots(0.03), has_bid),
        f64(lots(0.03), has_ask),
        pa.array([c.symbol for c in contracts], pa.string()).take(pa.array(cidx)),
        pa.array([c.exchange for c in contracts], pa.string()).take(pa.array(cidx)),
        pa.ListArray.from_arrays(pa.array(offsets), cond_values, mask=pa.array(cond == 0)),
    ]
    return pa.Table.from_arrays(columns, schema=TICK_SCHEMA)


def _iso_utc(col: pa.ChunkedArray, prefix: bytes) -> pa.Array:
    """Timestamps -> prefix + '"YYYY-MM-DDTHH:MM:SS.ffffffZ"' (UTC), built as a byte matrix; nulls kept."""
    if col.type.unit == "ns":
        col = col.cast(pa.timestamp("us", tz=col.type.tz))  # safe cast: raises if ns would be lost
    us = pc.fill_null(col.cast(pa.timestamp("us")).cast(pa.int64()), 0).to_numpy()
    days, tod = np.divmod(us, 86_400_000_000)
    z = days + 719_468  # civil_from_days (H. Hinnant), vectorised
    era = np.floor_divide(z, 146_097)
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d, m = doy - (153 * mp + 2) // 5 + 1, np.where(mp < 10, mp + 3, mp - 9)
    y = yoe + era * 400 + (m <= 2)
    if len(y) and (y.min() < 0 or y.max() > 9999):
        raise ValueError("timestamps outside years 0000-9999 cannot be written")
    out = np.tile(np.frombuffer(prefix + b'"0000-00-00T00:00:00.000000Z"', dtype=np.uint8), (len(us), 1))
    secs, micros = np.divmod(tod, 1_000_000)
    for pos, val in (
        (1, y // 100),
        (3, y % 100),
        (6, m),
        (9, d),
        (12, secs // 3600),
        (15, secs // 60 % 60),
        (18, secs % 60),
        (21, micros // 10_000),
        (23, micros // 100 % 100),
        (25, micros % 100),
    ):
        pair = val.astype(np.uint8)
        out[:, len(prefix) + pos], out[:, len(prefix) + pos + 1] = 48 + pair // 10, 48 + pair % 10
    offsets = pa.py_buffer((np.arange(len(us) + 1, dtype=np.int64) * out.shape[1]).tobytes())
    texts = pa.LargeStringArray.from_buffers(len(us), offsets, pa.py_buffer(out.tobytes()))
    return texts if col.null_count == 0 else pc.if_else(pc.is_valid(col).combine_chunks(), texts, None)


def _fragments(col: pa.ChunkedArray, name: str) -> pa.Array:
    """One column -> ',"name":<JSON value>' per row, null where the value is null (field omitted)."""
    t, key = col.type, "," + json.dumps(name, ensure_ascii=False) + ":"
    if pa.types.is_timestamp(t):
        return _iso_utc(col, key.encode())
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        if pa.types.is_floating(t):
            col = col.cast(pa.float64())  # float32 printed as float32 would not read back as its value
            if pc.any(pc.invert(pc.is_finite(col))).as_py():
                raise ValueError(f"column {name!r} holds NaN or infinity: not representable in JSON")
        texts = col.cast(pa.large_string()).combine_chunks()  # Arrow prints shortest round-trip floats
        return pc.binary_join_element_wise(
            pa.scalar(key, pa.large_string()), texts, pa.scalar("", pa.large_string()), null_handling="emit_null"
        )
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_dictionary(t):
        enc = col.combine_chunks()  # few distinct values: encode each once, then take
        enc = enc if pa.types.is_dictionary(enc.type) else pc.dictionary_encode(enc)
        texts = [key + json.dumps(s, ensure_ascii=False) for s in enc.dictionary.to_pylist()]
        return pa.array(texts, pa.large_string()).take(enc.indices)
    arr = col.combine_chunks()  # anything else (e.g. list<string> conditions, mostly null): per value
    valid = pc.is_valid(arr)
    texts = [key + json.dumps(v, ensure_ascii=False, separators=(",", ":")) for v in arr.filter(valid).to_pylist()]
    return pc.replace_with_mask(pa.nulls(len(arr), pa.large_string()), valid, pa.array(texts, pa.large_string()))


def to_jsonl(table: pa.Table) -> bytes:
    """Serialise ``table`` to the landing format: one UTF-8 JSON object per row, one row per line.

    Fields follow the table's column order; null fields are omitted. Timestamps become
    ``"YYYY-MM-DDTHH:MM:SS.ffffffZ"`` (UTC), integers stay integers and floats are printed in
    shortest round-trip form, so ``float(text) == value`` exactly. Vectorised with pyarrow.
    """
    if table.num_rows == 0:
        return b""
    fragments = [_fragments(table.column(name), name) for name in table.column_names]
    rows = pc.binary_join_element_wise(
        *fragments,
        pa.scalar("}\n", pa.large_string()),
        pa.scalar("", pa.large_string()),
        null_handling="replace",
        null_replacement="",
    ).cast(pa.large_string())
    offs = np.frombuffer(rows.buffers()[1], dtype=np.int64)[rows.offset : rows.offset + len(rows) + 1]
    data = rows.buffers()[2]  # freshly allocated by the join above, so it is ours to edit in place
    out = np.frombuffer(data, dtype=np.uint8)[offs[0] : offs[-1]]
    starts = offs[:-1] - offs[0]
    bare = out[starts] != ord(",")
    if bare.any() or not data.is_mutable:  # a row with every field null is "}\n": give it a byte for "{"
        out = np.insert(out, starts[bare], ord(","))
        starts = starts + np.cumsum(bare) - bare
        out[starts] = ord("{")
        return out.tobytes()
    out[starts] = ord("{")  # each row starts with the ',' before its first field
    return data[int(offs[0]) : int(offs[-1])].to_pybytes()
