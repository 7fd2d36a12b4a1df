"""The lake's datasets as Apache Iceberg tables, ``ticklake.ticks`` and ``ticklake.bars_1m``, whose data
files are the lake's own Parquet files: never copied, never rewritten.

The ticklake catalog stays the one source of truth; an Iceberg catalog (pyiceberg's SQL catalog, or
any REST catalog) is brought level with it by `publish`. A publish compares the files live in the
ticklake snapshot with those of the Iceberg table's current snapshot and commits the difference as
one Iceberg commit: a compacted hour is an append, a re-compacted hour a replace (its old files
deleted, its new ones added), an archived day a replace of its hourly files by the day's object.
Each Iceberg snapshot records the ticklake snapshot it equals (``ticklake.snapshot`` in its summary),
so publishing again changes nothing, and a publish after missed commits (a crash between the
ticklake commit and the Iceberg one, a catalog that was down) catches up in one commit.

Engines map the files' columns by their Parquet field IDs (`ticklake.columns.numbered`). Columns a
warm file keeps in its Hive path (tick_type, date, hour) are identity partition fields, whose values
readers take from the manifests, as the Iceberg spec provides for files migrated from Hive. A warm
file is one hour (partition spec: hour of the time column); an archived object is one day, so it is
added under a second spec (day of the time column), made the table's default only for that commit.
Statistics come from each file's footer (on disk, or kept in the catalog for cold objects), through
pyiceberg's own conversion.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import logging
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow.parquet as pq

from ticklake.access import open_catalog
from ticklake.catalog import Catalog, DatasetSpec, LiveFile
from ticklake.config import LakeConfig
from ticklake.datasets import ARCHIVE_SCHEMAS, DATASETS
from ticklake.errors import ConfigError, StorageError, TicklakeError
from ticklake.faults import fault_point
from ticklake.storage.layout import HOUR_US
from ticklake.storage.objects import S3Access, is_uri
from ticklake.storage.ranges import metadata_of
from ticklake.storage.tiers import tier_of

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog as IcebergCatalog
    from pyiceberg.manifest import DataFile
    from pyiceberg.partitioning import PartitionSpec
    from pyiceberg.schema import Schema
    from pyiceberg.table import Table, Transaction

log = logging.getLogger(__name__)

NAMESPACE = "ticklake"
SNAPSHOT_KEY = "ticklake.snapshot"  # in each Iceberg snapshot's summary: the ticklake snapshot it equals
DAY_US = 24 * HOUR_US
_EPOCH = dt.date(1970, 1, 1)
_ATTEMPTS = 5  # commits lost to another writer of the same Iceberg table: recomputed and tried again


@dataclass
class TablePublication:
    """What one publish did to one Iceberg table."""

    table: str
    snapshot: int  # the ticklake snapshot the table now equals
    added: int = 0
    removed: int = 0
    rows: int = 0  # live rows after the publish
    files: int = 0  # live files after the publish
    metadata_location: str = ""
    changed: bool = False

    def summary(self) -> str:
        """One line for the CLI and logs."""
        what = f"+{self.added} -{self.removed} files" if self.changed else "unchanged"
        return f"{self.table}: {what}; {self.files} files, {self.rows:,} rows = ticklake snapshot {self.snapshot}"


@dataclass
class Publication:
    """What a publish did, table by table."""

    uri: str
    tables: list[TablePublication] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(t.changed for t in self.tables)


def open_iceberg(config: LakeConfig, uri: str | None = None) -> IcebergCatalog:
    """The Iceberg catalog at `uri` (default: the ``iceberg_uri`` setting): ``sqlite:///path`` for
    pyiceberg's SQL catalog, ``http(s)://...`` for a REST catalog.

    pyiceberg's own configuration for a catalog named ``ticklake`` (``PYICEBERG_CATALOG__TICKLAKE__*``
    variables, ``.pyiceberg.yaml``) is merged in, so a REST catalog's token or OAuth credentials are
    given the way pyiceberg documents them. Object-store access (for metadata and cold objects) is the
    lake's own, resolved as the AWS SDKs resolve it.
    """
    from pyiceberg.catalog import load_catalog

    uri = uri or config.iceberg_uri
    if not uri:
        raise ConfigError(
            "iceberg: no catalog given: pass --uri sqlite:///PATH or --uri https://REST, or set TICKLAKE_ICEBERG_URI"
        )
    access = S3Access.from_environment()
    properties: dict[str, str] = _object_store_properties(access)
    if uri.startswith("sqlite:///"):
        path = Path(uri.removeprefix("sqlite:///")).expanduser()
        if not path.is_absolute():  # relative to the lake, so every process of it (CLI, Dagster, server) agrees
            path = config.root.absolute() / path
        if path.resolve() == config.catalog_path.resolve():
            raise ConfigError(f"iceberg: {uri} is the lake's own catalog; give the Iceberg catalog a file of its own")
        if not path.parent.is_dir():
            raise ConfigError(f"iceberg: {path.parent}: no such folder for the SQL catalog {uri}")
        warehouse = config.iceberg_warehouse or path.with_name(path.name + ".warehouse").as_uri()
        properties.update(type="sql", uri=f"sqlite:///{path}", warehouse=warehouse)
    elif uri.startswith(("http://", "https://")):
        properties.update(type="rest", uri=uri)
        if config.iceberg_warehouse:
            properties["warehouse"] = config.iceberg_warehouse
        if config.iceberg_sigv4:
            properties.update(_sigv4_properties(access))
    else:
        raise ConfigError(
            f"iceberg: catalog URI {uri!r} must be sqlite:///PATH (a SQL catalog) or http(s)://... (a REST catalog)"
        )
    try:
        return load_catalog(NAMESPACE, **properties)
    except Exception as e:  # pyiceberg raises its own, requests' and SQLAlchemy's errors
        raise StorageError(f"iceberg: cannot open the catalog at {uri}: {_reason(e)}") from e


def _object_store_properties(access: S3Access) -> dict[str, str]:
    """pyiceberg's FileIO properties for the lake's object store (its metadata files, cold objects)."""
    return {**_aws("s3", access), **({"s3.endpoint": access.endpoint} if access.endpoint else {})}


def _sigv4_properties(access: S3Access) -> dict[str, str]:
    """Requests signed with AWS SigV4, as S3 Tables (and SeaweedFS's REST catalog) want them."""
    return {
        "rest.sigv4-enabled": "true",
        "rest.signing-region": access.region,
        "rest.signing-name": "s3tables",
        **_aws("client", access),
    }


def _aws(prefix: str, access: S3Access) -> dict[str, str]:
    """Region and credentials as pyiceberg's `prefix`.* properties (absent ones left to botocore's chain)."""
    values = {
        "region": access.region,
        "access-key-id": access.key_id,
        "secret-access-key": access.secret,
        "session-token": access.token,
    }
    return {f"{prefix}.{key}": value for key, value in values.items() if value}


def iceberg_schema(spec: DatasetSpec) -> Schema:
    """The Iceberg schema of a dataset: every column ``ticklake sql`` shows, with its field ID, in ID order
    (so an Iceberg catalog, which numbers a new table's columns by position, keeps them)."""
    import pyarrow as pa
    from pyiceberg.io.pyarrow import pyarrow_to_schema

    fields = sorted(ARCHIVE_SCHEMAS[spec.name], key=lambda f: int((f.metadata or {})[b"PARQUET:field_id"]))
    return pyarrow_to_schema(pa.schema(fields))


def _identities(spec: DatasetSpec, *, daily: bool) -> list[str]:
    return [k for k in spec.partition_keys if not (daily and k == "hour")]


def partition_spec(spec: DatasetSpec, schema: Schema) -> PartitionSpec:
    """The hourly spec of a dataset's warm files: its Hive partition columns, then the hour of its time
    column (`_use_spec` derives the daily one of archived objects from it)."""
    from pyiceberg.partitioning import PartitionField, PartitionSpec
    from pyiceberg.transforms import HourTransform, IdentityTransform

    keys = _identities(spec, daily=False)
    fields = [PartitionField(schema.find_field(k).field_id, 1000 + i, IdentityTransform(), k) for i, k in enumerate(keys)]
    time_id = schema.find_field(spec.time_column).field_id
    fields.append(PartitionField(time_id, 1000 + len(keys), HourTransform(), f"{spec.time_column}_hour"))
    return PartitionSpec(*fields)


def _use_spec(tx: Transaction, spec: DatasetSpec, *, daily: bool) -> None:
    """Make the hourly or daily spec the default for what is added next (pyiceberg writes added files
    with the default spec); an existing spec is reused, so a table has two specs however often it switches."""
    from pyiceberg.transforms import DayTransform, HourTransform

    names = [f.name for f in tx.table_metadata.spec().fields]
    hour_name, day_name = f"{spec.time_column}_hour", f"{spec.time_column}_day"
    if daily and day_name not in names:
        with tx.update_spec() as update:
            update.remove_field(hour_name)
            if "hour" in spec.partition_keys:
                update.remove_field("hour")
            update.add_field(spec.time_column, DayTransform(), day_name)
    elif not daily and hour_name not in names:
        with tx.update_spec() as update:
            update.remove_field(day_name)
            if "hour" in spec.partition_keys:
                update.add_identity("hour")
            update.add_field(spec.time_column, HourTransform(), hour_name)


def ensure_table(iceberg: IcebergCatalog, spec: DatasetSpec) -> Table:
    """The Iceberg table of a dataset, created (format 2, hourly spec, a name mapping for files
    written before field IDs) when missing; one whose schema is not the dataset's is refused."""
    from pyiceberg.exceptions import NoSuchTableError
    from pyiceberg.table.name_mapping import create_mapping_from_schema

    identifier = f"{NAMESPACE}.{spec.name}"
    schema = iceberg_schema(spec)
    iceberg.create_namespace_if_not_exists(NAMESPACE)
    try:
        table = iceberg.load_table(identifier)
    except NoSuchTableError:
        properties = {
            "format-version": "2",
            "schema.name-mapping.default": create_mapping_from_schema(schema).model_dump_json(),
            "comment": f"ticklake dataset {spec.name}: published from the lake's catalog, whose files it references",
        }
        table = iceberg.create_table_if_not_exists(
            identifier, schema=schema, partition_spec=partition_spec(spec, schema), properties=properties
        )
    ours = [(f.field_id, f.name, str(f.field_type)) for f in schema.fields]
    theirs = [(f.field_id, f.name, str(f.field_type)) for f in table.schema().fields]
    if ours != theirs:
        raise StorageError(
            f"iceberg: {identifier} has columns {theirs}, not the lake's {ours}; drop the table to publish it anew"
        )
    return table


def publish(config: LakeConfig, uri: str | None = None) -> Publication:
    """Bring the Iceberg catalog at `uri` level with the lake's current snapshot: one commit per table
    that differs, none where nothing does.

    The snapshot is read under the publishers' lock, so publishes land in commit order and a table
    never steps back to an older snapshot (two commits that land together are published together).
    """
    if config.source:
        raise ConfigError(f"iceberg: {config.source} is a lake read from another machine; publish from the lake's writer")
    target = uri or config.iceberg_uri
    result = Publication(uri=target)
    with open_catalog(config) as catalog:  # first: a missing lake is said before anything is created
        iceberg = open_iceberg(config, uri)
        with _publishing(config):
            snapshot = catalog.current_snapshot()
            for spec in DATASETS.values():
                try:
                    result.tables.append(_publish_table(config, catalog, iceberg, spec, snapshot))
                except TicklakeError:
                    raise
                except Exception as e:  # pyiceberg's, requests' and SQLAlchemy's errors: one line each
                    raise StorageError(f"iceberg: {NAMESPACE}.{spec.name} at {target}: {_reason(e)}") from e
    return result


def publish_quietly(config: LakeConfig) -> str | None:
    """After a commit: publish it when ``iceberg_uri`` is set; a failure is a logged warning (returned),
    never an error: the data is committed whatever happens here, and the next publish catches up."""
    if not config.iceberg_uri or config.source:
        return None
    try:
        publish(config)
    except Exception as e:  # noqa: BLE001 - whatever the Iceberg catalog raised, the commit stands
        warning = f"warning: Iceberg tables not published: {_reason(e)}; the commit stands, the next publish catches up"
        log.warning(warning)
        return warning
    return None


@contextmanager
def _publishing(config: LakeConfig) -> Iterator[None]:
    """One publisher of a lake at a time on this machine (others wait); another machine's is an
    optimistic commit that loses and is computed again (`_publish_table`)."""
    with open(config.root / ".iceberg.lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _publish_table(
    config: LakeConfig, catalog: Catalog, iceberg: IcebergCatalog, spec: DatasetSpec, snapshot: int
) -> TablePublication:
    from pyiceberg.exceptions import CommitFailedException

    dataset = catalog.dataset(spec.name)
    for attempt in range(_ATTEMPTS):
        table = ensure_table(iceberg, spec)
        published = _published_snapshot(table)
        if published > snapshot:  # a newer commit's publish came first: nothing to take back
            return TablePublication(table=f"{NAMESPACE}.{spec.name}", snapshot=published)
        live = (
            {}
            if dataset is None
            else {_file_uri(config, f): f for f in catalog.live_files(dataset.dataset_id, snapshot=snapshot)}
        )
        entries = [task.file for task in table.scan().plan_files()]
        current = {df.file_path: df for df in entries}
        # A path listed twice (another writer appended a lake file again) is deleted and added once.
        twice = {path for path, n in Counter(df.file_path for df in entries).items() if n > 1}
        added = [f for path, f in live.items() if path not in current or path in twice]
        removed = [df for path, df in current.items() if path not in live or path in twice]
        out = TablePublication(
            table=f"{NAMESPACE}.{spec.name}", snapshot=snapshot, files=len(live), rows=sum(f.rows for f in live.values())
        )
        out.metadata_location = table.metadata_location
        if not added and not removed:
            return out
        try:
            table = _commit(config, catalog, table, spec, added, removed, snapshot)
        except CommitFailedException:
            if attempt == _ATTEMPTS - 1:
                raise
            continue
        out.added, out.removed, out.changed, out.metadata_location = len(added), len(removed), True, table.metadata_location
        return out
    raise AssertionError("unreachable")


def _published_snapshot(table: Table) -> int:
    """The ticklake snapshot the table's current Iceberg snapshot equals (0: none yet)."""
    current = table.current_snapshot()
    summary = current.summary if current is not None else None
    return int((summary.additional_properties if summary is not None else {}).get(SNAPSHOT_KEY, 0))


def _commit(
    config: LakeConfig,
    catalog: Catalog,
    table: Table,
    spec: DatasetSpec,
    added: list[LiveFile],
    removed: list[DataFile],
    snapshot: int,
) -> Table:
    """One Iceberg commit: `removed` deleted, `added` appended (hourly files under the hourly spec,
    archived objects under the daily one), the summary naming the ticklake snapshot it equals."""
    footers = catalog.footers([f.file_id for f in added if tier_of(f.path) == "cold"])
    properties = {SNAPSHOT_KEY: str(snapshot), "ticklake.committed-at": catalog.committed_at(snapshot) or ""}
    daily = [f for f in added if "hour" not in f.partition_values]
    hourly = [f for f in added if "hour" in f.partition_values]
    with table.transaction() as tx:
        groups = [(False, hourly), (True, daily)]
        groups = [(d, files) for d, files in groups if files] or [(False, [])]
        for i, (is_daily, files) in enumerate(groups):
            _use_spec(tx, spec, daily=is_daily)
            with tx.update_snapshot(snapshot_properties=properties).overwrite() as change:
                if i == 0:
                    for data_file in removed:
                        change.delete_data_file(data_file)
                for f in files:
                    change.append_data_file(_data_file(config, tx, spec, f, footers.get(f.file_id), daily=is_daily))
        _use_spec(tx, spec, daily=False)
        fault_point("iceberg.before_commit")
    return table.refresh()


def _file_uri(config: LakeConfig, f: LiveFile) -> str:
    """Where an engine finds a file: an object's URI, or a warm file's ``file://`` URI on this machine (its
    path as it is: pyiceberg and DuckDB read ``=`` but not its percent-encoding)."""
    return f.path if is_uri(f.path) else f"file://{(config.root / f.path).absolute()}"


def _data_file(
    config: LakeConfig, tx: Transaction, spec: DatasetSpec, f: LiveFile, footer: bytes | None, *, daily: bool
) -> DataFile:
    """The manifest entry of one lake file: its partition from the catalog, its statistics from its footer."""
    from pyiceberg.io.pyarrow import (
        compute_statistics_plan,
        data_file_statistics_from_parquet_metadata,
        parquet_path_to_id_mapping,
    )
    from pyiceberg.manifest import DataFile, DataFileContent, FileFormat
    from pyiceberg.typedef import Record

    schema = tx.table_metadata.schema()
    metadata = _metadata(config, f, footer)
    try:
        stats = data_file_statistics_from_parquet_metadata(
            metadata, compute_statistics_plan(schema, tx.table_metadata.properties), parquet_path_to_id_mapping(schema)
        )
    except KeyError as e:
        raise StorageError(f"{f.path}: column {e} is not a column of ticklake.{spec.name}; not published") from e
    values: list[Any] = []
    for key in _identities(spec, daily=daily):
        value = f.partition_values[key]
        values.append((dt.date.fromisoformat(value) - _EPOCH).days if key == "date" else value)
    unit = DAY_US if daily else HOUR_US
    if f.ts_min // unit != f.ts_max // unit:
        raise StorageError(f"{f.path}: spans more than one {'day' if daily else 'hour'}; not published")
    values.append(f.ts_min // unit)
    data_file = DataFile.from_args(
        content=DataFileContent.DATA,
        file_path=_file_uri(config, f),
        file_format=FileFormat.PARQUET,
        partition=Record(*values),
        file_size_in_bytes=f.bytes,
        **stats.to_serialized_dict(),
    )
    data_file.spec_id = tx.table_metadata.default_spec_id
    return data_file


def _metadata(config: LakeConfig, f: LiveFile, footer: bytes | None) -> pq.FileMetaData:
    """A file's Parquet footer: kept in the catalog for an archived object, read from disk for a warm file."""
    if footer is not None:
        return metadata_of(footer)
    try:
        if is_uri(f.path):
            with S3Access.from_environment().filesystem().open(f.path.removeprefix("s3://"), "rb") as remote:
                return pq.read_metadata(remote)
        return pq.read_metadata(config.root / f.path)
    except (OSError, ValueError) as e:
        raise StorageError(f"{f.path}: cannot read the footer of a file the catalog lists ({e}); see `ticklake check`") from e


def _reason(e: BaseException) -> str:
    if isinstance(e, TicklakeError):
        return str(e)
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}".rstrip(": ")
