"""`ticklake cost` on a real lake with all three tiers: sealed segments, local Parquet, and days archived to S3."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
import s3fs

from tests.conftest import jsonl, tick
from tests.objectstore import S3Server
from ticklake.access import open_catalog
from ticklake.build.archive import archive_lake
from ticklake.build.compaction import compact_all
from ticklake.catalog import LiveFile
from ticklake.config import LakeConfig
from ticklake.cost import DIRECT_GETS, GB, IA_MIN_BILLED_BYTES, QUERIES, lake_cost, put_requests, query_cost
from ticklake.errors import ConfigError
from ticklake.landing.ingest import ingest_files
from ticklake.query.connection import LakeConnection
from ticklake.storage.tiers import tier_of

DAYS = ("2022-01-03", "2022-01-04", "2022-01-05")
DAY_3 = "SELECT count(*), sum(price) FROM ticks WHERE timestamp >= '2022-01-03' AND timestamp < '2022-01-04' AND contract_id = 2"


@pytest.fixture(scope="module")
def lake(s3_server: S3Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LakeConfig]:
    """Three days of trades; days 3 and 4 archived to S3 (one object each), day 5 warm, one batch still in landing."""
    folder = tmp_path_factory.mktemp("cost")
    with pytest.MonkeyPatch.context() as mp:
        for k, v in s3_server.env().items():
            mp.setenv(k, v)
        config = LakeConfig(root=folder / "lake", writer_id="test", cache_dir=str(folder / "unused-cache"))
        trades = [
            tick(f"{d}T{h:02d}:{m:02d}:00Z", 1 + m % 3, price=10.0 + m) for d in DAYS for h in (5, 6) for m in range(0, 60, 5)
        ]
        (folder / "a.jsonl").write_bytes(jsonl(trades))
        ingest_files(config, [folder / "a.jsonl"])
        compact_all(config)
        archived = archive_lake(config, 0, to=f"s3://{s3_server.bucket}/cost", now=datetime(2022, 1, 5, tzinfo=UTC).timestamp())
        assert len(archived.days) == 2
        (folder / "b.jsonl").write_bytes(jsonl([tick("2022-01-05T07:00:00Z", 1), tick("2022-01-05T07:01:00Z", 2)]))
        ingest_files(config, [folder / "b.jsonl"])  # sealed, not compacted: the hot tier
        yield config


@pytest.fixture
def fresh_cache(lake: LakeConfig, tmp_path: Path) -> LakeConfig:
    """The lake with an empty cache of its own."""
    return replace(lake, cache_dir=str(tmp_path / "cache"))


def live_files(config: LakeConfig) -> list[LiveFile]:
    with open_catalog(config) as catalog:
        return [f for d in catalog.datasets() for f in catalog.live_files(d.dataset_id)]


def test_storage_per_tier_is_the_landing_folders_and_the_catalogs(lake: LakeConfig, s3_server: S3Server) -> None:
    cost = lake_cost(lake)
    hot, warm, cold = cost.tiers
    sealed = [p for p in (lake.root / "landing" / "ticks").rglob("*") if p.is_file()]  # segments and their sidecars
    assert (hot.tier, hot.files) == ("hot", len([p for p in sealed if p.suffix == ".jsonl"])) == ("hot", 1)
    assert hot.bytes == sum(p.stat().st_size for p in sealed) and len(sealed) == 2
    retained = list((lake.root / "landing" / "_consumed").rglob("*.jsonl"))
    assert (cost.retained.files, cost.retained.bytes) == (len(retained), sum(p.stat().st_size for p in retained))
    assert cost.retained.files == 6  # one segment per compacted hour, kept for its retention
    files = live_files(lake)
    local = [f for f in files if tier_of(f.path) == "warm"]
    objects = [f for f in files if tier_of(f.path) == "cold"]
    assert (warm.files, warm.bytes) == (len(local), sum((lake.root / f.path).stat().st_size for f in local)) and warm.files
    fs = s3fs.S3FileSystem(
        key=s3_server.writer[0], secret=s3_server.writer[1], client_kwargs={"endpoint_url": s3_server.endpoint}
    )
    assert (cold.files, cold.bytes) == (2, sum(fs.info(f.path)["size"] for f in objects))  # what the bucket holds
    assert cost.cold_ia.files == 2 and cost.put_requests == 2


def test_prices_multiply_out(lake: LakeConfig) -> None:
    config = replace(lake, price_warm_gb_month=1.0, price_cold_gb_month=2.0, price_cold_ia_gb_month=0.5, price_put_per_1000=10.0)
    cost = lake_cost(config)
    hot, warm, cold = cost.tiers
    assert hot.monthly == pytest.approx(hot.bytes / GB) and warm.monthly == pytest.approx(warm.bytes / GB)
    assert cold.monthly == pytest.approx(2 * cold.bytes / GB)
    sizes = [f.bytes for f in live_files(lake) if tier_of(f.path) == "cold"]
    assert all(s < IA_MIN_BILLED_BYTES for s in sizes)  # small objects: Standard-IA bills each as 128 KiB
    assert cost.cold_ia.monthly == pytest.approx(0.5 * 2 * IA_MIN_BILLED_BYTES / GB)
    local = hot.monthly + warm.monthly + cost.retained.monthly
    assert cost.retained.monthly == pytest.approx(cost.retained.bytes / GB)
    assert cost.monthly == pytest.approx(local + cold.monthly) and cost.monthly_ia == pytest.approx(local + cost.cold_ia.monthly)
    assert cost.upload_cost == pytest.approx(2 / 1000 * 10.0)
    assert put_requests(150 * 2**20) == 3 + 2  # a multipart upload: start, three parts, complete


def test_a_pruned_query_fetches_the_plans_cold_objects_once_then_costs_nothing(fresh_cache: LakeConfig) -> None:
    first = query_cost(fresh_cache, DAY_3)
    cold = first.tiers["cold"]
    with LakeConnection(fresh_cache) as con:
        [ref] = con.plan(DAY_3).refs  # this fetches the objects into the cache: priced above, before
        planned = [f for f in ref.plan.files if tier_of(f.path) == "cold"]
        assert (cold.objects, cold.bytes) == (len(planned), sum(f.bytes for f in planned)) == (1, planned[0].bytes)
        assert (cold.gets, cold.heads, cold.lists, cold.fetched) == (1, 0, 0, cold.bytes)
        assert (first.cache_misses, first.cache_hits, first.direct) == (1, 0, 0)
        assert first.tiers["warm"].objects == first.tiers["hot"].objects == 0
        assert first.price == pytest.approx(fresh_cache.price_get_per_1000 / 1000)
        assert con.sql(DAY_3).fetchall()[0][0] == 8
    again = query_cost(fresh_cache, DAY_3)
    assert (again.tiers["cold"].objects, again.tiers["cold"].gets, again.tiers["cold"].fetched) == (1, 0, 0)
    assert (again.cache_hits, again.cache_misses, again.price) == (1, 0, 0.0)


def test_without_the_cache_httpfs_reads_the_object_and_a_glob_lists_the_prefix(fresh_cache: LakeConfig) -> None:
    cost = query_cost(replace(fresh_cache, cache_bytes=0), DAY_3)
    cold = cost.tiers["cold"]
    assert (cost.direct, cold.objects, cold.heads, cold.gets) == (1, 1, 1, DIRECT_GETS)
    glob = cost.glob.reads
    [pattern] = cost.glob.patterns
    assert pattern.startswith("read_parquet('s3://") and pattern.endswith("/cost/ticks/**/*.parquet')")
    # Both objects are listed (twice) and their footers read, and the needed one's column chunks.
    assert (glob.objects, glob.lists, glob.heads, glob.gets) == (2, 2, 0, 2 + DIRECT_GETS - 1)
    get, lst = fresh_cache.price_get_per_1000, fresh_cache.price_list_per_1000
    assert cost.glob_price == pytest.approx((glob.gets * get + glob.lists * lst) / 1000)
    assert cost.glob_price > cost.price


def test_a_statement_that_is_not_one_select_reads_every_live_file(fresh_cache: LakeConfig) -> None:
    cost = query_cost(fresh_cache, "CREATE TEMP TABLE t AS SELECT * FROM ticks WHERE contract_id = 2")
    warm = [f for f in live_files(fresh_cache) if tier_of(f.path) == "warm"]
    assert not cost.pruned and cost.tiers["cold"].objects == 2 and cost.tiers["warm"].objects == len(warm)
    assert cost.tiers["hot"].objects == 1
    assert cost.tiers["warm"].gets == 0 and cost.reads.gets == 2


def test_a_fresh_query_reads_the_hot_segments_of_its_hours_locally(fresh_cache: LakeConfig) -> None:
    [segment] = (fresh_cache.root / "landing" / "ticks").rglob("*.jsonl")
    query = "SELECT count(*) FROM ticks WHERE timestamp >= '2022-01-05 07:00'"
    cost = query_cost(fresh_cache, query)
    assert (cost.tiers["hot"].objects, cost.tiers["hot"].bytes) == (1, segment.stat().st_size)
    assert cost.tiers["warm"].objects == cost.tiers["cold"].objects == cost.reads.gets == 0 and cost.price == 0
    assert query_cost(fresh_cache, query.replace("07:00", "06:00")).tiers["warm"].objects == 1
    assert query_cost(replace(fresh_cache, fresh=0), query).tiers["hot"].objects == 0
    assert query_cost(fresh_cache, query.replace("2022-01-05 07:00", "2022-01-04")).tiers["hot"].objects == 1
    assert query_cost(fresh_cache, DAY_3).tiers["hot"].objects == 0  # its hour folders are pruned


def test_prices_must_not_be_negative_and_a_remote_lake_is_not_priced(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="price_get_per_1000 must not be negative"):
        LakeConfig(price_get_per_1000=-0.1)
    with pytest.raises(ConfigError, match=r"^cost: s3://b/lake is a lake read from object storage"):
        lake_cost(LakeConfig(root="s3://b/lake", cache_dir=str(tmp_path)))


def test_the_cli_prints_tables_and_json(fresh_cache: LakeConfig, s3_server: S3Server) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKLAKE_")}
    env["TICKLAKE_CACHE_DIR"] = fresh_cache.cache_dir

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "ticklake.cli", "--root", str(fresh_cache.root), "cost", *args]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)

    table = run()
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines()[0].split() == ["tier", "files", "bytes", "USD/GB-month", "USD/month"]
    assert "cold (S3 Standard)" in table.stdout and "cold as S3 Standard-IA" in table.stdout
    done = run("--query", DAY_3, "--format", "json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["tiers"]["cold"]["gets"] == 1 and out["usd_per_million"] == pytest.approx(out["usd"] * QUERIES)
    bad = run("--query", "SELEC 1")
    assert (bad.returncode, bad.stdout) == (1, "")
    assert (
        bad.stderr.startswith("Error: cannot price the query: Parser Error: syntax error at or near")
        and bad.stderr.count("\n") == 1
    )
