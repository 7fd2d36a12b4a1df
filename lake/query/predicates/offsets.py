"""Where a table reference sits in the SQL text, as character offsets.

The caller rewrites the SQL at these offsets, so they must be exact: DuckDB reports only where
a reference begins, in UTF-8 bytes, so its tokens are used to find the name and its end.
"""

from __future__ import annotations

import bisect
import re

import duckdb

from ticklake.query.predicates.context import Context, Node

_IDENT = re.compile(r"[A-Za-z_\x80-\U0010ffff][A-Za-z0-9_$\x80-\U0010ffff]*")


def span(ref: Node, ctx: Context) -> tuple[int, int]:
    """Character offsets of a (schema-qualified) table name; DuckDB reports UTF-8 byte offsets."""
    if ctx.tokens is None:
        ctx.tokens = [offset for offset, _ in duckdb.tokenize(ctx.sql)]
    encoded, location = ctx.sql.encode(), ref["query_location"]
    index = bisect.bisect_left(ctx.tokens, location) + (2 if ref.get("schema_name") else 0)  # skip "schema" "."
    if index < len(ctx.tokens) and location in ctx.tokens:
        name_at = len(encoded[: ctx.tokens[index]].decode())
        end = _scan_name(ctx.sql, name_at)
        if _unquote(ctx.sql[name_at:end]).lower() == ref["table_name"].lower():
            return len(encoded[:location].decode()), end
    raise ValueError(f"cannot locate table {ref['table_name']!r} at byte {location} of the SQL text")


def _scan_name(sql: str, pos: int) -> int:
    """Offset just past the (possibly quoted) identifier starting at ``pos``."""
    quote = sql[pos : pos + 1]
    if quote in ('"', "'"):
        close = sql.find(quote, pos + 1)
        while close >= 0 and sql.startswith(quote, close + 1):  # a doubled quote is part of the name
            close = sql.find(quote, close + 2)
        return len(sql) if close < 0 else close + 1
    match = _IDENT.match(sql, pos)
    return match.end() if match else pos


def _unquote(name: str) -> str:
    """Identifier text without its quotes (doubled quotes undone)."""
    if len(name) >= 2 and name[0] == name[-1] and name[0] in ('"', "'"):
        return name[1:-1].replace(name[0] * 2, name[0])
    return name
