"""Fresh queries: `ticks` includes the hot tier, and `bars_1m` computes the hours not rolled up yet.

The hot tier is every sealed landing segment that the snapshot a query reads has not consumed:
its rows are not in any of the snapshot's files, so they are read from the segment itself, by the
one rule compaction uses (`ticklake.landing.reading.read_segment`: the sidecar when it is bound to
the segment, else the JSONL; quarantined lines are not ticks). Only the hour folders that the
query's predicates on the time column, ``date`` and ``hour`` can match are listed and read.

**Never twice, never missed.** A plan reads snapshot S, lists the matching hour folders, asks the
catalog which listed segments are consumed, and then reads the newest snapshot again. If it is
still S, nothing committed meanwhile, so the consumed set is exactly S's, and every segment sealed
before the listing whose rows are not in S was listed (a segment is retired only after the commit
that consumed it, and that commit would be newer than S). Otherwise, or when a listed segment
vanishes before it is read (retired by a compaction that committed after S), the plan raises
`Moved` and the connection plans again on the newer snapshot. Rows read are kept in memory, so a
segment retired while DuckDB runs the query changes nothing.

**Real-time bars.** An hour of `bars_1m` comes from its bars files when the rollup would leave it
as it is (the rule of `ticklake.build.rollups`: its bars were built from exactly the hour's live
trade files) and it has no hot segments; otherwise it is computed at query time from its trade
files and its hot trades with the rollup's own SQL file (``sql/rollups/bars_1m.sql``), and the
hour's committed bars are left out: never both for one hour. Hot trades are ordered after the
hour's trade file as compaction will append them, so equal timestamps break ties as the rollup's
SQL will once they are compacted.

Reading segments needs pyarrow: it is imported only when a matching hour folder holds segments,
so a query over compacted data starts as lean as before.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from ticklake.catalog import Catalog, Dataset, LiveFile, prune_files
from ticklake.catalog.pruning import Condition, describe, may_match
from ticklake.errors import QueryError, StorageError
from ticklake.query.failures import failure
from ticklake.query.predicates import Predicate
from ticklake.query.predicates.context import fetch_one
from ticklake.query.quoting import literal_list, quote_identifier, quote_literal
from ticklake.sql import load_sql
from ticklake.storage.layout import (
    HOUR_US,
    hour_key,
    hour_partition,
    landing_dir,
    landing_folder_hour,
    landing_hour_dir,
    partition_path,
)

if TYPE_CHECKING:
    import pyarrow as pa

    from ticklake.landing.buffer import Segment

TICKS = "ticks"  # `ticklake.datasets.TICKS.name`: the dataset the landing buffer feeds (that module builds Arrow schemas)
BARS = "bars_1m"  # `ticklake.datasets.BARS_1M.name`
BARS_SQL = "rollups/bars_1m"
_MINUTE_US = 60_000_000
_DAY_US = 24 * HOUR_US
_CACHE_BYTES = 256 * 2**20  # segment rows kept between queries of one connection
_KEPT = 64  # registered Arrow tables and source views kept per connection
_SHARED = ("contract_id", "date", "hour")  # bars columns that mean the same on the ticks they come from

Locate = Callable[[Sequence[LiveFile]], list[str]]
"""What DuckDB reads for catalog files (local paths, cached copies or object URIs), in order."""


class Moved(Exception):
    """The lake committed while a plan read the hot tier: plan again on the newer snapshot."""


@dataclass(frozen=True)
class HotSegment:
    """The rows of one sealed, unconsumed segment, as compaction would store them."""

    path: str  # relative to the lake root
    identity: str  # path, size and sealing time: what names this content in DuckDB
    hour: int
    table: pa.Table  # ROW_SCHEMA, in line order
    lines: int
    quarantined: int
    from_sidecar: bool

    @property
    def rows(self) -> int:
        """Ticks the segment holds."""
        return int(self.table.num_rows)


@dataclass(frozen=True)
class HotScan:
    """The hot segments one reference reads, and how its hour folders were pruned."""

    folders: int  # hour folders listed (those of the date folders the predicates can match)
    days_skipped: int  # date folders whose hours the predicates rule out (not listed)
    hours: int  # hour folders the predicates can match
    segments: tuple[HotSegment, ...]  # by hour, then in sealing order
    consumed: int  # listed segments already in the snapshot (not read)
    conditions: tuple[str, ...]

    def describe(self, root: Path) -> list[str]:
        """The explain lines: segments read per matching hour folder."""
        used = f"  [{'; '.join(self.conditions)}]" if self.conditions else ""
        skipped = f" ({self.days_skipped} date folders ruled out)" if self.days_skipped else ""
        found = f"{len(self.segments):>7} segments in {self.hours} of {self.folders} hour folders"
        lines = [f"  {'hot tier':<15} {found}{skipped}{used}"]
        for hour in sorted({s.hour for s in self.segments}):
            segments = [s for s in self.segments if s.hour == hour]
            rows = sum(s.rows for s in segments)
            quarantined = sum(s.quarantined for s in segments)
            notes = f", {quarantined:,} quarantined" if quarantined else ""
            folder = landing_hour_dir(root, hour).relative_to(root).as_posix()
            lines.append(f"    {folder}: {len(segments)} segments, {rows:,} rows{notes}")
            lines.extend(f"      {s.path} ({s.rows:,} rows{', sidecar' if s.from_sidecar else ''})" for s in segments)
        if self.consumed:
            lines.append(f"    ({self.consumed} listed segments already compacted into the snapshot: not read)")
        return lines


@dataclass(frozen=True)
class HotPart:
    """What a reference reads besides the snapshot's files: hot rows, or bars computed for some hours."""

    key: str  # identity of what is read, for the view cache ("" when nothing is added)
    sql: str | None  # a SELECT of the dataset's columns, or None
    replaced_hours: tuple[int, ...] = ()  # hours whose committed rows are left out (computed instead)
    time_column: str = ""
    lines: tuple[str, ...] = ()  # for --explain
    segments: int = 0  # hot segments read
    files: tuple[str, ...] = ()  # catalog paths of the trade files computed bars read

    def view_sql(self, committed: str) -> str:
        """The SELECT of a view: the `committed` rows (but those of replaced hours), then the added ones."""
        sql = committed
        if self.replaced_hours:
            hours = ", ".join(map(str, self.replaced_hours))
            column = quote_identifier(self.time_column)
            sql = f"SELECT * FROM ({sql}) WHERE epoch_us({column}) // {HOUR_US} NOT IN ({hours})"
        return sql if self.sql is None else f"{sql} UNION ALL {self.sql}"


