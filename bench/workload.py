"""The benchmark workload: realistic ticks written as a recorder would, one JSONL file per hour.

500 contracts with Zipf-like activity (exponent 1.15) fixed across days and uncorrelated with the
random contract ids; the least active third skips about a third of the days; all tick types;
eight exchanges; US trading hours (14:30–21:00 UTC). Files are generated once per scale and
reused (a ``manifest.json`` beside them records what was generated).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ticklake.demo.synthetic import make_contracts, synthetic_ticks, to_jsonl


@dataclass(frozen=True)
class Scale:
    """How much data a benchmark run uses."""

    name: str
    ticks: int
    days: int
    contracts: int = 500


SCALES = {
    "XS": Scale("XS", 50_000, 2, 100),  # for the suite's own smoke test
    "S": Scale("S", 1_000_000, 1),
    "M": Scale("M", 20_000_000, 20),
    "L": Scale("L", 20_000_000, 20),  # plus the planning-only catalog of >= 100,000 files (bench.scale_l)
}
FIRST_DAY = dt.date(2022, 1, 3)
SEED = 11


def trading_days(n: int, first: dt.date = FIRST_DAY) -> list[dt.date]:
    """`n` weekdays from `first` on."""
    days: list[dt.date] = []
    day = first
    while len(days) < n:
        if day.weekday() < 5:
            days.append(day)
        day += dt.timedelta(days=1)
    return days


@dataclass(frozen=True)
class Workload:
    """Generated hourly JSONL files and the facts queries need about them."""

    scale: Scale
    files: list[Path]
    ticks: int
    bytes: int
    facts: dict[str, object]

    @property
    def manifest(self) -> Path:
        """The file recording what was generated (and the facts queries need)."""
        return manifest_path(self.files[0].parent)


def manifest_path(folder: Path) -> Path:
    """Where a scale's folder records what was generated."""
    return folder / "manifest.json"


def generate(scale: Scale, folder: Path) -> Workload:
    """Write (or reuse) the hourly JSONL files of `scale` below `folder`."""
    folder = folder / scale.name
    manifest = manifest_path(folder)
    if manifest.exists():
        meta = json.loads(manifest.read_text())
        cached = [folder / f for f in meta["files"]]
        if all(f.exists() for f in cached):
            if isinstance(meta["facts"]["rare"], list):  # older manifests picked one rare contract
                return Workload(scale, cached, meta["ticks"], meta["bytes"], meta["facts"])
    folder.mkdir(parents=True, exist_ok=True)
    contracts = make_contracts(scale.contracts, seed=SEED)
    rng = np.random.default_rng(SEED)
    ranks = rng.permutation(np.arange(1, scale.contracts + 1))
    rare_third = [i for i, r in enumerate(ranks) if r > scale.contracts * 2 // 3]
    days = trading_days(scale.days)
    per_day = scale.ticks // scale.days
    files: list[Path] = []
    counts: dict[int, int] = {}
    absent: dict[str, list[int]] = {}
    total = size = 0
    for day in days:
        skip = {i for i in rare_third if rng.random() < 1 / 3}
        keep = [i for i in range(scale.contracts) if i not in skip]
        table = synthetic_ticks(day, [contracts[i] for i in keep], per_day, seed=SEED, ranks=[int(ranks[i]) for i in keep])
        absent[day.isoformat()] = sorted(contracts[i].contract_id for i in skip)
        hours = pc.hour(table.column("timestamp")).to_numpy()
        for hour in np.unique(hours):
            part = table.filter(pa.array(hours == hour))
            path = folder / f"{day.isoformat()}T{int(hour):02d}.jsonl"
            data = to_jsonl(part)
            path.write_bytes(data)
            files.append(path)
            total += part.num_rows
            size += len(data)
        for entry in pc.value_counts(table.column("contract_id")).to_pylist():
            counts[entry["values"]] = counts.get(entry["values"], 0) + entry["counts"]
    by_activity = sorted(counts, key=lambda c: (-counts[c], c))
    facts = {
        "days": [d.isoformat() for d in days],
        "busy": by_activity[:2],
        # Rare contracts, least active last: Q5 takes the first one that trades on its day.
        "rare": by_activity[len(by_activity) * 9 // 10 :],
        "absent": absent,
    }
    manifest.write_text(json.dumps({"files": [f.name for f in files], "ticks": total, "bytes": size, "facts": facts}))
    return Workload(scale, files, total, size, facts)
