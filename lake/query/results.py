"""A query's rows, batch by batch: what every output format reads, so no result is held whole."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb

from ticklake.query.failures import translated

BATCH_ROWS = 10_000


class ResultStream:
    """The rows of one query, fetched `BATCH_ROWS` at a time; DuckDB's errors while fetching
    (a CAST failing on row 300,000, a truncated data file) are the project's one-line errors."""

    def __init__(self, relation: duckdb.DuckDBPyRelation, query: str, root: Path) -> None:
        self.columns: list[str] = list(relation.columns)
        self._relation = relation
        self._query = query
        self._root = root

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        while True:
            with translated(self._query, self._root):
                batch = self._relation.fetchmany(BATCH_ROWS)
            if not batch:
                return
            yield from batch
