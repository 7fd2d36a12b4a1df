"""The one way the library opens a lake's catalog, so a lake without one is reported one way.

Apart from `ticklake.datasets` (which builds Arrow schemas): a query only needs the catalog.
A lake whose catalog is gone while its data files remain is refused here, by every reader and
writer alike: read, it would look empty; written, a fresh catalog would shadow those files.
A remote lake (a root given as s3://bucket/prefix) is opened here too: its published catalog is
refreshed from the bucket and opened read-only (`ticklake.storage.publication`).
"""

from __future__ import annotations

import os
from pathlib import Path

from ticklake.catalog import Catalog
from ticklake.catalog.errors import CatalogMissing
from ticklake.config import LakeConfig
from ticklake.errors import ConfigError, NotFoundError

NO_CATALOG = "no catalog.sqlite (nothing compacted yet?)"
DATA_DIR = "lake"
"""The folder below the root that holds every dataset's data files (``lake/<dataset>/...``)."""


def open_catalog(config: LakeConfig, *, write: bool = False, create: bool = False, shared: bool = False) -> Catalog:
    """The lake's catalog: read-only unless `write`; created (and migrated) on first use only with `create`.

    `shared`: the connection is used from several threads, one at a time (the caller locks).
    """
    if config.source:
        from ticklake.storage.publication import open_published  # noqa: PLC0415 - only remote lakes need s3fs

        return open_published(config, write=write or create, shared=shared)
    check_root(config, exists=not create)
    if not config.catalog_path.exists():
        refuse_orphaned_data(config)
        if not create:
            raise NotFoundError(f"lake {config.root}: {NO_CATALOG}")
    return Catalog(config.catalog_path, read_only=not (write or create), shared=shared)


def find_catalog(config: LakeConfig, *, shared: bool = False) -> Catalog | None:
    """The lake's catalog opened read-only, or None while nothing has been compacted yet."""
    if config.catalog_path.exists() or config.source:
        return open_catalog(config, shared=shared)
    check_root(config, exists=False)
    refuse_orphaned_data(config)
    return None


def check_root(config: LakeConfig, *, exists: bool) -> None:
    """Refuse a root that is a file, and (with `exists`: for reading) one that is not there.

    >>> check_root(LakeConfig(root=Path("/no/such/lake")), exists=True)
    Traceback (most recent call last):
    ticklake.errors.NotFoundError: no lake at /no/such/lake (no such folder, so no catalog.sqlite)
    """
    if config.source:
        return  # a remote lake: its root is the local copy of its catalog, made when it is fetched
    root = config.root
    if root.exists() and not root.is_dir():
        raise ConfigError(f"lake root {root} is a file, not a folder")
    if exists and not root.exists():
        raise NotFoundError(f"no lake at {root} (no such folder, so no catalog.sqlite)")


def refuse_orphaned_data(config: LakeConfig) -> None:
    """Refuse a lake whose catalog.sqlite is missing while data files are there (call it only then)."""
    count = data_file_count(config.root)
    if count:
        raise CatalogMissing(
            f"{config.root}: no catalog.sqlite but {count:,} data files under {DATA_DIR}/ — "
            "rebuild it with `ticklake repair --rebuild-catalog`"
        )


def data_file_count(root: Path) -> int:
    """Parquet files below ``<root>/lake``, found by listing (temporary ``.`` names are not data).

    Only for a lake without a catalog: otherwise the catalog, not a listing, says what the files are.
    """
    return sum(
        name.endswith(".parquet") and not name.startswith(".") for _, _, names in os.walk(root / DATA_DIR) for name in names
    )
