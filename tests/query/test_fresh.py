"""Fresh queries: ticks are visible as soon as their segment is sealed, counted exactly once however
compaction races the query, and bars_1m of hours not rolled up are computed as the rollup will write them."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import ticklake
from tests.conftest import jsonl, tick
from tests.query.conftest import run_cli
from ticklake.build.compaction import compact_all, compact_hour
from ticklake.build.rollups import build_bars_1m
from ticklake.config import LakeConfig
from ticklake.datasets import BARS_1M, TICKS
from ticklake.errors import ConfigError
from ticklake.landing.buffer import segment_name, write_segment
from ticklake.landing.ingest import ingest_files
from ticklake.query import fresh
from ticklake.storage.layout import HOUR_US, parse_hour

H5, H6, H7 = (parse_hour(f"2022-01-07T{h:02d}") for h in (5, 6, 7))


def land(config: LakeConfig, hour: int, name: str, records: list[Any]) -> None:
    """Seal one segment (no sidecar) holding `records` (dicts, or raw lines) in `hour`'s folder."""
    write_segment(config.root, hour, name, jsonl(records))


def trades(hour: int, n: int, contract: int = 11, price: float = 10.0, second: int = 0) -> list[dict[str, Any]]:
    hh = (hour - H5) + 5
    return [tick(f"2022-01-07T{hh:02d}:{m:02d}:{second:02d}Z", contract, "last", price=price + m, size=m + 1) for m in range(n)]


def count(config: LakeConfig, where: str = "", **options: Any) -> int:
    with ticklake.connect(config=config, **options) as lake:
        return int(lake.execute(f"SELECT count(*) FROM ticks {where}").fetchone()[0])


@pytest.fixture
def lake(config: LakeConfig) -> LakeConfig:
    """A lake whose hour 05 is compacted (6 trades), and nothing else yet."""
    land(config, H5, "a-000001.jsonl", trades(H5, 6))
    compact_all(config)
    return config


def test_ticks_are_visible_before_compaction_and_counted_once_after(lake: LakeConfig) -> None:
    land(lake, H5, "a-000002.jsonl", trades(H5, 2, second=30))  # late data for the compacted hour
    land(lake, H6, "a-000003.jsonl", trades(H6, 3))
    assert count(lake) == 11
    assert count(lake, fresh=False) == 6
    with ticklake.connect(config=lake) as open_lake:  # one connection across the compaction
        assert open_lake.sql("SELECT count(*) FROM ticks").fetchone() == (11,)
        compact_all(lake)
        assert open_lake.sql("SELECT count(*) FROM ticks").fetchone() == (11,)
        assert open_lake.sql("SELECT hour, count(*) FROM ticks GROUP BY ALL ORDER BY 1").fetchall() == [(5, 8), (6, 3)]
    assert count(lake, fresh=False) == 11


def test_explain_reads_only_the_hour_folders_the_predicates_can_match(lake: LakeConfig) -> None:
    for i, hour in enumerate((H5, H6, H7)):
        land(lake, hour, f"b-{i:06d}.jsonl", trades(hour, 2, second=45))
    folder = {h: f"landing/ticks/date=2022-01-07/hour={(h - H5) + 5:02d}" for h in (H5, H6, H7)}
    cases = {
        "WHERE timestamp >= '2022-01-07 06:00' AND timestamp < '2022-01-07 07:00'": ({H6}, 2),
        "WHERE hour IN (5, 7)": ({H5, H7}, 6 + 4),
        "WHERE date = '2022-01-08'": (set(), 0),  # the date folder is not even listed
        "WHERE contract_id = 11": ({H5, H6, H7}, 12),
    }
    with ticklake.connect(config=lake) as open_lake:
        for where, (hours, n) in cases.items():
            text = open_lake.explain(f"SELECT count(*) FROM ticks {where}")
            listed = "of 0 hour folders (1 date folders ruled out)" if "date" in where else "of 3 hour folders"
            assert f"hot tier {len(hours):>14} segments in {len(hours)} {listed}" in text, text
            for h, name in folder.items():
                assert (f"    {name}: 1 segments, 2 rows" in text) == (h in hours), (where, text)
            assert open_lake.sql(f"SELECT count(*) FROM ticks {where}").fetchone() == (n,)
        assert "hot tier: included" in text


