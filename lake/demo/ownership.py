"""Which lake the demo may reset: only one it made itself, unchanged since, unless told otherwise.

The README tells operators to export ``TICKLAKE_ROOT``, so ``ticklake demo`` may well be pointed at
a live lake. It resets a root only when that root holds nothing, or when the demo's marker
(`MARKER`, written at the end of a run) still describes it: the same snapshot in the catalog and
no file under ``landing/`` or ``lake/`` that the demo did not leave there. Anything else is
refused with one line saying what the root holds, unless ``--force`` (which prints what it
deletes first) or ``--keep`` (which deletes nothing).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ticklake.access import DATA_DIR, check_root, data_file_count, open_catalog
from ticklake.config import LakeConfig
from ticklake.errors import ConfigError, TicklakeError
from ticklake.landing.buffer import sealed_segments
from ticklake.storage.files import write_atomic

MARKER = "ticklake-demo.json"
"""The file at the root by which the demo knows a lake it made (and what it left there)."""

MADE_BY = "ticklake demo"
CATALOG_FILES = ("catalog.sqlite", "catalog.sqlite-wal", "catalog.sqlite-shm")
LAKE_FOLDERS = ("landing", DATA_DIR)
"""Below the root, what a reset deletes: the catalog files and these folders; nothing else is touched."""


@dataclass(frozen=True)
class RootContents:
    """What a lake root holds, as the refusal and ``--force`` describe it."""

    files: int  # every file below the root
    data_files: int
    segments: int  # sealed landing segments waiting for compaction
    catalog: str | None  # "snapshot 12: 500,000 rows", or why it cannot be read; None without one
    folders: dict[str, int]  # of LAKE_FOLDERS, those present, with their files

    def summary(self) -> str:
        """One phrase: ``36 files (35 data files, catalog snapshot 21: 33,622 rows, 0 landing segments waiting)``."""
        catalog = "no catalog" if self.catalog is None else f"catalog {self.catalog}"
        return (
            f"{_count(self.files, 'file')} ({_count(self.data_files, 'data file')}, {catalog}, "
            f"{_count(self.segments, 'landing segment')} waiting)"
        )


def prepare_root(config: LakeConfig, *, keep: bool, force: bool, echo: Callable[[str], None]) -> bool:
    """Make the root ready for a demo run; True when the run may mark the lake as the demo's own.

    An empty root, or one the demo made and nobody changed, is reset (kept with `keep`). Any
    other root is refused with ConfigError, unless `keep` (the demo adds its data and the lake
    stays unmarked: it holds others' data) or `force` (its lake is deleted, after `echo` says what goes).
    """
    root = config.root
    if keep and force:
        raise ConfigError("give --keep (delete nothing) or --force (delete the lake there), not both")
    check_root(config, exists=False)
    if not any(_files(root)):
        return True
    if demo_owns(config):
        if not keep:
            clear_lake(root)
        return True
    if keep:
        return False
    contents = describe_root(config)
    if not force:
        raise ConfigError(
            f"lake root {root} holds {contents.summary()}, not just what `ticklake demo` left there: nothing deleted; "
            f"use --force to delete its lake ({', '.join(_parts())}), --root for another folder, "
            "or --keep to add the demo's data to it"
        )
    gone = [f"{name}/ ({_count(n, 'file')})" for name, n in contents.folders.items()]
    gone[:0] = [f"catalog.sqlite ({contents.catalog})"] if contents.catalog is not None else []
    ours = sum((root / name).is_file() for name in (*CATALOG_FILES, MARKER))
    others = contents.files - sum(contents.folders.values()) - ours
    stay = f"; {_count(others, 'other file')} {'stays' if others == 1 else 'stay'}" if others else ""
    echo(f"--force: deleting in {root}: {', '.join(gone) or 'nothing (no lake there)'}{stay}")
    clear_lake(root)
    return True


def demo_owns(config: LakeConfig) -> bool:
    """True when the root carries the demo's marker and still holds just what the demo left there."""
    root = config.root
    try:
        recorded = json.loads((root / MARKER).read_text())
        if recorded.get("made_by") != MADE_BY:
            return False
        files: dict[str, int] = recorded["files"]
        snapshot = recorded["snapshot"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False
    for path in _lake_files(root):
        rel = path.relative_to(root).as_posix()
        if files.get(rel) != path.stat().st_size:
            return False
    if not config.catalog_path.exists():
        return True  # nothing of it can have been committed since
    try:
        with open_catalog(config) as catalog:
            return bool(catalog.current_snapshot() == snapshot)
    except TicklakeError:
        return False  # a catalog it cannot read is not known to be the demo's


def mark_demo_lake(config: LakeConfig) -> None:
    """Record at the root that the demo made this lake: its snapshot and every file it left."""
    root = config.root
    with open_catalog(config) as catalog:
        snapshot = catalog.current_snapshot()
    files = {p.relative_to(root).as_posix(): p.stat().st_size for p in _lake_files(root)}
    record = {"made_by": MADE_BY, "snapshot": snapshot, "files": dict(sorted(files.items()))}
    write_atomic(root / MARKER, (json.dumps(record, indent=1) + "\n").encode())


def describe_root(config: LakeConfig) -> RootContents:
    """Count what the root holds, reading the catalog when it can (a damaged one is described, not raised)."""
    root = config.root
    catalog = None
    if config.catalog_path.exists():
        try:
            with open_catalog(config) as cat:
                totals = cat.live_totals()
                catalog = f"snapshot {cat.current_snapshot()}: {totals.rows:,} rows"
        except TicklakeError as e:
            catalog = f"unreadable: {e}"
    try:
        segments = len(sealed_segments(root))
    except TicklakeError:
        segments = 0
    folders = {name: sum(1 for _ in _files(root / name)) for name in LAKE_FOLDERS if (root / name).is_dir()}
    return RootContents(sum(1 for _ in _files(root)), data_file_count(root), segments, catalog, folders)


def clear_lake(root: Path) -> None:
    """Remove a lake's own files below `root` (catalog, landing, lake); nothing else is touched."""
    for name in CATALOG_FILES:
        (root / name).unlink(missing_ok=True)
    for name in LAKE_FOLDERS:
        shutil.rmtree(root / name, ignore_errors=True)
    (root / MARKER).unlink(missing_ok=True)


def _lake_files(root: Path) -> Iterator[Path]:
    for name in LAKE_FOLDERS:
        yield from _files(root / name)


def _files(folder: Path) -> Iterator[Path]:
    for parent, _, names in os.walk(folder):
        for name in names:
            yield Path(parent, name)


def _parts() -> list[str]:
    return ["catalog.sqlite", *(f"{name}/" for name in LAKE_FOLDERS)]


def _count(n: int, noun: str) -> str:
    """
    >>> _count(1, "file"), _count(1200, "data file")
    ('1 file', '1,200 data files')
    """
    return f"{n:,} {noun}" + ("" if n == 1 else "s")