class HotTier:
    """The hot tier as one connection reads it: segments read once while they stay sealed and
    unconsumed, and the Arrow tables and views registered in its DuckDB connection."""

    def __init__(self, root: Path, con: duckdb.DuckDBPyConnection) -> None:
        self.root = root
        self.con = con
        self.replans = 0  # plans started again because the lake committed meanwhile (see `Moved`)
        self._segments: OrderedDict[tuple[str, int, int], HotSegment] = OrderedDict()
        self._bytes = 0
        self._kept: OrderedDict[str, Any] = OrderedDict()  # registered Arrow tables (value) and views (None)
        self._bars_sql: dict[tuple[str, str], str] = {}

    def close(self) -> None:
        """Let go of the rows held."""
        self._segments.clear()
        self._kept.clear()

    # -- finding and reading segments ---------------------------------------------------------------

    def scan(self, catalog: Catalog, conditions: Iterable[Condition], time_column: str, last_us: int, snapshot: int) -> HotScan:
        """The unconsumed segments of the hour folders `conditions` can match, as of `snapshot` (the newest).

        `last_us`: how far into an hour the time column reaches (a tick: the last µs; a bar: the
        last minute). Raises `Moved` when the lake committed a newer snapshot meanwhile.
        """
        usable = [c for c in conditions if c.column in (time_column, "date", "hour") and c.values]
        matched, listed_folders, skipped = _hour_folders(landing_dir(self.root), usable, time_column, last_us)
        holding = [h for h, folder in matched if _may_hold_segments(folder)]
        listed: list[Segment] = []
        if holding:
            from ticklake.landing.buffer import scan_buffer  # noqa: PLC0415 - imports pyarrow: only when there are segments

            for hour in holding:
                listed.extend(scan_buffer(self.root, hour).segments)
        names = {s.path: s.path.relative_to(self.root).as_posix() for s in listed}
        consumed = catalog.consumed_paths(list(names.values())) if listed else set()
        if catalog.current_snapshot() != snapshot:
            raise self._moved(f"snapshot {snapshot} is no longer the newest")
        segments = tuple(self._segment(s, names[s.path]) for s in listed if names[s.path] not in consumed)
        used = tuple(describe(c) for c in usable)
        return HotScan(listed_folders, skipped, len(matched), segments, len(listed) - len(segments), used)

    def _moved(self, why: str) -> Moved:
        self.replans += 1
        return Moved(why)

    def _segment(self, segment: Segment, name: str) -> HotSegment:
        """The rows of a listed segment, read once per connection (a sealed segment never changes)."""
        key = (name, segment.bytes, segment.sealed_ns)
        found = self._segments.get(key)
        if found is not None:
            self._segments.move_to_end(key)
            return found
        from ticklake.landing.reading import read_segment  # noqa: PLC0415 - imports pyarrow
        from ticklake.storage.files import sha256_hex  # noqa: PLC0415

        try:
            data = segment.path.read_bytes()
        except FileNotFoundError:
            raise self._moved(f"{name}: retired while the query was planned") from None
        except OSError as e:
            raise StorageError(f"segment {segment.path}: cannot read: {e.strerror or e}") from e
        read = read_segment(segment.path, data, sha256_hex(data), segment.hour)
        identity = f"{name}:{segment.bytes}:{segment.sealed_ns}"
        hot = HotSegment(name, identity, segment.hour, read.table, read.lines, len(read.rejects), read.from_sidecar)
        self._segments[key] = hot
        self._bytes += int(hot.table.nbytes)
        while self._bytes > _CACHE_BYTES and len(self._segments) > 1:
            _, old = self._segments.popitem(last=False)
            self._bytes -= int(old.table.nbytes)
        return hot

    def _register(self, name: str, table: Any) -> None:
        """Make `table` readable as `name` in DuckDB (again, if it was let go of)."""
        if name in self._kept:
            self._kept.move_to_end(name)
            return
        self.con.register(name, table)
        self._keep(name, table)

    def _keep(self, name: str, value: Any) -> None:
        self._kept[name] = value
        while len(self._kept) > _KEPT:
            old, table = self._kept.popitem(last=False)
            if table is None:
                self.con.execute(f"DROP VIEW IF EXISTS {old}")
            else:
                self.con.unregister(old)

    # -- ticks ----------------------------------------------------------------------------------------

    def ticks_part(self, catalog: Catalog, dataset: Dataset, conditions: Iterable[Condition], snapshot: int) -> HotPart:
        """The hot rows of a `ticks` reference restricted by `conditions` (pruned by hour folder)."""
        spec = dataset.spec
        scan = self.scan(catalog, conditions, spec.time_column, HOUR_US - 1, snapshot)
        lines = tuple(scan.describe(self.root))
        if not scan.segments:
            return HotPart("", None, lines=lines)
        import pyarrow as pa  # noqa: PLC0415

        key = _digest(s.identity for s in scan.segments)
        name = f"__hot_{spec.name}_{key}"
        table = pa.concat_tables([s.table for s in scan.segments])
        self._register(name, table)
        columns = ", ".join(_column_sql(c, t, spec.time_column, table.schema.names) for c, t in spec.columns.items())
        return HotPart(key, f"SELECT {columns} FROM {name}", lines=lines, segments=len(scan.segments))

    # -- bars -----------------------------------------------------------------------------------------

    def bars_part(
        self,
        catalog: Catalog,
        bars: Dataset,
        ticks: Dataset,
        conditions: Sequence[Condition],
        snapshot: int,
        committed: Sequence[LiveFile],
        locate: Locate,
    ) -> HotPart:
        """The bars of a `bars_1m` reference's hours that are not rolled up, computed from their ticks.

        `committed`: the bars files the reference reads (pruned by `conditions`); `locate`: where
        DuckDB finds trade files.
        """
        from ticklake.build.hours import tick_partitions  # noqa: PLC0415 - the rollup's modules import pyarrow
        from ticklake.build.rollups import bars_current, hour_files  # noqa: PLC0415

        time_column = bars.spec.time_column
        last_us = HOUR_US - _MINUTE_US
        scan = self.scan(catalog, conditions, time_column, last_us, snapshot)
        usable = [c for c in conditions if c.column in (time_column, "date", "hour") and c.values]
        trade_conditions = _as_tick_conditions(conditions, time_column, ticks.spec.time_column)
        trades = prune_files(catalog, ticks, [*trade_conditions, Predicate("tick_type", "=", ("last",))], snapshot=snapshot).files
        candidates = {h for f in (*committed, *trades) for h in _file_hours(f) if _hour_matches(h, usable, time_column, last_us)}
        computed = {s.hour for s in scan.segments}
        sources: dict[int, list[LiveFile]] = {}
        for hour in sorted(candidates | computed):
            sources[hour] = hour_files(catalog, ticks, tick_partitions(hour)["last"], snapshot)
            if hour not in computed:
                bars_paths = [partition_path(hour_partition(hour))]
                live = catalog.live_files(bars.dataset_id, snapshot=snapshot, partition_paths=bars_paths)
                if not bars_current(catalog, live, sources[hour], hour):
                    computed.add(hour)
        hours = tuple(sorted(computed))
        lines = [_computed_line(hours, sources, scan), *scan.describe(self.root)]
        if not hours:
            return HotPart("", None, lines=tuple(lines))
        parts = []
        files = sorted({f.file_id: f for h in hours for f in sources[h]}.values(), key=lambda f: f.path)
        if files:
            ts = quote_identifier(ticks.spec.time_column)
            listed = ", ".join(map(str, hours))
            parts.append(
                f"SELECT * FROM read_parquet({literal_list(locate(files))}, filename = true, file_row_number = true,"
                f" union_by_name = true) WHERE epoch_us({ts}) // {HOUR_US} IN ({listed})"
            )
        if scan.segments:
            parts.append(f"SELECT * FROM {self._hot_trades(scan.segments, sources, ticks, locate)}")
        sql = None
        if parts:
            source = f"__bars_source_{_digest(parts)}"
            if source not in self._kept:
                try:
                    self.con.execute(f"CREATE OR REPLACE TEMP VIEW {source} AS {' UNION ALL BY NAME '.join(parts)}")
                except duckdb.Error as e:
                    raise failure(e, None, self.root) from e
            self._keep(source, None)
            start = datetime.fromtimestamp(hours[0] * 3600, UTC)
            window = {"hour_start": start, "hour_end": datetime.fromtimestamp((hours[-1] + 1) * 3600, UTC)}
            rollup = self.bars_sql(source, window)
            columns = ", ".join(_column_sql(c, t, time_column, None) for c, t in bars.spec.columns.items())
            sql = f"SELECT {columns} FROM ({rollup})"
        read = tuple(f.path for f in files)
        return HotPart(_digest([sql or "", *map(str, hours)]), sql, hours, time_column, tuple(lines), len(scan.segments), read)

    def _hot_trades(
        self, segments: Sequence[HotSegment], sources: dict[int, list[LiveFile]], ticks: Dataset, locate: Locate
    ) -> str:
        """Register the hot trades with the ``filename`` and ``file_row_number`` they will have once
        compacted: after the rows of the hour's trade file, in arrival order."""
        import numpy as np  # noqa: PLC0415
        import pyarrow as pa  # noqa: PLC0415
        import pyarrow.compute as pc  # noqa: PLC0415

        from ticklake.build.hours import tick_partitions  # noqa: PLC0415

        pieces = []
        names = [s.identity for s in segments]
        for hour in sorted({s.hour for s in segments}):
            table = pa.concat_tables([s.table for s in segments if s.hour == hour])
            table = table.filter(pc.equal(table.column("tick_type"), "last"))
            hourly = [f for f in sources.get(hour, []) if "hour" in f.partition_values]
            if hourly:  # compaction merges the hour's file with the new rows: they follow its rows
                filename, offset = locate(hourly[-1:])[0], hourly[-1].rows
            else:  # the hour's first file, whose name starts so
                folder = self.root / ticks.spec.location / partition_path(tick_partitions(hour)["last"])
                filename, offset = f"{folder}/", 0
            names.append(f"{filename}:{offset}")
            n = table.num_rows
            table = table.append_column("filename", pa.repeat(pa.scalar(filename, pa.string()), n))
            table = table.append_column("file_row_number", pa.array(np.arange(offset, offset + n, dtype=np.int64)))
            pieces.append(table)
        name = f"__hot_trades_{_digest(names)}"
        self._register(name, pa.concat_tables(pieces))
        return name

    def bars_sql(self, source: str, params: dict[str, datetime]) -> str:
        """The rollup's bars SQL reading view `source` instead of its ``read_parquet($files, ...)``, its
        parameters bound as literals (a view cannot take parameters).

        The file is rewritten through DuckDB's own parse tree, so the bars are defined once for
        the rollup and for real-time queries.
        """
        literals = {k: f"TIMESTAMPTZ {quote_literal(v.isoformat())}" for k, v in params.items()}
        key = (source, json.dumps(literals, sort_keys=True))
        if key not in self._bars_sql:
            tree = self._parse(load_sql(BARS_SQL))
            table = self._parse(f"SELECT * FROM {quote_identifier(source)}")["statements"][0]["node"]["from_table"]
            nodes = {k: self._parse(f"SELECT {v}")["statements"][0]["node"]["select_list"][0] for k, v in literals.items()}
            replaced: list[str] = []
            tree = _rewrite(tree, table, nodes, replaced)
            if replaced != ["read_parquet"]:
                raise QueryError(f"sql/{BARS_SQL}.sql: expected one read_parquet($files, ...) source, found {len(replaced)}")
            (text,) = fetch_one(self.con, "json_deserialize_sql", json.dumps(tree))
            self._bars_sql[key] = str(text)
        return self._bars_sql[key]

    def _parse(self, sql: str) -> dict[str, Any]:
        tree: dict[str, Any] = json.loads(fetch_one(self.con, "json_serialize_sql", sql)[0])
        if tree.get("error"):
            raise QueryError(f"cannot parse {sql[:60]!r}: {tree.get('error_message')}")
        return tree


