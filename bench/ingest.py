"""``python -m bench.ingest``: ingest and compaction throughput, with and without an unknown field.

The README invites fields the tick record does not know (they are kept in ``extra``), so a
producer that adds one must not fall off the vectorised path. This runs the scale's hourly files
as generated (``plain``) and with one more field on every line (``unknown``: ``"feed_seq":N``),
each through ``ticklake ingest`` and through compaction of plain recorder segments (no sidecar,
so the JSON is parsed there), and prints lines per second.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from bench.workload import SCALES, generate
from ticklake.build.compaction import compact_all
from ticklake.config import LakeConfig
from ticklake.landing.buffer import write_segment
from ticklake.landing.ingest import ingest_files
from ticklake.storage.layout import parse_hour

VARIANTS = ("plain", "unknown")


def with_unknown_field(data: bytes) -> bytes:
    """Every line of `data` with one more field, a per-line sequence number, before its closing brace.

    >>> with_unknown_field(b'{"a":1}\\n{"a":2}\\n')
    b'{"a":1,"feed_seq":0}\\n{"a":2,"feed_seq":1}\\n'
    """
    lines = data.splitlines()
    return b"".join(b'%s,"feed_seq":%d}\n' % (line[:-1], i) for i, line in enumerate(lines))


def variant_files(files: list[Path], variant: str, folder: Path) -> list[Path]:
    """The workload's hourly files as `variant` (written once below `folder`)."""
    if variant == "plain":
        return files
    out = folder / variant
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for path in files:
        target = out / path.name
        if not target.exists():
            target.write_bytes(with_unknown_field(path.read_bytes()))
        paths.append(target)
    return paths


def measure(files: list[Path], scratch: Path) -> dict[str, Any]:
    """Lines per second of ingest and of compacting the same files as plain recorder segments."""
    shutil.rmtree(scratch, ignore_errors=True)
    report = ingest_files(LakeConfig(root=scratch / "ingest"), files)
    figures: dict[str, Any] = {
        "lines": report.lines,
        "quarantined": report.quarantined,
        "ingest_seconds": report.seconds,
        "ingest_lines_per_second": report.lines / report.seconds,
    }
    raw = LakeConfig(root=scratch / "raw")
    for path in files:
        write_segment(raw.root, parse_hour(path.stem), f"recorder-{path.stem}-000001.jsonl", path.read_bytes())
    t0 = time.perf_counter()
    results = compact_all(raw)
    seconds = time.perf_counter() - t0
    stored = sum(r.stored for r in results)
    figures.update(compaction_seconds=seconds, compaction_rows=stored, compaction_lines_per_second=stored / seconds)
    shutil.rmtree(scratch, ignore_errors=True)
    return figures


def main(argv: list[str] | None = None) -> int:
    """The command line of the ingest benchmark."""
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__)
    parser.add_argument("--scale", choices=sorted(SCALES), default="S", help="Data size (XS is a smoke test).")
    parser.add_argument("--data", type=Path, default=Path("bench-data"), help="Where generated JSONL is kept.")
    parser.add_argument("--out", type=Path, default=Path("bench-results"), help="Where scratch lakes and results go.")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="Comma-separated variants to run.")
    args = parser.parse_args(argv)

    scale = SCALES[args.scale]
    workload = generate(scale, args.data)
    out = args.out / scale.name
    figures: dict[str, Any] = {}
    for variant in args.variants.split(","):
        files = variant_files(workload.files, variant, args.data / scale.name)
        print(f"running {variant}", file=sys.stderr)
        figures[variant] = measure(files, out / f"ingest-{variant}")
    out.mkdir(parents=True, exist_ok=True)
    (out / f"ingest-{scale.name}.json").write_text(json.dumps({"scale": scale.name, "variants": figures}, indent=2))
    print(f"| scale {scale.name} | lines | ingest lines/s | compaction lines/s (parsed) |")
    print("|---|---:|---:|---:|")
    for variant, f in figures.items():
        print(f"| {variant} | {f['lines']:,} | {f['ingest_lines_per_second']:,.0f} | {f['compaction_lines_per_second']:,.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
