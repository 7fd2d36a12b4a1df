"""SQL over the lake: DuckDB reads only the files the catalog cannot rule out.

Every reference to a dataset (``ticks``) in a SELECT is found with DuckDB's own parser
(`ticklake.query.predicates`), pruned through the catalog by its own predicates, and rewritten to a
view over exactly those files. The lake directory is never listed at query time.
Statements that are not a single SELECT run against a view of the whole snapshot.
Unless the connection reads a pinned snapshot or `fresh` is off, `ticks` also holds the hot tier
(sealed landing segments not yet compacted) and `bars_1m` computes the hours not rolled up yet
(`ticklake.query.fresh`).

Unless opened with ``unsafe``, a connection only reads (`ticklake.query.safety`): statements that
write files, open databases, load extensions, store secrets or change settings are refused.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb

from ticklake.access import open_catalog
from ticklake.catalog import Dataset, LiveFile, PrunePlan, prune_files
from ticklake.catalog.pruning import Condition, describe
from ticklake.config import LakeConfig
from ticklake.errors import ConfigError, QueryError, StorageError
from ticklake.maintenance.pins import pin_reader, unpin
from ticklake.query.duck import connect_duckdb
from ticklake.query.failures import failure, guarded, translated
from ticklake.query.fresh import BARS, TICKS, HotPart, HotTier, Moved
from ticklake.query.history import SnapshotChoice, choose_snapshot
from ticklake.query.kinds import PREDICATE_KINDS
from ticklake.query.predicates import TableRef, find_table_refs
from ticklake.query.quoting import literal_list, quote_identifier
from ticklake.query.requests import QueryRequests, add_cache, add_duckdb, count_files
from ticklake.query.results import ResultStream
from ticklake.query.safety import check_read_only, confine
from ticklake.storage.objects import ObjectLocation
from ticklake.storage.publication import LocalTier, local_tier
from ticklake.storage.tiers import ColdPart, ColdReads, local_path, tier_of

_EXPLAIN = re.compile(r"^\s*EXPLAIN\s+(ANALYZE\s+)?", re.IGNORECASE)
_SHOWN = re.compile(r"^\s*(DESCRIBE|SHOW|SUMMARIZE|TABLE)\s+$", re.IGNORECASE)
_PLAN_ATTEMPTS = 50  # plans in a row that may find the lake committed meanwhile (see `ticklake.query.fresh`)
SLICE_ROWS_BYTES = 64 * 2**20  # slices up to this size hand a view only their rows meeting its integer conditions


@dataclass(frozen=True)
class RefPlan:
    """How one table reference in a query was pruned."""

    dataset: str
    alias: str | None
    text: str
    plan: PrunePlan
    hot: HotPart | None = None  # the hot tier or computed bars it reads as well

    def describe(self) -> str:
        """Steps as ``name: N files (conditions)`` lines."""
        name = self.dataset + (f" AS {self.alias}" if self.alias else "")
        lines = [f"{name} (snapshot {self.plan.snapshot}):"]
        for step in self.plan.steps:
            used = f"  [{'; '.join(step.conditions)}]" if step.conditions else ""
            lines.append(f"  {step.name:<15} {step.files:>7} files{used}")
        if self.hot is not None:
            lines.extend(self.hot.lines)
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

    `sql`, `execute`, `query` and `stream` check the statement (unless `unsafe`) and prune through
    the catalog first. After `execute`, this connection's own fetch helpers (`fetchall`, `df`,
    `to_arrow_table`, ...) raise the project's one-line errors; a relation returned by `sql` is DuckDB's
    own, and its ``.fetchall()`` raises ``duckdb.Error``. Everything else is DuckDB's connection API.
    """

    def __init__(
        self,
        config: LakeConfig,
        *,
        snapshot: int | None = None,
        as_of: str | datetime | date | None = None,
        threads: int = 0,
        unsafe: bool = False,
        fresh: bool | None = None,
        readable: Sequence[Path] | None = None,
        memory_limit: str | None = None,
        shared: bool = False,
        spill: Path | None = None,
    ) -> None:
        """Pin `snapshot`, or the newest snapshot committed at or before `as_of`; `unsafe` lifts the read-only policy.

        `fresh` (default: the ``fresh`` setting) includes the hot tier; a pinned snapshot never does.
        `readable` narrows the local folders DuckDB may open to these (a server's clients get the
        lake and its cache, not the machine); `memory_limit` bounds the connection's memory.
        `shared`: used from several threads, one at a time (a server's pool hands it from call to call).
        `spill`: where DuckDB spills what exceeds memory (DuckDB lets a confined connection read it too).
        """
        if fresh and (snapshot is not None or as_of is not None):
            raise ConfigError("--fresh reads landing segments not yet committed; a --snapshot or --as-of read never does")
        self.config = config
        self.root = config.root.resolve()
        self.unsafe = unsafe
        self.catalog = open_catalog(config, shared=shared)
        try:
            self.choice: SnapshotChoice = choose_snapshot(self.catalog, snapshot, as_of)
            # A remote lake (read through its published catalog) cannot read the writer's local files.
            self.local_tier: LocalTier | None = local_tier(self.catalog, self.choice.snapshot) if config.source else None
            self._pin = pin_reader(self.catalog, config.root, self.choice.snapshot)  # vacuum keeps what this reads
        except BaseException:
            self.catalog.close()
            raise
        self.pinned = self.choice.snapshot
        self.fresh = bool(config.fresh if fresh is None else fresh) and self.pinned is None and not config.source
        self._views: dict[str, str] = {}
        self._slice_tables: dict[str, str] = {}  # view -> the temp table of the rows its slices hold
        self._refs_cache: dict[str, list[tuple[TableRef, Dataset]] | None] = {}
        self._checked: set[str] = set()
        self._last_query: str | None = None
        self._last_rerun: Callable[[], object] | None = None
        self._interrupts = 0  # calls of `interrupt`: an interrupt asked for is never run again
        self._full_snapshot = -1
        self._full_hot: tuple[str, ...] = ()
        self._cold = ColdReads(config)
        try:
            self.con = connect_duckdb(threads=threads or config.threads, memory_limit=memory_limit, spill=spill)
        except BaseException:
            self.catalog.close()
            unpin(self._pin)
            raise
        self._hot = HotTier(self.root, self.con)
        try:
            buckets = self._cold_buckets()
            if buckets:  # before the lock: httpfs cannot be loaded, nor a secret made, after it
                self._cold.enable_httpfs(self.con)
            self._refresh_full_views(self.snapshot, strict=False)
            if not unsafe:
                folders = None if readable is None else [str(Path(f).resolve()) for f in readable]
                confine(self.con, [f"s3://{b}/" for b in buckets], folders)
        except BaseException:
            self.close()  # neither the catalog nor the pin outlives a connection that never opened
            raise

    # -- the DuckDB API, pruned ---------------------------------------------------------------

    def sql(self, query: str, params: Any = None) -> duckdb.DuckDBPyRelation:
        """Run `query` (pruned) and return DuckDB's relation; named `params` prune like literals.

        Errors raised while the query is bound are the project's; the relation's own fetch methods
        raise DuckDB's (use `execute` and this connection's fetch helpers, or `stream`, for ours).
        """
        plan = self.plan(query, params)
        return guarded(lambda: self.con.sql(plan.sql, params=params), query, self.root)

    query = sql
    from_query = sql

    def execute(self, query: str, params: Any = None) -> LakeConnection:
        """Run `query` (pruned); fetch with `fetchall`/`fetchone`/`df`/`arrow` as on DuckDB."""
        plan = self.plan(query, params)
        with translated(query, self.root):
            self.con.execute(plan.sql, params)
        self._last_query = query
        self._last_rerun = self._rerun(plan, params)
        return self

    def executemany(self, query: str, params: Any = None) -> LakeConnection:
        """Run `query` once per parameter set (checked, not pruned: the values differ per run)."""
        self._check(query)
        with translated(query, self.root):
            self.con.executemany(query, params or [])
        self._last_query = query
        self._last_rerun = None
        return self

    def stream(self, query: str, params: Any = None) -> ResultStream | None:
        """Run `query` (pruned) and return its rows batch by batch (None: the statement returns none)."""
        plan = self.plan(query, params)
        relation = guarded(lambda: self.con.sql(plan.sql, params=params), query, self.root)
        return None if relation is None else ResultStream(relation, query, self.root, self._rerun(plan, params))

    def interrupt(self) -> None:
        """Stop the running query, as DuckDB's `interrupt` does (its "Interrupted!" is then not run again)."""
        self._interrupts += 1
        self.con.interrupt()

    def _rerun(self, plan: QueryPlan, params: Any) -> Callable[[], object] | None:
        """What runs `plan` again when DuckDB reports "Interrupted!" unasked, to find the error it stands for
        (`ticklake.query.failures`): a single SELECT, which only reads, under EXPLAIN ANALYZE, which runs it
        whole on the same views and streams no result. None for other statements."""
        if not plan.pruned or _EXPLAIN.match(plan.sql):
            return None
        asked, sql = self._interrupts, "EXPLAIN ANALYZE " + plan.sql

        def rerun() -> object:
            return None if self._interrupts != asked else self.con.execute(sql, params).fetchall()

        return rerun

    # DuckDB's fetch methods on the result of `execute`, with the project's errors.
    def fetchall(self) -> list[Any]:
        """All rows of the last `execute`."""
        return self._fetch(self.con.fetchall)

    def fetchone(self) -> Any:
        """The next row of the last `execute`, or None."""
        return self._fetch(self.con.fetchone)

    def fetchmany(self, size: int = 1) -> list[Any]:
        """Up to `size` more rows of the last `execute`."""
        return self._fetch(lambda: self.con.fetchmany(size))

    def df(self) -> Any:
        """The result of the last `execute` as a pandas DataFrame."""
        return self._fetch(self.con.df)

    fetchdf = fetch_df = df

    def to_arrow_table(self) -> Any:
        """The result of the last `execute` as an Arrow table."""
        return self._fetch(self.con.to_arrow_table)

    fetch_arrow_table = to_arrow_table

    def arrow(self) -> Any:
        """The result of the last `execute` as DuckDB's Arrow record batch reader (its batches raise DuckDB's errors)."""
        return self._fetch(self.con.arrow)

    def pl(self) -> Any:
        """The result of the last `execute` as a polars DataFrame."""
        return self._fetch(self.con.pl)

    def fetchnumpy(self) -> Any:
        """The result of the last `execute` as NumPy arrays by column."""
        return self._fetch(self.con.fetchnumpy)

    def _fetch(self, call: Any) -> Any:
        return guarded(call, self._last_query, self.root, self._last_rerun)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.con, name)

    def close(self) -> None:
        """Close DuckDB and the catalog, and let go of cached cold objects."""
        self.con.close()
        self.catalog.close()
        self._cold.close()
        self._hot.close()
        unpin(self._pin)

    def _cold_buckets(self) -> list[str]:
        """Buckets this connection may read: those of the catalog's cold objects and of the cold tier setting."""
        buckets = set(self.catalog.object_buckets())
        if self.config.cold_uri:
            buckets.add(ObjectLocation.parse(self.config.cold_uri).bucket)
        return sorted(buckets)

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
        self._check(query)
        prefix = ""
        m = _EXPLAIN.match(query)
        body = query
        if m:
            prefix, body = query[: m.end()], query[m.end() :]
        refs = self._references(body, params if isinstance(params, Mapping) else None)
        if refs is None:
            # SET, CREATE, ... may change what constants mean (e.g. TimeZone): forget cached analyses.
            self._refs_cache.clear()
        for _ in range(_PLAN_ATTEMPTS):
            try:
                return self._plan_at(self.snapshot, query, prefix, body, refs)
            except Moved:
                continue  # a commit landed while the hot tier was read: plan again on the newer snapshot
        raise QueryError(f"the lake committed during each of {_PLAN_ATTEMPTS} plans of the query; run it again")

    def _plan_at(
        self, snapshot: int, query: str, prefix: str, body: str, refs: list[tuple[TableRef, Dataset]] | None
    ) -> QueryPlan:
        """The plan of `query` on `snapshot` (see `plan`); `Moved` when the hot tier says to plan again."""
        self._refresh_full_views(snapshot, strict=False)
        if refs is None:
            self._refresh_full_views(snapshot, strict=True)
            return QueryPlan(query, query, (), False)
        text = body
        ref_plans: list[RefPlan] = []
        for ref, dataset in sorted(refs, key=lambda rd: rd[0].start, reverse=True):
            pruned = prune_files(self.catalog, dataset, ref.predicates, snapshot=snapshot)
            hot = self._hot_part(dataset, ref.predicates, snapshot, pruned.files)
            view = self._view(dataset, pruned.files, hot, ref.predicates)
            # `DESCRIBE ticks` and `SUMMARIZE ticks` name a table, where no alias may follow.
            bare = ref.alias or _SHOWN.match(body[: ref.start])
            alias = "" if bare else " AS " + quote_identifier(dataset.spec.name)
            ref_plans.append(RefPlan(dataset.spec.name, ref.alias, body[ref.start : ref.end], pruned, hot))
            text = text[: ref.start] + view + alias + text[ref.end :]
        return QueryPlan(query, prefix + text, tuple(reversed(ref_plans)), True)

    def _hot_part(
        self, dataset: Dataset, predicates: Sequence[Condition], snapshot: int, files: list[LiveFile]
    ) -> HotPart | None:
        """What a reference reads beyond `files` when fresh: hot ticks, or bars of hours not rolled up."""
        if not self.fresh:
            return None
        if dataset.spec.name == TICKS:
            return self._hot.ticks_part(self.catalog, dataset, predicates, snapshot)
        ticks = self.catalog.dataset(TICKS) if dataset.spec.name == BARS else None
        if ticks is None:
            return None
        return self._hot.bars_part(self.catalog, dataset, ticks, predicates, snapshot, files, self._locations)

    def _locations(self, files: Sequence[LiveFile]) -> list[str]:
        """What DuckDB reads for `files`: local paths of warm files, then cold objects' copies or URIs."""
        warm = [str(local_path(self.root, f.path)) for f in files if tier_of(f.path) == "warm"]
        return warm + self._cold.locations([f for f in files if tier_of(f.path) == "cold"], self.con)

    def _check(self, query: str) -> None:
        """Refuse what a read-only connection must not run; a text passed once passes again."""
        if self.unsafe or query in self._checked:
            return
        with translated(query, self.root):
            check_read_only(self.con, query)
        # IMPORT DATABASE is judged by the files it names, which may change: never remembered.
        if "import" not in query.lower():
            if len(self._checked) >= 512:
                self._checked.clear()
            self._checked.add(query)

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

    def requests(self, query: str, *, analyze: bool = False) -> QueryRequests:
        """Files and objects `query` reads per tier, and the requests and bytes fetched for it.

        The read cache counts its own fetches while the query is planned; with `analyze` the query
        runs under ``EXPLAIN ANALYZE`` and DuckDB's own HTTP statistics add its direct object reads.
        """
        before = self._cold.cache_stats()
        plan = self.plan(query)
        after = self._cold.cache_stats()
        found = QueryRequests()
        count_files(found, (f.path for ref in plan.refs for f in ref.plan.files))
        hot = [ref.hot for ref in plan.refs if ref.hot is not None]
        count_files(found, (path for part in hot for path in part.files))  # trade files of bars computed
        found.tier("hot").files += sum(part.segments for part in hot)
        misses, gets, fetched = (a - b for a, b in zip(after[1:], before[1:], strict=True))
        found.tier("cold").cached = max(0, found.tier("cold").files - misses) if self.config.cache_bytes else 0
        add_cache(found, 0, misses, gets, fetched)
        if analyze:
            with translated(query, self.root):
                rows = self.con.execute("EXPLAIN ANALYZE " + _EXPLAIN.sub("", plan.sql)).fetchall()
            add_duckdb(found, [str(r[1]) for r in rows])
        return found

    def explain(self, query: str, *, analyze: bool = False) -> str:
        """Files per pruning step for each reference, the requests per tier, then DuckDB's plan."""
        requests = self.requests(query, analyze=analyze)
        plan = self.plan(query)
        out = [f"reading snapshot {self.snapshot}: {self.choice.reason}"]
        if self.local_tier is not None and self.local_tier.files:
            out.append(f"left out: {self.local_tier.line()}")
        if not plan.pruned:
            out.append("not a single SELECT: runs over every file of the snapshot (no catalog pruning)")
        for ref in plan.refs:
            out.append(ref.describe())
            out.extend(f"    {f.path}" for f in ref.plan.files)
        out.append(self._fresh_note())
        out.extend(requests.lines())
        with translated(query, self.root):
            rows = self.con.execute("EXPLAIN " + _EXPLAIN.sub("", plan.sql)).fetchall()
        out.append("DuckDB plan:")
        out.extend(str(r[1]) for r in rows)
        return "\n".join(out)

    def _fresh_note(self) -> str:
        if self.fresh:
            return "hot tier: included (sealed landing segments not yet compacted; bars_1m computed for hours not rolled up)"
        why = "a pinned snapshot holds only what was committed" if self.pinned is not None else "fresh is off"
        return f"hot tier: not included ({why})"

    # -- views ------------------------------------------------------------------------------------

    def _refresh_full_views(self, snapshot: int, *, strict: bool) -> None:
        """(Re)define each dataset's own name as a view over its whole snapshot, when it changed.

        DuckDB checks the files when a view is created; a missing file only matters to a query
        that reads it, so outside `strict` (a query that needs the whole snapshot) it is ignored.
        A view over cold objects would fetch them all: outside `strict` it is left for the
        statement that needs it (a pruned SELECT reads its own view). The hot tier, which changes
        without a commit, is looked at only in `strict`.
        """
        if snapshot == self._full_snapshot and not (strict and self.fresh):
            return
        views: list[tuple[Dataset, list[LiveFile], HotPart | None]] = []
        for dataset in self.catalog.datasets():
            files = self.catalog.live_files(dataset.dataset_id, snapshot=snapshot)
            if not strict and any(tier_of(f.path) == "cold" for f in files):
                self.con.execute(f"DROP VIEW IF EXISTS {quote_identifier(dataset.spec.name)}")
                return
            views.append((dataset, files, self._hot_part(dataset, (), snapshot, files) if strict else None))
        hot = tuple(part.key if part else "" for _, _, part in views)
        if snapshot == self._full_snapshot and hot == self._full_hot:
            return
        for dataset, files, part in views:
            try:
                self._create_view(quote_identifier(dataset.spec.name), dataset, files, part)
            except StorageError:
                if strict:
                    raise
                self.con.execute(f"DROP VIEW IF EXISTS {quote_identifier(dataset.spec.name)}")
                return
        self._full_snapshot, self._full_hot = snapshot, hot

    def _create_view(
        self,
        name: str,
        dataset: Dataset,
        files: list[LiveFile],
        hot: HotPart | None = None,
        conditions: Sequence[Condition] = (),
    ) -> None:
        """DuckDB reads a file's schema here: a damaged or missing data file is a StorageError naming it."""
        select = self._select(dataset, files, conditions, name)
        if hot is not None:
            select = hot.view_sql(select)
        try:
            self.con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS {select}")
        except duckdb.Error as e:
            raise failure(e, None, self.root) from e

    def _view(
        self, dataset: Dataset, files: list[LiveFile], hot: HotPart | None = None, conditions: Sequence[Condition] = ()
    ) -> str:
        """A temp view over exactly `files` (and `hot`), reused while the same file list (and hot part) comes back;
        with cold objects, the conditions (which pick the row groups read by ranges) are part of its key."""
        cold = any(tier_of(f.path) == "cold" for f in files)
        judged = [describe(c) for c in conditions] if cold else []
        parts = [dataset.spec.name, *(f.path for f in files), hot.key if hot else "", *judged]
        key = hashlib.sha1("\n".join(parts).encode()).hexdigest()[:16]
        name = f"__{dataset.spec.name}_{key}"
        if name not in self._views:
            if len(self._views) > 256:
                for old in list(self._views)[:128]:
                    self.con.execute(f"DROP VIEW IF EXISTS {old}")
                    if old in self._slice_tables:
                        self.con.execute(f"DROP TABLE IF EXISTS {self._slice_tables.pop(old)}")
                    del self._views[old]
            self._create_view(name, dataset, files, hot, conditions if cold else ())
            self._views[name] = dataset.spec.name
        return name

    def _select(self, dataset: Dataset, files: list[LiveFile], conditions: Sequence[Condition], view: str) -> str:
        """One SELECT of the dataset's columns over `files`: warm files by their Hive paths, cold
        objects (which hold their partition columns) by their cached copies or URIs, and slices."""
        spec = dataset.spec
        columns = ", ".join(quote_identifier(c) for c in spec.columns)
        # A remote lake's warm files are on its writer's disk (`local_tier` counts them for the reader).
        warm = [] if self.config.source else [f for f in files if tier_of(f.path) == "warm"]
        cold = [f for f in files if tier_of(f.path) == "cold"]
        parts = []
        if warm:
            paths = literal_list(str(local_path(self.root, f.path)) for f in warm)
            hive = "{" + ", ".join(f"'{k}': {spec.columns[k]}" for k in spec.partition_keys) + "}"
            parts.append(f"SELECT {columns} FROM read_parquet({paths}, hive_partitioning = true, hive_types = {hive})")
        if cold:
            skip = {*spec.partition_keys, spec.time_column}
            footers = self.catalog.footers([f.file_id for f in cold]) if conditions else {}
            part = self._cold.read(cold, self.con, conditions, footers, skip)
            if part.paths:
                parts.append(f"SELECT {columns} FROM read_parquet({literal_list(part.paths)}, hive_partitioning = false)")
            if part.slices:
                parts.append(self._slice_rows(spec, columns, part, [c for c in conditions if c.column not in skip], view))
        if not parts:
            typed = ", ".join(f"NULL::{t} AS {quote_identifier(c)}" for c, t in spec.columns.items())
            return f"SELECT {typed} WHERE false"
        return " UNION ALL ".join(parts)

    def _slice_rows(self, spec: Any, columns: str, part: ColdPart, conditions: Sequence[Condition], view: str) -> str:
        """The SELECT of a view's slices: the rows of them meeting the integer conditions that
        picked their row groups, copied once into a temp table beside `view` (a view re-run then
        scans those rows, not the row groups), or, past `SLICE_ROWS_BYTES`, the slices themselves."""
        source = f"SELECT {columns} FROM read_parquet({literal_list(part.slices)}, hive_partitioning = false)"
        # A row failing one of these could not be in the answer, as a file failing one is not read.
        kept = [c for c in conditions if spec.columns.get(c.column) in ("BIGINT", "INTEGER") and _integers(c.values)]
        if not kept or part.slice_bytes > SLICE_ROWS_BYTES:
            return source
        rows = quote_identifier(view.strip('"') + "_rows")
        where = " AND ".join(_integer_sql(c) for c in kept)
        try:
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE {rows} AS {source} WHERE {where}")
        except duckdb.Error as e:
            raise failure(e, None, self.root) from e
        self._slice_tables[view] = rows
        return f"SELECT {columns} FROM {rows}"


