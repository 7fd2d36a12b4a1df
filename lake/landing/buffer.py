"""The landing buffer: sealed JSONL segments, one folder per event hour.

Contract for any producer (`ticklake.landing.writer.LandingWriter`, `ticklake ingest`, or a recorder in
another process or language):

* one tick per line, UTF-8 JSON, routed by its *event* hour (UTC) into
  ``<root>/landing/ticks/date=YYYY-MM-DD/hour=HH/``;
* write under a name starting with ``.`` (or ending in ``.tmp``), flush and fsync, then rename
  to ``<writer>-<seq>.jsonl``: a segment is *sealed* by that rename and never changes again;
* compaction reads only sealed ``*.jsonl`` names and recognises a segment by its content hash,
  so the same segment delivered twice (under any name) is counted once.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from ticklake.errors import SchemaError
from ticklake.landing.sidecar import SUFFIX as SIDECAR_SUFFIX
from ticklake.landing.sidecar import remove_sidecar
from ticklake.storage.files import fsync_dir, move_atomic, write_atomic
from ticklake.storage.layout import consumed_dir, hour_from_landing_path, landing_dir, landing_hour_dir


@dataclass(frozen=True)
class Segment:
    """A sealed landing segment."""

    path: Path
    hour: int
    bytes: int
    sealed_ns: int  # modification time: segments of an hour are read in the order they were sealed


def segment_name(writer: str, seq: int) -> str:
    """The sealed name of a writer's seq-th segment in an hour.

    >>> segment_name("rec-1", 3)
    'rec-1-000003.jsonl'
    """
    if not writer or "/" in writer or writer.startswith("."):
        raise SchemaError(f"writer id {writer!r}: must be non-empty, without '/', not starting with '.'")
    return f"{writer}-{seq:06d}.jsonl"


def write_segment(root: Path, hour: int, name: str, data: bytes) -> Path:
    """Seal `data` as segment `name` of `hour` in one step (temp file, fsync, rename)."""
    path = landing_hour_dir(root, hour) / name
    write_atomic(path, data)
    return path


def sealed_segments(root: Path, hour: int | None = None) -> list[Segment]:
    """Sealed segments in the buffer (of one hour, or all): by hour, then in the order they were sealed.

    Sealing order is arrival order, so ticks with equal (contract_id, timestamp) keep the
    order in which they arrived across segments as well as within one.
    """
    base = landing_dir(root)
    folders = [landing_hour_dir(root, hour)] if hour is not None else sorted(base.glob("date=*/hour=*"))
    found = []
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if path.suffix == ".jsonl" and not path.name.startswith((".", "_")) and path.is_file():
                stat = path.stat()
                found.append(Segment(path, hour_from_landing_path(path), stat.st_size, stat.st_mtime_ns))
    return sorted(found, key=lambda s: (s.hour, s.sealed_ns, s.path.name))


def retire_segment(root: Path, segment: Path, retention_hours: float) -> None:
    """Move a consumed segment out of the buffer, or delete it when retention is zero.

    Its sidecar (parsed rows, see `ticklake.landing.sidecar`) is deleted: the JSONL is what is retained.
    """
    remove_sidecar(segment)
    if retention_hours <= 0:
        segment.unlink(missing_ok=True)
        fsync_dir(segment.parent)
        return
    target = consumed_dir(root) / segment.relative_to(root / "landing")
    move_atomic(segment, target)
    now = time.time()
    os.utime(target, (now, now))  # retention counts from retirement


def tidy_buffer(root: Path, retention_hours: float) -> None:
    """What follows every compaction: retired segments past their retention and orphaned sidecars go.

    The same step whether one hour was compacted or all of them, from the CLI or from Dagster.
    """
    purge_consumed(root, retention_hours)
    purge_orphan_sidecars(landing_dir(root))


def purge_consumed(root: Path, retention_hours: float, now: float | None = None) -> int:
    """Delete retired segments older than the retention; return how many were deleted."""
    folder = consumed_dir(root)
    if not folder.is_dir():
        return 0
    limit = (time.time() if now is None else now) - retention_hours * 3600
    deleted = 0
    for path in folder.rglob("*.jsonl"):
        if path.stat().st_mtime < limit:
            path.unlink()
            deleted += 1
    return deleted


def purge_orphan_sidecars(folder: Path, older_than_seconds: float = 3600.0) -> int:
    """Delete sidecars whose segment is gone (a crash between retiring the two); return the count.

    Young orphans are left alone: ingest writes the sidecar just before it seals the segment.
    """
    if not folder.is_dir():
        return 0
    limit = time.time() - older_than_seconds
    deleted = 0
    for path in folder.rglob(f"*{SIDECAR_SUFFIX}"):
        if not path.with_suffix(".jsonl").exists() and path.stat().st_mtime < limit:
            path.unlink(missing_ok=True)
            deleted += 1
    return deleted
