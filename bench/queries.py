"""The benchmark queries Q1–Q6, as DuckDB SQL over a table named ``ticks``, with their parameters.

Every system answers the same SQL (or, for Q6, its own cheapest way to the same answer); the
runner checks the results are identical.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Query:
    """One benchmark query."""

    name: str
    title: str
    sql: str
    params: dict[str, object]


def day_bounds(day: str) -> tuple[str, str]:
    """ISO timestamps of the start and end of a UTC day.

    >>> day_bounds("2022-01-03")
    ('2022-01-03 00:00:00+00:00', '2022-01-04 00:00:00+00:00')
    """
    start = dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC)
    return str(start), str(start + dt.timedelta(days=1))


def make_queries(facts: dict[str, Any]) -> list[Query]:
    """Q1–Q6 with parameters picked from the generated data's facts."""
    days = list(facts["days"])
    day = days[len(days) // 2]
    lo, hi = day_bounds(day)
    hour_lo = f"{day} 15:00:00+00:00"
    hour_hi = f"{day} 16:00:00+00:00"
    busy_a, busy_b = facts["busy"]
    rare = next(c for c in facts["rare"] if c not in facts["absent"][day])
    # A mid-range id: the smallest or largest would be ruled out by any min/max, a lucky case.
    absent_day, absent_contract = next((d, sorted(ids)[len(ids) // 2]) for d, ids in facts["absent"].items() if ids)
    a_lo, a_hi = day_bounds(absent_day)
    return [
        Query("Q1", "full scan: count, sum(size)", "SELECT count(*) AS n, sum(size) AS volume FROM ticks", {}),
        Query(
            "Q2",
            "one hour, all contracts: count, avg(price)",
            f"SELECT count(*) AS n, avg(price) AS avg_price FROM ticks "
            f"WHERE timestamp >= TIMESTAMPTZ '{hour_lo}' AND timestamp < TIMESTAMPTZ '{hour_hi}'",
            {"from": hour_lo, "to": hour_hi},
        ),
        Query(
            "Q3",
            "1-minute VWAP bars over one day (last ticks)",
            "SELECT contract_id, time_bucket(INTERVAL 1 MINUTE, timestamp) AS minute, count(*) AS trades,"
            " sum(size) AS volume, sum(price * size) / sum(size) AS vwap FROM ticks"
            f" WHERE tick_type = 'last' AND timestamp >= TIMESTAMPTZ '{lo}' AND timestamp < TIMESTAMPTZ '{hi}'"
            " GROUP BY ALL ORDER BY ALL",
            {"from": lo, "to": hi},
        ),
        Query(
            "Q4",
            "ASOF join of two contracts' last prices over one day",
            f"SELECT count(*) AS n, sum(b.price) AS other FROM"
            f" (SELECT timestamp, price FROM ticks WHERE contract_id = {busy_a} AND tick_type = 'last'"
            f"  AND timestamp >= TIMESTAMPTZ '{lo}' AND timestamp < TIMESTAMPTZ '{hi}') a"
            f" ASOF JOIN (SELECT timestamp, avg(price) AS price FROM ticks WHERE contract_id = {busy_b} AND tick_type = 'last'"
            f"  AND timestamp >= TIMESTAMPTZ '{lo}' AND timestamp < TIMESTAMPTZ '{hi}' GROUP BY timestamp) b"
            " ON a.timestamp >= b.timestamp",
            {"a": busy_a, "b": busy_b, "from": lo, "to": hi},
        ),
        Query(
            "Q5",
            "all ticks of one rare contract on one day",
            "SELECT timestamp, contract_id, tick_type, price, size, bid_price, ask_price, bid_size, ask_size, symbol, exchange"
            f" FROM ticks WHERE contract_id = {rare} AND timestamp >= TIMESTAMPTZ '{lo}' AND timestamp < TIMESTAMPTZ '{hi}'"
            " ORDER BY ALL",
            {"contract": rare, "from": lo, "to": hi},
        ),
        Query(
            "Q6",
            "does contract X have data on day D (it does not)",
            f"SELECT count(*) > 0 AS has_data FROM ticks WHERE contract_id = {absent_contract}"
            f" AND timestamp >= TIMESTAMPTZ '{a_lo}' AND timestamp < TIMESTAMPTZ '{a_hi}'",
            {"contract": absent_contract, "day": absent_day, "from": a_lo, "to": a_hi},
        ),
    ]
