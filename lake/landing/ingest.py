"""Bulk ingest: validate external JSONL and append it to the landing buffer.

Valid lines are appended byte for byte (nothing is re-serialised, so unknown fields and
number formats survive); rejected lines go to quarantine with their reason. Each source keeps
a checkpoint (`ticklake.landing.checkpoints`): ingesting it again appends only the lines added
since, and a source rewritten since it was ingested is reported, never appended twice. Segments
are named after the source and the byte range they came from, so a run after a crash finds the
segments an earlier run sealed instead of sealing them again.
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
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ticklake.access import find_catalog
from ticklake.config import LakeConfig
from ticklake.errors import StorageError, TicklakeError
from ticklake.faults import fault_point
from ticklake.landing.buffer import segment_name, write_segment
from ticklake.landing.checkpoints import (
    TAIL_BYTES,
    Checkpoint,
    Pending,
    fingerprint,
    load_checkpoint,
    save_checkpoint,
    source_lock,
    tail_hash,
)
from ticklake.landing.jsonl import LINE, Lines, Reject, parse_jsonl
from ticklake.landing.quarantine import summarize, write_quarantine
from ticklake.landing.sidecar import write_sidecar
from ticklake.storage.files import sha256_hex
from ticklake.storage.layout import HOUR_US, consumed_dir, hour_key, landing_hour_dir

CHUNK_BYTES = 64 * 1024 * 1024


@dataclass
class IngestReport:
    """What one ingest did; ``lines == appended + already_present + quarantined``.

    `lines` counts the lines read in this run; lines before a source's checkpoint are not read
    again and are counted in `before_checkpoint` only.
    """

    lines: int = 0
    appended: int = 0
    already_present: int = 0  # lines whose segments an earlier (interrupted) run had sealed
    quarantined: int = 0
    blank: int = 0
    before_checkpoint: int = 0
    held_back: int = 0  # unterminated last lines that do not parse yet: a writer may still be writing them
    appended_by_hour: Counter[str] = field(default_factory=Counter)
    segments: list[Path] = field(default_factory=list)
    quarantine_files: list[Path] = field(default_factory=list)
    rejects: list[tuple[str, Reject]] = field(default_factory=list)
    rewritten: list[str] = field(default_factory=list)  # one line per source that changed since it was ingested
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, other: IngestReport) -> None:
        """Count `other` (one chunk's report) into this one; `seconds` stays this report's own."""
        self.lines += other.lines
        self.appended += other.appended
        self.already_present += other.already_present
        self.quarantined += other.quarantined
        self.blank += other.blank
        self.appended_by_hour.update(other.appended_by_hour)
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
        lines = f"{self.lines:,} new lines ({self.before_checkpoint:,} before the checkpoint ingested earlier)"
        text = f"ingested {lines if self.before_checkpoint else f'{self.lines:,} lines'}: {self.appended:,} appended"
        text += f", {self.quarantined:,} quarantined"
        if self.already_present:
            text += f", {self.already_present:,} already in the buffer (sealed by an interrupted run)"
        if self.blank:
            text += f", {self.blank:,} blank lines skipped"
        if self.held_back:
            text += f"; {self.held_back:,} unterminated last line held back until it is complete"
        return text + f"; {len(self.segments)} segments in {self.seconds:.2f}s ({rate:,.0f} lines/s)"


def ingest_files(
    config: LakeConfig,
    sources: Sequence[str | Path],
    *,
    stdin: BinaryIO | None = None,
    progress: Callable[[str], None] | None = None,
    again: bool = False,
) -> IngestReport:
    """Ingest JSONL files (``-`` reads `stdin`) into the landing buffer of `config.root`.

    Each source resumes from its checkpoint (`again`: ingest it whole as a new source). Chunks
    are validated in parallel while the next ones are read: one worker per ``threads`` (default
    one per core) plus one, so a worker waiting for fsync leaves no core idle. Results are merged
    in input order, so reports, line numbers and checkpoints do not depend on the schedule.
    """
    started = time.perf_counter()
    report = IngestReport()
    consumed = _ConsumedLookup(config, report.warnings)
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
        with (
            ExitStack() as stack,
            ThreadPoolExecutor(max_workers=workers + 1 if parallel else 1, thread_name_prefix="ingest") as pool,
        ):
            try:
                for task in _chunks(config, sources, stdin, parse_threads, again, report, stack):
                    if task is None:
                        collect(0)  # a source seen before in this run: its checkpoint must be final first
                        continue
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


class _SourceState:
    """One source's checkpoint while it is ingested: pending ranges are recorded before their
    segments are sealed, and the offset moves over them, in order, once they are. The source's
    lock is let go as soon as it is read to the end and its last chunk is done (thousands of
    sources must not hold thousands of open lock files)."""

    def __init__(self, root: Path, checkpoint: Checkpoint, lock: ExitStack) -> None:
        self.root = root
        self.checkpoint = checkpoint
        self.tail = b""
        self.lock = lock
        self.mutex = threading.Lock()  # chunks of one source finish on several workers
        self.finished: dict[int, _Chunk] = {}  # done, by start offset, waiting for an earlier chunk
        self.open_chunks = 0
        self.reading = True

    def begin(self, task: _Chunk) -> None:
        """Record the chunk as pending, durably, before any of its segments is sealed."""
        with self.mutex:
            if not any(p.start == task.start for p in self.checkpoint.pending):
                self.checkpoint.pending.append(Pending(task.start, task.end, task.first_line, task.sha256))
                save_checkpoint(self.root, self.checkpoint)

    def done(self, task: _Chunk) -> None:
        """The chunk's segments are sealed: move the offset over every chunk done in order."""
        with self.mutex:
            cp = self.checkpoint
            self.finished[task.start] = task
            while cp.offset in self.finished:
                t = self.finished.pop(cp.offset)
                cp.pending = [p for p in cp.pending if p.start != t.start]
                self.tail = (self.tail + t.raw_tail)[-TAIL_BYTES:]
                cp.offset, cp.lines = t.end, t.first_line + len(t.lines) - 1
            cp.tail_sha256 = tail_hash(self.tail)
            fault_point("ingest.before_checkpoint")
            save_checkpoint(self.root, cp, sync_dir=False)
            self.open_chunks -= 1
            self._release()

    def read_to_end(self) -> None:
        with self.mutex:
            self.reading = False
            self._release()

    def _release(self) -> None:
        if not self.reading and not self.open_chunks:
            self.lock.close()


def _chunks(
    config: LakeConfig,
    sources: Sequence[str | Path],
    stdin: BinaryIO | None,
    parse_threads: bool | None,
    again: bool,
    report: IngestReport,
    stack: ExitStack,
) -> Iterator[_Chunk | None]:
    """The chunks of every source still to ingest, in order, each named after its source and byte range;
    None before a source met earlier in the run (a copy of one), whose chunks must be done first."""
    seen: set[str] = set()
    for source in sources:
        name = "<stdin>" if str(source) == "-" else str(source)
        try:
            stream = (stdin or sys.stdin.buffer) if str(source) == "-" else open(source, "rb")
        except OSError as e:
            raise StorageError(f"{source}: cannot read: {e.strerror or e}") from e
        with stream if str(source) != "-" else nullcontext(stream):
            reader = _Reader(stream, name)
            head = reader.head()
            if not head:
                continue
            print_ = fingerprint(head) if not again else hashlib.sha256(head[:1] + uuid.uuid4().bytes).hexdigest()
            if print_ in seen:
                yield None  # a copy of a source of this run: its chunks are done, its checkpoint final
            seen.add(print_)
            lock = ExitStack()
            stack.callback(lock.close)  # let go on any failure as well
            lock.enter_context(source_lock(config.root, print_))
            state = _SourceState(config.root, load_checkpoint(config.root, print_, name), lock)
            cp = state.checkpoint
            problem = reader.resume(cp)
            if problem:
                report.rewritten.append(problem)
                reader.close()
                state.read_to_end()
                continue
            state.tail = reader.tail
            report.before_checkpoint += cp.lines
            first_line = cp.lines + 1
            start = cp.offset
            replay = sorted(cp.pending, key=lambda p: p.start)
            recorded = {p.start: p for p in replay}
            cp.source = name
            for raw, end, unterminated in reader.chunks(start, replay):
                was = recorded.get(start)
                if was is not None and (was.end != end or hashlib.sha256(raw).hexdigest() != was.sha256):
                    how = f"bytes {was.start:,}-{was.end:,} differ from the interrupted run's"
                    report.rewritten.append(reader.changed(cp, how))
                    break
                data = raw[len(codecs.BOM_UTF8) :] if start == 0 and raw.startswith(codecs.BOM_UTF8) else raw
                if unterminated and _incomplete(data):
                    report.held_back += 1
                    if data.count(b"\n") == 0:
                        break
                    keep = data.rfind(b"\n") + 1  # the complete lines before it go on
                    end -= len(data) - keep
                    raw, data = raw[: len(raw) - (len(data) - keep)], data[:keep]
                task = _Chunk(
                    data=data,
                    lines=Lines(data),
                    sha256=hashlib.sha256(raw).hexdigest(),
                    raw_tail=raw[-TAIL_BYTES:],
                    writer=f"{cp.writer}-{start:012d}",
                    seq=end,
                    source=name,
                    first_line=first_line,
                    parse_threads=parse_threads,
                    start=start,
                    end=end,
                    state=state,
                )
                state.open_chunks += 1
                first_line += len(task.lines)
                start = end
                yield task
            state.read_to_end()


def _incomplete(data: bytes) -> bool:
    """True when the unterminated last line of `data` does not parse: a writer may be mid-line."""
    last = data[data.rfind(b"\n") + 1 :]
    return bool(last.strip()) and bool(parse_jsonl(last + b"\n").rejects)


class _Reader:
    """A source read once, front to back: a memory map for regular files, blocks for pipes."""

    def __init__(self, stream: BinaryIO, name: str) -> None:
        self.stream = stream
        self.name = name
        self.mapped: mmap.mmap | None = None
        self.buffered = b""  # stream bytes read ahead (for the head, or past a skipped prefix)
        self.position = 0  # stream offset of `buffered`
        self.tail = b""
        try:
            info = os.fstat(stream.fileno())
            if stat.S_ISREG(info.st_mode) and info.st_size > 0:
                self.mapped = mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError, io.UnsupportedOperation):
            pass

    def close(self) -> None:
        """Release the memory map (chunks already handed out are copies)."""
        if self.mapped is not None and not self.mapped.closed:
            self.mapped.close()

    def head(self) -> bytes:
        """The first bytes of the source (enough for its fingerprint)."""
        if self.mapped is not None:
            return self.mapped[: 64 * 1024]
        while b"\n" not in self.buffered and len(self.buffered) < 64 * 1024:
            block = self.stream.read(64 * 1024)
            if not block:
                break
            self.buffered += block
        return self.buffered[: 64 * 1024]

    def resume(self, cp: Checkpoint) -> str | None:
        """Move to the checkpoint's offset; a message when the source is not the one checkpointed."""
        if cp.offset == 0:
            return None
        if self.mapped is not None:
            ok = len(self.mapped) >= cp.offset
            self.tail = self.mapped[max(0, cp.offset - TAIL_BYTES) : cp.offset] if ok else b""
        else:
            while len(self.buffered) < cp.offset:
                block = self.stream.read(1 << 20)
                if not block:
                    break
                self.buffered += block
                if len(self.buffered) > cp.offset + TAIL_BYTES:  # keep memory bounded while skipping
                    cut = len(self.buffered) - cp.offset - TAIL_BYTES
                    cut = min(cut, len(self.buffered) - TAIL_BYTES)
                    self.buffered, self.position = self.buffered[cut:], self.position + cut
            ok = self.position + len(self.buffered) >= cp.offset
            at = cp.offset - self.position
            self.tail = self.buffered[max(0, at - TAIL_BYTES) : at] if ok else b""
        if not ok:
            return self.changed(cp, f"it is shorter than the {cp.offset:,} bytes ingested")
        if tail_hash(self.tail) == cp.tail_sha256:
            return None
        return self.changed(cp, "not with the same bytes")

    def changed(self, cp: Checkpoint, how: str) -> str:
        """The one-line report of a source rewritten since it was ingested."""
        return (
            f"{self.name}: changed since it was ingested (it starts like the source ingested up to byte"
            f" {cp.offset:,} from {cp.source} at {cp.updated_at}, but {how}); nothing appended"
            " — `ticklake ingest --again` ingests it whole as a new source"
        )

    def chunks(self, start: int, replay: list[Pending]) -> Iterator[tuple[bytes, int, bool]]:
        """(data, end offset, ends without a line break) from `start`, about CHUNK_BYTES each and
        ending at line breaks, except that the ranges an interrupted run recorded (`replay`) come
        out exactly as they were."""
        if self.mapped is not None:
            try:
                yield from _cut(self.mapped, start, replay)
            finally:
                self.close()
            return
        yield from self._stream_chunks(start, replay)

    def _stream_chunks(self, start: int, replay: list[Pending]) -> Iterator[tuple[bytes, int, bool]]:
        data = self.buffered[start - self.position :]
        position = start
        while True:
            forced = _next_forced(replay, position)
            want = forced.end - position if forced and forced.start == position else CHUNK_BYTES
            while len(data) < want:
                block = self.stream.read(max(want - len(data), 1 << 16))
                if not block:
                    break
                data += block
            if not data:
                return
            if forced and forced.start == position:
                cut = min(len(data), want)
            else:
                cut = data.find(b"\n", min(want, len(data)) - 1) + 1
                if cut == 0:
                    data += self.stream.readline()  # finish the line; the stream is buffered, this is cheap
                    cut = len(data)
                if forced:
                    cut = min(cut, forced.start - position)
            piece, data = data[:cut], data[cut:]
            position += len(piece)
            yield piece, position, not piece.endswith(b"\n")


