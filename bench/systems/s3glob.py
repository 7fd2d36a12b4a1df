"""DuckDB straight on the bucket: ``read_parquet('s3://.../**/*.parquet', hive_partitioning = true)``.

What a user tries first on object storage, and Q7's baseline. It reads ticklake's archived
objects themselves (the same bytes, no copy), which hold their partition columns as real
columns; the key path (``tick_type=.../date=...``) gives the same values again, so every row and
column is the same as ticklake's. Each query states the glob itself (a CTE named ``ticks``), so a
query pays its own LIST, as one written against the bucket does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from bench.queries import Query
from bench.systems.base import System, duck
from ticklake.query.duck import load_extension
from ticklake.query.quoting import quote_literal
from ticklake.storage.objects import S3Access


class S3GlobSystem(System):
    """A glob over the objects below `prefix` (``s3://bucket/prefix``), read by DuckDB's httpfs."""

    name = "duckdb-s3-glob"
    description = "DuckDB 1.5.5 httpfs: read_parquet('s3://.../**/*.parquet', hive_partitioning = true)"

    def __init__(self, workdir: Path, prefix: str) -> None:
        super().__init__(workdir)
        self.glob = prefix.rstrip("/") + "/**/*.parquet"
        self.con: duckdb.DuckDBPyConnection | None = None

    def open(self) -> None:
        """A DuckDB connection with httpfs and the S3 settings as the AWS SDKs resolve them."""
        self.close()
        self.con = duck()
        load_extension(self.con, "httpfs")
        S3Access.from_environment().duckdb_secret(self.con)

    def sql(self, q: Query) -> str:
        """The query over the glob instead of a table."""
        source = f"SELECT * FROM read_parquet({quote_literal(self.glob)}, hive_partitioning = true)"
        return f"WITH ticks AS ({source}) {q.sql}"

    def query(self, q: Query) -> list[tuple[Any, ...]]:
        """All rows of `q`, the glob listed and its files read by DuckDB."""
        if self.con is None:
            raise RuntimeError("open() first")
        return self.con.execute(self.sql(q)).fetchall()

    def close(self) -> None:
        """Close DuckDB."""
        if self.con is not None:
            self.con.close()
            self.con = None
