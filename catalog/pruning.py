"""Catalog-side file pruning: from simple column conditions to the files a query must read.

Steps run in a fixed order and each is recorded, so ``--explain`` can show what every index
saved: snapshot → partitions and time range → min/max statistics → inverted index → Bloom filters.
Each step only ever removes files that cannot hold a matching row; it never changes a result.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import starmap
from typing import Any, Protocol

from ticklake.catalog.bloom import BloomFilter, canonical
from ticklake.catalog.records import Dataset, LiveFile
from ticklake.catalog.store import FILE_COLUMNS, LIVE, Catalog

_OPS = {"=", "in", "<", "<=", ">", ">="}


class Condition(Protocol):
    """A predicate on one column: ``column op values`` (values: one, or several for "in")."""

    @property
    def column(self) -> str: ...
    @property
    def op(self) -> str: ...
    @property
    def values(self) -> tuple[Any, ...]: ...


@dataclass(frozen=True)
class PruneStep:
    """Files left after one pruning step, and the conditions it used."""

    name: str
    files: int
    conditions: tuple[str, ...] = ()


@dataclass(frozen=True)
class PrunePlan:
    """The files a query reference must read, in a given snapshot, and how they were found."""

    snapshot: int
    files: list[LiveFile]
    steps: list[PruneStep]


def may_match(low: Any, high: Any, op: str, values: Sequence[Any]) -> bool:
    """Could a column whose values lie in [low, high] satisfy ``column op values``?

    >>> may_match(10, 20, "=", [15]), may_match(10, 20, "in", [1, 30]), may_match(10, 20, ">", [20])
    (True, False, False)
    >>> may_match(None, None, "=", [1])  # an all-null column matches no comparison
    False
    """
    if low is None or high is None:
        return False
    try:
        if op in ("=", "in"):
            return any(low <= v <= high for v in values)
        (v,) = values
        if op == "<":
            return bool(low < v)
        if op == "<=":
            return bool(low <= v)
        if op == ">":
            return bool(high > v)
        if op == ">=":
            return bool(high >= v)
    except TypeError:
        return True  # values of another type than the statistics: do not prune on them
    raise ValueError(f"unknown operator {op!r}")


def describe(condition: Condition) -> str:
    """A condition as text for plans and explain output.

    >>> from types import SimpleNamespace as C
    >>> describe(C(column="contract_id", op="in", values=(1, 2)))
    'contract_id IN (1, 2)'
    """
    if condition.op == "in":
        return f"{condition.column} IN ({', '.join(map(_show, condition.values))})"
    return f"{condition.column} {condition.op} {_show(condition.values[0])}"


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


@dataclass(frozen=True)
class _Scope:
    """What every step may read: the catalog, the dataset, the snapshot and the usable conditions."""

    catalog: Catalog
    dataset: Dataset
    snapshot: int
    conditions: list[Condition]


Candidates = list[LiveFile] | None
"""Files a step may still keep. None before the partitions step: every file live in the snapshot,
counted from the catalog's record but not loaded, so that step can load only those in its time
range through SQLite's index."""

Step = Callable[[_Scope, Candidates], tuple[Candidates, list[Condition]]]


def _snapshot(scope: _Scope, files: Candidates) -> tuple[Candidates, list[Condition]]:
    """Every file live in the snapshot, left unloaded (see `Candidates`)."""
    return files, []


def _partitions(scope: _Scope, files: Candidates) -> tuple[Candidates, list[Condition]]:
    """Partitions and time range, from the file records alone."""
    spec = scope.dataset.spec
    time_conds = [c for c in scope.conditions if c.column == spec.time_column]
    part_conds = [c for c in scope.conditions if c.column in spec.partition_keys]
    implied = [t for c in part_conds if c.column == "date" for t in _date_as_time(c, spec.time_column)]
    kept = _loaded(scope, files, time_conds + implied)
    if part_conds:
        kept = [f for f in kept if all(_partition_match(f, c, spec.columns[c.column]) for c in part_conds)]
    return kept, time_conds + part_conds


