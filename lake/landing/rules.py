"""The tick rules of `ticklake.ticks.validate`, checked column-wise over a block the fast path read,
so that both paths agree on every line."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ticklake.ticks import MAX_US, MIN_US, NUMBER_FIELDS, SIZE_FIELDS, TICK_TYPES


def all_valid(t: pa.Table) -> bool:
    """True when every row passes `valid_mask`, decided from a few aggregates (the usual block).

    Aggregates cost a fraction of building the row mask; False only means "build the mask".
    """
    ts, contract, tick, price = (t.column(n) for n in ("timestamp", "contract_id", "tick_type", "price"))
    if ts.null_count or contract.null_count or tick.null_count or pc.list_flatten(t.column("conditions")).null_count:
        return False
    bounds, ids = pc.min_max(pc.cast(ts, pa.int64())).as_py(), pc.min_max(contract).as_py()
    if not (bounds["min"] >= MIN_US and bounds["max"] < MAX_US and ids["min"] > 0):
        return False
    if not set(pc.unique(tick).to_pylist()) <= set(TICK_TYPES):
        return False
    for name in NUMBER_FIELDS:
        col = t.column(name)
        if col.null_count == len(col):
            continue
        if not math.isfinite(pc.sum(col).as_py()):  # NaN and infinities make the sum non-finite
            return False
        if name in SIZE_FIELDS and pc.min(col).as_py() < 0:
            return False
    quotes = pc.equal(tick, "bid_ask")
    if price.null_count and not pc.all(pc.or_(quotes, pc.is_valid(price))).as_py():
        return False
    if not pc.any(quotes).as_py():
        return True
    sides = pc.or_(pc.is_valid(t.column("bid_price")), pc.is_valid(t.column("ask_price")))
    return bool(pc.all(pc.or_(pc.invert(quotes), sides)).as_py())


def valid_mask(t: pa.Table) -> pa.ChunkedArray:
    """Rows that pass every rule of `ticklake.ticks.validate` (False where it would reject)."""
    ts = pc.cast(t.column("timestamp"), pa.int64())
    ok = pc.and_kleene(pc.is_valid(ts), pc.is_valid(t.column("contract_id")))
    ok = pc.and_(ok, pc.fill_null(pc.and_(pc.greater_equal(ts, MIN_US), pc.less(ts, MAX_US)), False))
    ok = pc.and_(ok, pc.fill_null(pc.greater(t.column("contract_id"), 0), False))
    tick = t.column("tick_type")
    ok = pc.and_(ok, pc.fill_null(pc.is_in(tick, pa.array(TICK_TYPES)), False))
    for name in NUMBER_FIELDS:
        col = t.column(name)
        ok = pc.and_(ok, pc.fill_null(pc.is_finite(col), True))
        if name in SIZE_FIELDS:
            ok = pc.and_(ok, pc.fill_null(pc.greater_equal(col, 0.0), True))
    conditions = t.column("conditions")
    if conditions.null_count < len(conditions):
        items = pc.list_flatten(conditions)
        if items.null_count:  # a null inside the list is not a string: the per-line judge rejects it
            parents = pc.filter(pc.list_parent_indices(conditions), pc.is_null(items))
            bad = np.zeros(len(conditions), dtype=bool)
            bad[parents.to_numpy()] = True
            ok = pc.and_(ok, pa.array(~bad))
    needs_price = pc.fill_null(pc.is_in(tick, pa.array(["last", "mid_point"])), False)
    ok = pc.and_(ok, pc.or_(pc.invert(needs_price), pc.is_valid(t.column("price"))))
    is_quote = pc.fill_null(pc.equal(tick, "bid_ask"), False)
    has_side = pc.or_(pc.is_valid(t.column("bid_price")), pc.is_valid(t.column("ask_price")))
    return pc.and_(ok, pc.or_(pc.invert(is_quote), has_side))
