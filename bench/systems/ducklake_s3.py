"""DuckLake with its data path on an S3 server: the local-disk DuckLake system, data files in a bucket.

The catalog stays a local SQLite file; DuckLake writes and reads its Parquet through DuckDB's
httpfs with the S3 settings as the AWS SDKs resolve them. Layout, sort order and compaction are
those of `DuckLakeSystem`.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from bench.systems.base import duck
from bench.systems.ducklake import LAKE, DuckLakeSystem
from ticklake.query.duck import load_extension
from ticklake.query.quoting import quote_literal
from ticklake.storage.objects import S3Access


class DuckLakeS3System(DuckLakeSystem):
    """`DuckLakeSystem` with ``DATA_PATH 's3://...'``."""

    name = "ducklake-s3"
    description = "DuckLake 1.5.5, SQLite catalog, DATA_PATH on the S3 server (httpfs); layout as ducklake"

    def __init__(self, workdir: Path, data_uri: str) -> None:
        super().__init__(workdir)
        self.data_uri = data_uri.rstrip("/") + "/"

    def _connect(self, *, read_only: bool) -> duckdb.DuckDBPyConnection:
        """As `DuckLakeSystem._connect`, with httpfs and an S3 secret first, and the bucket as data path.

        A reader attaches without DATA_PATH: DuckLake keeps it in its catalog.
        """
        con = duck()
        for name in ("httpfs", "sqlite_scanner", "ducklake"):
            load_extension(con, name)
        S3Access.from_environment().duckdb_secret(con)
        target = quote_literal(f"ducklake:sqlite:{self.catalog}")
        if read_only:
            con.execute(f"ATTACH {target} AS {LAKE} (READ_ONLY)")
        else:
            data = quote_literal(self.data_uri)
            con.execute(f"ATTACH {target} AS {LAKE} (DATA_PATH {data}, DATA_INLINING_ROW_LIMIT 0)")
        return con
