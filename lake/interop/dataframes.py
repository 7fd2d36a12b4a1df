"""`ticklake.to_dask`: a dataset as a Dask DataFrame over exactly the files the catalog cannot rule out.

For research jobs too heavy for one machine, run on a ``dask.distributed`` cluster. The client plans:
the filters become the catalog's own pruning conditions (`prune_files`, the same steps ``ticklake
sql`` takes), and the files left are the partitions, in time order, with divisions from the
catalog's per-file time ranges, so that ``merge_asof``, ``resample`` and ``loc`` on time know which
partitions to look at. The workers read: each partition reads its files (a warm file by its
absolute path, which every worker must see at the same place; a cold object from S3, the worker
resolving endpoint and credentials itself, as every ticklake reader does, so none travels in the
task graph), keeps the rows that meet the filters, and sorts them by time (files are sorted by
contract, then time).

Files whose time ranges overlap (the three tick types of one hour, an archived day and a late
hour compacted beside it) share one partition, so the divisions stay true: partition i holds
times from ``divisions[i]`` up to, not including, ``divisions[i + 1]`` (the last one's included).
A frame reads the committed files of one snapshot: landing segments not compacted yet (the hot
tier) and bars not rolled up yet are not in it, as with ``ticklake sql`` and ``fresh`` off. The
files stay readable while vacuum's grace period (``--older-than``) lasts after they are replaced.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import dask.dataframe as dd
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ticklake.access import open_catalog
from ticklake.catalog import LiveFile, prune_files
from ticklake.config import LakeConfig
from ticklake.datasets import ARCHIVE_SCHEMAS, DATASETS
from ticklake.errors import NotFoundError, QueryError, StorageError
from ticklake.interop.filters import Filter, expression, holds, matches_nothing, parse_filters
from ticklake.query.history import choose_snapshot
from ticklake.storage.objects import S3Access, object_errors
from ticklake.storage.publication import LocalTier
from ticklake.storage.tiers import local_path, tier_of

_EPOCH = pd.Timestamp(0, tz="UTC").as_unit("us")


@dataclass(frozen=True)
class FilePart:
    """One file a partition reads: its location, and the values of the partition columns its Hive
    path holds (none for a cold object, which holds them as columns)."""

    location: str  # an absolute path, or an s3:// URI
    partition: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class Partition:
    """What one task reads: files whose time ranges overlap, or one file."""

    files: tuple[FilePart, ...]


@dataclass(frozen=True)
class DaskPlan:
    """How a frame was planned: the snapshot, the pruned files, and the partitions they make."""

    dataset: str
    root: Path  # the lake's folder, resolved: warm files are read below it
    snapshot: int
    columns: tuple[str, ...]
    filters: tuple[Filter, ...]
    files: list[LiveFile]  # as the catalog hands them, ordered by path
    partitions: list[list[LiveFile]]  # in time order; each one's files overlap in time
    divisions: tuple[pd.Timestamp, ...]
    left_out: LocalTier | None = None  # a remote lake's files on its writer's disk, which no worker can read


def plan_dask(
    table: str = "ticks",
    columns: Sequence[str] | None = None,
    filters: Iterable[Sequence[Any]] | None = None,
    *,
    root: str | Path | None = None,
    config: LakeConfig | None = None,
    snapshot: int | None = None,
    as_of: str | datetime | date | None = None,
) -> DaskPlan:
    """The partitions and divisions `to_dask` makes of the same arguments, without Dask."""
    cfg = config or LakeConfig.from_env()
    if root is not None:
        cfg = cfg.with_root(root)
    spec = DATASETS.get(table)
    if spec is None:
        raise NotFoundError(f"no dataset {table!r} (datasets: {', '.join(DATASETS)})")
    schema = ARCHIVE_SCHEMAS[table]
    chosen = _columns(table, columns, schema.names, spec.time_column)
    parsed = parse_filters(filters, schema, spec.time_column)
    with open_catalog(cfg) as catalog:
        choice = choose_snapshot(catalog, snapshot, as_of)
        number = catalog.current_snapshot() if choice.snapshot is None else choice.snapshot
        dataset = catalog.dataset(table)
        files = [] if dataset is None or matches_nothing(parsed) else prune_files(catalog, dataset, parsed, snapshot=number).files
    left_out = None
    if cfg.source:  # a remote lake: only its objects are in the bucket
        local = [f for f in files if tier_of(f.path) == "warm"]
        left_out = LocalTier(len(local), sum(f.rows for f in local))
        files = [f for f in files if tier_of(f.path) == "cold"]
    groups = _overlapping(files)
    return DaskPlan(table, cfg.root.resolve(), number, chosen, parsed, files, groups, _divisions(groups), left_out)


def to_dask(
    table: str = "ticks",
    columns: Sequence[str] | None = None,
    filters: Iterable[Sequence[Any]] | None = None,
    *,
    root: str | Path | None = None,
    config: LakeConfig | None = None,
    snapshot: int | None = None,
    as_of: str | datetime | date | None = None,
) -> dd.DataFrame:
    """A dataset (``ticks``, ``bars_1m``) as a Dask DataFrame indexed by its time column, with known divisions.

    `columns` (default: all) are the other columns; `filters` (``[("contract_id", "=", 5),
    ("timestamp", ">=", "2022-01-07")]``, see `ticklake.interop.filters`) prune files through the
    catalog and then the rows read. `root` or `config` name the lake (default: ``TICKLAKE_*``);
    `snapshot` or `as_of` read an older state of it. A frame of no files has one empty partition.
    """
    plan = plan_dask(table, columns, filters, root=root, config=config, snapshot=snapshot, as_of=as_of)
    if plan.left_out is not None and plan.left_out.files:
        warnings.warn(plan.left_out.line(), stacklevel=2)
    return frame(plan)


def frame(plan: DaskPlan) -> dd.DataFrame:
    """The Dask DataFrame of a plan: one task per partition, each reading its files with a `PartitionReader`."""
    reader = PartitionReader(plan.dataset, plan.columns, plan.filters)
    parts = [Partition(tuple(_file_part(plan.root, f) for f in group)) for group in plan.partitions]
    divisions = plan.divisions or (_EPOCH, _EPOCH)  # one empty partition, so that divisions are always known
    return dd.from_map(
        reader, parts or [Partition(())], meta=reader.meta(), divisions=divisions, label=f"ticklake-{plan.dataset}"
    )


def _columns(table: str, columns: Sequence[str] | None, names: Sequence[str], time_column: str) -> tuple[str, ...]:
    """The columns asked for, in the order asked, without the time column (always the index)."""
    if columns is None:
        return tuple(n for n in names if n != time_column)
    if isinstance(columns, str):
        raise QueryError(f"columns {columns!r}: expected a list of column names")
    unknown = [c for c in columns if c not in names]
    if unknown:
        raise QueryError(f"{table} has no column {unknown[0]!r} (columns: {', '.join(names)})")
    return tuple(dict.fromkeys(c for c in columns if c != time_column))


def _overlapping(files: Sequence[LiveFile]) -> list[list[LiveFile]]:
    """`files` in time order, in groups whose time ranges overlap (a range is inclusive at both ends),
    so that consecutive groups are disjoint in time.

    >>> def f(path, lo, hi): return LiveFile(0, path, "", "{}", 1, 1, lo, hi, 1)
    >>> [[g.path for g in group] for group in _overlapping([f("b", 5, 9), f("a", 0, 4), f("c", 9, 12), f("d", 13, 13)])]
    [['a'], ['b', 'c'], ['d']]
    """
    groups: list[list[LiveFile]] = []
    end = 0
    for f in sorted(files, key=lambda f: (f.ts_min, f.ts_max, f.path)):
        if groups and f.ts_min <= end:
            groups[-1].append(f)
            end = max(end, f.ts_max)
        else:
            groups.append([f])
            end = f.ts_max
    return groups


def _divisions(groups: Sequence[Sequence[LiveFile]]) -> tuple[pd.Timestamp, ...]:
    """Each group's first time, then the last group's last time (none for no groups)."""
    if not groups:
        return ()
    return (*(_timestamp(g[0].ts_min) for g in groups), _timestamp(max(f.ts_max for f in groups[-1])))


def _timestamp(microseconds: int) -> pd.Timestamp:
    """A time the catalog keeps (epoch microseconds) as the index holds it.

    >>> _timestamp(1641531600000000)
    Timestamp('2022-01-07 05:00:00+0000', tz='UTC')
    """
    return (_EPOCH + pd.Timedelta(microseconds, unit="us")).as_unit("us")


def _file_part(root: Path, f: LiveFile) -> FilePart:
    """Where a worker reads `f` (a warm file below `root`), and the partition values its Hive path holds."""
    if tier_of(f.path) == "cold":
        return FilePart(f.path)
    return FilePart(str(local_path(root, f.path)), tuple(sorted(f.partition_values.items())))


def _plain(arrow_type: pa.DataType) -> pa.DataType:
    """A declared type without its field IDs (a list's element carries one)."""
    return pa.list_(arrow_type.value_type) if pa.types.is_list(arrow_type) else arrow_type


def _pandas_type(arrow_type: pa.DataType) -> Any:
    """The pandas dtype of a column: NumPy for numbers and times (NaN for a missing price, as DuckDB's
    ``df()`` gives), Arrow-backed text as Dask converts it to anyway, Arrow dates and lists (not objects)."""
    if pa.types.is_string(arrow_type):
        return pd.StringDtype("pyarrow")
    if pa.types.is_date(arrow_type) or pa.types.is_list(arrow_type):
        return pd.ArrowDtype(arrow_type)
    return None


@dataclass(frozen=True)
class PartitionReader:
    """Reads one partition, on a worker: picklable, and holding no credential (a worker resolves its own).

    Dask hands it the columns a computation needs (``columns``), so that only those are read.
    """

    dataset: str
    columns: tuple[str, ...]
    filters: tuple[Filter, ...] = ()

    @property
    def schema(self) -> pa.Schema:
        """Every column of the dataset, as declared."""
        return pa.schema([pa.field(f.name, _plain(f.type)) for f in ARCHIVE_SCHEMAS[self.dataset]])

    @property
    def time_column(self) -> str:
        """The dataset's time column: the index."""
        return DATASETS[self.dataset].time_column

    def meta(self) -> pd.DataFrame:
        """The empty frame of this reader's columns, with the dtypes every partition has."""
        return self._frame(self.schema.empty_table(), list(self.columns))

    def __call__(self, part: Partition, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """The rows of `part`'s files meeting the filters, sorted by time; only `columns` (default: the reader's)."""
        wanted = list(self.columns if columns is None else columns)
        needed = list(dict.fromkeys([self.time_column, *wanted, *(f.column for f in self.filters)]))
        tables = [t for t in (self._read(f, needed) for f in part.files) if t is not None]
        table = pa.concat_tables(tables) if tables else self.schema.empty_table()
        return self._frame(table, wanted)

    def _frame(self, table: pa.Table, columns: list[str]) -> pd.DataFrame:
        table = table.select([self.time_column, *columns]).cast(
            pa.schema([self.schema.field(n) for n in [self.time_column, *columns]])
        )
        frame = table.to_pandas(types_mapper=_pandas_type).set_index(self.time_column)
        return frame.sort_index(kind="stable")

    def _read(self, part: FilePart, needed: list[str]) -> pa.Table | None:
        """The rows of one file meeting the filters (None: its partition values meet them not), with its
        partition columns filled in."""
        constants = dict(part.partition)
        if not all(
            holds(f, _typed(constants[f.column], self.schema.field(f.column).type)) for f in self.filters if f.column in constants
        ):
            return None
        in_file = [c for c in needed if c not in constants]
        rows = expression([f for f in self.filters if f.column not in constants], self.schema)
        table = _read_parquet(part.location, in_file, rows)
        for name in needed:
            if name in constants:
                arrow_type = self.schema.field(name).type
                table = table.append_column(
                    pa.field(name, arrow_type),
                    pa.repeat(pa.scalar(_typed(constants[name], arrow_type), arrow_type), table.num_rows),
                )
        return table.select(needed)


def _typed(value: Any, arrow_type: pa.DataType) -> Any:
    """A partition value as the catalog records it (JSON) in its column's Python type.

    >>> _typed("2022-01-07", pa.date32()), _typed(5, pa.int32()), _typed("last", pa.string())
    (datetime.date(2022, 1, 7), 5, 'last')
    """
    if value is None:
        return None
    if pa.types.is_date(arrow_type):
        return date.fromisoformat(str(value))
    if pa.types.is_integer(arrow_type):
        return int(value)
    return value


def _read_parquet(location: str, columns: list[str], rows: Any) -> pa.Table:
    """One data file's `columns`, only the `rows` (an Arrow expression) meeting the filters, whose
    statistics let pyarrow skip row groups; errors name the file (or the object, and the trouble)."""

    def read(source: str, fs: Any = None) -> pa.Table:
        try:
            return pq.read_table(source, columns=columns, filters=rows, partitioning=None, filesystem=fs)
        except pa.ArrowInvalid as e:  # not Parquet, or not the dataset's columns
            raise StorageError(f"{location}: cannot read: {e}") from e

    if tier_of(location) == "cold":
        return object_errors(location, lambda: read(location.removeprefix("s3://"), S3Access.from_environment().filesystem()))
    try:
        return read(location)
    except FileNotFoundError as e:
        raise StorageError(f"{location}: data file missing (vacuumed since the frame was planned?)") from e
    except OSError as e:
        raise StorageError(f"{location}: cannot read: {e}") from e
