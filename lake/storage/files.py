"""File operations the lake relies on for crash safety: atomic writes and moves, with fsync.

A reader must never see a half-written file: everything is written under a temporary
name in the same folder, flushed and fsynced, then renamed into place, and the folder is
fsynced so the rename itself survives a crash. `write_atomic` is the one place that does it,
for landing segments, sidecars, quarantine files and Parquet data files alike; a writer that
fills its file over time (an open landing segment) seals it with `publish`.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ticklake.errors import StorageError

Writer = Callable[[Path], None]  # writes a whole file at the path it is given


def fsync_dir(folder: Path) -> None:
    """Make a rename or create in `folder` durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_folder(folder: Path) -> None:
    """Create `folder` and the folders on its way so that their entries survive a crash: a rename is
    fsynced in its own folder, but a new folder's entry needs its parent fsynced (OSError if it cannot)."""
    missing = []
    at = folder
    while not at.exists():  # a file on the way stops here: creating below it fails as "Not a directory"
        missing.append(at)
        at = at.parent
    for path in reversed(missing):
        path.mkdir(exist_ok=True)
        fsync_dir(path.parent)


def temp_name(path: Path) -> Path:
    """A hidden temporary name beside `path`; readers skip names starting with a dot."""
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")


def discard(path: Path) -> None:
    """Remove a file this process wrote, if it is there (also when a folder on its way is not a folder)."""
    try:
        path.unlink()
    except (FileNotFoundError, NotADirectoryError):
        pass


def publish(tmp: Path, path: Path, *, exclusive: bool = False, sync_dir: bool = True) -> None:
    """Make the complete file `tmp` visible as `path`: fsync it, rename it, fsync the folder.

    `exclusive` refuses to replace an existing `path` (a sealed segment never changes);
    `sync_dir=False` leaves the folder's fsync to a later publish in the same folder.
    """
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    if exclusive and path.exists():
        raise FileExistsError(17, "file exists already", str(path))
    os.replace(tmp, path)
    if sync_dir:
        fsync_dir(path.parent)


def write_atomic(path: Path, data: bytes | Writer, *, exclusive: bool = False, sync_dir: bool = True) -> int:
    """Write `path` so that readers see either nothing or all of it; return its size in bytes.

    `data` is the content, or a function that writes the whole file at the temporary path it
    is given (Parquet and Arrow writers write to a path natively). On any failure the
    temporary file is removed and a StorageError names `path`.
    """
    tmp = temp_name(path)
    try:
        make_folder(path.parent)
        if isinstance(data, bytes):
            with open(tmp, "xb") as f:
                f.write(data)
        else:
            data(tmp)
        size = tmp.stat().st_size
        publish(tmp, path, exclusive=exclusive, sync_dir=sync_dir)
        return size
    except OSError as e:
        discard(tmp)
        raise StorageError(f"{path}: cannot write: {e.strerror or e}") from e
    except BaseException:
        discard(tmp)
        raise


def move_atomic(source: Path, target: Path) -> None:
    """Rename `source` to `target` (same file system), creating folders, durably."""
    try:
        make_folder(target.parent)
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
    """Content hash of a segment: what compaction records and a sidecar is bound to.

    >>> sha256_hex(b"")[:16]
    'e3b0c44298fc1c14'
    """
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: Path, block: int = 1 << 20) -> str:
    """Content hash of a file, read a block at a time: what the catalog records for a data file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            digest.update(chunk)
    return digest.hexdigest()


@contextmanager
def held_lock(path: Path, what: str) -> Iterator[None]:
    """Hold an exclusive ``flock`` on `path` (created, with its folder) for the block, waiting for
    another holder; the kernel lets go when the process dies, so a killed holder never blocks.
    `what` names the lock in the error raised when it cannot be opened."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise StorageError(f"{path}: cannot open {what}: {e.strerror or e}") from e
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def size_or_zero(path: Path) -> int:
    """Bytes of a file, 0 when it is not there (gone already, or optional like a sidecar)."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