def _integers(values: Sequence[Any]) -> bool:
    return bool(values) and all(isinstance(v, int) and not isinstance(v, bool) for v in values)


def _integer_sql(c: Condition) -> str:
    """An integer condition as SQL (its values are Python ints: nothing to quote)."""
    column = quote_identifier(c.column)
    if c.op == "in":
        return f"{column} IN ({', '.join(str(int(v)) for v in c.values)})"
    return f"{column} {c.op} {int(c.values[0])}"


def connect(
    root: str | Path | None = None,
    *,
    snapshot: int | None = None,
    as_of: str | datetime | date | None = None,
    config: LakeConfig | None = None,
    unsafe: bool = False,
    fresh: bool | None = None,
) -> LakeConnection:
    """Open a lake for SQL: ``ticklake.connect("lakehouse").sql("SELECT count(*) FROM ticks").fetchall()``.

    `snapshot` or `as_of` (an ISO-8601 time, a datetime or a date) reads an older state of the
    lake; `unsafe` allows statements that write files or change settings; `fresh` (default: the
    ``fresh`` setting, on) includes ticks landed but not yet compacted.
    """
    cfg = config or LakeConfig.from_env()
    if root is not None:
        cfg = cfg.with_root(root)
    return LakeConnection(cfg, snapshot=snapshot, as_of=as_of, unsafe=unsafe, fresh=fresh)


def _kinds(dataset: Dataset) -> dict[str, str]:
    return {c: PREDICATE_KINDS[t] for c, t in dataset.spec.columns.items() if t in PREDICATE_KINDS}
