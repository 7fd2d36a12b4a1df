"""The `cold_archive` asset packs old days into the cold tier on a real S3 server, and its daily
schedule runs it only where a cold tier is set."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from dagster import DagsterInstance, RunRequest, SkipReason, build_schedule_context, materialize

from tests.conftest import jsonl, tick
from tests.objectstore import S3Server
from ticklake.build.compaction import compact_all
from ticklake.config import LakeConfig
from ticklake.landing.ingest import ingest_files
from ticklake.pipelines.definitions import build_definitions
from ticklake.pipelines.resources import LakeResource
from ticklake.query.connection import connect


def test_cold_archive_asset_moves_old_days_to_the_bucket(
    tmp_path: Path, s3_env: S3Server, s3_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TICKLAKE_COLD_URI", s3_prefix)
    monkeypatch.setenv("TICKLAKE_CACHE_DIR", str(tmp_path / "cache"))
    config = LakeConfig.from_env(root=tmp_path / "lake")
    source = tmp_path / "in.jsonl"
    source.write_bytes(jsonl(tick(f"2022-01-0{d}T05:{m:02d}:00Z", 10 + m, "last", size=1) for d in (6, 7) for m in range(5)))
    ingest_files(config, [source])
    compact_all(config)
    defs = build_definitions()
    with DagsterInstance.ephemeral() as instance:
        result = materialize(
            [defs.get_assets_def("cold_archive")],
            resources={"lake": LakeResource(root=str(config.root))},
            instance=instance,
        )
    assert result.success
    metadata = result.asset_materializations_for_node("cold_archive")[0].metadata
    assert metadata["days"].value == 2 and metadata["rows"].value == 10
    with connect(config=config) as con:
        assert con.sql("SELECT count(*), sum(contract_id) FROM ticks").fetchone() == (10, 120)
        assert all(f.path.startswith(s3_prefix) for ref in con.plan("SELECT * FROM ticks").refs for f in ref.plan.files)


def test_daily_schedule_skips_without_a_cold_tier(monkeypatch: pytest.MonkeyPatch) -> None:
    schedule = next(s for s in build_definitions().schedules if s.name == "daily_archive_schedule")
    at = datetime(2022, 1, 9, 2, 30, tzinfo=UTC)
    monkeypatch.delenv("TICKLAKE_COLD_URI", raising=False)
    with DagsterInstance.ephemeral() as instance:
        skipped = schedule.evaluate_tick(build_schedule_context(instance=instance, scheduled_execution_time=at))
        monkeypatch.setenv("TICKLAKE_COLD_URI", "s3://ticklake/lake")
        ran = schedule.evaluate_tick(build_schedule_context(instance=instance, scheduled_execution_time=at))
    assert skipped.run_requests == [] and "no cold tier" in (skipped.skip_message or "")
    assert ran.run_requests is not None and [r.run_key for r in ran.run_requests] == ["2022-01-09"]
    assert isinstance(ran.run_requests[0], RunRequest) and not isinstance(ran.run_requests[0], SkipReason)
