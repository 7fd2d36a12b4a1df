"""The oracle of the JSONL parser tests: every line judged alone by `ticklake.ticks.decode_line`.

Whatever block a line sits in, `parse_jsonl` must keep or reject it exactly as the judge does,
with the same line number; a line of spaces, tabs and carriage returns only is blank.
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa

from ticklake.landing.jsonl import LINE, Parsed
from ticklake.ticks import Invalid, decode_line

Outcome = tuple[list[tuple[Any, ...]], list[dict[str, Any]]]


def split_lines(data: bytes) -> list[bytes]:
    """The lines of `data` as the parser numbers them (a final line break ends the last line)."""
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return lines


def is_blank(raw: bytes) -> bool:
    return not raw.strip(b" \t\r")


def signed(row: dict[str, Any]) -> dict[str, Any]:
    """`row` with its floats as repr text, so that -0.0 and 0.0 (equal as numbers) differ."""
    return {k: repr(v) if isinstance(v, float) else v for k, v in row.items()}


def oracle(lines: list[bytes], first_line: int = 1) -> Outcome:
    """(rejects, rows) of each non-blank line judged alone; rows carry their 1-based line number."""
    rejects, rows = [], []
    for i, raw in enumerate(lines):
        if is_blank(raw):
            continue
        try:
            row = decode_line(raw)
        except Invalid as e:
            rejects.append((first_line + i, e.kind, e.field, e.message, raw))
        else:
            rows.append(signed({**row, LINE: first_line + i}))
    return rejects, rows


def outcome(parsed: Parsed, shift: int = 0) -> Outcome:
    """(rejects, rows) of a parse, line numbers shifted by -`shift`, timestamps as µs integers."""
    rejects = [(r.line - shift, r.kind, r.field, r.message, r.raw) for r in parsed.rejects]
    table = parsed.table.set_column(0, "timestamp", parsed.table.column("timestamp").cast(pa.int64()))
    rows = table.to_pylist()
    for row in rows:
        row[LINE] += parsed.first_line - shift
    return rejects, [signed(row) for row in rows]


def valid_line(i: int, unknown: bool = False) -> bytes:
    """The `i`-th line of a realistic valid block (all tick types); `unknown` adds a field the record does not know."""
    kind = ("last", "bid_ask", "mid_point")[i % 3]
    rec: dict[str, Any] = {
        "timestamp": f"2022-01-07T05:{i // 600 % 60:02d}:{i // 10 % 60:02d}.{i:06d}Z",
        "contract_id": 1 + i % 17,
        "tick_type": kind,
    }
    if kind == "bid_ask":
        rec.update(bid_price=100 + i % 50 / 100, ask_size=300)
    else:
        rec.update(price=100 + i % 50 / 100, size=i % 7, symbol="AB", exchange="NYSE", conditions=["@"])
    if unknown:
        rec["feed_seq"] = i
    return json.dumps(rec, separators=(",", ":")).encode()
