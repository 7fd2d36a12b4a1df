"""Bulk ingest: validate external JSONL and append it to the landing buffer.

Valid lines are appended byte for byte (nothing is re-serialised, so unknown fields and
number formats survive); rejected lines go to quarantine with their reason. Segment names
derive from the input's content hash, so ingesting the same input twice writes the same
segments again instead of new ones, and compaction counts them once.
"""

from __future__ import annotations

import codecs
import hashlib
import io
import mmap
import os
import stat
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ticklake.access import find_catalog
from ticklake.config import LakeConfig
from ticklake.errors import StorageError
from ticklake.landing.buffer import segment_name, write_segment
from ticklake.landing.jsonl import LINE, Lines, Reject, parse_jsonl
from ticklake.landing.quarantine import summarize, write_quarantine
from ticklake.landing.sidecar import write_sidecar
from ticklake.storage.files import sha256_hex
from ticklake.storage.layout import HOUR_US, landing_hour_dir

CHUNK_BYTES = 64 * 1024 * 1024


@dataclass
class IngestReport:
    """What one ingest did; ``lines == appended + already_present + quarantined``."""

    lines: int = 0
    appended: int = 0
    already_present: int = 0
    quarantined: int = 0
    blank: int = 0
    segments: list[Path] = field(default_factory=list)
    quarantine_files: list[Path] = field(default_factory=list)
    rejects: list[tuple[str, Reject]] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, other: IngestReport) -> None:
        """Count `other` (one chunk's report) into this one; `seconds` stays this report's own."""
        self.lines += other.lines
        self.appended += other.appended
        self.already_present += other.already_present
        self.quarantined += other.quarantined
        self.blank += other.blank
        self.segments.extend(other.segments)
        self.quarantine_files.extend(other.quarantine_files)
        self.rejects.extend(other.rejects)

    @property
    def problems(self) -> list[str]:
        """One line per problem kind, with counts."""
        return summarize(self.rejects)

    def summary(self) -> str:
        """A one-line account of the ingest."""
        rate = self.lines / self.seconds if self.seconds else 0.0
        text = f"ingested {self.lines:,} lines: {self.appended:,} appended, {self.quarantined:,} quarantined"
        if self.already_present:
            text += f", {self.already_present:,} already in the lake (same content ingested before)"
        if self.blank:
            text += f", {self.blank:,} blank lines skipped"
        return text + f"; {len(self.segments)} segments in {self.seconds:.2f}s ({rate:,.0f} lines/s)"


def read_chunks(stream: BinaryIO, size: int = CHUNK_BYTES) -> Iterator[bytes]:
    """Chunks of about `size` bytes that end at a line break (the last one may not).

    Regular files are memory-mapped and sliced at line breaks (one copy per chunk);
    pipes are read and finished to the next line break.
    """
    try:
        info = os.fstat(stream.fileno())
        regular = stat.S_ISREG(info.st_mode) and info.st_size > 0
    except (OSError, ValueError, io.UnsupportedOperation):
        regular = False
    if regular:
        with mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            start, end = 0, len(mapped)
            while start < end:
                cut = mapped.find(b"\n", min(start + size, end) - 1)
                stop = end if cut < 0 else cut + 1
                yield mapped[start:stop]
                start = stop
        return
    while True:
        block = stream.read(size)
        if not block:
            return
        if not block.endswith(b"\n"):
            block += stream.readline()  # finish the line; the stream is buffered, this is cheap
        yield block


def ingest_files(
    config: LakeConfig,
    sources: Sequence[str | Path],
    *,
    stdin: BinaryIO | None = None,
    progress: Callable[[str], None] | None = None,
) -> IngestReport:
    """Ingest JSONL files (``-`` reads `stdin`) into the landing buffer of `config.root`.

    Chunks are validated in parallel while the next ones are read: one worker per ``threads``
    (default one per core) plus one, so a worker waiting for fsync leaves no core idle. Results
    are merged in input order, so reports and line numbers do not depend on the schedule.
    """
    started = time.perf_counter()
    report = IngestReport()
    consumed = _ConsumedLookup(config)
    workers = max(1, config.threads or os.cpu_count() or 1)
    # One small input parses fastest with pyarrow's own threads; many chunks, one per worker.
    parallel = workers > 1 and (len(sources) > 1 or any(_size(s) > CHUNK_BYTES for s in sources))
    parse_threads = False if parallel or config.threads == 1 else None
    pending: deque[tuple[_Chunk, Future[IngestReport]]] = deque()

    def collect(limit: int) -> None:
        while len(pending) > limit:
            task, future = pending.popleft()
            report.add(future.result())
            if progress:
                progress(f"{task.source}: {task.first_line + len(task.lines) - 1:,} lines")

    try:
        with ThreadPoolExecutor(max_workers=workers + 1 if parallel else 1, thread_name_prefix="ingest") as pool:
            try:
                for task in _chunks(sources, stdin, parse_threads):
                    pending.append((task, pool.submit(_ingest_chunk, config, task, consumed)))
                    collect(workers + 1)  # bounded read-ahead: memory stays a few chunks
                collect(0)
            except BaseException:
                pool.shutdown(cancel_futures=True)  # chunks not started yet are not written after a failure
                raise
    finally:
        consumed.close()
    report.seconds = time.perf_counter() - started
    return report


