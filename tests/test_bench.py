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


def test_cold_tier_q7_counts_requests_on_the_server(tmp_path: Path) -> None:
    from bench.cold import CACHED, DIRECT, FILLED, GLOB, QUERIES, markdown, run, targets
    from bench.workload import Scale

    workload = generate(Scale("T", 20_000, 1, 60), tmp_path / "data")
    payload = run(workload, tmp_path / "work", 1, latency=False)  # moto only: counts, no timing asserted
    payload["targets"] = targets(payload)
    readers = payload["readers"]
    assert all(f["identical"] for figures in readers.values() for f in figures.values())
    for q in QUERIES:
        assert readers[GLOB][q]["cold_requests"]["list"] >= 1
        for name in (CACHED, FILLED, DIRECT):
            assert readers[name][q]["cold_requests"]["list"] == readers[name][q]["warm_requests"]["list"] == 0
        assert sum(readers[CACHED][q]["warm_requests"][k] for k in ("get", "head", "list")) == 0
        assert sum(readers[FILLED][q]["cold_requests"][k] for k in ("get", "head", "list")) == 0
    assert readers[CACHED]["Q6"]["cold_requests"]["get"] == 0  # the catalog answers: no object is read
    assert readers[CACHED]["Q5"]["cold_requests"]["head"] == 0  # sizes come from the catalog
    assert "Q7, the cold tier" in markdown(payload)


def test_serve_benchmark_reconciles_every_tick_its_load_sent(tmp_path: Path) -> None:
    from bench.serve import main as serve_main

    args = ["--scale", "XS", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "out"), "--seconds", "2", "--repeat", "2"]
    assert serve_main(args) == 0
    figures = json.loads((tmp_path / "out" / "XS" / "serve-XS.json").read_text())
    load = figures["load"]
    assert load["errors"] == [] and load["queries"] > 0 and load["ticks_sent"] > 0
    assert load["reconciled"]["lost"] == load["reconciled"]["doubled"] == 0
    assert figures["scan"]["rows"] == 50_000 and figures["ingest"]["ticks"] == 50_000


def test_interop_benchmark_runs_dask_and_iceberg_scan_beside_ticklake_with_identical_results(tmp_path: Path) -> None:
    from bench.interop import QUERIES, identical, markdown, run
    from bench.workload import Scale

    workload = generate(Scale("T", 20_000, 1, 60), tmp_path / "data")
    payload = run(workload, tmp_path / "work", 1)  # a local cluster of two worker processes; no timing asserted
    assert identical(payload) and set(payload["engines"]) == {"ticklake", "dask", "iceberg_scan"}
    assert set(payload["engines"]["dask"]["queries"]) == set(QUERIES) and all(payload["rows"][q] > 0 for q in QUERIES)
    assert "| dask ms | dask / ticklake |" in markdown(payload)