def _next_forced(replay: list[Pending], position: int) -> Pending | None:
    """The first recorded range that has not been passed yet."""
    return next((p for p in replay if p.end > position), None)


def _cut(mapped: mmap.mmap, start: int, replay: list[Pending]) -> Iterator[tuple[bytes, int, bool]]:
    end_of_file = len(mapped)
    while start < end_of_file:
        forced = _next_forced(replay, start)
        if forced and forced.start == start:
            stop = min(forced.end, end_of_file)
        else:
            cut = mapped.find(b"\n", min(start + CHUNK_BYTES, end_of_file) - 1)
            stop = end_of_file if cut < 0 else cut + 1
            if forced:
                stop = min(stop, forced.start)
        yield mapped[start:stop], stop, mapped[stop - 1] != 10
        start = stop


def _size(source: str | Path) -> int:
    try:
        return 0 if str(source) == "-" else os.stat(source).st_size
    except OSError:
        return 0


@dataclass
class _Chunk:
    data: bytes
    lines: Lines
    sha256: str  # of the chunk's bytes as read (a pending range must read back the same)
    raw_tail: bytes
    writer: str  # of its segments: the source's fingerprint and the chunk's start offset
    seq: int  # of its segments: the chunk's end offset
    source: str
    first_line: int
    parse_threads: bool | None
    start: int
    end: int
    state: _SourceState


