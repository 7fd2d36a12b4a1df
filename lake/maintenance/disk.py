"""What a lake holds on disk, sorted into what check, repair and vacuum tell apart: data files,
temporary files, producers' unsealed segments, orphan sidecars, set-aside segments and strays.

Only files ticklake writes are ever data or temporary files: a data file has a name from
`ticklake.storage.parquet.new_file_path` (``<13 digits>-<12 hex>.parquet``) inside a dataset's
partition folders (``lake/<dataset>/<key>=<value>/.../``), a temporary file a name from
`ticklake.storage.files.temp_name`. Anything else under `lake/` (a user's backup, a query's
``--output``) is a stray: reported, never deleted.

Only `lake/` and `landing/` are walked; the landing buffer's own layout problems (folders that
are not hour partitions, files that are not segments) come from `ticklake.landing.buffer.scan_buffer`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ticklake.datasets import DATASETS
from ticklake.landing.sidecar import SUFFIX as SIDECAR_SUFFIX
from ticklake.storage.layout import conflicts_dir, landing_dir

TEMP_NAME = re.compile(r"^\..+\.[0-9a-f]{8}\.tmp$")
"""A temporary name from `ticklake.storage.files.temp_name`: ``.<name>.<8 hex>.tmp``."""

DATA_NAME = re.compile(r"^\d{13}-[0-9a-f]{12}\.parquet$")
"""A data file's name from `ticklake.storage.parquet.new_file_path`: ``<write time in ms>-<12 hex>.parquet``."""

_HIVE_HOUR = re.compile(r"(?:^|/)date=(\d{4}-\d{2}-\d{2})/hour=(\d{2})(?:/|$)")


@dataclass(frozen=True)
class DiskFile:
    """A file found on disk: its path relative to the lake root, size and modification time."""

    rel: str
    bytes: int
    mtime: float

    def age(self, now: float) -> float:
        """Seconds since it was last written."""
        return max(0.0, now - self.mtime)


@dataclass
class DiskScan:
    """The files of a lake, by what they are."""

    data: dict[str, DiskFile] = field(default_factory=dict)  # data files (see `is_data_file`), by relative path
    temps: list[DiskFile] = field(default_factory=list)  # temporary names under lake/ and landing/
    unsealed: list[DiskFile] = field(default_factory=list)  # hidden or *.tmp names in the buffer's hour folders
    sidecars: list[DiskFile] = field(default_factory=list)  # sidecars whose segment is gone
    conflicts: list[DiskFile] = field(default_factory=list)  # segments set aside in landing/_conflicts/
    strays: list[DiskFile] = field(default_factory=list)  # anything else under lake/: never deleted


def scan_disk(root: Path) -> DiskScan:
    """Walk `lake/` and `landing/` below `root` once and sort every file found."""
    scan = DiskScan()
    for found in _walk(root, root / "lake"):
        name = found.rel.rsplit("/", 1)[-1]
        if TEMP_NAME.match(name):
            scan.temps.append(found)
        elif is_data_file(found.rel):
            scan.data[found.rel] = found
        else:
            scan.strays.append(found)
    buffer = landing_dir(root).relative_to(root).as_posix() + "/"
    conflicts = conflicts_dir(root).relative_to(root).as_posix() + "/"
    for found in _walk(root, root / "landing"):
        name = found.rel.rsplit("/", 1)[-1]
        if found.rel.startswith(buffer):
            if name.startswith(".") or name.endswith(".tmp"):
                scan.unsealed.append(found)  # the producer's contract: write under a hidden name, then rename
            elif name.endswith(SIDECAR_SUFFIX) and not (root / found.rel).with_suffix(".jsonl").exists():
                scan.sidecars.append(found)
        elif TEMP_NAME.match(name):
            scan.temps.append(found)
        elif found.rel.startswith(conflicts):
            scan.conflicts.append(found)
    return scan


def is_data_file(rel: str) -> bool:
    """True for a path (relative to the root) that ticklake may have written as a data file: a
    `DATA_NAME` in folders that are, key by key, a dataset's partition path.

    >>> is_data_file("lake/ticks/tick_type=last/date=2022-01-07/hour=05/1641532800000-0123456789ab.parquet")
    True
    >>> is_data_file("lake/ticks/backup/1641532800000-0123456789ab.parquet"), is_data_file("lake/ticks/tick_type=last/x.parquet")
    (False, False)
    """
    folders, _, name = rel.rpartition("/")
    if not DATA_NAME.match(name):
        return False
    for spec in DATASETS.values():
        if folders.startswith(spec.location + "/"):
            keys = [part.split("=", 1)[0] if "=" in part else None for part in folders[len(spec.location) + 1 :].split("/")]
            return keys == list(spec.partition_keys)
    return False


def lease_of(rel: str) -> str | None:
    """The lease that guards the hour a data file's path names (None: not an hour partition of a dataset).

    >>> lease_of("lake/ticks/tick_type=last/date=2022-01-07/hour=05/1.parquet")
    'ticks/2022-01-07T05'
    """
    for spec in DATASETS.values():
        if rel.startswith(spec.location + "/"):
            m = _HIVE_HOUR.search(rel)
            return f"{spec.name}/{m.group(1)}T{m.group(2)}" if m else None
    return None


def tree_bytes(folder: Path) -> int:
    """Bytes of every file below `folder` (0 when it does not exist)."""
    return sum(f.bytes for f in _walk(folder, folder))


def _walk(root: Path, folder: Path) -> list[DiskFile]:
    """Every regular file below `folder` (symlinks are not followed), sorted by path."""
    found = []
    for parent, _dirs, names in os.walk(folder):
        for name in names:
            path = Path(parent, name)
            try:
                info = path.lstat()
            except FileNotFoundError:
                continue  # deleted while the folder was listed
            found.append(DiskFile(path.relative_to(root).as_posix(), info.st_size, info.st_mtime))
    return sorted(found, key=lambda f: f.rel)
