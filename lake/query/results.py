"""A query's rows, batch by batch: what every output format reads, so no result is held whole."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb

from ticklake.query.failures import translated

BATCH_ROWS = 10_000


class ResultStream:
    """The rows of one query, fetched `BATCH_ROWS` at a time; DuckDB's errors while fetching
    (a CAST failing on row 300,000, a truncated data file) are the project's one-line errors.

    `rerun` finds the error behind a fetch DuckDB reports as "Interrupted!" (`ticklake.query.failures`).
    """

    def __init__(
        self, relation: duckdb.DuckDBPyRelation, query: str, root: Path, rerun: Callable[[], object] | None = None
    ) -> None:
        self.columns: list[str] = list(relation.columns)
        self._relation = relation
        self._query = query
        self._root = root
        self._rerun = rerun

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        while True:
            with translated(self._query, self._root, self._rerun):
                batch = self._relation.fetchmany(BATCH_ROWS)
            if not batch:
                return
            yield from batch
