"""DuckDB's errors as the project's own one-line errors: a damaged data file, or a failed query.

DuckDB raises while results are fetched as well as when a query is bound (a CAST that fails on
row 300,000, a file that turns out truncated), and its messages quote the SQL it ran: the
rewritten text, with the catalog's view names. The user's own query is named instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import duckdb

from ticklake.errors import QueryError, StorageError, TicklakeError

T = TypeVar("T")

_QUERY_CHARS = 120
_MESSAGE_CHARS = 400
# DuckDB wraps an error raised while a streamed result is fetched in this; the cause follows it.
_FETCH_WRAPPER = re.compile(
    r"^Invalid Input Error: Attempting to execute an unsuccessful or closed pending query result\s*Error:\s*"
)


def failure(error: duckdb.Error, query: str | None, root: Path) -> TicklakeError:
    """The error to raise for `error`: StorageError naming a lake file DuckDB could not read, else
    QueryError naming `query` (None: SQL the lake itself ran).

    >>> e = duckdb.InvalidInputException("Invalid Input Error: No magic bytes found at end of file '/l/lake/a.parquet'")
    >>> failure(e, "SELECT 1", Path("/l"))
    StorageError('data file /l/lake/a.parquet: Invalid Input Error: No magic bytes found at end of file')
    >>> failure(duckdb.ConversionException("Conversion Error: bad\\n\\nLINE 1: SELECT __ticks_1f"), "SELECT x", Path("/l"))
    QueryError('Conversion Error: bad (query: SELECT x)')
    >>> wrapped = "Invalid Input Error: Attempting to execute an unsuccessful or closed pending query result"
    >>> failure(duckdb.InvalidInputException(wrapped + "\\nError: Out of Range Error: big"), "SELECT y", Path("/l"))
    QueryError('Out of Range Error: big (query: SELECT y)')
    """
    message = one_line(_FETCH_WRAPPER.sub("", str(error)).split("\n\nLINE ")[0])
    quoted = re.search(r"""(['"])(""" + re.escape(str(root)) + r"""/[^'"]+)\1""", message)
    if quoted:
        path = quoted.group(2)
        return StorageError(f"data file {path}: {_cut(message.replace(' ' + quoted.group(0), ''), _MESSAGE_CHARS)}")
    named = f" (query: {_cut(one_line(query), _QUERY_CHARS)})" if query else ""
    return QueryError(_cut(message, _MESSAGE_CHARS) + named)


@contextmanager
def translated(query: str | None, root: Path) -> Iterator[None]:
    """Raise DuckDB's errors inside the block as `failure` translates them."""
    try:
        yield
    except duckdb.Error as e:
        raise failure(e, query, root) from e


def guarded(call: Callable[[], T], query: str | None, root: Path) -> T:
    """``call()``, with DuckDB's errors translated."""
    with translated(query, root):
        return call()


def one_line(text: str) -> str:
    """Whitespace (newlines too) folded to single spaces.

    >>> one_line("a\\n  b ")
    'a b'
    """
    return " ".join(text.split())


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
