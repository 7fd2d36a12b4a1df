"""The lake's history: its snapshots, and which one a query reads (by id, by time, or the newest).

Reading "as of" a moment reads the lake as it was known then: the newest snapshot committed at
or before it. A moment in the future is fine (the newest snapshot); one before the first commit
is an error, since the lake knew nothing then.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from ticklake.access import open_catalog
from ticklake.catalog import Catalog
from ticklake.config import LakeConfig
from ticklake.errors import ConfigError, NotFoundError

AS_OF_FORMS = "an ISO-8601 time with Z or an offset (2022-01-07T06:30:00Z, 2022-01-07T01:30:00-05:00) or a date (2022-01-07)"

SNAPSHOT_COLUMNS = (
    "snapshot",
    "committed_at",
    "operation",
    "dataset",
    "hour",
    "files_added",
    "files_removed",
    "rows_added",
    "rows_removed",
    "expired_at",  # set when vacuum deleted files the snapshot needs: it is listed, no longer readable
)

_ISO = re.compile(r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?)?(Z|z|[+-]\d{2}:?\d{2})?")


@dataclass(frozen=True)
class SnapshotChoice:
    """The snapshot a connection reads (None: always the newest) and how it was chosen ("as asked")."""

    snapshot: int | None
    reason: str


def parse_as_of(value: str | datetime | date) -> datetime:
    """An as-of moment as an aware UTC datetime; a date means its midnight (UTC), a time without offset UTC.

    >>> parse_as_of("2022-01-07T01:30:00-05:00").isoformat()
    '2022-01-07T06:30:00+00:00'
    >>> parse_as_of("2022-01-07").isoformat(), parse_as_of("2022-01-07T06:30Z").isoformat()
    ('2022-01-07T00:00:00+00:00', '2022-01-07T06:30:00+00:00')
    >>> parse_as_of("yesterday")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ticklake.errors.ConfigError: as-of 'yesterday': expected an ISO-8601 time with Z or an offset (...) or a date (2022-01-07)
    """
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime.combine(value, time(0), tzinfo=UTC)
    else:
        text = value.strip()
        if not _ISO.fullmatch(text):
            raise ConfigError(f"as-of {value!r}: expected {AS_OF_FORMS}")
        try:
            moment = datetime.fromisoformat(text[:-1] + "+00:00" if text[-1] in "Zz" else text)
        except ValueError as e:
            raise ConfigError(f"as-of {value!r}: {e}; expected {AS_OF_FORMS}") from e
    try:
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
    except OverflowError as e:  # a time near year 1 or 9999 whose offset takes it out of range
        raise ConfigError(f"as-of {value!r}: out of range; expected {AS_OF_FORMS}") from e


def choose_snapshot(catalog: Catalog, snapshot: int | None, as_of: str | datetime | date | None) -> SnapshotChoice:
    """The snapshot to pin from ``--snapshot`` or ``--as-of`` (at most one of them)."""
    if snapshot is not None and as_of is not None:
        raise ConfigError("give either --snapshot or --as-of, not both (snapshot= or as_of= in Python)")
    lake = catalog.path.parent
    if snapshot is not None:
        if not 1 <= snapshot <= catalog.current_snapshot() or not catalog.has_snapshot(snapshot):
            raise NotFoundError(f"lake {lake}: no snapshot {snapshot} (snapshots are 1 to {catalog.current_snapshot()})")
        return SnapshotChoice(snapshot, "as asked")
    if as_of is None:
        return SnapshotChoice(None, "the newest")
    moment = parse_as_of(as_of)
    chosen = catalog.snapshot_at(moment)
    if chosen is None:
        first = catalog.committed_at(1)
        since = f"the first snapshot was committed at {first}" if first else "the lake has no snapshots yet"
        raise NotFoundError(f"lake {lake}: no snapshot as of {moment.isoformat()}: {since}")
    return SnapshotChoice(chosen, f"the newest committed at or before {moment.isoformat()} (at {catalog.committed_at(chosen)})")


def snapshot_history(config: LakeConfig) -> list[tuple[Any, ...]]:
    """Every snapshot of the lake, oldest first, as rows of `SNAPSHOT_COLUMNS`."""
    with open_catalog(config) as catalog:
        return catalog.snapshot_changes()
