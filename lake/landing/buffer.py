"""The landing buffer: sealed JSONL segments, one folder per event hour.

Contract for any producer (this module, or a recorder in another process or language):

* one tick per line, UTF-8 JSON, routed by its *event* hour (UTC) into
  ``<root>/landing/ticks/date=YYYY-MM-DD/hour=HH/``;
* write under a name starting with ``.`` (or ending in ``.tmp``), flush and fsync, then rename
  to ``<writer>-<seq>.jsonl``: a segment is *sealed* by that rename and never changes again;
* compaction reads only sealed ``*.jsonl`` names and recognises a segment by its content hash,
  so the same segment delivered twice (under any name) is counted once.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from ticklake.config import LakeConfig
from ticklake.errors import SchemaError, StorageError
from ticklake.landing.sidecar import remove_sidecar
from ticklake.storage.files import fsync_dir, move_atomic, temp_name, write_atomic
from ticklake.storage.layout import consumed_dir, hour_from_landing_path, hour_of, landing_dir, landing_hour_dir
from ticklake.ticks import Invalid, validate

_SEQ = re.compile(r"^(?P<writer>.+)-(?P<seq>\d+)\.jsonl$")
_MAX_OPEN_HOURS = 4


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


class LandingWriter:
    """Append ticks to the landing buffer, one open segment per event hour.

    Segments are sealed when they pass ``segment_max_bytes``, when more than a few hours are
    open (the oldest first), and on `seal`/`close`. Use as a context manager.
    """

    def __init__(self, config: LakeConfig, writer_id: str | None = None) -> None:
        self.root = config.root
        self.writer = writer_id or config.writer_name
        segment_name(self.writer, 0)  # validates the id
        self.max_bytes = config.segment_max_bytes
        self._open: dict[int, _OpenSegment] = {}
        self._next_seq: dict[int, int] = {}
        self.sealed: list[Path] = []

    def __enter__(self) -> LandingWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def append(self, ticks: Iterable[Mapping[str, Any]]) -> int:
        """Validate a batch of ticks and append them; all or none of the batch is written.

        A tick is a mapping in the landing format; `timestamp` may also be a timezone-aware
        `datetime`. Raises SchemaError naming the first invalid tick and field.
        """
        by_hour: dict[int, list[bytes]] = {}
        count = 0
        for n, tick in enumerate(ticks, start=1):
            record = dict(tick)
            if isinstance(record.get("timestamp"), datetime):
                stamp: datetime = record["timestamp"]
                if stamp.tzinfo is None:
                    raise SchemaError(f"tick {n}: field 'timestamp': datetime must be timezone-aware")
                record["timestamp"] = stamp.isoformat()
            try:
                row = validate(record)
            except Invalid as e:
                raise SchemaError(f"tick {n}: {e.message}") from None
            line = json.dumps(record, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
            by_hour.setdefault(hour_of(row["timestamp"]), []).append(line.encode("utf-8"))
            count += 1
        for hour in sorted(by_hour):
            self._write(hour, b"\n".join(by_hour[hour]) + b"\n")
        return count

    def _write(self, hour: int, data: bytes) -> None:
        segment = self._open.get(hour)
        if segment is None:
            if len(self._open) >= _MAX_OPEN_HOURS:
                self.seal(min(self._open))
            segment = self._open[hour] = _OpenSegment(self._final_path(hour))
        try:
            segment.file.write(data)
        except OSError as e:
            raise StorageError(f"{segment.tmp}: cannot write: {e.strerror or e}") from e
        segment.bytes += len(data)
        if segment.bytes >= self.max_bytes:
            self.seal(hour)

    def _final_path(self, hour: int) -> Path:
        if hour not in self._next_seq:
            used = [0]
            for folder in (
                landing_hour_dir(self.root, hour),
                consumed_dir(self.root) / landing_hour_dir(self.root, hour).relative_to(self.root / "landing"),
            ):
                if folder.is_dir():
                    for p in folder.iterdir():
                        m = _SEQ.match(p.name)
                        if m and m.group("writer") == self.writer:
                            used.append(int(m.group("seq")))
            self._next_seq[hour] = max(used) + 1
        seq = self._next_seq[hour]
        self._next_seq[hour] += 1
        return landing_hour_dir(self.root, hour) / segment_name(self.writer, seq)

    def flush(self) -> None:
        """Push written ticks to the OS (they stay unsealed, invisible to compaction)."""
        for segment in self._open.values():
            segment.file.flush()

    def seal(self, hour: int | None = None) -> list[Path]:
        """Seal the open segment of `hour` (or of every hour); return the sealed paths."""
        hours = list(self._open) if hour is None else [hour] if hour in self._open else []
        done = []
        for h in hours:
            done.append(self._open.pop(h).seal())
        self.sealed.extend(done)
        return done

    def close(self) -> None:
        """Seal everything still open."""
        self.seal()


class _OpenSegment:
    def __init__(self, final: Path) -> None:
        self.final = final
        self.tmp = temp_name(final)
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            self.file: IO[bytes] = open(self.tmp, "xb")
        except OSError as e:
            raise StorageError(f"{self.tmp}: cannot create: {e.strerror or e}") from e
        self.bytes = 0

    def seal(self) -> Path:
        try:
            self.file.flush()
            os.fsync(self.file.fileno())
            self.file.close()
            if self.bytes == 0:
                self.tmp.unlink()
                return self.final
            if self.final.exists():
                raise StorageError(
                    f"{self.final}: segment exists already; another writer uses id {self.final.name.rsplit('-', 1)[0]!r}"
                )
            os.replace(self.tmp, self.final)
            fsync_dir(self.final.parent)
        except OSError as e:
            raise StorageError(f"{self.final}: cannot seal: {e.strerror or e}") from e
        return self.final