def _chunks(sources: Sequence[str | Path], stdin: BinaryIO | None, parse_threads: bool | None) -> Iterator[_Chunk]:
    """The chunks of every source in order, each named after everything read before it."""
    for source in sources:
        name = "<stdin>" if str(source) == "-" else str(source)
        try:
            stream = (stdin or sys.stdin.buffer) if str(source) == "-" else open(source, "rb")
        except OSError as e:
            raise StorageError(f"{source}: cannot read: {e.strerror or e}") from e
        with stream if str(source) != "-" else nullcontext(stream):
            first_line = 1
            prefix = b""
            for chunk in read_chunks(stream):
                if first_line == 1 and chunk.startswith(codecs.BOM_UTF8):
                    chunk = chunk[len(codecs.BOM_UTF8) :]  # a byte-order mark some tools write first
                # Named after everything read so far (a hash chain over the chunks' hashes):
                # equal chunks at different places differ, the same input again gets the same names.
                digest = hashlib.sha256(chunk).digest()
                prefix = hashlib.sha256(prefix + digest).digest()
                task = _Chunk(chunk, Lines(chunk), digest.hex(), f"ingest-{prefix.hex()[:20]}", name, first_line, parse_threads)
                first_line += len(task.lines)
                yield task


def _size(source: str | Path) -> int:
    try:
        return 0 if str(source) == "-" else os.stat(source).st_size
    except OSError:
        return 0


@dataclass
class _Chunk:
    data: bytes
    lines: Lines
    sha256: str
    writer: str
    source: str
    first_line: int
    parse_threads: bool | None


def _ingest_chunk(config: LakeConfig, task: _Chunk, consumed: _ConsumedLookup) -> IngestReport:
    """Validate one chunk, append its valid lines per hour (each segment with its parsed rows
    in a sidecar), quarantine the rest."""
    chunk = task.data
    parsed = parse_jsonl(chunk, first_line=task.first_line, use_threads=task.parse_threads, lines=task.lines)
    result = IngestReport(lines=parsed.rows_in, quarantined=len(parsed.rejects), blank=parsed.blank)
    result.rejects = [(task.source, r) for r in parsed.rejects]
    qfile = write_quarantine(config.root, task.writer, task.source, parsed.rejects)
    if qfile:
        result.quarantine_files.append(qfile)

    table = parsed.table
    if not table.num_rows:
        return result
    hours = pc.divide(pc.cast(table.column("timestamp"), "int64"), HOUR_US).to_numpy()
    index = table.column(LINE).to_numpy()
    rows = np.arange(len(hours))
    in_order = bool(np.all(hours[1:] >= hours[:-1]))
    if not in_order:
        rows = np.argsort(hours, kind="stable")
        hours, index = hours[rows], index[rows]
    bounds = np.flatnonzero(np.diff(hours)) + 1
    # Every line valid and the hours in line order (the usual recorder file): each hour's
    # segment is one byte range of the chunk, found from the line-break offsets.
    ends = _line_ends(chunk) if in_order and table.num_rows == len(parsed.lines) else None
    name = segment_name(task.writer, 1)
    table = table.drop_columns([LINE])
    for start, stop in zip(np.r_[0, bounds], np.r_[bounds, len(hours)], strict=True):
        hour = int(hours[start])
        count = int(stop - start)
        target = landing_hour_dir(config.root, hour) / name
        # The name derives from the chunk's content, so an existing or consumed segment
        # of that name holds exactly these lines: the input was ingested before.
        if not consumed.claim(target, target.relative_to(config.root).as_posix()):
            result.already_present += count
            continue
        if ends is not None:
            begin = 0 if start == 0 else int(ends[start - 1]) + 1
            data = chunk[begin : int(ends[stop - 1]) + 1] if stop - 1 < len(ends) else chunk[begin:] + b"\n"
            segment_rows = table.slice(int(start), count)
        else:
            split = parsed.lines.split()
            data = b"\n".join([split[i] for i in index[start:stop].tolist()]) + b"\n"
            segment_rows = table.take(pa.array(rows[start:stop]))
        digest = task.sha256 if data == chunk else sha256_hex(data)  # one hour per chunk is usual
        write_sidecar(target, segment_rows, digest, len(data))
        result.segments.append(write_segment(config.root, hour, name, data))
        result.appended += count
    return result


def _line_ends(chunk: bytes, block: int = 1 << 20) -> np.ndarray:
    """Offsets of every line break in `chunk`, found a block at a time (cache-sized temporaries)."""
    buffer = np.frombuffer(chunk, dtype=np.uint8)
    parts = [np.flatnonzero(buffer[s : s + block] == 10) + s for s in range(0, len(buffer), block)]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


class _ConsumedLookup:
    """Which segment names are taken: in the buffer, consumed (a read-only catalog view), or
    claimed by a chunk of this run (equal inputs can be in flight at once)."""

    def __init__(self, config: LakeConfig) -> None:
        self.catalog = find_catalog(config, shared=True)
        self.claimed: set[Path] = set()
        self.lock = threading.Lock()

    def claim(self, target: Path, relative: str) -> bool:
        """True when `target` is free and now this caller's to write."""
        with self.lock:
            if target in self.claimed:
                return False
            self.claimed.add(target)
            consumed = self.catalog is not None and bool(self.catalog.consumed_paths([relative]))
        return not consumed and not target.exists()

    def close(self) -> None:
        """Close the catalog connection, if there is one."""
        if self.catalog is not None:
            self.catalog.close()
