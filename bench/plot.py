"""A PNG of warm query latency per system (log scale), saved beside the JSON results."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.report import QUERIES


def plot(payload: dict[str, Any], path: Path) -> None:
    """Grouped bars: one group per query, one bar per system."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    systems = payload["systems"]
    fig, ax = plt.subplots(figsize=(10, 4.5))
    width = 0.8 / max(len(systems), 1)
    for i, r in enumerate(systems):
        values = [r["queries"][q]["median_seconds"] * 1000 for q in QUERIES]
        ax.bar([x + i * width for x in range(len(QUERIES))], values, width, label=r["system"])
    ax.set_xticks([x + width * (len(systems) - 1) / 2 for x in range(len(QUERIES))], list(QUERIES))
    ax.set_yscale("log")
    ax.set_ylabel("warm median latency (ms, log scale)")
    ax.set_title(f"ticklake benchmark, scale {payload['scale']} ({payload['ticks']:,} ticks)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
