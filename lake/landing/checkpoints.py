"""Ingest checkpoints: how far `ticklake ingest` read each source, so a grown file appends only its
new lines and a rewritten one is reported instead of doubled.

A source is known by its fingerprint, the hash of its first line (as log shippers such as Vector
do), so a log re-shipped under another name is still recognised. The checkpoint keeps the byte
offset ingested (always at a line break) and a hash of the bytes just before it: a file whose
first line is unchanged but whose ingested part differs was rewritten, not grown.

Crash safety: before a chunk's segments are sealed, its byte range is recorded as *pending*; the
segments are named after the source and that range, so a run after a crash seals the pending
ranges again under the same names (finding those already sealed or consumed) before it reads on.
One ingest of a source at a time: the checkpoint is held under a lock file (``flock``) meanwhile.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from ticklake.errors import StorageError
from ticklake.storage.files import held_lock, read_bytes, write_atomic
from ticklake.storage.layout import checkpoints_dir

FIRST_LINE_BYTES = 64 * 1024  # a first line longer than this is fingerprinted by its start
TAIL_BYTES = 64 * 1024  # bytes before the offset whose hash tells a grown source from a rewritten one


def fingerprint(head: bytes) -> str:
    """The fingerprint of a source from its first bytes: the hash of its first line, without its
    line break (a first line ingested before its newline arrived is still the same source).

    >>> fingerprint(b'{"a":1}\\n{"b":2}\\n') == fingerprint(b'{"a":1}\\nother') == fingerprint(b'{"a":1}')
    True
    """
    end = head.find(b"\n", 0, FIRST_LINE_BYTES)
    first = head[: FIRST_LINE_BYTES if end < 0 else end].rstrip(b"\r")
    return hashlib.sha256(first).hexdigest()


def tail_hash(data: bytes | memoryview) -> str:
    """Hash of the last `TAIL_BYTES` of `data` (everything ingested so far)."""
    return hashlib.sha256(data[-TAIL_BYTES:]).hexdigest()


@dataclass
class Pending:
    """A chunk whose segments may be partly sealed: its byte range, first line number and content hash."""

    start: int
    end: int
    first_line: int
    sha256: str


@dataclass
class Checkpoint:
    """How far one source was ingested."""

    fingerprint: str
    source: str  # the path (or <stdin>) it was last read from
    offset: int = 0  # bytes ingested, ending at a line break
    lines: int = 0  # lines before `offset`, so line numbers run on
    tail_sha256: str = ""  # `tail_hash` of the bytes before `offset`
    pending: list[Pending] = field(default_factory=list)
    updated_at: str = ""

    @property
    def writer(self) -> str:
        """The writer id of this source's segments."""
        return f"ingest-{self.fingerprint[:16]}"


def checkpoint_path(root: Path, print_: str) -> Path:
    """The checkpoint file of the source with fingerprint `print_`."""
    return checkpoints_dir(root) / f"{print_}.json"


def load_checkpoint(root: Path, print_: str, source: str) -> Checkpoint:
    """The source's checkpoint, or a fresh one at offset 0."""
    path = checkpoint_path(root, print_)
    if not path.exists():
        return Checkpoint(print_, source)
    try:
        data = json.loads(read_bytes(path))
        data["pending"] = [Pending(**p) for p in data.get("pending", [])]
        return Checkpoint(**data)
    except (ValueError, TypeError) as e:
        raise StorageError(f"{path}: damaged ingest checkpoint ({e}); move it away to ingest {source} from its start") from e


def save_checkpoint(root: Path, checkpoint: Checkpoint, *, sync_dir: bool = True) -> None:
    """Write the checkpoint atomically (temp file, fsync, rename).

    A new pending range must be durable before its segments are sealed; the write that clears
    it may skip the folder's fsync (`sync_dir=False`): if a power cut undoes that rename, the
    range is pending again and the next run only finds its segments sealed already.
    """
    checkpoint.updated_at = datetime.now(UTC).isoformat(timespec="seconds")
    data = json.dumps(asdict(checkpoint), sort_keys=True).encode()
    write_atomic(checkpoint_path(root, checkpoint.fingerprint), data, sync_dir=sync_dir)


@contextmanager
def source_lock(root: Path, print_: str) -> Iterator[None]:
    """Hold the source's lock: a second ingest of the same source waits, then sees the first's checkpoint."""
    with held_lock(checkpoints_dir(root) / f"{print_}.lock", "the ingest checkpoint's lock"):
        yield
