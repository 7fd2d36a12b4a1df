"""The one commit path of the build steps (compaction, rollups): stage new data files, commit them
as one snapshot, and never leave a file behind that the catalog does not reference.

A build step reads the catalog, writes its files through a `FileSink` and returns a `Staged`
change; `commit_staged` commits it. When the commit loses a race (`CommitConflict`: another
writer changed what the step read), the files just written are deleted and the step runs again
on the new state; while the catalog stays locked (`CatalogLocked`), the same commit is tried
again. Both wait on one backoff schedule. Any other failure, in the step or in the commit,
deletes the staged files and propagates. After every commit, a lake with a cold tier publishes its
catalog to the bucket for remote readers (`ticklake.storage.publication`), and a lake with an Iceberg
catalog set (``iceberg_uri``) publishes its tables there (`ticklake.interop.iceberg`); a failed
publication is a warning, never a failed commit.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import pyarrow as pa

from ticklake.catalog import Catalog, CatalogLocked, Commit, CommitConflict, DatasetSpec, NewFile
from ticklake.config import LakeConfig
from ticklake.datasets import FILE_SCHEMAS
from ticklake.faults import fault_point
from ticklake.storage.files import discard, file_sha256
from ticklake.storage.parquet import describe_file, new_file_path, write_data_file
from ticklake.storage.publication import publish_quietly

R = TypeVar("R")
T = TypeVar("T")
ATTEMPTS = 5  # per kind of trouble: lost races, and commits that found the catalog locked


def backoff(attempt: int) -> float:
    """Seconds to wait before retry number `attempt` (0-based).

    >>> [backoff(a) for a in range(4)]
    [0.05, 0.1, 0.2, 0.4]
    """
    return min(2.0, 0.05 * 2**attempt)


class FileSink:
    """Writes a build step's data files and remembers them, so a lost commit can take them back."""

    def __init__(self, config: LakeConfig) -> None:
        self.config = config
        self.written: list[str] = []

    def write(self, spec: DatasetSpec, partition: dict[str, Any], table: pa.Table) -> NewFile:
        """Write `table` as a new file of `partition` and describe it for the catalog."""
        rel = new_file_path(spec, partition)
        self.written.append(rel)  # before the write: a failed write leaves nothing, a later failure is undone
        size = write_data_file(self.config.root / rel, table, self.config, FILE_SCHEMAS[spec.name])
        # Hashed back from disk (fresh in the page cache): the checksum is of what was written.
        digest = file_sha256(self.config.root / rel)
        return describe_file(spec, rel, partition, table, size, self.config, digest)

    def discard(self) -> None:
        """Delete every file written so far: nothing references them."""
        for rel in self.written:
            discard(self.config.root / rel)
        self.written.clear()


@dataclass
class Staged(Generic[R]):
    """What a build step prepared: its result, the commit to make (None: nothing changed), and what
    to do once the change is in the catalog (`then` gets the new snapshot, or None without a commit)."""

    result: R
    commit: Commit | None = None
    then: Callable[[int | None], None] = field(default=lambda snapshot: None)


def commit_staged(catalog: Catalog, config: LakeConfig, stage: Callable[[FileSink], Staged[R]]) -> tuple[R, int | None]:
    """Run `stage` and commit what it staged, retrying lost races from a fresh read; return the
    step's result and the new snapshot (None when there was nothing to commit)."""

    def attempt() -> tuple[R, int | None]:
        sink = FileSink(config)
        try:
            staged = stage(sink)
            commit = staged.commit
            snapshot = None if commit is None else _retry(lambda: _commit(catalog, commit), CatalogLocked)
        except BaseException:
            sink.discard()
            raise
        staged.then(snapshot)
        if snapshot is not None:  # outside the try: the files are committed, an interrupt here must not discard them
            _published(config)
        return staged.result, snapshot

    return _retry(attempt, CommitConflict)


def commit_once(catalog: Catalog, config: LakeConfig, commit: Commit) -> int:
    """Commit a change made outside `commit_staged` (its files already stored), retried while the
    catalog is locked, then publish it; a lost race (CommitConflict) is the caller's to handle."""
    snapshot = _retry(lambda: _commit(catalog, commit), CatalogLocked)
    _published(config)
    return snapshot


def _published(config: LakeConfig) -> None:
    """After a commit: the catalog published for remote readers, the Iceberg tables brought level."""
    publish_quietly(config)
    if config.iceberg_uri:
        from ticklake.interop.iceberg import publish_quietly as publish_iceberg  # noqa: PLC0415 - pyiceberg only when used

        publish_iceberg(config)


def _commit(catalog: Catalog, commit: Commit) -> int:
    return catalog.commit(commit, before_end=lambda: fault_point(f"{commit.operation}.during_commit"))


def _retry(action: Callable[[], T], transient: type[Exception]) -> T:
    """`action`, run again after `backoff` while it raises `transient`, at most ATTEMPTS times."""
    for attempt in range(ATTEMPTS - 1):
        try:
            return action()
        except transient:
            time.sleep(backoff(attempt))
    return action()
