"""The ingest benchmark (`python -m bench.ingest`) runs at its smoke-test scale: both variants store
every line, and the unknown-field variant keeps its field in `extra` (no timing asserted)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.ingest import main, variant_files, with_unknown_field
from bench.workload import SCALES, generate
from ticklake.landing.jsonl import parse_jsonl


@pytest.mark.slow  # ingests and compacts 50,000 ticks twice
def test_both_variants_store_every_line(tmp_path: Path) -> None:
    assert main(["--scale", "XS", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "out")]) == 0
    figures = json.loads((tmp_path / "out" / "XS" / "ingest-XS.json").read_text())["variants"]
    assert {name: (f["lines"], f["quarantined"], f["compaction_rows"]) for name, f in figures.items()} == {
        "plain": (50_000, 0, 50_000),
        "unknown": (50_000, 0, 50_000),
    }


def test_the_unknown_variant_adds_one_field_to_every_line(tmp_path: Path) -> None:
    workload = generate(SCALES["XS"], tmp_path)
    path = variant_files(workload.files[:1], "unknown", tmp_path / "XS")[0]
    parsed = parse_jsonl(path.read_bytes())
    assert parsed.rejects == [] and parsed.stats["extra_lines"] == parsed.table.num_rows
    assert parsed.table.column("extra").to_pylist()[:2] == ['{"feed_seq":0}', '{"feed_seq":1}']
    assert with_unknown_field(b'{"a":1}\n') == b'{"a":1,"feed_seq":0}\n'
