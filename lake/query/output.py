"""Formatting query results for people (table) and machines (csv, JSON Lines).

Timestamps print as ISO-8601 with offset in every format; machine formats print only
the result (csv: one header row), so they can be piped.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import json
import math
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

FORMATS = ("table", "csv", "json")


def to_text(value: Any) -> str:
    """A value as text: ISO-8601 for times, JSON for lists and structs, '' for NULL.

    >>> to_text(dt.datetime(2022, 1, 7, 5, 0, 0, 123456, tzinfo=dt.timezone.utc))
    '2022-01-07T05:00:00.123456+00:00'
    >>> to_text(["A", "B"]), to_text(None), to_text(1.5)
    ('["A", "B"]', '', '1.5')
    """
    if value is None:
        return ""
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, list | dict | tuple):
        return json.dumps(to_json(value), ensure_ascii=False)
    return str(value)


def to_json(value: Any) -> Any:
    """A value as JSON-compatible data (ISO strings for times; NaN/inf as strings)."""
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return str(value)
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, bytes):
        return value.hex()
    return value


def write_result(columns: Sequence[str], rows: Iterable[Sequence[Any]], fmt: str, out: TextIO) -> int:
    """Write rows in `fmt` ("table", "csv", "json") to `out`; return the row count."""
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        n = 0
        for row in rows:
            writer.writerow([to_text(v) for v in row])
            n += 1
        return n
    if fmt == "json":
        n = 0
        for row in rows:
            out.write(json.dumps({c: to_json(v) for c, v in zip(columns, row, strict=True)}, ensure_ascii=False) + "\n")
            n += 1
        return n
    if fmt == "table":
        return _write_table(columns, rows, out)
    raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")


def _write_table(columns: Sequence[str], rows: Iterable[Sequence[Any]], out: TextIO) -> int:
    cells = [[to_text(v) if v is not None else "NULL" for v in row] for row in rows]
    numeric = [
        all(isinstance(r[i], int | float | decimal.Decimal) for r in cells_raw if r[i] is not None) if cells_raw else False
        for i, cells_raw in ((i, None) for i in range(len(columns)))
    ]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    del numeric
    out.write(" | ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip() + "\n")
    out.write("-+-".join("-" * w for w in widths) + "\n")
    for r in cells:
        out.write(" | ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() + "\n")
    return len(cells)
