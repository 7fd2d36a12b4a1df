"""One HTTP write request: its body (line protocol or the landing JSONL) into durable landing segments.

Lines are validated exactly as ``ticklake ingest`` validates them (`ticklake.landing.jsonl`):
line protocol is first turned into one landing JSON record per line (`ticklake.serve.lineprotocol`),
placed on the line it came from, so every reject names the request body's line number. Valid
ticks are sealed per event hour (temp file, fsync, rename, folder fsync) and rejected lines are
quarantined with their raw text and reason, all before `ingest_body` returns: what the server
acknowledges is on disk. Lines in = ticks kept + lines quarantined (blank and ``#`` lines are not lines).

Exactly once under retries: a client that did not get the answer to a request sends the same
body again. Each segment is named after the SHA-256 of the body (with its format and precision)
and its hour, ``http-<24 hex>-000000.jsonl``, and a name is claimed as ``ticklake ingest`` claims
one (`_ConsumedLookup`: in the buffer, retained, or consumed per the catalog), so the body
delivered again is recognised as present, also after compaction consumed its segments. So an
identical body twice is one delivery: ticks carry nanosecond timestamps, and real distinct
batches differ. (Lines without a timestamp are stamped with the receive time; a retry of such
a body that lands in another hour than the first delivery is stored again.)
"""

from __future__ import annotations

import codecs
import errno
import hashlib
import json
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from ticklake.config import LakeConfig
from ticklake.errors import SchemaError, StorageError
from ticklake.landing.buffer import segment_name, write_segment
from ticklake.landing.ingest import _ConsumedLookup
from ticklake.landing.jsonl import LINE, Reject, parse_jsonl
from ticklake.landing.quarantine import write_quarantine
from ticklake.landing.sidecar import remove_sidecar, write_sidecar
from ticklake.serve.columnar import landing_json
from ticklake.serve.lineprotocol import PRECISIONS, is_skipped, parse_line, split_lines
from ticklake.storage.files import sha256_hex
from ticklake.storage.layout import HOUR_US, landing_hour_dir
from ticklake.ticks import Invalid

LINE_PROTOCOL = "lp"
JSONL = "jsonl"
FORMATS = (LINE_PROTOCOL, JSONL)
WRITER_PREFIX = "http-"
# Requests with the same body hash to the same stripe: a retry waits for the first delivery to
# finish (and then finds its segments) instead of racing it; other bodies rarely share one.
_STRIPES = [threading.Lock() for _ in range(64)]


@dataclass
class Outcome:
    """What one request did: ``lines == stored + already_present + quarantined``."""

    lines: int = 0
    stored: int = 0
    already_present: int = 0  # ticks of segments an earlier delivery of the same body sealed
    quarantined: int = 0
    rejects: list[Reject] = field(default_factory=list)
    segments: list[Path] = field(default_factory=list)
    quarantine_file: Path | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def kept(self) -> int:
        """Ticks in the landing buffer after the request, whichever delivery sealed them."""
        return self.stored + self.already_present

    @property
    def first(self) -> Reject | None:
        """The first rejected line of the body, if any."""
        return self.rejects[0] if self.rejects else None

    def message(self) -> str:
        """One line: the first bad line and its field, and what was kept and quarantined."""
        counts = f"{self.kept:,} lines kept, {self.quarantined:,} quarantined"
        first = self.first
        if first is None:
            return f"{self.lines:,} lines: {counts}"
        where = f"line {first.line}" + (f", field '{first.field}'" if first.field else "")
        return f"{where}: {first.message} ({first.kind}); {counts}"


def writer_of(body: bytes, fmt: str, precision: str) -> str:
    """The writer id of a request's segments: the same body, format and precision give the same one.

    >>> writer_of(b"", "lp", "n")
    'http-48b2a099a0e0ad9b5327ecbd'
    """
    tag = f"{fmt}:{precision if fmt == LINE_PROTOCOL else ''}\n".encode()
    return WRITER_PREFIX + hashlib.sha256(tag + body).hexdigest()[:24]


