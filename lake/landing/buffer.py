"""The landing buffer: sealed JSONL segments, one folder per event hour.

Contract for any producer (`ticklake.landing.writer.LandingWriter`, `ticklake ingest`, or a recorder in
another process or language):

* one tick per line, UTF-8 JSON, routed by its *event* hour (UTC) into
  ``<root>/landing/ticks/date=YYYY-MM-DD/hour=HH/``;
* write under a name starting with ``.`` (or ending in ``.tmp``), flush and fsync, then rename
  to ``<writer>-<seq>.jsonl``: a segment is *sealed* by that rename and never changes again;
* a segment is known by its name: a producer never reuses a ``<writer>-<seq>`` in an hour. The
  same segment delivered again under its name is counted once; equal content under two names is
  two deliveries of real ticks and is stored twice; a consumed name that comes back with other
  content is set aside (``landing/_conflicts/``) with a warning, never merged or dropped.

Anything else in the buffer (a folder that is not ``date=YYYY-MM-DD/hour=HH``, a stray file) is
left where it is and reported as a `Stray`, so one odd path never stops the other hours.
"""

from __future__ import annotations

import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from ticklake.errors import SchemaError, StorageError
from ticklake.landing.sidecar import SUFFIX as SIDECAR_SUFFIX
from ticklake.landing.sidecar import remove_sidecar
from ticklake.storage.files import fsync_dir, move_atomic, write_atomic
from ticklake.storage.layout import conflicts_dir, consumed_dir, landing_dir, landing_folder_hour, landing_hour_dir


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


@dataclass(frozen=True)
class Stray:
    """A path in the landing buffer that is neither an hour folder nor a segment: left alone, reported."""

    path: Path
    reason: str

    def warning(self) -> str:
        """The one-line warning naming the path."""
        return f"{self.path}: {self.reason}; left in place, not compacted"


@dataclass(frozen=True)
class BufferScan:
    """What the landing buffer holds: sealed segments (see `sealed_segments`) and strays."""

    segments: list[Segment]
    strays: list[Stray]


def scan_buffer(root: Path, hour: int | None = None) -> BufferScan:
    """The buffer's sealed segments (of one hour, or all) and the paths that do not belong there.

    A file that vanishes while the folder is listed was retired by another compaction: it is
    simply not there. Temporary names (``.``-prefixed, ``*.tmp``) are writes in flight; sidecars
    belong to their segments.
    """
    strays: list[Stray] = []
    if hour is not None:
        folders = [(landing_hour_dir(root, hour), hour)]
    else:
        folders = _hour_folders(landing_dir(root), strays)
    found = []
    for folder, folder_hour in folders:
        for path in _entries(folder):
            name = path.name
            if name.startswith((".", "_")) or name.endswith(".tmp") or name.endswith(SIDECAR_SUFFIX):
                continue
            try:
                info = path.stat()
            except FileNotFoundError:
                continue
            if name.endswith(".jsonl") and stat.S_ISREG(info.st_mode):
                found.append(Segment(path, folder_hour, info.st_size, info.st_mtime_ns))
            else:
                strays.append(Stray(path, "not a sealed segment (<writer>-<seq>.jsonl)"))
    return BufferScan(sorted(found, key=lambda s: (s.hour, s.sealed_ns, s.path.name)), strays)


def sealed_segments(root: Path, hour: int | None = None) -> list[Segment]:
    """Sealed segments in the buffer (of one hour, or all): by hour, then in the order they were sealed.

    Sealing order is arrival order, so ticks with equal (contract_id, timestamp) keep the
    order in which they arrived across segments as well as within one.
    """
    return scan_buffer(root, hour).segments


def stray_folders(root: Path) -> list[Stray]:
    """The paths below the buffer that are not ``date=YYYY-MM-DD/hour=HH`` folders."""
    strays: list[Stray] = []
    _hour_folders(landing_dir(root), strays)
    return strays


def _entries(folder: Path) -> list[Path]:
    try:
        return sorted(folder.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []


def _hour_folders(base: Path, strays: list[Stray]) -> list[tuple[Path, int]]:
    """The ``date=YYYY-MM-DD/hour=HH`` folders below `base`, with their hours; the rest are strays."""
    folders = []
    for day in _entries(base):
        if day.name.startswith((".", "_")):
            continue
        if not day.is_dir() or not day.name.startswith("date=") or landing_folder_hour(day.name, "hour=00") is None:
            strays.append(Stray(day, "not a landing date folder (date=YYYY-MM-DD)"))
            continue
        for folder in _entries(day):
            if folder.name.startswith("."):
                continue
            hour = landing_folder_hour(day.name, folder.name) if folder.is_dir() else None
            if hour is None:
                strays.append(Stray(folder, "not a landing hour folder (hour=00 ... hour=23)"))
            else:
                folders.append((folder, hour))
    return folders


def retire_segment(root: Path, segment: Path, retention_hours: float) -> None:
    """Move a consumed segment out of the buffer, or delete it when retention is zero.

    Its sidecar (parsed rows, see `ticklake.landing.sidecar`) is deleted: the JSONL is what is retained.
    A segment already gone was retired by another compaction: nothing to do.
    """
    remove_sidecar(segment)
    if retention_hours <= 0:
        segment.unlink(missing_ok=True)
        fsync_dir(segment.parent)
        return
    target = consumed_dir(root) / segment.relative_to(root / "landing")
    if not _move_if_there(segment, target):
        return
    now = time.time()
    try:
        os.utime(target, (now, now))  # retention counts from retirement
    except FileNotFoundError:
        pass  # purged at once by a concurrent tidy with zero retention


def set_aside_segment(root: Path, segment: Path) -> Path | None:
    """Move a segment out of the buffer into ``landing/_conflicts/`` (same relative path); None when
    it is gone already. Its sidecar goes: the JSONL is what is kept."""
    remove_sidecar(segment)
    target = conflicts_dir(root) / segment.relative_to(root / "landing")
    if target.exists():
        target = target.with_name(f"{target.stem}-{time.time_ns()}{target.suffix}")
    return target if _move_if_there(segment, target) else None


def _move_if_there(source: Path, target: Path) -> bool:
    if not source.exists():
        return False
    try:
        move_atomic(source, target)
    except StorageError:
        if source.exists():
            raise
        return False  # another process moved it first
    return True


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
        try:
            if path.stat().st_mtime < limit:
                path.unlink()
                deleted += 1
        except FileNotFoundError:
            pass  # purged by a concurrent tidy
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
        try:
            if not path.with_suffix(".jsonl").exists() and path.stat().st_mtime < limit:
                path.unlink(missing_ok=True)
                deleted += 1
        except FileNotFoundError:
            pass
    return deleted
