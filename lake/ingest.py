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
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow.compute as pc

from catalog import Catalog
from lake.config import LakeConfig
from lake.errors import StorageError
from lake.jsonl import LINE, Reject, parse_jsonl
from lake.landing import segment_name, write_segment
from lake.layout import HOUR_US, landing_hour_dir
from lake.quarantine import summarize, write_quarantine

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
    """Ingest JSONL files (``-`` reads `stdin`) into the landing buffer of `config.root`."""
    started = time.perf_counter()
    report = IngestReport()
    consumed = _ConsumedLookup(config)
    try:
        for source in sources:
            name = "<stdin>" if str(source) == "-" else str(source)
            try:
                stream = (stdin or sys.stdin.buffer) if str(source) == "-" else open(source, "rb")
            except OSError as e:
                raise StorageError(f"{source}: cannot read: {e.strerror or e}") from e
            with stream if str(source) != "-" else nullcontext(stream):
                first_line = 1
                prefix = hashlib.sha256()
                for chunk in read_chunks(stream):
                    if first_line == 1 and chunk.startswith(codecs.BOM_UTF8):
                        chunk = chunk[len(codecs.BOM_UTF8) :]  # a byte-order mark some tools write first
                    # Named after everything read so far: equal chunks at different places differ,
                    # and the same input ingested again gets the same names.
                    prefix.update(chunk)
                    writer = f"ingest-{prefix.hexdigest()[:20]}"
                    first_line += _ingest_chunk(config, chunk, writer, name, first_line, report, consumed)
                    if progress:
                        progress(f"{name}: {first_line - 1:,} lines")
    finally:
        consumed.close()
    report.seconds = time.perf_counter() - started
    return report


def _ingest_chunk(
    config: LakeConfig,
    chunk: bytes,
    writer: str,
    source: str,
    first_line: int,
    report: IngestReport,
    consumed: _ConsumedLookup,
) -> int:
    """Validate one chunk, append its valid lines per hour, quarantine the rest; return its line count."""
    parsed = parse_jsonl(chunk, first_line=first_line, use_threads=None if config.threads != 1 else False)
    report.lines += parsed.rows_in
    report.blank += parsed.blank
    report.quarantined += len(parsed.rejects)
    report.rejects.extend((source, r) for r in parsed.rejects)
    qfile = write_quarantine(config.root, writer, source, parsed.rejects)
    if qfile:
        report.quarantine_files.append(qfile)

    table = parsed.table
    if table.num_rows:
        hours = pc.divide(pc.cast(table.column("timestamp"), "int64"), HOUR_US).to_numpy()
        index = table.column(LINE).to_numpy()
        in_order = bool(np.all(hours[1:] >= hours[:-1]))
        if not in_order:
            order = np.argsort(hours, kind="stable")
            hours, index = hours[order], index[order]
        bounds = np.flatnonzero(np.diff(hours)) + 1
        # Every line valid and the hours in line order (the usual recorder file): each hour's
        # segment is one byte range of the chunk, found from the line-break offsets.
        ends = _line_ends(chunk) if in_order and table.num_rows == len(parsed.lines) else None
        name = segment_name(writer, 1)
        for start, stop in zip(np.r_[0, bounds], np.r_[bounds, len(hours)], strict=True):
            hour = int(hours[start])
            rows = int(stop - start)
            target = landing_hour_dir(config.root, hour) / name
            # The name derives from the chunk's content, so an existing or consumed segment
            # of that name holds exactly these lines: the input was ingested before.
            if target.exists() or consumed.has(target.relative_to(config.root).as_posix()):
                report.already_present += rows
                continue
            if ends is not None:
                begin = 0 if start == 0 else int(ends[start - 1]) + 1
                data = chunk[begin : int(ends[stop - 1]) + 1] if stop - 1 < len(ends) else chunk[begin:] + b"\n"
            else:
                split = parsed.lines.split()
                data = b"\n".join([split[i] for i in index[start:stop].tolist()]) + b"\n"
            report.segments.append(write_segment(config.root, hour, name, data))
            report.appended += rows
    return len(parsed.lines)


def _line_ends(chunk: bytes, block: int = 1 << 20) -> np.ndarray:
    """Offsets of every line break in `chunk`, found a block at a time (cache-sized temporaries)."""
    buffer = np.frombuffer(chunk, dtype=np.uint8)
    parts = [np.flatnonzero(buffer[s : s + block] == 10) + s for s in range(0, len(buffer), block)]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


class _ConsumedLookup:
    """Read-only view of consumed segment paths, when the lake has a catalog yet."""

    def __init__(self, config: LakeConfig) -> None:
        path = config.catalog_path
        self.catalog = Catalog(path, read_only=True) if path.exists() else None

    def has(self, path: str) -> bool:
        return self.catalog is not None and bool(self.catalog.consumed_paths([path]))

    def close(self) -> None:
        if self.catalog is not None:
            self.catalog.close()
