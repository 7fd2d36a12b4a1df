"""Arrivals: which event hours have sealed segments waiting in the landing buffer, and whether
those hours were compacted before (late data), for schedulers that decide what to rebuild.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from ticklake.access import find_catalog
from ticklake.config import LakeConfig
from ticklake.datasets import TICKS
from ticklake.landing.buffer import Segment, sealed_segments
from ticklake.storage.layout import hour_key


@dataclass(frozen=True)
class WaitingHour:
    """An event hour with sealed segments waiting to be compacted."""

    hour: int
    segments: int
    bytes: int
    digest: str  # names the set of waiting segments: new segments, new digest
    compacted: bool  # the catalog has consumed segments of this hour already: these are late


def segment_set_digest(segments: list[Segment]) -> str:
    """A short, stable name of a set of sealed segments (by name, size and sealing time; a sealed
    segment never changes, so this identifies it without reading it)."""
    text = "\n".join(sorted(f"{s.path.name}\t{s.bytes}\t{s.sealed_ns}" for s in segments))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def waiting_hours(config: LakeConfig) -> list[WaitingHour]:
    """Hours with sealed segments in the landing buffer, oldest first, each marked compacted or not."""
    by_hour: dict[int, list[Segment]] = {}
    for s in sealed_segments(config.root):
        by_hour.setdefault(s.hour, []).append(s)
    compacted: set[str] = set()
    catalog = find_catalog(config) if by_hour else None
    if catalog is not None:
        with catalog:
            ticks = catalog.dataset(TICKS.name)
            if ticks is not None:
                compacted = catalog.hours_consumed(ticks.dataset_id, [hour_key(h) for h in by_hour])
    return [
        WaitingHour(h, len(segs), sum(s.bytes for s in segs), segment_set_digest(segs), hour_key(h) in compacted)
        for h, segs in sorted(by_hour.items())
    ]
