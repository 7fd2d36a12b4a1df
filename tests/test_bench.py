"""The benchmark suite runs end to end at its smoke-test scale and checks results agree (no timing asserted)."""

from __future__ import annotations

import json
from pathlib import Path

from bench.__main__ import main
from bench.queries import make_queries
from bench.workload import SCALES, generate


def test_workload_is_reused_and_queries_pick_real_parameters(tmp_path: Path) -> None:
    first = generate(SCALES["XS"], tmp_path)
    again = generate(SCALES["XS"], tmp_path)
    assert first.files == again.files and first.ticks == again.ticks == 50_000
    assert all(f.name.endswith(".jsonl") for f in first.files)
    queries = {q.name: q for q in make_queries(first.facts)}
    assert sorted(queries) == ["Q1", "Q2", "Q3", "Q4", "Q5", "Q6"]
    absent = queries["Q6"].params
    assert absent["contract"] in first.facts["absent"][absent["day"]]


def test_bench_runs_ticklake_and_raw_duckdb_with_identical_results(tmp_path: Path) -> None:
    code = main(["--scale", "XS", "--systems", "ticklake,duckdb-hive", "--data", str(tmp_path / "data"),
                 "--out", str(tmp_path / "out"), "--repeat", "1"])  # fmt: skip
    assert code == 0
    results = json.loads((tmp_path / "out" / "XS" / "results-XS.json").read_text())
    systems = {r["system"]: r for r in results["systems"]}
    assert set(systems) == {"ticklake", "duckdb-hive"}
    assert all(all(r["identical"].values()) for r in systems.values())
    assert systems["ticklake"]["load"]["ticks"] == 50_000
    assert systems["ticklake"]["queries"]["Q6"]["files_opened"] == 0
    assert systems["ticklake"]["queries"]["Q2"]["files_opened"] < systems["duckdb-hive"]["queries"]["Q2"]["files_opened"]
    assert {t["target"] for t in results["targets"]} >= {"bytes per tick", "Q6 files opened"}


def test_scale_l_planning_lake_is_a_real_catalog(tmp_path: Path) -> None:
    from bench.scale_l import build, measure

    root = tmp_path / "lake"
    assert build(root, 300) == 300
    figures = measure(root, repeat=1)
    assert figures["ticklake"]["one hour"]["files"] == 3  # one hour of three tick types
    assert figures["ticklake"]["absent contract"]["files"] == 0
    assert set(figures["duckdb-glob"]) == set(figures["ticklake"])
