"""Opening DuckDB connections the one way the project does it.

Extensions cannot be downloaded at run time here, and a user's ``~/.duckdb`` may hold
extensions a fresh machine lacks: every connection turns auto-install and auto-load off,
points its extension directory into the project's environment, and loads extensions
explicitly from the version-matched PyPI wheels (`duckdb-extension-*`).
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import duckdb

from ticklake.errors import ConfigError


def extension_directory() -> Path:
    """The extension folder DuckDB is pointed at: inside the project's environment, never ``~/.duckdb``."""
    return Path(sys.prefix) / "share" / "ticklake" / "duckdb_extensions"


def connect_duckdb(
    database: str = ":memory:",
    *,
    threads: int = 0,
    read_only: bool = False,
    memory_limit: str | None = None,
    spill: Path | None = None,
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with UTC session time zone and no implicit extension downloads.

    `memory_limit` (DuckDB's syntax, ``"2GB"``) bounds what the connection's queries may hold; past
    it they spill (into `spill`, default DuckDB's ``.tmp`` in the working folder) or fail with
    DuckDB's out-of-memory error.
    """
    config: dict[str, str | bool | int | float | list[str]] = {
        "extension_directory": str(extension_directory()),
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
    }
    if threads:
        config["threads"] = threads
    if memory_limit:
        config["memory_limit"] = memory_limit
    if spill is not None:
        config["temp_directory"] = str(spill)
    con = duckdb.connect(database, read_only=read_only, config=config)
    # Timestamps are stored in UTC; naive literals in queries mean UTC too.
    con.execute("SET TimeZone = 'UTC'")
    # Data files are immutable (a rewrite gets a new name), so their footers can be cached.
    con.execute("SET parquet_metadata_cache = true")
    return con


def extension_file(name: str) -> Path:
    """The extension binary shipped by the `duckdb-extension-<name>` wheel for this DuckDB version."""
    try:
        module = importlib.import_module(f"duckdb_extension_{name}")
    except ImportError as e:
        raise ConfigError(
            f"DuckDB extension {name!r}: install duckdb-extension-{name.replace('_', '-')}=={duckdb.__version__}"
        ) from e
    path = Path(str(module.__file__)).parent / "extensions" / f"v{duckdb.__version__}" / f"{name}.duckdb_extension"
    if not path.exists():
        raise ConfigError(f"DuckDB extension {name!r}: {path} missing (wheel built for another DuckDB version?)")
    return path


def load_extension(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Load an extension straight from its wheel (no install step, no folder written)."""
    path = str(extension_file(name)).replace("'", "''")
    con.execute(f"LOAD '{path}'")
