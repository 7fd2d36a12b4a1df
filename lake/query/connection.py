"""SQL over the lake: DuckDB reads only the files the catalog cannot rule out.

Every reference to a dataset (``ticks``) in a SELECT is found with DuckDB's own parser
(`ticklake.query.predicates`), pruned through the catalog by its own predicates, and rewritten to a
view over exactly those files. The lake directory is never listed at query time.
Statements that are not a single SELECT run against a view of the whole snapshot.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from ticklake.access import open_catalog
from ticklake.catalog import Dataset, LiveFile, PrunePlan, prune_files
from ticklake.config import LakeConfig
from ticklake.errors import NotFoundError, QueryError, StorageError
from ticklake.query.duck import connect_duckdb
from ticklake.query.kinds import PREDICATE_KINDS
from ticklake.query.predicates import TableRef, find_table_refs
from ticklake.query.quoting import literal_list, quote_identifier

_EXPLAIN = re.compile(r"^\s*EXPLAIN\s+(ANALYZE\s+)?", re.IGNORECASE)


@dataclass(frozen=True)
class RefPlan:
    """How one table reference in a query was pruned."""

    dataset: str
    alias: str | None
    text: str
    plan: PrunePlan

    def describe(self) -> str:
        """Steps as ``name: N files (conditions)`` lines."""
        name = self.dataset + (f" AS {self.alias}" if self.alias else "")
        lines = [f"{name} (snapshot {self.plan.snapshot}):"]
        for step in self.plan.steps:
            used = f"  [{'; '.join(step.conditions)}]" if step.conditions else ""
            lines.append(f"  {step.name:<15} {step.files:>7} files{used}")
        return "\n".join(lines)


@dataclass(frozen=True)
class QueryPlan:
    """A user query, the SQL DuckDB will run, and the pruning of each reference."""

    query: str
    sql: str
    refs: tuple[RefPlan, ...]
    pruned: bool


class LakeConnection:
    """A DuckDB connection over a lake; dataset names (``ticks``) are tables in SQL.

    `sql`, `execute` and `query` prune through the catalog first; everything else is
    DuckDB's own connection API (``.df()``, ``.arrow()``, ``.fetchall()`` on results).
    """

    def __init__(self, config: LakeConfig, *, snapshot: int | None = None, threads: int = 0) -> None:
        self.config = config
        self.root = config.root.resolve()
        self.catalog = open_catalog(config)
        if snapshot is not None and not self.catalog.has_snapshot(snapshot):
            newest = self.catalog.current_snapshot()
            self.catalog.close()
            raise NotFoundError(f"lake {config.root}: no snapshot {snapshot} (snapshots are 1 to {newest})")
        self.pinned = snapshot
        self.con = connect_duckdb(threads=threads or config.threads)
        self._views: dict[str, str] = {}
        self._refs_cache: dict[str, list[tuple[TableRef, Dataset]] | None] = {}
        self._full_snapshot = -1
        self._refresh_full_views(self.snapshot, strict=False)

    # -- the DuckDB API, pruned ---------------------------------------------------------------

    def sql(self, query: str, params: Any = None) -> duckdb.DuckDBPyRelation:
        """Run `query` (pruned) and return DuckDB's relation; named `params` prune like literals."""
        plan = self.plan(query, params)
        try:
            return self.con.sql(plan.sql, params=params)
        except duckdb.Error as e:
            raise QueryError(_one_line(e)) from e

    query = sql

    def execute(self, query: str, params: Any = None) -> LakeConnection:
        """Run `query` (pruned); fetch with `fetchall`/`fetchone`/`df`/`arrow` as on DuckDB."""
        plan = self.plan(query, params)
        try:
            self.con.execute(plan.sql, params)
        except duckdb.Error as e:
            raise QueryError(_one_line(e)) from e
        return self

    def __getattr__(self, name: str) -> Any:
        return getattr(self.con, name)

    def close(self) -> None:
        """Close DuckDB and the catalog."""
        self.con.close()
        self.catalog.close()

    def __enter__(self) -> LakeConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- planning -------------------------------------------------------------------------------

    @property
    def snapshot(self) -> int:
        """The snapshot queries read: the pinned one, or the catalog's newest."""
        return self.catalog.current_snapshot() if self.pinned is None else self.pinned

    def plan(self, query: str, params: Any = None) -> QueryPlan:
        """Prune every dataset reference of `query` and return the SQL to run.

        `params` are the values the query will run with; named ones (a mapping for ``$name``)
        take part in pruning, positional ones (``?``) do not.
        """
        snapshot = self.snapshot
        self._refresh_full_views(snapshot, strict=False)
        prefix = ""
        m = _EXPLAIN.match(query)
        body = query
        if m:
            prefix, body = query[: m.end()], query[m.end() :]
        refs = self._references(body, params if isinstance(params, Mapping) else None)
        if refs is None:
            # SET, CREATE, ... may change what constants mean (e.g. TimeZone): forget cached analyses.
            self._refs_cache.clear()
            self._refresh_full_views(snapshot, strict=True)
            return QueryPlan(query, query, (), False)
        text = body
        ref_plans: list[RefPlan] = []
        for ref, dataset in sorted(refs, key=lambda rd: rd[0].start, reverse=True):
            pruned = prune_files(self.catalog, dataset, ref.predicates, snapshot=snapshot)
            view = self._view(dataset, pruned.files)
            alias = "" if ref.alias else " AS " + quote_identifier(dataset.spec.name)
            ref_plans.append(RefPlan(dataset.spec.name, ref.alias, body[ref.start : ref.end], pruned))
            text = text[: ref.start] + view + alias + text[ref.end :]
        return QueryPlan(query, prefix + text, tuple(reversed(ref_plans)), True)

    def _references(self, body: str, params: Mapping[str, object] | None = None) -> list[tuple[TableRef, Dataset]] | None:
        """Dataset references of a statement and their predicates (None: not a single SELECT).

        Without parameters the analysis depends only on the text and session settings, so it
        is cached per connection; which files the predicates select is decided anew by every plan.
        """
        if not params and body in self._refs_cache:
            return self._refs_cache[body]
        refs: list[tuple[TableRef, Dataset]] | None = []
        for dataset in self.catalog.datasets():
            found = find_table_refs(self.con, body, dataset.spec.name, _kinds(dataset), params)
            if found is None or refs is None:
                refs = None
                break
            refs.extend((r, dataset) for r in found)
        if params:
            return refs
        if len(self._refs_cache) >= 512:
            self._refs_cache.clear()
        self._refs_cache[body] = refs
        return refs

    def explain(self, query: str) -> str:
        """Files per pruning step for each reference, then DuckDB's plan."""
        plan = self.plan(query)
        out = []
        if not plan.pruned:
            out.append("not a single SELECT: runs over every file of the snapshot (no catalog pruning)")
        for ref in plan.refs:
            out.append(ref.describe())
            out.extend(f"    {f.path}" for f in ref.plan.files)
        try:
            rows = self.con.execute("EXPLAIN " + _EXPLAIN.sub("", plan.sql)).fetchall()
        except duckdb.Error as e:
            raise QueryError(_one_line(e)) from e
        out.append("DuckDB plan:")
        out.extend(str(r[1]) for r in rows)
        return "\n".join(out)

    # -- views ------------------------------------------------------------------------------------

    def _refresh_full_views(self, snapshot: int, *, strict: bool) -> None:
        """(Re)define each dataset's own name as a view over its whole snapshot, when it changed.

        DuckDB checks the files when a view is created; a missing file only matters to a query
        that reads it, so outside `strict` (a query that needs the whole snapshot) it is ignored.
        """
        if snapshot == self._full_snapshot:
            return
        for dataset in self.catalog.datasets():
            files = self.catalog.live_files(dataset.dataset_id, snapshot=snapshot)
            try:
                self._create_view(quote_identifier(dataset.spec.name), dataset, files)
            except StorageError:
                if strict:
                    raise
                self.con.execute(f"DROP VIEW IF EXISTS {quote_identifier(dataset.spec.name)}")
                return
        self._full_snapshot = snapshot

    def _create_view(self, name: str, dataset: Dataset, files: list[LiveFile]) -> None:
        try:
            self.con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS {self._select(dataset, files)}")
        except duckdb.IOException as e:
            raise StorageError(f"lake {self.root}: a data file listed in the catalog is unreadable: {_one_line(e)}") from e

    def _view(self, dataset: Dataset, files: list[LiveFile]) -> str:
        """A temp view over exactly `files`, reused while the same file list comes back."""
        key = hashlib.sha1("\n".join([dataset.spec.name, *(f.path for f in files)]).encode()).hexdigest()[:16]
        name = f"__{dataset.spec.name}_{key}"
        if name not in self._views:
            if len(self._views) > 256:
                for old in list(self._views)[:128]:
                    self.con.execute(f"DROP VIEW IF EXISTS {old}")
                    del self._views[old]
            self._create_view(name, dataset, files)
            self._views[name] = dataset.spec.name
        return name

    def _select(self, dataset: Dataset, files: list[LiveFile]) -> str:
        spec = dataset.spec
        columns = ", ".join(quote_identifier(c) for c in spec.columns)
        if not files:
            typed = ", ".join(f"NULL::{t} AS {quote_identifier(c)}" for c, t in spec.columns.items())
            return f"SELECT {typed} WHERE false"
        paths = literal_list(str(self.root / f.path) for f in files)
        hive = "{" + ", ".join(f"'{k}': {spec.columns[k]}" for k in spec.partition_keys) + "}"
        return f"SELECT {columns} FROM read_parquet({paths}, hive_partitioning = true, hive_types = {hive})"


def connect(root: str | Path | None = None, *, snapshot: int | None = None, config: LakeConfig | None = None) -> LakeConnection:
    """Open a lake for SQL: ``ticklake.connect("lakehouse").sql("SELECT count(*) FROM ticks").fetchall()``."""
    cfg = config or LakeConfig.from_env()
    if root is not None:
        cfg = cfg.with_root(root)
    return LakeConnection(cfg, snapshot=snapshot)


def _kinds(dataset: Dataset) -> dict[str, str]:
    return {c: PREDICATE_KINDS[t] for c, t in dataset.spec.columns.items() if t in PREDICATE_KINDS}


def _one_line(error: Exception) -> str:
    text = " ".join(str(error).split())
    return text if len(text) < 500 else text[:497] + "..."
