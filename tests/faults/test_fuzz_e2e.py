"""Fuzzed JSONL end to end: files mixing valid ticks with arbitrary bytes, deep nesting, huge
numbers, keys written twice and out-of-range timestamps, ingested and compacted by the real
commands. Every non-blank line is stored or quarantined, exactly as the line judged alone says
(`tests.landing.judging.oracle`); blank lines are counted apart; no tick is doubled.

The lines come from the parser's own fuzz strategies (`tests/landing/test_fuzz.py`), and between
them sit ticks numbered in `size`, so a doubled or lost one is found by SQL. Each example is a new
lake; `TICKLAKE_FUZZ_E2E_EXAMPLES=N` runs N examples instead of the default 3.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import ticklake
from tests.faults.matrix import Tally, check_exit, has_dataset, make_tick, record, run
from tests.landing.judging import is_blank, oracle, split_lines
from tests.landing.test_fuzz import lines
from ticklake.landing.quarantine import read_quarantine

EXAMPLES = int(os.environ.get("TICKLAKE_FUZZ_E2E_EXAMPLES") or 3)
SEQ0 = 1_000_000_000  # the numbered ticks: far from any size the fuzzed lines carry


@st.composite
def fuzzed_files(draw: st.DrawFn) -> tuple[bytes, int]:
    """A file of fuzzed lines with numbered valid ticks between them; (content, numbered ticks)."""
    body = draw(st.lists(lines(), min_size=30, max_size=80))
    out, n = [], 0
    for line in body:
        out.append(line)
        if draw(st.booleans()):
            out.append(json.dumps(make_tick(SEQ0 + n)).encode())
            n += 1
    return b"\n".join(out) + b"\n", n


def test_fuzzed_files_end_to_end_every_line_accounted_once() -> None:
    totals = Tally(0, 0, 0, 0, 0, 0)
    exits: set[int] = set()
    checks: set[int] = set()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        phases=[Phase.explicit, Phase.generate],  # no shrinking: each example is seconds of processes
    )
    @given(fuzzed_files())
    def one_file(example: tuple[bytes, int]) -> None:
        data, numbered = example
        rejects, rows = oracle(split_lines(data))
        blank = sum(is_blank(raw) for raw in split_lines(data))
        with tempfile.TemporaryDirectory(prefix="ticklake-fuzz-") as folder:
            root, source = Path(folder) / "lake", Path(folder) / "fuzz.jsonl"
            source.write_bytes(data)
            ingest = run("--root", str(root), "ingest", str(source))
            compact = run("--root", str(root), "compact", "--all")
            quarantined = len(read_quarantine(root))
            stored = seqs = distinct = 0
            if has_dataset(root, "ticks"):  # a catalog exists once compaction ran
                with ticklake.connect(root) as lake:
                    stored, seqs, distinct = lake.sql(
                        f"SELECT count(*), count(*) FILTER (size BETWEEN {SEQ0} AND {SEQ0 + 10_000}),"
                        f" count(DISTINCT size) FILTER (size BETWEEN {SEQ0} AND {SEQ0 + 10_000}) FROM ticks"
                    ).fetchone()
            checks.add(check_exit(root))
        exits.update((ingest.returncode, compact.returncode))
        expected_rows = len(rows)
        totals.ticks_in += len(split_lines(data)) - blank
        totals.stored += stored
        totals.quarantined += quarantined
        totals.doubled += (seqs - distinct) + max(0, stored - expected_rows)
        totals.lost += (numbered - distinct) + max(0, expected_rows - stored)
        assert ingest.returncode == (1 if rejects else 0), ingest.stderr
        assert compact.returncode == 0, compact.stderr
        skipped = re.search(r"([\d,]+) blank lines skipped", ingest.stdout)
        assert (int(skipped.group(1).replace(",", "")) if skipped else 0) == blank, ingest.stdout
        assert (stored, quarantined) == (expected_rows, len(rejects)), ingest.stdout + ingest.stderr
        assert seqs == distinct == numbered

    one_file()
    record("fuzz", f"{EXAMPLES} fuzzed JSONL files through ingest + compact (totals)", totals, sorted(exits),
           max(checks))  # fmt: skip
    assert totals.ticks_in == totals.stored + totals.quarantined and totals.exact, totals
    assert checks <= {0}


@pytest.mark.parametrize("table", ["ticks", "bars_1m"])
def test_a_lake_with_nothing_stored_yet_answers_zero_rows(tmp_path: Path, table: str) -> None:
    root, source = tmp_path / "lake", tmp_path / "bad.jsonl"
    source.write_bytes(b'{"x":1}\n')
    assert run("--root", str(root), "ingest", str(source)).returncode == 1  # quarantined: nothing to store
    assert run("--root", str(root), "compact", "--all").returncode == 0  # the catalog exists now
    query = run("--root", str(root), "sql", f"SELECT count(*) AS n FROM {table}", "--format", "csv")
    assert (query.returncode, query.stdout) == (0, "n\n0\n")
