"""Writing a query result to a file: Parquet through DuckDB's COPY, CSV with the same text as stdout."""

from __future__ import annotations

from pathlib import Path

import duckdb

from ticklake.errors import ConfigError, QueryError
from ticklake.query.connection import LakeConnection
from ticklake.query.output import write_result
from ticklake.query.quoting import quote_literal


def save_result(lake: LakeConnection, query: str, output: Path) -> int:
    """Run `query` on `lake` and write its result to `output` (.parquet or .csv); return the row count."""
    suffix = output.suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise ConfigError(f"{output}: output must end in .parquet or .csv")
    output.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".parquet":
        plan = lake.plan(query)
        try:
            lake.con.execute(f"COPY ({plan.sql}) TO {quote_literal(str(output))} (FORMAT parquet, COMPRESSION zstd)")
            row = lake.con.execute(f"SELECT count(*) FROM read_parquet({quote_literal(str(output))})").fetchone()
            return int(row[0]) if row else 0
        except duckdb.Error as e:
            raise QueryError(f"{output}: {' '.join(str(e).split())}") from e
    relation = lake.sql(query)
    with open(output, "w", encoding="utf-8", newline="") as out:
        return write_result(relation.columns, iter(relation.fetchall()), "csv", out)
