"""What `ticklake check` reports: one finding per problem, each one line, and a summary.

A finding is damage (the command exits 1), or work in flight or left pending that is no damage:
a running compaction's new file, a producer's unsealed segment, files the next vacuum deletes.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

# A build step writes its files and commits them within seconds; a file older than this that no
# snapshot holds, and whose hour's lease nobody holds, is left over from a crash.
IN_FLIGHT_SECONDS = 3600.0
# A producer fills an unsealed segment over time (`LandingWriter` keeps up to four hours open and
# seals on close), so one counts as abandoned only after a day without a write.
UNSEALED_SECONDS = 86400.0

DAMAGE = {
    "catalog": "catalog.sqlite is missing while data files exist, or it is damaged",
    "missing": "a data file a readable snapshot holds is not on disk",
    "size": "a data file's size differs from the catalog's",
    "checksum": "a data file's SHA-256 differs from the one recorded when it was written",
    "unreadable": "a data file's Parquet footer cannot be read, or disagrees with the catalog's row count",
    "orphan": "a data file under lake/ that no snapshot holds (left by a crash)",
    "temp": "an abandoned temporary file",
    "sidecar": "a sidecar whose landing segment is gone",
    "stray": "a file or folder that does not belong where it is",
    "index": "index rows without their file, or a live file with incomplete index rows",
    "overlap": "two live files in one partition, or a file holding times outside its hour",
    "segment": "a landing segment consumed more than once",
    "rows": "an hour's counts do not reconcile (lines = stored + quarantined; stored = rows in its files)",
    "conflict": "a segment set aside because its consumed name came back with other content",
}
NOT_DAMAGE = {
    "in-flight": "work a running process may still finish (young files, an hour whose lease is held)",
    "pending": "what the next vacuum or compaction finishes by itself",
    "unreconciled": "an hour of a rebuilt catalog whose segments were no longer retained",
}


@dataclass(frozen=True)
class Finding:
    """One problem: its kind, the path or object it is about, and a message; `target` is the file it
    names (relative to the lake root), when there is one, and `file_id` its catalog row."""

    kind: str
    subject: str
    message: str
    target: Path | None = None
    file_id: int | None = None

    def __post_init__(self) -> None:
        assert self.kind in DAMAGE or self.kind in NOT_DAMAGE, self.kind

    @property
    def damage(self) -> bool:
        """True unless the finding is work in flight or pending."""
        return self.kind in DAMAGE

    def line(self) -> str:
        """``<kind>: <path or object>: <message>``.

        >>> Finding("missing", "lake/ticks/a.parquet", "is missing").line()
        'missing: lake/ticks/a.parquet: is missing'
        """
        return "; ".join(f"{self.kind}: {self.subject}: {self.message}".splitlines())  # one finding, one line


@dataclass
class Report:
    """Every finding of one check of a lake, and how much was looked at."""

    findings: list[Finding] = field(default_factory=list)
    files: int = 0
    bytes: int = 0
    hours: int = 0
    segments: int = 0

    @property
    def problems(self) -> list[Finding]:
        """The findings that are damage."""
        return [f for f in self.findings if f.damage]

    @property
    def clean(self) -> bool:
        """True when nothing is damaged (in-flight and pending work may remain)."""
        return not self.problems

    def of_kind(self, *kinds: str) -> list[Finding]:
        """The findings of the given kinds, in report order."""
        return [f for f in self.findings if f.kind in kinds]

    def summary(self) -> str:
        """One line: the verdict with counts per kind, then what was checked.

        >>> Report([Finding("orphan", "a", "x"), Finding("pending", "b", "y")], files=3, bytes=10).summary()
        'check: 1 problem (1 orphan); 1 pending; checked 3 files (10 bytes), 0 hours, 0 segments'
        """
        counts = Counter(f.kind for f in self.findings)
        damage = sum(n for kind, n in counts.items() if kind in DAMAGE)
        by_kind = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()) if kind in DAMAGE)
        head = f"{damage} problem{'s' if damage != 1 else ''} ({by_kind})" if damage else "clean"
        rest = "".join(f"; {counts[kind]} {kind}" for kind in NOT_DAMAGE if counts[kind])
        checked = f"checked {self.files:,} files ({self.bytes:,} bytes), {self.hours:,} hours, {self.segments:,} segments"
        return f"check: {head}{rest}; {checked}"
