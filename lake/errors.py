"""Every error ticklake raises on purpose, in one place: the lake library's `LakeError` family, defined
here, and the catalog's `CatalogError` family, re-exported from `ticklake.catalog.errors` (the bottom
floor, which imports nothing from the lake). Both derive from `TicklakeError`, which is all the CLI's
error boundary and the pipelines catch."""

from __future__ import annotations

from ticklake.catalog.errors import (
    CatalogCorrupt,
    CatalogError,
    CatalogLocked,
    CatalogMissing,
    CommitConflict,
    LeaseHeld,
    TicklakeError,
)

__all__ = [
    "CatalogCorrupt",
    "CatalogError",
    "CatalogLocked",
    "CatalogMissing",
    "CommitConflict",
    "ConfigError",
    "LakeError",
    "LeaseHeld",
    "NotFoundError",
    "QueryError",
    "QueryRefused",
    "SchemaError",
    "StorageError",
    "TicklakeError",
]


class LakeError(TicklakeError):
    """Base class of every error the lake library raises on purpose."""


class ConfigError(LakeError):
    """A setting is missing, malformed or contradicts another."""


class StorageError(LakeError):
    """Reading or writing a file in the lake or the landing buffer failed."""


class SchemaError(LakeError):
    """Input does not follow the tick record schema (named by file, line and field)."""


class NotFoundError(LakeError):
    """A requested hour, dataset, snapshot or file does not exist."""


class QueryError(LakeError):
    """DuckDB rejected a query, or its result could not be written."""


class QueryRefused(QueryError):
    """A read-only connection refused a statement that writes files, opens databases, loads
    extensions, stores secrets or changes settings (allowed with ``--unsafe`` / ``unsafe=True``)."""
