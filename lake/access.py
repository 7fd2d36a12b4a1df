"""The one way the library opens a lake's catalog, so a lake without one is reported one way.

Apart from `ticklake.datasets` (which builds Arrow schemas): a query only needs the catalog.
"""

from __future__ import annotations

from ticklake.catalog import Catalog
from ticklake.config import LakeConfig
from ticklake.errors import NotFoundError

NO_CATALOG = "no catalog.sqlite (nothing compacted yet?)"


def open_catalog(config: LakeConfig, *, write: bool = False, create: bool = False, shared: bool = False) -> Catalog:
    """The lake's catalog: read-only unless `write`; created (and migrated) on first use only with `create`.

    `shared`: the connection is used from several threads, one at a time (the caller locks).
    """
    if not create and not config.catalog_path.exists():
        raise NotFoundError(f"lake {config.root}: {NO_CATALOG}")
    return Catalog(config.catalog_path, read_only=not (write or create), shared=shared)


def find_catalog(config: LakeConfig, *, shared: bool = False) -> Catalog | None:
    """The lake's catalog opened read-only, or None while nothing has been compacted yet."""
    return open_catalog(config, shared=shared) if config.catalog_path.exists() else None