def _min_max(scope: _Scope, files: Candidates) -> tuple[Candidates, list[Condition]]:
    """Min/max statistics of data columns."""
    spec = scope.dataset.spec
    kept = _loaded(scope, files)
    used = []
    for c in scope.conditions:
        if c.column in spec.partition_keys or c.column == spec.time_column:
            continue
        stats = _column_rows(
            scope.catalog.db, "SELECT file_id, min_value, max_value FROM file_stats WHERE column_name = ?", c.column, kept
        )
        if not stats:
            continue
        kept = [f for f in kept if f.file_id not in stats or _stats_match(stats[f.file_id], c)]
        used.append(c)
    return kept, used


def _inverted_index(scope: _Scope, files: Candidates) -> tuple[Candidates, list[Condition]]:
    """Inverted index: exact value -> files."""
    spec = scope.dataset.spec
    kept = _loaded(scope, files)
    used = []
    for c in scope.conditions:
        if c.column in spec.indexed_columns and c.op in ("=", "in") and c.column not in spec.partition_keys:
            keys = [canonical(v).decode() for v in c.values]
            marks = ", ".join("?" * len(keys))
            hits = {
                r[0]
                for r in scope.catalog.db.execute(
                    f"SELECT file_id FROM file_values WHERE column_name = ? AND value IN ({marks})"
                    " AND file_id IN (SELECT value FROM json_each(?))",
                    [c.column, *keys, json.dumps([f.file_id for f in kept])],
                )
            }
            kept = [f for f in kept if f.file_id in hits]
            used.append(c)
    return kept, used


def _bloom(scope: _Scope, files: Candidates) -> tuple[Candidates, list[Condition]]:
    """Bloom filters: "certainly not here" per file."""
    kept = _loaded(scope, files)
    used = []
    for c in scope.conditions:
        if c.column in scope.dataset.spec.bloom_columns and c.op in ("=", "in"):
            blooms = _column_rows(
                scope.catalog.db,
                "SELECT file_id, num_bits, num_hashes, bits FROM file_blooms WHERE column_name = ?",
                c.column,
                kept,
            )
            kept = [
                f
                for f in kept
                if f.file_id not in blooms or any(BloomFilter(*blooms[f.file_id]).might_contain(v) for v in c.values)
            ]
            used.append(c)
    return kept, used


STEPS: tuple[tuple[str, Step], ...] = (
    ("snapshot", _snapshot),
    ("partitions", _partitions),
    ("min/max", _min_max),
    ("inverted index", _inverted_index),
    ("bloom", _bloom),
)
"""The pruning steps in the order they run, each named as plans and ``--explain`` show it."""


def prune_files(
    catalog: Catalog,
    dataset: Dataset,
    conditions: Iterable[Condition],
    *,
    snapshot: int | None = None,
) -> PrunePlan:
    """Files of `dataset` live in `snapshot` (default: current) that may hold rows matching all `conditions`."""
    spec = dataset.spec
    scope = _Scope(
        catalog,
        dataset,
        catalog.current_snapshot() if snapshot is None else snapshot,
        [c for c in conditions if c.op in _OPS and c.column in spec.columns and c.values],
    )
    files: Candidates = None
    steps = []
    for name, step in STEPS:
        files, used = step(scope, files)
        count = catalog.live_file_count(dataset.dataset_id, scope.snapshot) if files is None else len(files)
        steps.append(PruneStep(name, count, tuple(describe(c) for c in used)))
    return PrunePlan(scope.snapshot, _loaded(scope, files), steps)


