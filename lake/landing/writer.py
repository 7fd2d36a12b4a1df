"""Appending ticks to the landing buffer from Python: one open segment per event hour, sealed
by the buffer's contract (`ticklake.landing.buffer`): temporary name, fsync, rename.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from ticklake.config import LakeConfig
from ticklake.errors import SchemaError, StorageError
from ticklake.landing.buffer import segment_name
from ticklake.storage.files import discard, publish, temp_name
from ticklake.storage.layout import consumed_dir, hour_of, landing_hour_dir
from ticklake.ticks import Invalid, validate

_SEQ = re.compile(r"^(?P<writer>.+)-(?P<seq>\d+)\.jsonl$")
_MAX_OPEN_HOURS = 4


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
            # A name is a segment's identity, so it must never come back, not even after the retained
            # copies are purged: sequences start at the clock (microseconds), above any seq still seen.
            self._next_seq[hour] = max(max(used) + 1, time.time_ns() // 1000)
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
    """A segment being filled under its temporary name; sealing publishes it under its final name."""

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
        """Publish the segment (an empty one is dropped); the temporary file never outlives a failure."""
        try:
            self.file.close()
            if self.bytes == 0:
                self.tmp.unlink()
                return self.final
            publish(self.tmp, self.final, exclusive=True)
        except FileExistsError:
            discard(self.tmp)
            writer = self.final.name.rsplit("-", 1)[0]
            raise StorageError(f"{self.final}: segment exists already; another writer uses id {writer!r}") from None
        except OSError as e:
            discard(self.tmp)
            raise StorageError(f"{self.final}: cannot seal: {e.strerror or e}") from e
        return self.final
