"""Quarantine: rejected lines kept with their source, line number and reason, never silently dropped.

Each source (an ingested chunk, a landing segment) gets one JSONL file in
``<root>/landing/_quarantine/``, named after its content hash so re-processing the same input
rewrites the same file instead of adding a second copy. A record's ``raw`` is the line as text;
lines that are not UTF-8 also carry ``raw_base64`` with the exact bytes.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from ticklake.landing.jsonl import Reject
from ticklake.storage.files import write_atomic
from ticklake.storage.layout import quarantine_dir


def quarantine_record(source: str, reject: Reject) -> dict[str, object]:
    """The JSON record kept for one rejected line."""
    record: dict[str, object] = {
        "source": source,
        "line": reject.line,
        "reason": reject.kind,
        "field": reject.field,
        "message": reject.message,
        "raw": reject.raw.decode("utf-8", errors="replace"),
    }
    if reject.kind == "invalid_utf8":
        record["raw_base64"] = base64.b64encode(reject.raw).decode("ascii")
    return record


def write_quarantine(root: Path, name: str, source: str, rejects: Iterable[Reject]) -> Path | None:
    """Write the rejects of one source to ``_quarantine/<name>.jsonl``; None when there are none."""
    lines = [json.dumps(quarantine_record(source, r), ensure_ascii=False) for r in rejects]
    if not lines:
        return None
    path = quarantine_dir(root) / f"{name}.jsonl"
    write_atomic(path, ("\n".join(lines) + "\n").encode("utf-8"))
    return path


def read_quarantine(root: Path) -> list[dict[str, object]]:
    """Every quarantine record below `root`, file by file."""
    records: list[dict[str, object]] = []
    folder = quarantine_dir(root)
    if folder.is_dir():
        for path in sorted(folder.glob("*.jsonl")):
            records.extend(json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line)
    return records


def summarize(rejects: Iterable[tuple[str, Reject]]) -> list[str]:
    """One line per problem kind (reason and field) with its count and first example.

    >>> r = Reject(3, "missing_field", "price", "field 'price' missing", b"{}")
    >>> summarize([("a.jsonl", r), ("a.jsonl", r)])
    ["missing_field (price): 2 lines, first at a.jsonl:3: field 'price' missing"]
    """
    counts: Counter[tuple[str, str | None]] = Counter()
    first: dict[tuple[str, str | None], str] = {}
    for source, r in rejects:
        key = (r.kind, r.field)
        counts[key] += 1
        first.setdefault(key, f"{source}:{r.line}: {r.message}")
    out = []
    for (kind, field), n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0][0], kv[0][1] or "")):
        label = f"{kind} ({field})" if field else kind
        out.append(f"{label}: {n} line{'s' if n != 1 else ''}, first at {first[(kind, field)]}")
    return out
