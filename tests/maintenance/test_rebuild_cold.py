"""A lost catalog of a lake with a cold tier is rebuilt with its archived days: the newest object of
each day, late warm files beside it, and the archive's leftover inputs as orphans (never counted twice)."""

from __future__ import annotations

import calendar
import shutil
from pathlib import Path

from tests.conftest import jsonl, tick
from tests.objectstore import S3Server
from ticklake.build.archive import archive_lake
from ticklake.build.compaction import compact_all
from ticklake.config import LakeConfig
from ticklake.landing.ingest import ingest_files
from ticklake.maintenance.check import check_lake
from ticklake.maintenance.rebuild import rebuild_catalog
from ticklake.query.connection import connect

NOW = calendar.timegm((2022, 1, 12, 0, 0, 0)) * 1.0
QUERY = "SELECT tick_type, date, hour, count(*), sum(price), sum(contract_id) FROM ticks GROUP BY ALL ORDER BY ALL"


def _ingest(config: LakeConfig, folder: Path, name: str, ticks: list[dict[str, object]]) -> None:
    source = folder / name
    source.write_bytes(jsonl(ticks))
    ingest_files(config, [source])
    compact_all(config)


def _answers(config: LakeConfig) -> list[tuple[object, ...]]:
    with connect(config=config) as con:
        return con.sql(QUERY).fetchall()


def test_rebuild_keeps_archived_days_and_late_ticks_once(tmp_path: Path, s3_env: S3Server, s3_prefix: str) -> None:
    config = LakeConfig(root=tmp_path / "lake", writer_id="t", cache_dir=str(tmp_path / "cache"), cold_uri=s3_prefix)
    first = [tick(f"2022-01-0{d}T05:{m:02d}:00Z", 10 + m, "last", price=float(m)) for d in (6, 7) for m in range(4)]
    _ingest(config, tmp_path, "a.jsonl", first)
    assert len(archive_lake(config, 0, now=NOW).days) == 2
    kept = list((config.root / "lake").rglob("*.parquet"))
    assert kept == []
    # Late ticks beside the archive, and an input of the archive a killed run left behind (an older name).
    _ingest(config, tmp_path, "late.jsonl", [tick("2022-01-06T07:00:00Z", 99, "last", price=5.0)])
    leftover = config.root / "lake/ticks/tick_type=last/date=2022-01-07/hour=05/0000000000001-000000000000.parquet"
    leftover.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(next((config.root / "lake/ticks").rglob("*.parquet")), leftover)
    expected = _answers(config)
    for name in ("catalog.sqlite", "catalog.sqlite-wal", "catalog.sqlite-shm"):
        (config.root / name).unlink(missing_ok=True)

    result = rebuild_catalog(config)
    assert result.files["ticks"] == 3  # two archived days and the late file
    assert leftover.relative_to(config.root).as_posix() in result.orphans
    assert _answers(config) == expected
    findings = [(f.kind, f.subject) for f in check_lake(config).findings]
    assert all(kind in ("orphan", "in-flight") for kind, _ in findings), findings
