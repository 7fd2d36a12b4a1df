"""Errors of the catalog, the bottom floor: it imports nothing from `lake`."""

from __future__ import annotations


class TicklakeError(Exception):
    """Root of every error ticklake raises on purpose (the catalog's and the lake library's).

    It lives here, on the bottom floor, so that `ticklake.errors.LakeError` can derive from it too.
    """


class CatalogError(TicklakeError):
    """Base class of every error the catalog raises on purpose; also any SQLite error of a catalog file (a full
    disk, a read-only file or folder), translated by `ticklake.catalog.connection`."""


class CommitConflict(CatalogError):
    """Another writer changed what this commit read (files replaced, segments consumed)."""


class CatalogLocked(CatalogError):
    """The catalog database stayed locked by another writer past the timeout."""


class CatalogCorrupt(CatalogError):
    """The catalog file is not a ticklake catalog (damaged, empty, another database), or its schema is newer than this code."""


class CatalogMissing(CatalogError):
    """The catalog file is gone while data files it listed remain: reading or writing would ignore or shadow them."""


class LeaseHeld(CatalogError):
    """A lease (e.g. on one partition) stayed held by another worker past the wait time."""
