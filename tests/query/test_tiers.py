"""Everything that works on local disk works with the data on S3: the same lake, once warm and once
archived to a real S3 server (SeaweedFS), answers `sql`, `has`, `--explain` and rollups alike."""

from __future__ import annotations

import calendar
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.conftest import jsonl, tick
from tests.objectstore import S3Server
from ticklake.build.archive import archive_lake
from ticklake.build.compaction import compact_all
from ticklake.config import LakeConfig
from ticklake.landing.ingest import ingest_files
from ticklake.query.connection import connect

TICKLAKE = str(Path(sys.executable).parent / "ticklake")
DAYS = (5, 6, 7)
AFTER = calendar.timegm((2022, 1, 10, 0, 0, 0)) * 1.0  # "now" for the archive: every day is old
QUERIES = [
    "SELECT tick_type, date, hour, count(*) AS n, sum(price) AS p FROM ticks GROUP BY ALL ORDER BY ALL",
    "SELECT count(*) FROM ticks WHERE contract_id = 12 AND timestamp >= '2022-01-06' AND timestamp < '2022-01-07'",
    "SELECT contract_id, max(timestamp) FROM ticks WHERE tick_type = 'bid_ask' GROUP BY ALL ORDER BY ALL",
    "SELECT minute, contract_id, open, close, volume, trades FROM bars_1m ORDER BY ALL",
]


def _ticks() -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for d in DAYS:
        for h in (5, 6):
            for m in range(6):
                out.append(tick(f"2022-01-0{d}T{h:02d}:{m:02d}:00Z", 10 + m % 3, "last", price=float(d * 100 + m), size=m + 1))
                out.append(tick(f"2022-01-0{d}T{h:02d}:{m:02d}:30Z", 10 + m % 2, "bid_ask"))
    return out


def run(root: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TICKLAKE_")}
    result = subprocess.run([TICKLAKE, "--root", str(root), *args], env={**clean, **env}, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result


@pytest.fixture(scope="module", params=["local", "s3"])
def lake(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """The same lake on local disk, or with every day archived to the S3 server; and its environment."""
    tmp_path = tmp_path_factory.mktemp(request.param)
    config = LakeConfig(root=tmp_path / "lake", writer_id="t", cache_dir=str(tmp_path / "cache"))
    source = tmp_path / "in.jsonl"
    source.write_bytes(jsonl(_ticks()))
    ingest_files(config, [source])
    compact_all(config)
    env = {"TICKLAKE_CACHE_DIR": str(tmp_path / "cache")}
    for hour in ("2022-01-05T05", "2022-01-06T06"):
        run(config.root, "rollup", "--hour", hour, env=env)
    if request.param == "s3":
        server: S3Server = request.getfixturevalue("s3_server")
        prefix = f"s3://{server.bucket}/tiers-{uuid.uuid4().hex[:8]}"
        env.update(server.env())
        with pytest.MonkeyPatch.context() as mp:
            for k, v in server.env().items():
                mp.setenv(k, v)
            result = archive_lake(config, 0, to=prefix, now=AFTER)
        assert len(result.days) == 2 * len(DAYS) and result.deleted_local > 0
        assert not list((config.root / "lake/ticks").rglob("*.parquet"))  # no tick is left warm
    return config.root, env


EXPECTED: dict[str, list[list[tuple[object, ...]]]] = {}


def test_sql_answers_the_same_on_every_tier(lake: tuple[Path, dict[str, str]], monkeypatch: pytest.MonkeyPatch) -> None:
    root, env = lake
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with connect(root) as con:
        answers = [con.sql(q).fetchall() for q in QUERIES]
    assert all(len(a) >= 1 for a in answers)
    EXPECTED.setdefault("answers", answers)
    assert answers == EXPECTED["answers"]  # the local lake runs first and sets them


def test_has_explain_and_rollup_work_on_s3(lake: tuple[Path, dict[str, str]]) -> None:
    root, env = lake
    assert "yes" in run(root, "has", "--contract", "12", "--date", "2022-01-06", env=env).stdout.lower()
    assert "no" in run(root, "has", "--contract", "99", "--date", "2022-01-06", env=env).stdout.lower()
    explained = run(root, "sql", "--explain", QUERIES[1], env=env).stdout
    assert "2 files" in explained and "LIST" not in explained.replace("LIST 0", "")
    rolled = run(root, "rollup", "--hour", "2022-01-07T05", env=env).stdout
    assert "bars" in rolled
    bars = run(root, "sql", "--format", "csv", "SELECT count(*), sum(trades) FROM bars_1m WHERE date = '2022-01-07'", env=env)
    assert bars.stdout.splitlines()[1] == "12,12"  # hour 06 is not rolled up: its bars are computed
    shutil.rmtree(Path(env["TICKLAKE_CACHE_DIR"]), ignore_errors=True)  # a cold cache answers the same
    again = run(root, "sql", "--format", "csv", QUERIES[0], env=env).stdout
    assert again.count("\n") == 3 * 2 * 2 + 1