def _loaded(scope: _Scope, files: Candidates, bounds: Sequence[Condition] = ()) -> list[LiveFile]:
    """The candidates within the time `bounds`, loading them when they are not loaded yet."""
    if files is not None:
        if not bounds:
            return files
        return [f for f in files if all(may_match(f.ts_min, f.ts_max, c.op, c.values) for c in bounds)]
    db = scope.catalog.db
    params: dict[str, Any] = {"dataset": scope.dataset.dataset_id, "snapshot": scope.snapshot}
    sql = f"SELECT {FILE_COLUMNS} FROM files WHERE dataset_id = :dataset AND {LIVE}"
    if bounds:
        # The longest file span turns "ts_max >= x" into an index range "ts_min >= x - span".
        (params["span"],) = db.execute("SELECT max_file_span FROM datasets WHERE dataset_id = :dataset", params).fetchone()
    for i, c in enumerate(bounds):
        sql += _time_clause(c, i, params)
    # Columns come typed from SQLite (INTEGER, TEXT): no conversion on this hot path.
    return list(starmap(LiveFile, db.execute(sql + " ORDER BY path", params)))


@dataclass(frozen=True)
class _TimeBound:
    column: str
    op: str
    values: tuple[Any, ...]


def _date_as_time(c: Condition, time_column: str) -> list[Condition]:
    """Time-range bounds implied by a condition on the ``date`` partition, which by convention is
    the UTC date of the time column; they let SQLite use its time index (exact filtering follows).

    >>> [(b.op, b.values) for b in _date_as_time(_TimeBound("date", "=", (dt.date(1970, 1, 2),)), "timestamp")]
    [('>=', (86400000000,)), ('<', (172800000000,))]
    """
    if c.op == "in" or not isinstance(c.values[0], dt.date):
        return []
    start = (c.values[0] - dt.date(1970, 1, 1)).days * 86_400_000_000
    end = start + 86_400_000_000
    bounds = {
        "=": [(">=", start), ("<", end)],
        "<": [("<", start)],
        "<=": [("<", end)],
        ">": [(">=", end)],
        ">=": [(">=", start)],
    }
    return [_TimeBound(time_column, op, (value,)) for op, value in bounds[c.op]]


def _stats_match(row: tuple[Any, ...], c: Condition) -> bool:
    low, high = row
    return may_match(low, high, c.op, c.values)


def _time_clause(c: Condition, i: int, params: dict[str, Any]) -> str:
    if c.op in ("=", "in"):
        names = []
        for j, v in enumerate(c.values):
            params[f"t{i}_{j}"] = v
            names.append(f"(ts_min <= :t{i}_{j} AND ts_max >= :t{i}_{j})")
        return " AND (" + " OR ".join(names) + ")"
    params[f"t{i}"] = c.values[0]
    return {
        "<": f" AND ts_min < :t{i}",
        "<=": f" AND ts_min <= :t{i}",
        ">": f" AND ts_max > :t{i} AND ts_min > :t{i} - :span",
        ">=": f" AND ts_max >= :t{i} AND ts_min >= :t{i} - :span",
    }[c.op]


def _partition_match(f: LiveFile, c: Condition, column_type: str) -> bool:
    if c.column not in f.partition_values:
        return True
    value = f.partition_values[c.column]
    values = [v.isoformat() if isinstance(v, dt.date) else v for v in c.values]
    if column_type.upper() in ("INTEGER", "BIGINT") and isinstance(value, str):
        value = int(value)
    return may_match(value, value, c.op, values)


def _column_rows(db: sqlite3.Connection, sql: str, column: str, files: list[LiveFile]) -> dict[int, tuple[Any, ...]]:
    """Rows of a per-file table for one column, keyed by file id, for the candidate files only
    (looked up by primary key, so the cost follows the candidates, not the size of the lake)."""
    if not files:
        return {}
    ids = json.dumps([f.file_id for f in files])
    rows = db.execute(sql + " AND file_id IN (SELECT value FROM json_each(?))", (column, ids))
    return {r[0]: tuple(r[1:]) for r in rows}


__all__ = ["STEPS", "Condition", "PrunePlan", "PruneStep", "may_match", "prune_files"]
