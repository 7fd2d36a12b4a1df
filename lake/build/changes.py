"""What the build steps committed, hour by hour: each snapshot read as the new state it gave one
event hour of one dataset, for schedulers that show the lake's hours (the Dagster code location's
catalog sensor reports each as a materialization of that hour).

A compaction, a rollup, a repair or a drop changes one hour (its summary names it); a catalog
rebuilt from the files on disk adds every hour in one snapshot. An archive only moves days to the
cold tier: the hours keep their content, so it changes none. Vacuum never makes a snapshot; it
may forget the rows of files it deleted, so the bytes of an old commit can be unknown.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ticklake.access import find_catalog
from ticklake.catalog.changes import CommitRecord, HourFiles, commits_after, commits_by_id, first_committed, hours_added
from ticklake.config import LakeConfig
from ticklake.datasets import TICKS
from ticklake.storage.layout import parse_hour

MOVES = ("archive",)
"""Operations that move data without changing it: no new state of any hour."""


@dataclass(frozen=True)
class HourChange:
    """One commit's new state of one event hour of one dataset."""

    dataset: str
    hour: int
    snapshot: int
    committed_at: datetime
    operation: str
    files: int  # data files the commit wrote for the hour
    bytes: int | None  # their bytes; None when vacuum has forgotten their rows
    rows: int | None  # rows the commit wrote for the hour; None when unknown
    replaced_files: int  # files of the hour the commit replaced
    summary: Mapping[str, Any]  # the commit's summary (as `ticklake snapshots` reads it)
    whole_commit: bool  # the commit changed this hour only, so its summary's counts are this hour's


@dataclass(frozen=True)
class HourChanges:
    """Hour changes read from a catalog, oldest commit first.

    `lake` names the catalog: when its first snapshot was committed (None: no commits yet). A catalog
    made again at the same root (a new demo, a rebuilt catalog) numbers its snapshots from 1 again,
    and only this tells it from the one before. `last` is the newest snapshot read, `newest` the
    catalog's current snapshot (below what an observer read before: a catalog restored from a copy).
    """

    lake: str | None
    last: int
    newest: int
    changes: list[HourChange]


def hour_changes(config: LakeConfig, after: int, limit: int, again: Sequence[int] = ()) -> HourChanges:
    """The hour changes of the first `limit` snapshots after `after`, and of the snapshots `again`
    (read once more, e.g. those an observer could not report yet)."""
    catalog = find_catalog(config)
    if catalog is None:
        return HourChanges(None, after, 0, [])
    with catalog:
        lake, newest = first_committed(catalog), catalog.current_snapshot()
        new = commits_after(catalog, after, limit)
        commits = sorted({c.snapshot: c for c in (*commits_by_id(catalog, again), *new)}.values(), key=lambda c: c.snapshot)
        commits = [c for c in commits if c.operation not in MOVES]
        files: dict[int, dict[str, HourFiles]] = {}
        for added in hours_added(catalog, [c.snapshot for c in commits]):
            files.setdefault(added.snapshot, {})[added.hour] = added
    last = new[-1].snapshot if new else after
    return HourChanges(lake, last, newest, [change for c in commits for change in _changes(c, files.get(c.snapshot, {}))])


def _changes(commit: CommitRecord, files: dict[str, HourFiles]) -> list[HourChange]:
    """The hours one commit changed: the hour its summary names, else every hour it added files to."""
    dataset = commit.dataset or (TICKS.name if commit.operation == "compact" else None)  # compaction's summary omits it
    if dataset is None:
        return []
    summary = commit.summary
    named = summary.get("hour")
    hours = [str(named)] if named else sorted(files)
    changes = []
    for hour in hours:
        added = files.get(hour)
        count = int(summary.get("files_added", 0)) if named else (added.files if added else 0)
        # The rows of a commit's files are all there, or vacuum forgot some of them (they were replaced since).
        known = count == (added.files if added else 0)
        changes.append(
            HourChange(
                dataset=dataset,
                hour=parse_hour(hour),
                snapshot=commit.snapshot,
                committed_at=datetime.fromisoformat(commit.committed_at),
                operation=commit.operation,
                files=count,
                bytes=(added.bytes if added else 0) if known else None,
                rows=(added.rows if added else 0) if known else None,
                replaced_files=int(summary.get("files_removed", 0)) if named else 0,
                summary=summary,
                whole_commit=bool(named),
            )
        )
    return changes
