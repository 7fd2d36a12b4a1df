"""The benchmark's markdown table, ratios against the peers, and the issue's targets checked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

QUERIES = ("Q1", "Q2", "Q3", "Q4", "Q5", "Q6")


def write_results(out: Path, text: str, payload: dict[str, Any]) -> None:
    """A benchmark's markdown table at `out`, and its figures as JSON beside it (same name, ``.json``)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n")
    out.with_suffix(".json").write_text(json.dumps(payload, indent=2))


def _ms(seconds: float | None) -> str:
    return "–" if seconds is None else f"{seconds * 1000:.1f}"


def markdown(payload: dict[str, Any]) -> str:
    """One table of load, storage and warm query figures per system, then ticklake extras and targets."""
    systems = payload["systems"]
    lines = [
        f"### Scale {payload['scale']}: {payload['ticks']:,} ticks ({payload['jsonl_bytes_per_tick']:.0f} bytes/tick as JSONL)",
        "",
        "| system | load ticks/s | compact s | bytes/tick | files | "
        + " | ".join(f"{q} ms" for q in QUERIES)
        + " | max plan ms |",
        "|---|---:|---:|---:|---:|" + "---:|" * len(QUERIES) + "---:|",
    ]
    for r in systems:
        qs = r["queries"]
        cells = [
            r["system"],
            f"{r['load']['ticks_per_second']:,.0f}",
            f"{r['load']['compact_seconds']:.2f}",
            f"{r['bytes_per_tick']:.2f}",
            f"{r['files']:,}",
            *(_ms(qs[q]["median_seconds"]) + ("" if r["identical"].get(q, True) else " ≠") for q in QUERIES),
            _ms(max(qs[q]["planning_seconds"] for q in QUERIES)),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Files opened per query: "
        + "; ".join(f"{r['system']} " + ", ".join(f"{q}={r['queries'][q]['files_opened']}" for q in QUERIES) for r in systems),
    ]
    lines += [
        "",
        "First query in a new process (open + first query, ms): "
        + "; ".join(
            f"{r['system']} "
            + ", ".join(
                f"{q}={_ms(r['queries'][q]['first_process']['open'] + r['queries'][q]['first_process']['first'])}"
                for q in QUERIES
                if "first_process" in r["queries"][q]
            )
            for r in systems
        ),
    ]
    extras = payload.get("ticklake_extras") or {}
    if extras:
        lines += [
            "",
            f"ticklake ingest: {extras['ingest_ticks_per_second']:,.0f} ticks/s; compaction of plain recorder segments "
            f"(no sidecar, parsed): {extras.get('compaction_raw_ticks_per_second', 0):,.0f} ticks/s; `ticklake sql` new process: "
            + ", ".join(f"{q} {s:.2f}s" for q, s in extras["cli_sql_seconds"].items())
            + f"; landing append: {extras['append_single_ticks_per_second']:,.0f} ticks/s one at a time, "
            f"{extras['append_batch_1000_ticks_per_second']:,.0f} ticks/s in batches of 1000",
        ]
    for name, why in payload.get("skipped", {}).items():
        lines.append(f"skipped {name}: {why}")
    lines += ["", "| target | value | goal | met |", "|---|---:|---|:---:|"]
    for t in payload.get("targets", []):
        lines.append(f"| {t['target']} | {t['value']} | {t['goal']} | {'yes' if t['met'] else 'NO'} |")
    return "\n".join(lines)


def targets(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, measured in this run."""
    by_name = {r["system"]: r for r in payload["systems"]}
    tl = by_name.get("ticklake")
    if tl is None:
        return []
    out: list[dict[str, Any]] = []

    def add(target: str, value: float, goal: str, met: bool, fmt: str = "{:,.0f}") -> None:
        out.append({"target": target, "value": fmt.format(value), "goal": goal, "met": bool(met)})

    compact = tl["load"]["ticks"] / max(tl["load"]["compact_seconds"], 1e-9)
    add("compaction ticks/s (ingested segments)", compact, "≥ 1,000,000", compact >= 1_000_000)
    extras = payload.get("ticklake_extras") or {}
    if extras:
        add("ingest ticks/s", extras["ingest_ticks_per_second"], "≥ 1,000,000", extras["ingest_ticks_per_second"] >= 1_000_000)
        worst = max(extras["cli_sql_seconds"].values())
        add("`ticklake sql` Q2/Q5/Q6 new process (s)", worst, "≤ 0.35", worst <= 0.35, "{:.2f}")
    add("bytes per tick", tl["bytes_per_tick"], "≤ 5.0", tl["bytes_per_tick"] <= 5.0, "{:.2f}")
    peers = [r for r in payload["systems"] if r["system"] != "ticklake"]
    for q in QUERIES[:5]:
        mine = tl["queries"][q]["median_seconds"]
        if peers:
            best = min(r["queries"][q]["median_seconds"] for r in peers)
            add(f"{q} vs best peer (ratio)", mine / best, "≤ 1.0", mine <= best, "{:.2f}")
    raw = by_name.get("duckdb-hive")
    if raw:
        for q in ("Q2", "Q5"):
            ratio = tl["queries"][q]["median_seconds"] / raw["queries"][q]["median_seconds"]
            add(f"{q} vs raw DuckDB (ratio)", ratio, "≤ 0.5", ratio <= 0.5, "{:.2f}")
    q6 = tl["queries"]["Q6"]
    add("Q6 files opened", q6["files_opened"] or 0, "0", not q6["files_opened"])
    add("Q6 ms", q6["median_seconds"] * 1000, "≤ 2", q6["median_seconds"] <= 0.002, "{:.2f}")
    plan_ms = max(tl["queries"][q]["planning_seconds"] for q in QUERIES) * 1000
    limit = 10.0 if payload["scale"] == "L" else 3.0
    add(f"planning ms (max over queries, scale {payload['scale']})", plan_ms, f"≤ {limit:g}", plan_ms <= limit, "{:.2f}")
    return out