def test_sidecar_and_jsonl_segments_count_valid_ticks_only(lake: LakeConfig, tmp_path: Path) -> None:
    source = tmp_path / "feed.jsonl"
    source.write_bytes(jsonl(trades(H6, 4) + ["{not json"]))
    assert ingest_files(lake, [source]).appended == 4  # ingest keeps a sidecar; the bad line is quarantined by it
    raw = [*trades(H6, 2, second=20), "not json", '{"timestamp": "2022-01-07T06:00:00Z"}', tick("2022-01-07T09:00:00Z")]
    land(lake, H6, "raw-000001.jsonl", raw)  # a producer's own segment: two valid ticks, one wrong-hour tick
    with ticklake.connect(config=lake) as open_lake:
        text = open_lake.explain("SELECT count(*) FROM ticks WHERE hour = 6")
        assert "landing/ticks/date=2022-01-07/hour=06: 2 segments, 6 rows, 3 quarantined" in text
        assert "rows, sidecar)" in text and "raw-000001.jsonl (2 rows)" in text
        assert open_lake.sql("SELECT count(*) FROM ticks").fetchone() == (6 + 6,)
        rows = open_lake.sql("SELECT tick_type, date, hour, size FROM ticks WHERE hour = 6 ORDER BY size LIMIT 1").fetchall()
        assert [(t, str(d), h, s) for t, d, h, s in rows] == [("last", "2022-01-07", 6, 1.0)]
    compact_all(lake)
    assert count(lake) == count(lake, fresh=False) == 12  # compaction stores exactly what the query saw


def test_no_fresh_and_pinned_snapshots_leave_the_hot_tier_out(lake: LakeConfig) -> None:
    land(lake, H6, "c-000001.jsonl", trades(H6, 3))
    root = str(lake.root)
    assert run_cli("--root", root, "sql", "SELECT count(*) AS n FROM ticks", "--format", "csv").stdout == "n\n9\n"
    assert run_cli("--root", root, "sql", "--no-fresh", "SELECT count(*) AS n FROM ticks", "--format", "csv").stdout == "n\n6\n"
    with ticklake.connect(config=lake, snapshot=1) as pinned:
        text = pinned.explain("SELECT count(*) FROM ticks")
    assert "hot tier: not included (a pinned snapshot holds only what was committed)" in text
    assert "hot tier " not in text.split("hot tier: not included")[0]
    assert count(lake, snapshot=1) == count(lake, as_of="2100-01-01") == 6
    both = run_cli("--root", root, "sql", "--fresh", "--snapshot", "1", "SELECT 1")
    assert (both.returncode, both.stderr) == (
        1,
        "Error: --fresh reads landing segments not yet committed; a --snapshot or --as-of read never does\n",
    )
    with pytest.raises(ConfigError):
        ticklake.connect(config=lake, as_of="2100-01-01", fresh=True)
    off = LakeConfig.from_env({"TICKLAKE_FRESH": "0"}, root=lake.root)
    assert count(off) == 6 and count(off, fresh=True) == 9


def test_statements_over_the_whole_lake_see_the_hot_tier(lake: LakeConfig) -> None:
    land(lake, H6, "d-000001.jsonl", trades(H6, 3))
    with ticklake.connect(config=lake, unsafe=True) as open_lake:
        open_lake.execute("CREATE TEMP TABLE copied AS SELECT * FROM ticks")
        assert open_lake.sql("SELECT count(*) FROM copied").fetchone() == (9,)


def test_a_plan_on_a_snapshot_overtaken_by_a_commit_is_made_again(lake: LakeConfig) -> None:
    land(lake, H6, "e-000001.jsonl", trades(H6, 3))
    with ticklake.connect(config=lake) as open_lake:
        old = open_lake.snapshot
        compact_all(lake)  # commits a newer snapshot and retires the segment
        with pytest.raises(fresh.Moved):
            open_lake._hot.scan(open_lake.catalog, (), "timestamp", HOUR_US - 1, old)
        assert open_lake.sql("SELECT count(*) FROM ticks").fetchone() == (9,)


