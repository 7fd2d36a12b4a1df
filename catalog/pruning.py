"""Catalog-side file pruning: from simple column conditions to the files a query must read.

Steps run in a fixed order and each is recorded, so ``--explain`` can show what every index
saved: snapshot → partitions and time range → min/max statistics → inverted index → Bloom filters.
Each step only ever removes files that cannot hold a matching row; it never changes a result.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ticklake.catalog.bloom import BloomFilter, canonical
from ticklake.catalog.records import Dataset, LiveFile
from ticklake.catalog.store import _LIVE, Catalog, _live_file

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


def prune_files(
    catalog: Catalog,
    dataset: Dataset,
    conditions: Iterable[Condition],
    *,
    snapshot: int | None = None,
) -> PrunePlan:
    """Files of `dataset` live in `snapshot` (default: current) that may hold rows matching all `conditions`."""
    spec = dataset.spec
    snap = catalog.current_snapshot() if snapshot is None else snapshot
    conds = [c for c in conditions if c.op in _OPS and c.column in spec.columns and c.values]
    db = catalog.db
    params: dict[str, Any] = {"dataset": dataset.dataset_id, "snapshot": snap}
    total = catalog.live_file_count(dataset.dataset_id, snap)
    steps = [PruneStep("snapshot", total)]

    # Partitions and time range: from file records alone.
    time_conds = [c for c in conds if c.column == spec.time_column]
    part_conds = [c for c in conds if c.column in spec.partition_keys]
    implied = [t for c in part_conds if c.column == "date" for t in _date_as_time(c, spec.time_column)]
    sql = (
        "SELECT file_id, path, partition_path, partition_values, rows, bytes, ts_min, ts_max, added_snapshot"
        f" FROM files WHERE dataset_id = :dataset AND {_LIVE}"
    )
    if time_conds or implied:
        # The longest file span turns "ts_max >= x" into an index range "ts_min >= x - span".
        (params["span"],) = db.execute(
            "SELECT max_file_span FROM datasets WHERE dataset_id = :dataset", params
        ).fetchone()
    for i, c in enumerate(time_conds + implied):
        sql += _time_clause(c, i, params)
    files = [_live_file(r) for r in db.execute(sql + " ORDER BY path", params)]
    if part_conds:
        files = [f for f in files if all(_partition_match(f, c, spec.columns[c.column]) for c in part_conds)]
    steps.append(PruneStep("partitions", len(files), tuple(describe(c) for c in time_conds + part_conds)))

    # Min/max statistics of data columns.
    stat_conds = [c for c in conds if c.column not in spec.partition_keys and c.column != spec.time_column]
    used: list[str] = []
    for c in stat_conds:
        stats = _column_rows(db, "SELECT file_id, min_value, max_value FROM file_stats WHERE column_name = ?", c.column, files)
        if not stats:
            continue
        files = [f for f in files if f.file_id not in stats or _stats_match(stats[f.file_id], c)]
        used.append(describe(c))
    steps.append(PruneStep("min/max", len(files), tuple(used)))

    # Inverted index: exact value -> files.
    used = []
    for c in conds:
        if c.column in spec.indexed_columns and c.op in ("=", "in") and c.column not in spec.partition_keys:
            keys = [canonical(v).decode() for v in c.values]
            marks = ", ".join("?" * len(keys))
            hits = {
                r[0]
                for r in db.execute(
                    f"SELECT file_id FROM file_values WHERE column_name = ? AND value IN ({marks})"
                    " AND file_id IN (SELECT value FROM json_each(?))",
                    [c.column, *keys, json.dumps([f.file_id for f in files])],
                )
            }
            files = [f for f in files if f.file_id in hits]
            used.append(describe(c))
    steps.append(PruneStep("inverted index", len(files), tuple(used)))

    # Bloom filters: "certainly not here" per file.
    used = []
    for c in conds:
        if c.column in spec.bloom_columns and c.op in ("=", "in"):
            blooms = _column_rows(
                db, "SELECT file_id, num_bits, num_hashes, bits FROM file_blooms WHERE column_name = ?", c.column, files
            )
            files = [
                f
                for f in files
                if f.file_id not in blooms or any(BloomFilter(*blooms[f.file_id]).might_contain(v) for v in c.values)
            ]
            used.append(describe(c))
    steps.append(PruneStep("bloom", len(files), tuple(used)))
    return PrunePlan(snap, files, steps)


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


def _column_rows(db: Any, sql: str, column: str, files: list[LiveFile]) -> dict[int, tuple[Any, ...]]:
    """Rows of a per-file table for one column, keyed by file id, for the candidate files only
    (looked up by primary key, so the cost follows the candidates, not the size of the lake)."""
    if not files:
        return {}
    ids = json.dumps([f.file_id for f in files])
    rows = db.execute(sql + " AND file_id IN (SELECT value FROM json_each(?))", (column, ids))
    return {r[0]: tuple(r[1:]) for r in rows}


__all__ = ["Condition", "PrunePlan", "PruneStep", "may_match", "prune_files"]