def _rewrite(node: Any, table: dict[str, Any], params: dict[str, dict[str, Any]], replaced: list[str]) -> Any:
    """`node` with its ``read_parquet(...)`` source replaced by `table` and its parameters by `params`."""
    if isinstance(node, list):
        return [_rewrite(n, table, params, replaced) for n in node]
    if not isinstance(node, dict):
        return node
    if node.get("type") == "TABLE_FUNCTION" and node.get("function", {}).get("function_name") == "read_parquet":
        replaced.append("read_parquet")
        return {**table, "alias": node.get("alias", "")}
    if node.get("class") == "PARAMETER":
        name = node.get("identifier")
        if name not in params:
            raise QueryError(f"sql/{BARS_SQL}.sql: parameter ${name} has no value for real-time bars")
        return {**params[name], "alias": node.get("alias", "")}
    return {k: _rewrite(v, table, params, replaced) for k, v in node.items()}


def _computed_line(hours: tuple[int, ...], sources: dict[int, list[LiveFile]], scan: HotScan) -> str:
    if not hours:
        return f"  {'computed':<15} {0:>7} hours (every hour read is rolled up)"
    shown = []
    for h in hours[:24]:
        hot = sum(s.hour == h for s in scan.segments)
        shown.append(f"{hour_key(h)} ({len(sources.get(h, []))} trade files, {hot} hot segments)")
    more = f", ... {len(hours) - 24} more" if len(hours) > 24 else ""
    head = f"  {'computed':<15} {len(hours):>7} hours not rolled up, from their ticks by sql/{BARS_SQL}.sql"
    return f"{head}: {', '.join(shown)}{more}"


