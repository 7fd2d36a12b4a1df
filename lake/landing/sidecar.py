"""Parsed rows kept beside a sealed segment, so compaction does not parse JSON a second time.

`ticklake ingest` has every valid line as an Arrow row once it has validated them. It writes
those rows as an Arrow IPC file next to the segment (``<writer>-<seq>.arrow``), bound to the
segment's SHA-256, size and line count. Compaction hashes the segment anyway (that is how it
counts a segment once); when the sidecar's binding matches, it reads the rows from the
sidecar instead of parsing the JSONL. Any mismatch, damage or missing file only means the
segment is parsed as usual: the JSONL stays the record, the sidecar is a cache of it.

The binding says which segment the rows belong to, not that they are the rows ingest wrote: a
flipped byte can decode to other values, and a file rewritten with its metadata kept still
matches it. So the Arrow bytes follow a 64-byte header holding their SHA-256 (``_MAGIC``, the
digest, zero padding that keeps the Arrow buffers aligned), and a sidecar is used only when the
bytes hash to it; hashing costs a fraction of parsing the JSON.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyarrow as pa
import pyarrow.ipc as ipc

from ticklake.storage.files import discard, write_atomic
from ticklake.ticks import ROW_SCHEMA

SUFFIX = ".arrow"
_VERSION = b"2"  # 1: no header, so no digest of the rows; such sidecars are ignored
_MAGIC = b"ticklake sidecar " + _VERSION + b"\n"
_HEADER = 64  # magic, SHA-256 of the Arrow bytes, zeros: the Arrow file starts 64-byte aligned
_KEYS = (b"ticklake.sidecar", b"segment.sha256", b"segment.bytes", b"segment.lines")
# LZ4: ~41 instead of ~100 bytes a tick beside the ~230 of the JSONL, for ~0.08 µs a tick each
# way; ingest of a large batch is bound by writing and fsyncing the landing buffer.
_WRITE_OPTIONS = ipc.IpcWriteOptions(compression="lz4")


def _binding(sha256: str, size: int, lines: int) -> tuple[bytes, ...]:
    """The schema metadata values (in `_KEYS` order) that tie a sidecar to one segment's content."""
    return (_VERSION, sha256.encode(), str(size).encode(), str(lines).encode())


def sidecar_path(segment: Path) -> Path:
    """Where the parsed rows of `segment` are kept.

    >>> sidecar_path(Path("landing/ticks/date=2022-01-07/hour=05/rec-000001.jsonl")).name
    'rec-000001.arrow'
    """
    return segment.with_suffix(SUFFIX)


def write_sidecar(segment: Path, rows: pa.Table, sha256: str, size: int) -> Path:
    """Write `rows` (ROW_SCHEMA, one per line of the segment, in line order) beside `segment`.

    Written before the segment is sealed, so a sealed segment never waits for its sidecar.
    """
    path = sidecar_path(segment)
    meta = dict(zip(_KEYS, _binding(sha256, size, rows.num_rows), strict=True))
    table = rows.select(ROW_SCHEMA.names).cast(ROW_SCHEMA).replace_schema_metadata(meta)

    out = pa.BufferOutputStream()
    with ipc.new_file(out, table.schema, options=_WRITE_OPTIONS) as writer:
        writer.write_table(table, max_chunksize=1 << 16)
    body = out.getvalue()
    header = _header(hashlib.sha256(body).digest())

    def write(tmp: Path) -> None:
        with open(tmp, "xb") as f:
            f.write(header)
            f.write(body)

    write_atomic(path, write, sync_dir=False)  # the folder is fsynced when the segment is sealed next to it
    return path


def read_sidecar(segment: Path, sha256: str, size: int, lines: int) -> pa.Table | None:
    """The segment's parsed rows, or None unless the sidecar is exactly what ingest wrote for this content.

    Any other file (damaged, truncated, edited, empty, of an older format, bound to other content)
    gives None, and the caller parses the JSONL.
    """
    path = sidecar_path(segment)
    try:
        # Memory-mapped: hashing and reading touch the pages once, without a copy of the file.
        data = pa.memory_map(str(path)).read_buffer()
        if data.size < _HEADER:
            return None
        body = data.slice(_HEADER)
        if data.slice(0, _HEADER).to_pybytes() != _header(hashlib.sha256(body).digest()):
            return None  # not this format, or the rows are not the ones the digest was taken of
        reader = ipc.open_file(body)
        meta = reader.schema.metadata or {}
        bound = tuple(meta.get(k) for k in _KEYS) == _binding(sha256, size, lines)
        if not bound or not reader.schema.remove_metadata().equals(ROW_SCHEMA):
            return None
        table = reader.read_all().replace_schema_metadata(None)
    except (OSError, pa.ArrowException):
        return None
    return table if table.num_rows == lines else None


def _header(digest: bytes) -> bytes:
    """The bytes before the Arrow file: format, the Arrow bytes' SHA-256, zero padding."""
    return (_MAGIC + digest).ljust(_HEADER, b"\0")


def remove_sidecar(segment: Path) -> None:
    """Drop the sidecar of a segment that was consumed or retired."""
    discard(sidecar_path(segment))
