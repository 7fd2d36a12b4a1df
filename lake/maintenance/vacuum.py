"""`ticklake vacuum --older-than DURATION`: delete what no readable snapshot needs any more.

Deleted: data files replaced by snapshots committed longer ago than DURATION (every late-data merge
replaces its hour's files, so without vacuum the lake grows with each one), and crash leftovers
older than DURATION: orphan data files, temporary files, orphan sidecars. Never deleted: a file a
pinned reader may read (`ticklake.maintenance.pins`), or leftovers young enough (or in an hour
whose lease is held) to be a running process's work in flight.

The order makes a kill at any step leave a consistent lake, finished by the next vacuum:

1. expire, in one commit, the snapshots that hold the files about to go (they can no longer be
   read from then on; readers already open on them hold pins, and are spared in step 2);
2. list the pins again, spare their files, and delete the rest from disk;
3. forget the deleted files' rows in a second commit.

A kill after 1 leaves expired snapshots whose files are still there; a kill in 2 or before 3
leaves rows of files that only expired snapshots hold (`ticklake check` reports them as pending).
The next vacuum finds the same files and finishes. Deleting first would leave readable snapshots
pointing at missing files; forgetting first would turn the files into orphans no pin protects.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from ticklake.access import open_catalog
from ticklake.catalog import Catalog
from ticklake.catalog.maintenance import (
    StoredFile,
    expire_snapshots,
    forget_files,
    held_leases,
    replaced_by,
    stored_files,
    vacuum_candidates,
)
from ticklake.config import LakeConfig
from ticklake.faults import fault_point
from ticklake.maintenance.check import leftover_findings
from ticklake.maintenance.disk import scan_disk
from ticklake.maintenance.pins import Pin, read_pins, unpin
from ticklake.storage.files import discard, size_or_zero
from ticklake.storage.objects import S3Access
from ticklake.storage.tiers import delete_file, tier_of


@dataclass
class VacuumResult:
    """What one vacuum deleted (or, with `dry_run`, would delete), and what it spared."""

    older_than: float
    cutoff: str
    dry_run: bool = False
    replaced: list[StoredFile] = field(default_factory=list)  # replaced data files deleted
    replaced_bytes: int = 0
    expired: list[int] = field(default_factory=list)
    forgotten: int = 0
    leftovers: list[tuple[str, str, int]] = field(default_factory=list)  # (kind, path, bytes): orphans, temps, sidecars
    spared: list[StoredFile] = field(default_factory=list)  # replaced files a pinned reader may read
    pins: list[Pin] = field(default_factory=list)  # the pins that spared files
    stale_pins: int = 0

    @property
    def freed(self) -> int:
        """Bytes deleted (or that would be)."""
        return self.replaced_bytes + sum(size for _, _, size in self.leftovers)

    def lines(self) -> list[str]:
        """One line per thing done, for the CLI."""
        verb = "would delete" if self.dry_run else "deleted"
        out = [
            f"{verb} {len(self.replaced):,} replaced data files ({self.replaced_bytes:,} bytes):"
            f" replaced before {self.cutoff}, lost, or held by expired snapshots only"
        ]
        if self.expired:
            out.append(
                f"expired snapshots {_ranges(self.expired)}"
                f" ({len(self.expired):,}): the files they hold are gone, they can no longer be read"
            )
        out += [f"{verb} {kind} {path} ({size:,} bytes)" for kind, path, size in self.leftovers]
        if self.spared:
            out.append(
                f"kept {len(self.spared):,} replaced files ({sum(f.bytes for f in self.spared):,} bytes) for open readers: "
                + "; ".join(p.describe() for p in self.pins)
            )
        if self.stale_pins:
            out.append(f"{verb} {self.stale_pins:,} stale pins of readers that are gone")
        return out

    def summary(self) -> str:
        """One line with the counts."""
        head = "vacuum (dry run)" if self.dry_run else "vacuum"
        return (
            f"{head}: {'would free' if self.dry_run else 'freed'} {self.freed:,} bytes: {len(self.replaced):,} replaced files,"
            f" {len(self.leftovers):,} leftovers; {len(self.expired):,} snapshots expired,"
            f" {len(self.spared):,} files kept for readers"
        )


def vacuum_lake(config: LakeConfig, older_than: float, *, dry_run: bool = False, now: float | None = None) -> VacuumResult:
    """Delete replaced files and leftovers older than `older_than` seconds (see the module docstring)."""
    now = time.time() if now is None else now
    root = config.root
    cutoff = datetime.fromtimestamp(now - older_than, UTC).isoformat(timespec="microseconds")
    result = VacuumResult(older_than, cutoff, dry_run)
    if config.iceberg_uri and not dry_run:
        # The Iceberg tables first, so they hold no replaced file (a publish missed by a crash) when it goes.
        # Their older snapshots still name deleted files: Iceberg time travel reaches back to the last vacuum.
        from ticklake.interop.iceberg import publish_quietly  # noqa: PLC0415 - pyiceberg only when used

        publish_quietly(config)
    with open_catalog(config, write=True) as catalog:
        # The plan is read before the pins are listed: a reader pins before it reads its snapshot
        # (`ticklake.maintenance.pins`), so one that pins after this listing reads past the plan.
        candidates = vacuum_candidates(catalog, cutoff)
        live, stale = read_pins(root)
        doomed, result.spared = _spare(candidates, live)
        cataloged = {f.path for f in stored_files(catalog)}
        leases = held_leases(catalog, now)
        result.leftovers = _leftovers(root, cataloged, leases, max(older_than, 0.0), now)
        result.stale_pins = len(stale)
        if dry_run:
            result.replaced, result.replaced_bytes = doomed, sum(f.bytes for f in doomed)
            result.pins = _holding(live, result.spared)
            return result
        fault_point("vacuum.before_expire")
        if doomed:
            result.expired = expire_snapshots(catalog, [f.file_id for f in doomed], _iso(now))
        fault_point("vacuum.after_expire")
        # Only what no readable snapshot holds now goes: the planned files, and any the expiry left to
        # expired snapshots alone; not a file a commit since the plan replaced (its snapshots are readable).
        doomed = [f for f in vacuum_candidates(catalog, cutoff) if not f.needed]
        live, _ = read_pins(root)  # and again: a reader that opened an expiring snapshot before the commit
        doomed, late = _spare(doomed, live)
        result.spared = _unique(result.spared + late)
        result.pins = _holding(live, result.spared)
        fault_point("vacuum.before_delete")
        access = _access_for(doomed)
        for i, f in enumerate(doomed):
            result.replaced_bytes += delete_file(root, f.path, access)
            if i == 0:
                fault_point("vacuum.mid_delete")
        result.replaced = doomed
        fault_point("vacuum.before_forget")
        if doomed:
            result.forgotten = forget_files(catalog, [f.file_id for f in doomed])
        fault_point("vacuum.after_catalog")
    for i, (_, path, _) in enumerate(result.leftovers):
        _delete(root / path)
        if i == 0:
            fault_point("vacuum.mid_leftovers")
    for pin in stale:
        unpin(pin)
    return result


def delete_replaced(
    config: LakeConfig, catalog: Catalog, *, operations: Sequence[str], access: S3Access | None = None
) -> tuple[int, int]:
    """Delete now the files commits of `operations` replaced (their rows live on in the files that
    replaced them), in vacuum's order: expire the snapshots holding them, spare what a pinned reader
    may read, delete, forget. Return (files deleted, files spared)."""
    candidates = replaced_by(catalog, operations)
    if not candidates:
        return 0, 0
    live, _ = read_pins(config.root)
    doomed, spared = _spare(candidates, live)
    if doomed:
        expire_snapshots(catalog, [f.file_id for f in doomed], _iso(time.time()))
    live, _ = read_pins(config.root)
    doomed, late = _spare([f for f in replaced_by(catalog, operations) if not f.needed], live)
    for f in doomed:
        delete_file(config.root, f.path, access)
    if doomed:
        forget_files(catalog, [f.file_id for f in doomed])
    return len(doomed), len(_unique(spared + late))


def _access_for(files: Sequence[StoredFile]) -> S3Access | None:
    """Object-store access, resolved only when some of `files` are cold."""
    return S3Access.from_environment() if any(tier_of(f.path) == "cold" for f in files) else None


def _spare(files: Sequence[StoredFile], pins: Iterable[Pin]) -> tuple[list[StoredFile], list[StoredFile]]:
    """(files no pin needs, files a pin needs): a pin of snapshot P reads P or later, which hold a
    file replaced after P."""
    oldest = min((p.snapshot for p in pins), default=None)
    if oldest is None:
        return list(files), []
    needed = [f for f in files if f.removed_snapshot is not None and f.removed_snapshot > oldest]
    ids = {f.file_id for f in needed}
    return [f for f in files if f.file_id not in ids], needed


def _unique(files: Sequence[StoredFile]) -> list[StoredFile]:
    return list({f.file_id: f for f in files}.values())


def _holding(pins: Iterable[Pin], spared: Sequence[StoredFile]) -> list[Pin]:
    """The pins that keep at least one of the spared files."""
    return [p for p in pins if any(f.removed_snapshot is not None and f.removed_snapshot > p.snapshot for f in spared)]


def _leftovers(root: Path, cataloged: set[str], leases: set[str], older_than: float, now: float) -> list[tuple[str, str, int]]:
    """(kind, path, bytes) of the crash leftovers past both `older_than` and their in-flight grace."""
    found = leftover_findings(scan_disk(root), cataloged, leases, now, older_than=older_than)
    return [(f.kind, f.subject, size_or_zero(root / f.target)) for f in found if f.target is not None]


def _delete(path: Path) -> int:
    """Delete a file; return the bytes it held (0 when it was gone already)."""
    size = size_or_zero(path)
    discard(path)
    return size


def _iso(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).isoformat(timespec="microseconds")


def _ranges(ids: Sequence[int]) -> str:
    """Snapshot ids as ranges.

    >>> _ranges([1, 2, 3, 5, 7, 8])
    '1-3, 5, 7-8'
    """
    parts: list[str] = []
    start = prev = ids[0]
    for i in [*ids[1:], None]:
        if i is not None and i == prev + 1:
            prev = i
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if i is not None:
            start = prev = i
    return ", ".join(parts)
