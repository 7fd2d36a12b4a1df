"""The fault matrix's tools: ticks that can be counted one by one, the ticklake command as a process,
reconciliation of a lake against what went in, and the table of every fault tried.

Every tick carries a unique sequence number in `size`, so a tick stored twice or lost is found by
SQL over the lake, not inferred from totals.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ticklake
from tests.test_cli import run  # the one way tests start `ticklake` and wait for it
from ticklake.access import open_catalog
from ticklake.config import LakeConfig
from ticklake.landing.quarantine import read_quarantine

REPO = Path(__file__).resolve().parents[2]
HOURS = ("2022-01-07T05", "2022-01-07T06", "2022-01-07T07")
TICK_TYPES = ("last", "bid_ask", "mid_point")
A = range(0, 1500)  # the ticks of the prepared lakes (tests/faults/conftest.py): A first, then B
B = range(1500, 3000)
BAD = range(9000, 9005)  # B's bad lines
KILLED = -9  # the exit status of a process that got SIGKILL


def make_tick(seq: int, hour: int | None = None, tick_type: str | None = None) -> dict[str, Any]:
    """A valid tick with sequence number `seq` (its `size`) in the `hour`-th of HOURS; by default
    hour and tick type follow from `seq`, so consecutive ticks cover every pair of them."""
    kind = tick_type or TICK_TYPES[seq % len(TICK_TYPES)]
    hour = (seq // len(TICK_TYPES)) % len(HOURS) if hour is None else hour
    micros = (seq * 7919) % 3_600_000_000  # spread over the hour, deterministic
    minute, rest = divmod(micros, 60_000_000)
    stamp = f"{HOURS[hour]}:{minute:02d}:{rest // 1_000_000:02d}.{rest % 1_000_000:06d}Z"
    record: dict[str, Any] = {"timestamp": stamp, "contract_id": 1 + seq % 17, "tick_type": kind, "size": seq}
    if kind == "bid_ask":
        record.update(bid_price=99.5 + seq % 3, ask_price=100.5 + seq % 3)
    else:
        record["price"] = 100.0 + (seq % 11) / 4
    return record


def tick_lines(seqs: Iterable[int]) -> bytes:
    """JSONL of `make_tick(seq)` for each seq."""
    return b"".join(json.dumps(make_tick(s)).encode() + b"\n" for s in seqs)


def bad_lines(seqs: Iterable[int]) -> bytes:
    """One line per seq that ingest must quarantine (a contract id that is not an integer)."""
    return b"".join(json.dumps({**make_tick(s), "contract_id": f"c{s}"}).encode() + b"\n" for s in seqs)


def ticklake_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment `run` gives ticklake (no TICKLAKE_* of the caller), plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKLAKE_")}
    env.update(extra or {})
    return env


def spawn(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """Start ``ticklake ARGS`` without waiting (for races), output captured."""
    return subprocess.Popen(
        [sys.executable, "-m", "ticklake.cli", *args],
        env=ticklake_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def producer(
    root: Path,
    writer: str,
    first_seq: int,
    *,
    seconds: float = 0.0,
    stop_file: Path | None = None,
    batch: int = 200,
    seal_every: int = 3,
    pause: float = 0.0,
) -> subprocess.Popen[str]:
    """Start a LandingWriter process (`tests.faults.producer`) appending unique ticks from `first_seq`."""
    args = ["--root", str(root), "--writer", writer, "--first-seq", str(first_seq), "--seconds", str(seconds)]
    args += ["--batch", str(batch), "--seal-every", str(seal_every), "--pause", str(pause)]
    args += ["--stop-file", str(stop_file)] if stop_file else []
    return subprocess.Popen(
        [sys.executable, "-m", "tests.faults.producer", *args],
        cwd=REPO,
        env=ticklake_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The one ``Error: ...`` line of a failed command; fails the test if there is not exactly one
    or a traceback came with it."""
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def copy_lake(template: Path, target: Path) -> Path:
    """A copy of a prepared lake (files, catalog and its WAL, times kept) to break in one test."""
    shutil.copytree(template, target, symlinks=True)
    return target


@dataclass
class Tally:
    """A lake reconciled against the ticks that went in."""

    ticks_in: int
    stored: int
    quarantined: int
    doubled: int  # stored rows beyond the first of each sequence number
    lost: int  # expected sequence numbers not stored
    unexpected: int  # stored sequence numbers that never went in (e.g. unsealed ones)

    @property
    def exact(self) -> bool:
        """Nothing lost, doubled or made up (the quarantine's count is the caller's to compare)."""
        return self.doubled == 0 and self.lost == 0 and self.unexpected == 0

    def __str__(self) -> str:
        return (
            f"in {self.ticks_in}: stored {self.stored}, quarantined {self.quarantined}, doubled {self.doubled},"
            f" lost {self.lost}, unexpected {self.unexpected}"
        )


def stored_seqs(root: Path) -> list[int]:
    """Every stored (committed) tick's sequence number, as SQL over the lake sees them (one per row);
    ticks still waiting in the landing buffer are not stored yet, so the hot tier is left out."""
    with ticklake.connect(root, fresh=False) as lake:
        return [int(r[0]) for r in lake.sql("SELECT size FROM ticks").fetchall()]


