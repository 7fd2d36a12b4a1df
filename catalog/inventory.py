"""Questions the catalog answers alone, without opening a data file."""

from __future__ import annotations

from dataclasses import dataclass

from ticklake.catalog.bloom import canonical
from ticklake.catalog.errors import CatalogError
from ticklake.catalog.records import Dataset
from ticklake.catalog.store import LIVE, Catalog


@dataclass(frozen=True)
class Presence:
    """Where an indexed value occurs in a time range: rows and files per partition value."""

    value: str
    rows: int
    files: int
    partitions: tuple[str, ...]

    @property
    def found(self) -> bool:
        """True when at least one row holds the value."""
        return self.rows > 0


def value_presence(
    catalog: Catalog,
    dataset: Dataset,
    column: str,
    value: object,
    ts_from: int,
    ts_to: int,
    *,
    snapshot: int | None = None,
) -> Presence:
    """Rows holding ``column = value`` in live files whose time range lies in [ts_from, ts_to).

    Exact for files inside the range (hourly files inside a day); answered from the inverted
    index, so no data file is opened. Raises CatalogError for a column with no inverted index.
    """
    if column not in dataset.spec.indexed_columns:
        raise CatalogError(f"column {column!r} of dataset {dataset.spec.name!r} has no inverted index")
    key = canonical(value).decode()
    rows = catalog.db.execute(
        "SELECT f.partition_path, v.rows FROM file_values v JOIN files f ON f.file_id = v.file_id"
        f" WHERE v.column_name = :column AND v.value = :value AND f.dataset_id = :dataset AND {LIVE}"
        " AND f.ts_min >= :ts_from AND f.ts_max < :ts_to ORDER BY f.partition_path",
        {
            "column": column,
            "value": key,
            "dataset": dataset.dataset_id,
            "snapshot": catalog.current_snapshot() if snapshot is None else snapshot,
            "ts_from": ts_from,
            "ts_to": ts_to,
        },
    ).fetchall()
    return Presence(key, sum(r[1] for r in rows), len(rows), tuple(r[0] for r in rows))
