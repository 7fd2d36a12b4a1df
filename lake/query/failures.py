"""DuckDB's errors as the project's own one-line errors: a damaged data file, or a failed query.

DuckDB raises while results are fetched as well as when a query is bound (a CAST that fails on
row 300,000, a file that turns out truncated), and its messages quote the SQL it ran: the
rewritten text, with the catalog's view names. The user's own query is named instead.

DuckDB (1.5.5) may report a query that fails while its rows stream as "INTERRUPT Error:
Interrupted!": a worker thread that fails records its error and raises the query's interrupt flag
to stop the other threads, and the result's next fetch checks that flag before it looks for an
error, so it raises the interrupt and the error is lost (`SimpleBufferedData::ExecuteTaskInternal`).
With several threads this is a race lost by a few percent of such queries, more on a loaded
machine. When nobody asked for the interrupt, the statement runs once more under ``EXPLAIN ANALYZE``
(`translated`'s `rerun`): that runs it whole without streaming a result, and raises the first
error recorded.
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
        return StorageError(f"data file {path}: {cut(message.replace(' ' + quoted.group(0), ''), _MESSAGE_CHARS)}")
    named = f" (query: {cut(one_line(query), _QUERY_CHARS)})" if query else ""
    return QueryError(cut(message, _MESSAGE_CHARS) + named)


@contextmanager
def translated(query: str | None, root: Path, rerun: Callable[[], object] | None = None) -> Iterator[None]:
    """Raise DuckDB's errors inside the block as `failure` translates them.

    On "Interrupted!", `rerun` (None: there is nothing to run again) runs the statement again to
    find the error the interrupt stands for (see the module's docstring); its own error is raised
    if it fails, the interrupt if it does not.
    """
    try:
        yield
    except duckdb.InterruptException as e:
        if rerun is not None:
            with translated(query, root):
                rerun()
        raise failure(e, query, root) from e
    except duckdb.Error as e:
        raise failure(e, query, root) from e


def guarded(call: Callable[[], T], query: str | None, root: Path, rerun: Callable[[], object] | None = None) -> T:
    """``call()``, with DuckDB's errors translated (`rerun` as in `translated`)."""
    with translated(query, root, rerun):
        return call()


def one_line(text: str) -> str:
    """Whitespace (newlines too) folded to single spaces.

    >>> one_line("a\\n  b ")
    'a b'
    """
    return " ".join(text.split())


def cut(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, ``...`` marking the cut."""
    return text if len(text) <= limit else text[: limit - 3] + "..."