def _hour_folders(
    base: Path, conditions: Sequence[Condition], time_column: str, last_us: int
) -> tuple[list[tuple[int, str]], int, int]:
    """The ``date=YYYY-MM-DD/hour=HH`` folders of the landing buffer that `conditions` can match, with
    their hours; how many hour folders were listed; how many date folders were ruled out unlisted.
    Anything else in the buffer is not read."""
    found = []
    listed = skipped = 0
    whole_day = [c for c in conditions if c.column != "hour"]
    for day_name, day in _entries(str(base)):
        first = landing_folder_hour(day_name, "hour=00")
        if first is None:
            continue
        if not _hour_matches(first, whole_day, time_column, 24 * HOUR_US - 1):
            skipped += 1
            continue
        for name, folder in _entries(day):
            hour = landing_folder_hour(day_name, name)
            if hour is not None:
                listed += 1
                if _hour_matches(hour, conditions, time_column, last_us):
                    found.append((hour, folder))
    return sorted(found), listed, skipped


def _entries(folder: str) -> list[tuple[str, str]]:
    """Names and paths of the folders in `folder` (none when it is gone)."""
    try:
        with os.scandir(folder) as entries:
            return [(e.name, e.path) for e in entries if not e.name.startswith((".", "_")) and e.is_dir()]
    except (FileNotFoundError, NotADirectoryError):
        return []