COMPACTOR = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from ticklake.build.compaction import compact_all
    from ticklake.config import LakeConfig

    root, stop = Path(sys.argv[1]), Path(sys.argv[2])
    config = LakeConfig(root=root, writer_id="compactor", threads=1, segment_retention_hours=0)
    commits = 0
    while not stop.exists():
        done = sum(r.snapshot is not None for r in compact_all(config))
        commits += done
        if not done:
            time.sleep(0.002)
    print(commits)
    """
)


def test_counts_stay_exact_while_another_process_compacts(lake: LakeConfig, tmp_path: Path) -> None:
    """Every fresh count equals the ticks landed so far, while a separate process compacts and retires
    the very segments the queries read."""
    stop = tmp_path / "stop"
    compactor = subprocess.Popen(
        [sys.executable, "-c", COMPACTOR, str(lake.root), str(stop)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    expected = {H5: 6, H6: 0, H7: 0}
    queries = 0
    try:
        with ticklake.connect(config=lake) as open_lake:
            first = open_lake.snapshot
            for i in range(400):
                hour = (H5, H6, H7)[i % 3]
                records: list[Any] = trades(hour, 1 + i % 4, contract=11 + i % 2, second=i % 60)
                land(lake, hour, segment_name("feed", i), [*records, "garbage"] if i % 5 == 0 else records)
                expected[hour] += len(records)
                for _ in range(3):
                    assert open_lake.sql("SELECT count(*) FROM ticks").fetchone() == (sum(expected.values()),)
                    queries += 1
                by_hour = open_lake.sql("SELECT hour, count(*) FROM ticks WHERE hour >= 6 GROUP BY ALL ORDER BY 1").fetchall()
                assert by_hour == [(h - H5 + 5, n) for h, n in expected.items() if h != H5 and n]
                if i >= 40 and open_lake.catalog.current_snapshot() - first >= 20:
                    break
            assert open_lake.catalog.current_snapshot() - first >= 20, "the compactor committed too little to race with"
    finally:
        stop.touch()
        out, err = compactor.communicate(timeout=120)
    assert compactor.returncode == 0, err
    assert int(out) >= 20
    compact_all(lake)
    assert count(lake, fresh=False) == count(lake) == sum(expected.values())
    assert queries >= 120


def bars(config: LakeConfig, where: str = "", **options: Any) -> list[tuple[Any, ...]]:
    with ticklake.connect(config=config, **options) as lake:
        return lake.sql(f"SELECT * FROM bars_1m {where} ORDER BY contract_id, minute").fetchall()


def test_real_time_bars_equal_what_the_rollup_writes_later(lake: LakeConfig) -> None:
    """Hour 05 rolled up, then late trades; hour 06 compacted, not rolled up, plus hot trades; hour 07
    only hot. Ties on one timestamp (across the compacted file and the segments) break by arrival."""
    assert build_bars_1m(lake, H5).snapshot is not None
    land(lake, H6, "f-000001.jsonl", trades(H6, 5, price=20.0))
    compact_hour(lake, H6)
    assert bars(lake) == bars(lake, fresh=False) + bars(lake, "WHERE hour = 6")  # hour 06 computed already
    late = [tick("2022-01-07T05:01:00Z", 11, "last", price=99.0, size=7), tick("2022-01-07T05:40:00Z", 12, "last", price=5.0)]
    land(lake, H5, "f-000002.jsonl", late)  # 05:01:00 ties with a compacted trade of contract 11
    land(lake, H6, "f-000003.jsonl", [tick("2022-01-07T06:02:00Z", 11, "last", price=98.0), tick("2022-01-07T06:02:00Z", 11)])
    land(lake, H7, "f-000004.jsonl", [*trades(H7, 3, price=30.0), tick("2022-01-07T07:00:00Z", 11, "bid_ask"), "oops"])
    land(lake, H7, "f-000005.jsonl", [tick("2022-01-07T07:00:00Z", 11, "last", price=31.5, size=2)])  # ties with 07:00:00
    queries = [
        "",
        "WHERE contract_id = 11",
        "WHERE minute >= '2022-01-07 06:02' AND minute < '2022-01-07 07:01'",
        "WHERE hour = 5",
    ]
    real_time = {q: bars(lake, q) for q in queries}
    with ticklake.connect(config=lake) as open_lake:
        text = open_lake.explain("SELECT * FROM bars_1m")
    assert "computed              3 hours not rolled up" in text
    assert "2022-01-07T05 (1 trade files, 1 hot segments), 2022-01-07T06 (1 trade files, 1 hot segments)" in text
    assert "2022-01-07T07 (0 trade files, 2 hot segments)" in text
    minute = {(r[0].strftime("%H:%M"), r[1]): r for r in real_time[""]}
    assert minute[("05:01", 11)][2:6] == (11.0, 99.0, 11.0, 99.0)  # open from the compacted trade, close from the late one
    assert minute[("07:00", 11)][2:9] == (30.0, 31.5, 30.0, 31.5, 3.0, (30.0 + 63.0) / 3, 2)
    compact_all(lake)
    for hour in (H5, H6, H7):
        assert build_bars_1m(lake, hour).snapshot is not None
    for q in queries:
        assert bars(lake, q, fresh=False) == real_time[q], q
        assert bars(lake, q) == real_time[q], q
    with ticklake.connect(config=lake) as open_lake:
        assert "computed              0 hours (every hour read is rolled up)" in open_lake.explain("SELECT * FROM bars_1m")


def test_the_dataset_names_match_their_declarations() -> None:
    assert (fresh.TICKS, fresh.BARS) == (TICKS.name, BARS_1M.name)