def ingest_body(
    config: LakeConfig,
    body: bytes,
    *,
    fmt: str = LINE_PROTOCOL,
    precision: str = "n",
    source: str = "http",
    received_ns: int | None = None,
) -> Outcome:
    """Validate `body` and make its ticks and rejects durable; raise StorageError when that fails
    (nothing half-written is left visible, and the same body sent again then completes it).

    `fmt` is ``lp`` (line protocol, timestamps in `precision`) or ``jsonl``; `source` names the
    request in quarantine records; `received_ns` stamps line-protocol lines that carry no timestamp.
    """
    if fmt not in FORMATS:
        raise SchemaError(f"format {fmt!r}: must be one of {', '.join(FORMATS)}")
    if fmt == LINE_PROTOCOL and precision not in PRECISIONS:
        raise SchemaError(f"precision {precision!r}: must be one of {', '.join(PRECISIONS)}")
    writer = writer_of(body, fmt, precision)
    now = time.time_ns() if received_ns is None else received_ns
    if fmt == LINE_PROTOCOL:
        block, early, raw = _landing_lines(body.removeprefix(codecs.BOM_UTF8), PRECISIONS[precision], now)
    else:
        block, early, raw = body.removeprefix(codecs.BOM_UTF8), [], {}
    parsed = parse_jsonl(block)
    late = [Reject(r.line, r.kind, r.field, r.message, raw.get(r.line, r.raw)) for r in parsed.rejects]
    outcome = Outcome(rejects=sorted(early + late, key=lambda r: r.line))
    outcome.quarantined = len(outcome.rejects)
    outcome.lines = parsed.table.num_rows + outcome.quarantined
    with _STRIPES[int(writer[len(WRITER_PREFIX) :][:8], 16) % len(_STRIPES)]:
        if outcome.rejects:
            outcome.quarantine_file = write_quarantine(config.root, writer, source, outcome.rejects)
        _seal(config, writer, parsed.table, parsed.lines.split(), outcome)
    return outcome


def _landing_lines(body: bytes, unit_ns: int, received_ns: int) -> tuple[bytes, list[Reject], dict[int, bytes]]:
    """The body as landing JSONL, each record on the line its line-protocol line starts on (other
    lines blank); the lines refused as line protocol; and every line's raw bytes by line number.

    Plain lines are converted column-wise (`ticklake.serve.columnar`); the rest one by one."""
    fast = landing_json(body, unit_ns, received_ns)
    if fast is None:
        return _line_by_line(body, split_lines(body), unit_ns, received_ns)
    pieces = body.split(b"\n")
    slow = ((i + 1, pieces[i].removesuffix(b"\r")) for i, text in enumerate(fast) if text is None)
    block, rejects, raw = _line_by_line(body, slow, unit_ns, received_ns)
    raw.update((i + 1, pieces[i]) for i, text in enumerate(fast) if text is not None)  # quarantine keeps what was sent
    if all(text is not None for text in fast):
        return ("\n".join(fast) + "\n").encode(), rejects, raw  # type: ignore[arg-type]
    lines = block.split(b"\n")
    out = [text.encode() if text is not None else lines[i] for i, text in enumerate(fast)]
    return b"\n".join(out) + b"\n", rejects, raw


def _line_by_line(
    body: bytes, numbered: Iterable[tuple[int, bytes]], unit_ns: int, received_ns: int
) -> tuple[bytes, list[Reject], dict[int, bytes]]:
    """The landing JSONL of the `numbered` lines of `body`, one by one (other lines blank)."""
    out = [b""] * (body.count(b"\n") + (0 if not body or body.endswith(b"\n") else 1))
    rejects: list[Reject] = []
    raw: dict[int, bytes] = {}
    for number, line in numbered:
        if is_skipped(line):
            continue
        raw[number] = line
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as e:
            rejects.append(Reject(number, "invalid_utf8", None, f"line is not UTF-8 (byte {e.start})", line))
            continue
        try:
            record = parse_line(text, unit_ns=unit_ns, received_ns=received_ns)
        except Invalid as e:
            rejects.append(Reject(number, e.kind, e.field, e.message, line))
            continue
        out[number - 1] = json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode()
    return b"\n".join(out) + b"\n", rejects, raw


def _seal(config: LakeConfig, writer: str, table: pa.Table, lines: list[bytes], outcome: Outcome) -> None:
    """Seal the valid rows as one segment per event hour, skipping hours whose segment is taken."""
    if not table.num_rows:
        return
    micros = table.column("timestamp").cast(pa.int64()).to_numpy()
    hours = micros // HOUR_US
    order = np.argsort(hours, kind="stable")  # within an hour, rows stay in line order
    index = table.column(LINE).to_numpy()
    rows = table.drop_columns([LINE])
    name = segment_name(writer, 0)
    consumed = _ConsumedLookup(config, outcome.warnings)
    try:
        for group in np.split(order, np.flatnonzero(np.diff(hours[order])) + 1):
            hour = int(hours[group[0]])
            target = landing_hour_dir(config.root, hour) / name
            if not consumed.claim(config.root, target):
                outcome.already_present += len(group)
                continue
            data = b"\n".join([lines[i] for i in index[group].tolist()]) + b"\n"
            try:
                write_sidecar(target, rows.take(pa.array(group)), sha256_hex(data), len(data))
                outcome.segments.append(write_segment(config.root, hour, name, data))
            except BaseException:
                remove_sidecar(target)  # a cache of a segment that is not there
                raise
            outcome.stored += len(group)
    finally:
        consumed.close()


def is_disk_full(error: BaseException) -> bool:
    """True when a storage failure was the disk (or quota) running out of space: the HTTP 507 case."""
    cause = error.__cause__ if isinstance(error, StorageError) else error
    return isinstance(cause, OSError) and cause.errno in (errno.ENOSPC, errno.EDQUOT)
