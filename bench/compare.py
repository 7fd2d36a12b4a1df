"""Checking that every system returned the same rows (floats to 9 significant digits, order-free)."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any


def normalise(value: Any) -> Any:
    """A value in a form equal across engines: rounded floats, UTC datetimes, tuples for lists.

    >>> normalise(0.1 + 0.2) == normalise(0.3), normalise([1, 2])
    (True, (1, 2))
    """
    if isinstance(value, float):
        if math.isnan(value) or value == 0:
            return value
        return round(value, 8 - int(math.floor(math.log10(abs(value)))))
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC)
    if isinstance(value, list | tuple):
        return tuple(normalise(v) for v in value)
    return value


def canonical_rows(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Rows normalised and sorted (None sorts first), for an order-free comparison."""
    normal = [tuple(normalise(v) for v in row) for row in rows]
    return sorted(normal, key=lambda r: tuple((v is not None, str(type(v)), v if v is not None else 0) for v in r))
