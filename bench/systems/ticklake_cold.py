"""ticklake with its data in the cold tier: loaded as `TicklakeSystem`, then every day archived to a bucket.

Queries read the archived objects through the read-through cache (``cache_dir``, ``cache_bytes``),
or, with ``cache_bytes = 0``, through DuckDB's httpfs directly; both take each object's size from
the catalog. Readers of one lake are separate instances over the same `workdir`: one loads, the
others only open, each with its own cache settings.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from bench.systems.ticklake import TicklakeSystem
from ticklake.build.archive import ArchiveResult, archive_lake


class TicklakeColdSystem(TicklakeSystem):
    """The lake under test with its days in the bucket location `uri` (``s3://bucket/prefix``)."""

    name = "ticklake-cold"
    description = "ticklake: ingest -> compaction -> `ticklake archive` (one zstd-19 object per day and tick type)"

    def __init__(self, workdir: Path, uri: str, *, cache_dir: Path | None = None, cache_bytes: int | None = None) -> None:
        super().__init__(workdir)
        settings: dict[str, object] = {"cold_uri": uri}
        if cache_dir is not None:
            settings["cache_dir"] = str(cache_dir)
        if cache_bytes is not None:
            settings["cache_bytes"] = cache_bytes
        self.config = replace(self.config, **settings)  # type: ignore[arg-type]
        self.archived: ArchiveResult | None = None
        self.archive_seconds = 0.0

    def archive(self) -> ArchiveResult:
        """After `load`: archive every day (all are older than today) to the bucket, as `ticklake archive` does."""
        started = time.perf_counter()
        self.archived = archive_lake(self.config, 0, to=self.config.cold_uri)
        self.archive_seconds = time.perf_counter() - started
        return self.archived

    def bytes_per_tick(self) -> tuple[float, float]:
        """Bytes per tick of the archived days before (warm hourly files) and after (cold objects)."""
        if self.archived is None:
            raise RuntimeError("archive() first")
        days = [d for d in self.archived.days if d.dataset == "ticks"]
        rows = max(sum(d.rows for d in days), 1)
        return sum(d.bytes_in for d in days) / rows, sum(d.bytes_out for d in days) / rows
