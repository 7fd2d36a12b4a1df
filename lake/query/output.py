"""Query results for people (table) and machines (csv, JSON Lines), on stdout or in a file.

Timestamps print as ISO-8601 with offset in every format; machine formats print only
the result (csv: one header row), so they can be piped. Files: Parquet through DuckDB's COPY,
CSV with the same text as stdout.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ticklake.errors import ConfigError, QueryError
from ticklake.query.quoting import quote_literal

if TYPE_CHECKING:
    from ticklake.query.connection import LakeConnection

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
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    out.write(" | ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip() + "\n")
    out.write("-+-".join("-" * w for w in widths) + "\n")
    for r in cells:
        out.write(" | ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() + "\n")
    return len(cells)


def save_result(lake: LakeConnection, query: str, output: Path) -> int:
    """Run `query` on `lake` and write its result to `output` (.parquet or .csv); return the row count."""
    import duckdb  # here, not at the top: the CLI imports this module for FORMATS alone

    suffix = output.suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise ConfigError(f"{output}: output must end in .parquet or .csv")
    output.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".parquet":
        plan = lake.plan(query)
        try:
            lake.con.execute(f"COPY ({plan.sql}) TO {quote_literal(str(output))} (FORMAT parquet, COMPRESSION zstd)")
            row = lake.con.execute(f"SELECT count(*) FROM read_parquet({quote_literal(str(output))})").fetchone()
            return int(row[0]) if row else 0
        except duckdb.Error as e:
            raise QueryError(f"{output}: {' '.join(str(e).split())}") from e
    relation = lake.sql(query)
    with open(output, "w", encoding="utf-8", newline="") as out:
        return write_result(relation.columns, iter(relation.fetchall()), "csv", out)
