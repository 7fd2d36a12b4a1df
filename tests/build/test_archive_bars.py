"""Archiving a day leaves its bars up to date: an object stands for the hourly files it packed, so
neither the rollup nor a fresh query rebuilds an archived hour's bars from the bucket."""

from __future__ import annotations

import calendar
from pathlib import Path

from tests.conftest import jsonl, tick
from tests.objectstore import S3Server
from ticklake.build.archive import archive_lake
from ticklake.build.compaction import compact_all
from ticklake.build.rollups import build_bars_1m
from ticklake.config import LakeConfig
from ticklake.landing.ingest import ingest_files
from ticklake.query.connection import connect

HOUR = calendar.timegm((2022, 1, 7, 5, 0, 0)) // 3600
NOW = calendar.timegm((2022, 1, 12, 0, 0, 0)) * 1.0


def _land(config: LakeConfig, path: Path, ticks: list[dict[str, object]]) -> None:
    path.write_bytes(jsonl(ticks))
    ingest_files(config, [path])
    compact_all(config)


def test_archived_hours_keep_their_bars_until_late_trades_arrive(tmp_path: Path, s3_env: S3Server, s3_prefix: str) -> None:
    config = LakeConfig(root=tmp_path / "lake", writer_id="t", cache_dir=str(tmp_path / "cache"), cold_uri=s3_prefix)
    first = [tick(f"2022-01-07T05:{m:02d}:00Z", 10, "last", price=float(m), size=1) for m in range(5)]
    _land(config, tmp_path / "a.jsonl", first)
    built = build_bars_1m(config, HOUR)
    assert built.rows == 5 and built.snapshot is not None
    archive_lake(config, 0, now=NOW)
    assert build_bars_1m(config, HOUR).snapshot is None  # still current: nothing to rebuild
    with connect(config=config) as con:
        assert con.sql("SELECT count(*), sum(trades) FROM bars_1m").fetchone() == (5, 5)
    # A late trade beside the archive makes the hour stale again; rebuilt from the object and the late file.
    _land(config, tmp_path / "late.jsonl", [tick("2022-01-07T05:00:30Z", 10, "last", price=9.0, size=1)])
    rebuilt = build_bars_1m(config, HOUR)
    assert rebuilt.snapshot is not None and rebuilt.trades == 6 and rebuilt.rows == 5
    archive_lake(config, 0, now=NOW)  # packed again: still current
    assert build_bars_1m(config, HOUR).snapshot is None