def _ingest_chunk(config: LakeConfig, task: _Chunk, consumed: _ConsumedLookup) -> IngestReport:
    """Record the chunk as pending, seal its segments, then move the source's checkpoint on."""
    task.state.begin(task)
    result = _seal_chunk(config, task, consumed)
    task.state.done(task)
    return result


def _seal_chunk(config: LakeConfig, task: _Chunk, consumed: _ConsumedLookup) -> IngestReport:
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
    name = segment_name(task.writer, task.seq)
    table = table.drop_columns([LINE])
    for start, stop in zip(np.r_[0, bounds], np.r_[bounds, len(hours)], strict=True):
        hour = int(hours[start])
        count = int(stop - start)
        target = landing_hour_dir(config.root, hour) / name
        # The name derives from the source and the chunk's byte range, so an existing or consumed
        # segment of that name holds exactly these lines: an interrupted run sealed it already.
        if not consumed.claim(config.root, target):
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
        fault_point("ingest.after_segment")
        result.appended += count
        result.appended_by_hour[hour_key(hour)] += count
    return result


def _line_ends(chunk: bytes, block: int = 1 << 20) -> np.ndarray:
    """Offsets of every line break in `chunk`, found a block at a time (cache-sized temporaries)."""
    buffer = np.frombuffer(chunk, dtype=np.uint8)
    parts = [np.flatnonzero(buffer[s : s + block] == 10) + s for s in range(0, len(buffer), block)]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


