"""Definition metadata of the hourly assets: a dataset's columns and where its files are, as the
asset page of the Dagster UI shows them before any run.

The columns are the dataset's own declaration (`ticklake.datasets`, as SQL sees it, partition
columns included), never a second list; the location is the lake the `lake` resource resolves to
when the code location loads (its default root: $TICKLAKE_ROOT, else ./lakehouse).
"""

from __future__ import annotations

from typing import Any

from dagster import TableColumn, TableSchema

from ticklake.catalog import DatasetSpec
from ticklake.config import LakeConfig
from ticklake.pipelines.resources import LakeResource


def dataset_metadata(spec: DatasetSpec, config: LakeConfig | None = None) -> dict[str, Any]:
    """``dagster/column_schema``, ``dagster/table_name`` (the table `ticklake sql` queries) and ``dagster/uri``
    (the folder of the dataset's files) of `spec` in the lake of `config` (default: the `lake` resource's)."""
    config = config or LakeResource().lake_config()
    schema = TableSchema(columns=[TableColumn(name, type, _describe(spec, name)) for name, type in spec.columns.items()])
    return {"dagster/column_schema": schema, "dagster/table_name": spec.name, "dagster/uri": dataset_uri(spec, config)}


def dataset_uri(spec: DatasetSpec, config: LakeConfig) -> str:
    """Where the dataset's files are: a ``file://`` URI, or below the s3:// location of a remote lake.

    >>> dataset_uri(DatasetSpec("ticks", "lake/ticks", (), "timestamp", {}), LakeConfig(root="/data/lakehouse"))
    'file:///data/lakehouse/lake/ticks'
    """
    if config.source:
        return f"{config.source.rstrip('/')}/{spec.location}"
    return (config.root / spec.location).absolute().as_uri()


def _describe(spec: DatasetSpec, column: str) -> str | None:
    """What the catalog does with a column: it partitions the files, is indexed, has Bloom filters."""
    roles = [
        role
        for role, columns in (
            ("partition key (Hive path)", spec.partition_keys),
            ("inverted index", spec.indexed_columns),
            ("Bloom filter per file", spec.bloom_columns),
        )
        if column in columns
    ]
    return "; ".join(roles) or None
