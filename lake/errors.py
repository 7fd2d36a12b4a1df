"""The lake library's errors. With the catalog's they form one hierarchy under `TicklakeError`,
which is all the CLI's error boundary and the pipelines catch."""

from __future__ import annotations

from ticklake.catalog.errors import TicklakeError

__all__ = ["ConfigError", "LakeError", "NotFoundError", "QueryError", "SchemaError", "StorageError", "TicklakeError"]


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