class _ConsumedLookup:
    """Which segment names are taken: in the buffer, retained after consumption, consumed (a
    read-only catalog view, when there is a readable catalog), or claimed by a chunk of this run.

    The catalog is only a second witness (for retired segments already purged): ingest goes on
    when it is damaged, with a warning.
    """

    def __init__(self, config: LakeConfig, warnings: list[str]) -> None:
        try:
            self.catalog = find_catalog(config, shared=True)
        except TicklakeError as e:
            warnings.append(f"{e}; ingest goes on without it (segments already purged after compaction are not recognised)")
            self.catalog = None
        self.claimed: set[Path] = set()
        self.lock = threading.Lock()

    def claim(self, root: Path, target: Path) -> bool:
        """True when `target` is free and now this caller's to write."""
        relative = target.relative_to(root).as_posix()
        retained = consumed_dir(root) / target.relative_to(root / "landing")
        with self.lock:
            if target in self.claimed:
                return False
            self.claimed.add(target)
            try:
                consumed = self.catalog is not None and bool(self.catalog.consumed_paths([relative]))
            except TicklakeError:
                consumed = False
        return not consumed and not target.exists() and not retained.exists()

    def close(self) -> None:
        """Close the catalog connection, if there is one."""
        if self.catalog is not None:
            self.catalog.close()
