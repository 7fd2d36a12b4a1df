"""File operations the lake relies on for crash safety: atomic writes and moves, with fsync.

A reader must never see a half-written file: everything is written under a temporary
name in the same folder, flushed and fsynced, then renamed into place, and the folder is
fsynced so the rename itself survives a crash.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

from ticklake.errors import StorageError


def fsync_dir(folder: Path) -> None:
    """Make a rename or create in `folder` durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_name(path: Path) -> Path:
    """A hidden temporary name beside `path`; readers skip names starting with a dot."""
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that readers see either nothing or all of it."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = temp_name(path)
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as e:
        raise StorageError(f"{path}: cannot write: {e.strerror or e}") from e


def move_atomic(source: Path, target: Path) -> None:
    """Rename `source` to `target` (same file system), creating folders, durably."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)
        fsync_dir(target.parent)
        fsync_dir(source.parent)
    except OSError as e:
        raise StorageError(f"{source}: cannot move to {target}: {e.strerror or e}") from e


def read_bytes(path: Path) -> bytes:
    """The whole file, with the error naming it."""
    try:
        return path.read_bytes()
    except OSError as e:
        raise StorageError(f"{path}: cannot read: {e.strerror or e}") from e


def sha256_hex(data: bytes) -> str:
    """Content hash used to recognise a segment delivered twice.

    >>> sha256_hex(b"")[:16]
    'e3b0c44298fc1c14'
    """
    return hashlib.sha256(data).hexdigest()
