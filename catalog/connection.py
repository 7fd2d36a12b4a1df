"""The catalog's SQLite connection: every error SQLite reports becomes the catalog's own, naming the file.

Translated once, here, for every statement (`execute`, `executemany`, `executescript`), every row
fetched (SQLite finds a damaged page only when it reads it, so a scan can fail half-way) and every
commit, so no call site needs its own ``try``. `sqlite3.ProgrammingError` (a closed connection,
wrong bindings, use from another thread) passes through untranslated: that is a bug in the
caller, not the state of the catalog.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator
from functools import wraps
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from ticklake.catalog.errors import CatalogCorrupt, CatalogError, CatalogLocked

_LOCKED = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}
_CORRUPT = {sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB}
_READ_ONLY = {sqlite3.SQLITE_READONLY}
P = ParamSpec("P")
R = TypeVar("R")
_BATCH = 1024

CANNOT_OPEN = frozenset({sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY})
"""Result codes of a read-only open that failed for want of a writable folder (WAL's ``-shm`` file)."""


def result_code(e: sqlite3.Error) -> int:
    """SQLite's primary result code of `e` (extended codes keep it in the low byte), 0 when it has none."""
    code: int | None = getattr(e, "sqlite_errorcode", None)
    return (code or 0) & 0xFF


def catalog_error(e: sqlite3.Error, path: Path) -> CatalogError:
    """The catalog's error for SQLite error `e` on catalog file `path`, as one line naming the file.

    >>> type(catalog_error(sqlite3.DatabaseError("file is not a database"), Path("c.sqlite"))).__name__
    'CatalogCorrupt'
    >>> str(catalog_error(sqlite3.OperationalError("database or disk is full"), Path("c.sqlite")))
    'catalog c.sqlite: database or disk is full'
    >>> str(catalog_error(sqlite3.OperationalError("disk I/O error"), Path("c.sqlite")))
    'catalog c.sqlite: disk I/O error (is the disk full?)'
    """
    code = result_code(e)
    text = str(e)
    message = f"catalog {path}: {text}"
    if code in _LOCKED or text.startswith(("database is locked", "database table is locked")):
        return CatalogLocked(message)
    if code in _CORRUPT or "malformed" in text or "not a database" in text:
        return CatalogCorrupt(message)
    if code in _READ_ONLY or "readonly database" in text:
        return CatalogError(f"catalog {path}: read-only ({text})")
    # SQLite names no cause; on a full disk it is the -wal or -shm file that could not grow.
    if code == sqlite3.SQLITE_IOERR or text.startswith("disk I/O error"):
        return CatalogError(f"catalog {path}: disk I/O error (is the disk full?)")
    return CatalogError(message)


def _translating(method: Callable[P, R]) -> Callable[P, R]:
    """`method` of a cursor or connection, raising the catalog's error for its SQLite errors."""

    @wraps(method)
    def translated(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except sqlite3.ProgrammingError:
            raise
        except sqlite3.DatabaseError as e:
            raise catalog_error(e, args[0].catalog_path) from e  # type: ignore[attr-defined]

    return translated


class CatalogCursor(sqlite3.Cursor):
    """A cursor whose statements and fetches raise the catalog's errors."""

    catalog_path: Path

    execute = _translating(sqlite3.Cursor.execute)
    executemany = _translating(sqlite3.Cursor.executemany)
    executescript = _translating(sqlite3.Cursor.executescript)
    # The C fetch methods step the statement themselves, not through __next__: each is wrapped.
    fetchone = _translating(sqlite3.Cursor.fetchone)
    fetchmany = _translating(sqlite3.Cursor.fetchmany)
    fetchall = _translating(sqlite3.Cursor.fetchall)

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]  # a generator, not the cursor itself
        # A batch of rows per translated C call: a Python call per row would double the cost of a scan.
        while batch := self.fetchmany(_BATCH):
            yield from batch

    def __next__(self) -> Any:
        try:
            return super().__next__()
        except sqlite3.ProgrammingError:
            raise
        except sqlite3.DatabaseError as e:
            raise catalog_error(e, self.catalog_path) from e


class CatalogConnection(sqlite3.Connection):
    """A connection to one catalog file whose every statement, fetch and commit raises the catalog's errors."""

    catalog_path: Path

    def cursor(self, factory: Any = None) -> CatalogCursor:  # type: ignore[override]  # one factory only
        # Whatever factory is asked for: a cursor that does not translate would let raw errors out.
        cursor = super().cursor(CatalogCursor)
        cursor.catalog_path = self.catalog_path
        return cursor

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> sqlite3.Cursor:
        return self.cursor().executemany(sql, parameters)

    def executescript(self, sql_script: str, /) -> sqlite3.Cursor:
        return self.cursor().executescript(sql_script)

    commit = _translating(sqlite3.Connection.commit)
    rollback = _translating(sqlite3.Connection.rollback)


def connect(target: str | Path, catalog_path: Path, *, timeout: float, shared: bool, uri: bool = False) -> CatalogConnection:
    """A `CatalogConnection` to `target` (a file or a ``file:`` URI) whose errors name `catalog_path`.

    `catalog_path` is the name the user knows, also while the catalog is being created under a
    temporary name. Autocommit mode: transactions are explicit (``BEGIN IMMEDIATE``).
    """
    try:
        db = sqlite3.connect(
            target, timeout=timeout, isolation_level=None, check_same_thread=not shared, uri=uri, factory=CatalogConnection
        )
    except sqlite3.DatabaseError as e:
        raise catalog_error(e, catalog_path) from e
    assert isinstance(db, CatalogConnection)
    db.catalog_path = catalog_path
    return db


def probe(db: CatalogConnection) -> sqlite3.Error | None:
    """Read the schema once, untranslated: the SQLite error that opening `db` met, or None.

    The first read is when SQLite opens the file for real (and, in WAL mode, its ``-shm``),
    so this tells whether another way of opening is needed.
    """
    try:
        sqlite3.Connection.execute(db, "SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.ProgrammingError:
        raise
    except sqlite3.DatabaseError as e:
        return e
    return None


__all__ = ["CANNOT_OPEN", "CatalogConnection", "CatalogCursor", "catalog_error", "connect", "probe", "result_code"]
