"""The one error hierarchy of the lake library; the CLI catches these (and CatalogError) only."""

from __future__ import annotations


class LakeError(Exception):
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