def reconcile(root: Path, expected: Iterable[int], bad: int = 0) -> Tally:
    """Count the lake at `root` against the expected sequence numbers and `bad` lines sent."""
    want = set(expected)
    seqs = stored_seqs(root) if (root / "catalog.sqlite").exists() else []
    have = set(seqs)
    return Tally(
        ticks_in=len(want) + bad,
        stored=len(seqs),
        quarantined=len(read_quarantine(root)),
        doubled=len(seqs) - len(have),
        lost=len(want - have),
        unexpected=len(have - want),
    )


def assert_exact(root: Path, tally: Tally, bad: int = len(BAD)) -> None:
    """Every tick stored once, `bad` lines in quarantine, and the catalog counting what SQL counts."""
    assert tally.exact, tally
    assert tally.quarantined == bad, tally
    assert catalog_rows(root) == tally.stored


def catalog_rows(root: Path, dataset: str = "ticks") -> int:
    """Rows the catalog counts in the live files of `dataset`, which must agree with SQL's count."""
    with open_catalog(config_of(root)) as catalog:
        found = catalog.dataset(dataset)
        return 0 if found is None else sum(f.rows for f in catalog.live_files(found.dataset_id))


def has_dataset(root: Path, name: str) -> bool:
    """Whether the lake's catalog exists and has registered dataset `name`."""
    if not (root / "catalog.sqlite").exists():
        return False
    with open_catalog(config_of(root)) as catalog:
        return catalog.dataset(name) is not None


def live_paths(root: Path) -> set[str]:
    """The data files the catalog's newest snapshot holds, every dataset, relative to the root."""
    with open_catalog(config_of(root)) as catalog:
        return {f.path for d in catalog.datasets() for f in catalog.live_files(d.dataset_id)}


def lapse_leases(root: Path) -> None:
    """Let one lease TTL pass for every lease in the catalog, as if a killed holder's minute were up."""
    with sqlite3.connect(root / "catalog.sqlite") as db:
        db.execute("UPDATE leases SET expires_at = expires_at - 3600")
    db.close()


def check_exit(root: Path) -> int:
    """Exit status of ``ticklake check`` on the lake: 0 when nothing is damaged."""
    result = run("--root", str(root), "check")
    assert result.returncode in (0, 1), result.stderr
    return result.returncode


def seqs_in(paths: Iterable[Path]) -> list[int]:
    """Sequence numbers in JSONL files, complete lines only (an unsealed file may end mid-line)."""
    out: list[int] = []
    for path in paths:
        for line in path.read_bytes().split(b"\n"):
            try:
                out.append(int(json.loads(line)["size"]))
            except (ValueError, KeyError, TypeError):
                continue  # the cut last line of a killed writer
    return out


def landing_files(root: Path, *, sealed: bool) -> list[Path]:
    """Sealed segments (``*.jsonl``) or a producer's unsealed temporary files in the hour folders."""
    folder = root / "landing" / "ticks"
    if not folder.is_dir():
        return []
    files = [p for p in folder.glob("date=*/hour=*/*") if p.is_file()]
    if sealed:
        return [p for p in files if p.suffix == ".jsonl" and not p.name.startswith(".")]
    return [p for p in files if p.name.startswith(".")]


def config_of(root: Path) -> LakeConfig:
    """The lake's configuration with defaults (what the command line uses without TICKLAKE_*)."""
    return LakeConfig(root=root)


# --- the matrix itself ---------------------------------------------------------------------------


@dataclass
class Row:
    """One fault tried: what was done, and what the lake held afterwards."""

    area: str  # compaction, rollup, ingest, writer, races, disk, damage, fuzz
    fault: str
    tally: Tally
    exits: str  # the exit codes of the commands, in order (-9: killed)
    check: int | None = None

    def cells(self) -> list[str]:
        t = self.tally
        check = "—" if self.check is None else str(self.check)
        verdict = "exact" if t.exact else "**WRONG**"
        counts = [f"{t.ticks_in:,}", f"{t.stored:,}", f"{t.quarantined:,}", str(t.doubled), str(t.lost)]
        return [self.area, self.fault, *counts, self.exits, check, verdict]


ROWS: list[Row] = []
HEADER = ["area", "fault", "ticks in", "stored", "quarantined", "doubled", "lost", "exit codes", "check", "result"]


def record(area: str, fault: str, tally: Tally, exits: Sequence[int | None], check: int | None = None) -> Row:
    """Add a row to the matrix (written at the end of the session) and return it."""
    row = Row(area, fault, tally, ", ".join("—" if e is None else str(e) for e in exits), check)
    ROWS.append(row)
    return row


def matrix_markdown(rows: Sequence[Row]) -> str:
    """The matrix as a Markdown table, in the order the areas were tried."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "|".join("---" for _ in HEADER) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row.cells()) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def artifacts_dir() -> Path:
    """Where test artifacts go: `$TICKLAKE_TEST_ARTIFACTS`, else `tests/artifacts/`."""
    return Path(os.environ.get("TICKLAKE_TEST_ARTIFACTS") or REPO / "tests" / "artifacts")