def _may_hold_segments(folder: str) -> bool:
    """False when no name in `folder` can be a sealed segment (so there is nothing to read)."""
    try:
        with os.scandir(folder) as entries:
            return any(e.name.endswith(".jsonl") and not e.name.startswith((".", "_")) for e in entries)
    except (FileNotFoundError, NotADirectoryError):
        return False


def _hour_matches(hour: int, conditions: Sequence[Condition], time_column: str, last_us: int) -> bool:
    """Can rows of event `hour` satisfy every condition on the time column, ``date`` and ``hour``?

    >>> ts = Predicate("timestamp", ">=", (455982 * HOUR_US,))
    >>> _hour_matches(455981, [ts], "timestamp", HOUR_US - 1), _hour_matches(455982, [ts], "timestamp", HOUR_US - 1)
    (False, True)
    >>> _hour_matches(455981, [Predicate("date", "=", (date(2022, 1, 7),)), Predicate("hour", "in", (5, 6))], "t", 0)
    True
    """
    start = hour * HOUR_US
    day = date(1970, 1, 1) + timedelta(days=hour // 24)
    low: object
    high: object
    for c in conditions:
        if c.column == time_column:
            low, high = start, start + last_us
        elif c.column == "date":
            low = high = day
        elif c.column == "hour":
            low = high = hour % 24
        else:
            continue
        if not may_match(low, high, c.op, c.values):
            return False
    return True


def _as_tick_conditions(conditions: Iterable[Condition], minute: str, timestamp: str) -> list[Predicate]:
    """Conditions on bars as conditions on the ticks they come from (a bar's minute is its trades'
    time truncated to the minute; a superset is fine: they only prune).

    >>> bars = [Predicate("minute", "<", (120_000_000,)), Predicate("contract_id", "=", (7,)), Predicate("open", ">", (1.0,))]
    >>> _as_tick_conditions(bars, "minute", "ts")
    [Predicate(column='ts', op='<', values=(180000000,)), Predicate(column='contract_id', op='=', values=(7,))]
    """
    out = []
    for c in conditions:
        if c.column in _SHARED:
            out.append(Predicate(c.column, c.op, tuple(c.values)))
        if c.column != minute:
            continue
        values = [v for v in c.values if isinstance(v, int)]
        if len(values) != len(c.values) or not values:
            continue
        if c.op in ("=", "in"):
            out += [Predicate(timestamp, ">=", (min(values),)), Predicate(timestamp, "<", (max(values) + _MINUTE_US,))]
        elif c.op in ("<", "<="):
            out.append(Predicate(timestamp, "<", (values[0] + _MINUTE_US,)))
        else:  # > and >=: a trade is never earlier than its minute
            out.append(Predicate(timestamp, c.op, (values[0],)))
    return out


def _file_hours(f: LiveFile) -> range:
    """The event hours a file's time range spans (one for an hourly file).

    >>> list(_file_hours(LiveFile(1, "p", "pp", "{}", 1, 1, 455981 * HOUR_US, 455982 * HOUR_US + 5, 1)))
    [455981, 455982]
    """
    return range(f.ts_min // HOUR_US, f.ts_max // HOUR_US + 1)


def _column_sql(name: str, sql_type: str, time_column: str, present: Sequence[str] | None) -> str:
    """One column of a view over rows that lack the Hive path columns: ``date`` and ``hour`` derived
    from the time column (UTC, whatever the session's time zone), anything else missing as NULL.

    `present`: the columns the rows have (None: all but the path columns, cast to their type).
    """
    t = f"epoch_us({quote_identifier(time_column)})"
    if name == "date":
        expr = f"CAST(DATE '1970-01-01' + CAST({t} // {_DAY_US} AS INTEGER) AS {sql_type})"
    elif name == "hour":
        expr = f"CAST({t} // {HOUR_US} % 24 AS {sql_type})"
    elif present is not None and name not in present:
        expr = f"NULL::{sql_type}"
    else:
        expr = f"CAST({quote_identifier(name)} AS {sql_type})"
    return f"{expr} AS {quote_identifier(name)}"


def _digest(parts: Iterable[str]) -> str:
    return hashlib.sha1("\n".join(parts).encode()).hexdigest()[:16]
