"""Query results for people (table) and machines (csv, JSON Lines), on stdout or in a file.

Timestamps print as ISO-8601 with offset in every format; machine formats print only
the result (csv: one header row), so they can be piped. Files: Parquet through DuckDB's COPY,
CSV with the same text as stdout. Every format streams: rows are written as they are fetched,
and the table takes its column widths from its first `WIDTH_SAMPLE_ROWS` rows.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import json
import math
from collections.abc import Iterable, Sequence
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ticklake.errors import ConfigError
from ticklake.query.quoting import quote_literal
from ticklake.storage.files import write_atomic

if TYPE_CHECKING:
    from ticklake.query.connection import LakeConnection

FORMATS = ("table", "csv", "json")

WIDTH_SAMPLE_ROWS = 1_000
"""The table's column widths fit its first rows; a wider value later widens only its own row."""


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
    """Aligned columns, streamed: widths come from the first rows, and nothing is ever cut.

    >>> import io
    >>> out = io.StringIO()
    >>> _write_table(["a", "b"], [(1, None)] * WIDTH_SAMPLE_ROWS + [("wider", 2)], out)
    1001
    >>> lines = out.getvalue().splitlines()
    >>> lines[0], lines[1], lines[-2], lines[-1]
    ('a | b', '--+-----', '1 | NULL', 'wider | 2')
    """
    it = iter(rows)
    first = [_cells(row) for row in islice(it, WIDTH_SAMPLE_ROWS)]
    widths = [max([len(c), *(len(r[i]) for r in first)]) for i, c in enumerate(columns)]
    out.write(" | ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip() + "\n")
    out.write("-+-".join("-" * w for w in widths) + "\n")
    n = 0
    for cells in first:
        out.write(" | ".join(v.ljust(w) for v, w in zip(cells, widths, strict=True)).rstrip() + "\n")
        n += 1
    for row in it:
        out.write(" | ".join(v.ljust(w) for v, w in zip(_cells(row), widths, strict=True)).rstrip() + "\n")
        n += 1
    return n


def _cells(row: Sequence[Any]) -> list[str]:
    return [to_text(v) if v is not None else "NULL" for v in row]


def save_result(lake: LakeConnection, query: str, output: Path) -> int:
    """Run `query` on `lake` and write its result to `output` (.parquet or .csv); return the row count.

    The file is ticklake's own write, not the query's: it appears whole or not at all, and never
    inside the lake's data folders (the suffixes already keep it off the catalog).
    """
    from ticklake.query.failures import translated  # here, not at the top: the CLI imports this module for FORMATS alone

    suffix = output.suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise ConfigError(f"{output}: output must end in .parquet or .csv")
    _refuse_inside_lake(lake, output)
    if suffix == ".parquet":
        plan = lake.plan(query)

        def copy(tmp: Path) -> None:
            lake.con.execute(f"COPY ({plan.sql}) TO {quote_literal(str(tmp))} (FORMAT parquet, COMPRESSION zstd)")

        with translated(query, lake.root):
            write_atomic(output, copy)
            row = lake.con.execute(f"SELECT count(*) FROM read_parquet({quote_literal(str(output))})").fetchone()
        return int(row[0]) if row else 0
    stream = lake.stream(query)
    if stream is None:
        raise ConfigError(f"{output}: the query returns no rows to write")
    counted: list[int] = []

    def write_csv(tmp: Path) -> None:
        with open(tmp, "x", encoding="utf-8", newline="") as out:
            counted.append(write_result(stream.columns, stream, "csv", out))

    write_atomic(output, write_csv)
    return counted[0]


def _refuse_inside_lake(lake: LakeConnection, output: Path) -> None:
    """A result written over a data file would corrupt the lake it was read from, and one left in the
    lake's own folders would look like its data (or a crash leftover) to check, repair and vacuum."""
    target = output.resolve()
    for folder in (lake.root / "lake", lake.root / "landing", lake.root / "catalog.sqlite"):
        if target == folder.resolve() or target.is_relative_to(folder.resolve()):
            raise ConfigError(f"{output}: inside the lake's own folder {folder}; write results elsewhere")
