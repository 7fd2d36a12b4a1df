"""The one place identifiers and literals are quoted for generated SQL (paths, column names)."""

from __future__ import annotations

from collections.abc import Iterable


def quote_identifier(name: str) -> str:
    """A double-quoted SQL identifier.

    >>> quote_identifier('timestamp'), quote_identifier('we"ird')
    ('"timestamp"', '"we""ird"')
    """
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    """A single-quoted SQL string literal.

    >>> quote_literal("it's")
    "'it''s'"
    """
    if "\x00" in text:
        raise ValueError("NUL byte in SQL literal")
    return "'" + text.replace("'", "''") + "'"


def literal_list(texts: Iterable[str]) -> str:
    """A DuckDB list literal of strings.

    >>> literal_list(["a.parquet", "b's.parquet"])
    "['a.parquet', 'b''s.parquet']"
    """
    return "[" + ", ".join(quote_literal(t) for t in texts) + "]"
