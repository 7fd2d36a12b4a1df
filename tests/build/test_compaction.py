"""Tests for ticklake.build.compaction: sorted zstd Parquet per tick type and hour, one catalog transaction, exactly-once."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import random
import re
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import replace
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import ticklake.build.commit as commit
from ticklake.access import open_catalog
from ticklake.build.compaction import compact_all, compact_hour, compact_hours
from ticklake.catalog import Catalog, CatalogLocked
from ticklake.cli import cli
from ticklake.config import LakeConfig
from ticklake.demo.eurusd import eurusd_ticks
from ticklake.demo.synthetic import to_jsonl
from ticklake.landing.buffer import sealed_segments, write_segment
from ticklake.landing.ingest import ingest_files
from ticklake.landing.quarantine import read_quarantine
from ticklake.landing.writer import LandingWriter
from ticklake.storage.layout import consumed_dir, landing_dir, parse_hour
from ticklake.ticks import FILE_SCHEMA, timestamp_us

H5 = parse_hour("2022-01-07T05")
T5 = H5 * 3_600_000_000  # 05:00:00 in epoch µs
COLUMNS = [f.name for f in FILE_SCHEMA]


def iso(us: int) -> str:
    return (dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=us)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def random_ticks(n: int, seed: int, start: int = T5) -> list[dict[str, Any]]:
    """Unsorted ticks of one hour, all types, a few contracts, many same-µs collisions."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        kind = rng.choice(["last", "bid_ask", "mid_point"])
        tick: dict[str, Any] = {
            "timestamp": iso(start + rng.randrange(0, 3_600_000_000, 250_000_000) + rng.choice([0, 1, 999])),
            "contract_id": rng.choice([5, 17, 123456789, 2**40]),
            "tick_type": kind,
        }
        if kind == "bid_ask":
            tick.update(bid_price=round(rng.uniform(1, 2), 5), ask_size=rng.randrange(100))
        else:
            tick.update(price=round(rng.uniform(1, 2), 5), size=float(i))  # size = arrival index
        tick["symbol"] = f"S{tick['contract_id'] % 7}"
        if rng.random() < 0.7:
            tick["exchange"] = rng.choice(["NYSE", "ARCA"])
        out.append(tick)
    return out


def land(config: LakeConfig, ticks: list[dict[str, Any]], writer: str = "w") -> None:
    with LandingWriter(config, writer) as w:
        w.append(ticks)


def expected_file(ticks: list[dict[str, Any]], tick_type: str) -> list[tuple[Any, ...]]:
    """(contract_id, µs, price, size, bid_price) of a tick type, stably sorted by (contract_id, timestamp)."""
    rows = [
        (t["contract_id"], timestamp_us(t["timestamp"]), t.get("price"), t.get("size"), t.get("bid_price"))
        for t in ticks
        if t["tick_type"] == tick_type
    ]
    return sorted(rows, key=lambda r: (r[0], r[1]))


def read_back(config: LakeConfig, rel: str) -> list[tuple[Any, ...]]:
    t = pq.read_table(config.root / rel)
    t = t.set_column(0, "timestamp", pc.cast(t.column("timestamp"), pa.int64()))
    return list(zip(*(t.column(c).to_pylist() for c in ("contract_id", "timestamp", "price", "size", "bid_price")), strict=True))


def query(config: LakeConfig, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(config.catalog_path)) as db, db:
        return db.execute(sql, args).fetchall()


def live(config: LakeConfig) -> list[tuple[str, str, int]]:
    return query(config, "SELECT partition_path, path, rows FROM files WHERE removed_snapshot IS NULL ORDER BY partition_path")


def parquet_on_disk(config: LakeConfig) -> set[str]:
    return {p.relative_to(config.root).as_posix() for p in (config.root / "lake").rglob("*.parquet")}


@pytest.fixture
def small(config: LakeConfig) -> LakeConfig:
    return replace(config, row_group_rows=100)


# --- one hour -----------------------------------------------------------------------------------


def test_hour_becomes_one_sorted_zstd_file_per_tick_type(small: LakeConfig) -> None:
    ticks = random_ticks(1500, seed=1)
    land(small, ticks[:900])
    land(small, ticks[900:])  # a second segment: arrival order continues across segments
    r = compact_hour(small, H5)
    assert (r.snapshot, r.segments, r.lines, r.stored, r.quarantined, r.rows) == (1, 2, 1500, 1500, 0, 1500)
    head = "2022-01-07T05: 2 segments, 1,500 lines -> 1,500 stored, 0 quarantined; hour now 1,500 rows in 3 files"
    assert r.summary().startswith(head)
    result = r
    assert sorted(Path(f).parent.as_posix() for f in result.files) == [
        f"lake/ticks/tick_type={t}/date=2022-01-07/hour=05" for t in ("bid_ask", "last", "mid_point")
    ]
    for rel in result.files:
        tick_type = rel.split("tick_type=")[1].split("/")[0]
        meta = pq.ParquetFile(small.root / rel).metadata
        assert meta.schema.to_arrow_schema().names == COLUMNS  # tick_type lives in the path only
        assert meta.num_row_groups == -(-meta.num_rows // 100) > 1
        codecs = {meta.row_group(g).column(c).compression for g in range(meta.num_row_groups) for c in range(meta.num_columns)}
        assert codecs == {"ZSTD"}
        assert read_back(small, rel) == expected_file(ticks, tick_type)  # stable: same-µs ticks in arrival order
    on_disk = [(f, pq.ParquetFile(small.root / f).metadata.num_rows) for f in result.files]
    assert sorted((f, n) for _, f, n in live(small)) == sorted(on_disk)


HOUR_PARAMS = ["05", "15"]  # a zero-padded hour and a two-digit one


@pytest.mark.parametrize("hh", HOUR_PARAMS)
def test_catalog_partition_path_matches_the_folder(config: LakeConfig, hh: str) -> None:
    land(config, random_ticks(30, seed=20, start=parse_hour(f"2022-01-07T{hh}") * 3_600_000_000))
    compact_all(config)
    for partition, path, _ in live(config):
        assert path == f"lake/ticks/{partition}/{Path(path).name}"


def test_commit_records_files_and_consumed_segments(config: LakeConfig) -> None:
    ticks = random_ticks(300, seed=2)
    land(config, ticks)
    (segment,) = sealed_segments(config.root)
    data = segment.path.read_bytes()
    result = compact_hour(config, H5)
    recorded = query(
        config, "SELECT path, bytes, sha256, hour, lines, rows_stored, rows_quarantined, consumed_snapshot FROM segments"
    )
    source = segment.path.relative_to(config.root).as_posix()
    assert recorded == [(source, len(data), hashlib.sha256(data).hexdigest(), "2022-01-07T05", 300, 300, 0, 1)]
    ((operation, summary),) = query(config, "SELECT operation, summary FROM snapshots")
    assert operation == "compact"
    assert json.loads(summary) == dict(
        hour="2022-01-07T05", lines=300, rows_stored=300, rows_quarantined=0, rows_in_hour=300,
        files_added=3, files_removed=0, segments_consumed=1,
    )  # fmt: skip
    for path, rows, size, ts_min, ts_max in query(config, "SELECT path, rows, bytes, ts_min, ts_max FROM files"):
        table = pq.read_table(config.root / path)
        us = pc.cast(table.column("timestamp"), pa.int64())
        assert (rows, size) == (table.num_rows, (config.root / path).stat().st_size)
        assert (ts_min, ts_max) == (pc.min(us).as_py(), pc.max(us).as_py())
    assert result.bytes == sum(r[0] for r in query(config, "SELECT bytes FROM files"))


def test_catalog_indexes_match_the_data(config: LakeConfig) -> None:
    land(config, random_ticks(600, seed=3))
    compact_hour(config, H5)
    with Catalog(config.catalog_path, read_only=True) as catalog:
        for file_id, path in query(config, "SELECT file_id, path FROM files"):
            table = pq.read_table(config.root / path)
            sql = "SELECT column_name, min_value, max_value, null_count FROM file_stats WHERE file_id = ?"
            stats = {r[0]: r[1:] for r in query(config, sql, file_id)}
            for column in ("contract_id", "price", "size", "bid_price", "ask_size"):
                col = table.column(column)
                assert stats[column] == (pc.min(col).as_py(), pc.max(col).as_py(), col.null_count)
            assert stats["hour"] == (5, 5, 0) and stats["date"] == ("2022-01-07", "2022-01-07", 0)
            sql = "SELECT column_name, value, rows FROM file_values WHERE file_id = ?"
            values = {(c, v): n for c, v, n in query(config, sql, file_id)}
            for column in ("contract_id", "exchange"):
                counts = pc.value_counts(table.column(column).drop_null()).to_pylist()
                assert {v: n for (c, v), n in values.items() if c == column} == {str(x["values"]): x["counts"] for x in counts}
            tick_type = path.split("tick_type=")[1].split("/")[0]
            assert {v: n for (c, v), n in values.items() if c == "tick_type"} == {tick_type: table.num_rows}
            sql = "SELECT column_name, num_bits, num_hashes, bits FROM file_blooms WHERE file_id = ?"
            assert {r[0] for r in query(config, sql, file_id)} == {"contract_id", "symbol"}
        assert catalog.current_snapshot() == 1


def test_rerun_with_nothing_new_creates_no_snapshot(config: LakeConfig) -> None:
    land(config, random_ticks(50, seed=4))
    assert [r.snapshot for r in compact_all(config)] == [1]
    assert compact_all(config) == []
    result = compact_hour(config, H5)
    assert (result.snapshot, result.segments, result.summary()) == (None, 0, "2022-01-07T05: nothing new")
    assert query(config, "SELECT count(*) FROM snapshots") == [(1,)]


def test_several_hours_compact_independently(config: LakeConfig) -> None:
    ticks = [t for h in range(4) for t in random_ticks(40, seed=h, start=T5 + h * 3_600_000_000)]
    land(config, ticks)
    results = compact_all(config)
    assert sorted(r.hour for r in results) == [f"2022-01-07T0{h}" for h in (5, 6, 7, 8)]
    assert sorted(r.snapshot for r in results) == [1, 2, 3, 4]
    assert sum(r.stored for r in results) == 160 and len(live(config)) == 12


# --- late data ----------------------------------------------------------------------------------


@pytest.mark.parametrize("hh", HOUR_PARAMS)
def test_late_data_replaces_the_hours_files(config: LakeConfig, hh: str) -> None:
    hour = parse_hour(f"2022-01-07T{hh}")
    first = random_ticks(200, seed=5, start=hour * 3_600_000_000)
    land(config, first)
    compact_hour(config, hour)
    old = live(config)
    late = random_ticks(60, seed=6, start=hour * 3_600_000_000)
    late[0] = {**first[0], "size": 10_000.0, "ask_size": None}  # same contract and µs as an old tick
    land(config, late)
    result = compact_hour(config, hour)
    assert (result.snapshot, result.replaced_files, result.stored, result.rows) == (2, 3, 60, 260)
    now = live(config)
    assert [p for p, _, _ in now] == [p for p, _, _ in old]  # exactly one live file per (tick_type, hour)
    assert {f for _, f, _ in now}.isdisjoint(f for _, f, _ in old)
    assert query(config, "SELECT count(*) FROM files WHERE removed_snapshot = 2") == [(3,)]
    for _, path, _ in now:
        tick_type = path.split("tick_type=")[1].split("/")[0]
        assert read_back(config, path) == expected_file(first + late, tick_type)  # old rows first on equal keys
    with Catalog(config.catalog_path, read_only=True) as catalog:  # the old snapshot still reads the old files
        dataset = catalog.dataset("ticks")
        assert dataset is not None
        assert sorted(f.path for f in catalog.live_files(dataset.dataset_id, snapshot=1)) == sorted(f for _, f, _ in old)
    assert all((config.root / f).exists() for _, f, _ in old)


@pytest.mark.parametrize("hh", HOUR_PARAMS)
def test_late_data_of_one_type_keeps_the_others(config: LakeConfig, make_tick: Callable[..., dict[str, Any]], hh: str) -> None:
    hour = parse_hour(f"2022-01-07T{hh}")
    land(config, random_ticks(90, seed=7, start=hour * 3_600_000_000))
    compact_hour(config, hour)
    land(config, [make_tick(f"2022-01-07T{hh}:30:00Z", tick_type="mid_point")])
    compact_hour(config, hour)
    assert sum(n for _, _, n in live(config)) == 91 and len(live(config)) == 3


# --- exactly once -------------------------------------------------------------------------------


def test_equal_content_under_two_names_is_two_deliveries(config: LakeConfig) -> None:
    """A segment is known by its name: the same lines sealed twice under two names are real ticks twice."""
    land(config, random_ticks(30, seed=8))
    (segment,) = sealed_segments(config.root)
    shutil.copy(segment.path, segment.path.with_name("redelivered-000001.jsonl"))
    result = compact_hour(config, H5)
    assert (result.segments, result.duplicate_segments, result.stored, result.rows) == (2, 0, 60, 60)
    assert sealed_segments(config.root) == []  # both retired
    assert query(config, "SELECT count(*), count(DISTINCT sha256) FROM segments") == [(2, 1)]


def test_three_batches_of_one_quote_store_three_rows(config: LakeConfig, make_tick: Callable[..., dict[str, Any]]) -> None:
    for _ in range(3):
        with LandingWriter(config) as writer:
            writer.append([make_tick()])
    result = compact_hour(config, H5)
    assert (result.segments, result.stored, result.rows) == (3, 3, 3)


def test_consumed_name_with_other_content_is_set_aside(config: LakeConfig) -> None:
    land(config, random_ticks(30, seed=8))
    (segment,) = sealed_segments(config.root)
    name = segment.path
    compact_hour(config, H5)
    other = b"".join(json.dumps(t).encode() + b"\n" for t in random_ticks(5, seed=99))
    name.write_bytes(other)  # a producer reused the name with other lines
    result = compact_hour(config, H5)
    target = config.root / "landing/_conflicts" / name.relative_to(config.root / "landing")
    assert result.snapshot is None and result.set_aside == [target.relative_to(config.root).as_posix()]
    assert target.read_bytes() == other and not name.exists()  # nothing merged, nothing dropped
    assert result.warnings == [
        f"{name}: a segment of this name was consumed already with other content; set aside to {target}"
        " (ingest it from there to add its ticks under new names)"
    ]
    assert "1 set aside" in result.summary() and sum(n for _, _, n in live(config)) == 30


def test_identical_ticks_are_all_stored(config: LakeConfig, make_tick: Callable[..., dict[str, Any]]) -> None:
    land(config, [make_tick(), make_tick(), make_tick()])
    result = compact_hour(config, H5)
    assert (result.stored, result.rows) == (3, 3)
    ((_, path, rows),) = live(config)
    assert rows == 3 and read_back(config, path) == [(1, T5 + 1, 100.25, 100.0, None)] * 3


def test_same_file_ingested_twice_is_stored_once(config: LakeConfig, tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(b"\n".join(json.dumps(t).encode() for t in random_ticks(40, seed=9)) + b"\n")
    ingest_files(config, [source])
    ingest_files(config, [source])
    compact_all(config)
    ingest_files(config, [source])
    assert compact_all(config) == []
    assert sum(n for _, _, n in live(config)) == 40


@pytest.mark.parametrize("retention", [0, 168])
def test_consumed_segment_back_in_landing_is_retired_without_double_counting(config: LakeConfig, retention: float) -> None:
    config = replace(config, segment_retention_hours=retention)
    land(config, random_ticks(30, seed=10))
    (segment,) = sealed_segments(config.root)
    data = segment.path.read_bytes()
    compact_all(config)
    segment.path.write_bytes(data)  # a crash after the commit, before the segment was retired
    (result,) = compact_all(config)
    assert (result.snapshot, result.duplicate_segments) == (None, 1)
    assert result.summary() == "2022-01-07T05: nothing new (1 already-consumed segments retired)"
    assert sealed_segments(config.root) == [] and query(config, "SELECT count(*) FROM snapshots") == [(1,)]
    assert sum(n for _, _, n in live(config)) == 30


def test_retention(config: LakeConfig) -> None:
    land(replace(config, segment_retention_hours=0), random_ticks(10, seed=11))
    compact_all(replace(config, segment_retention_hours=0))
    assert not consumed_dir(config.root).exists() or list(consumed_dir(config.root).rglob("*.jsonl")) == []
    land(config, random_ticks(10, seed=12, start=T5 + 3_600_000_000), writer="x")
    compact_all(config)
    (kept,) = consumed_dir(config.root).rglob("*.jsonl")
    assert re.fullmatch(r"ticks/date=2022-01-07/hour=06/x-\d{16}\.jsonl", kept.relative_to(consumed_dir(config.root)).as_posix())
    old = kept.stat().st_mtime - 169 * 3600
    os.utime(kept, (old, old))
    compact_all(config)  # purges what outlived the retention
    assert not kept.exists()


@pytest.mark.parametrize("entry", ["--hour", "--all", "dagster"])
def test_every_entry_point_tidies_the_landing_buffer_the_same_way(config: LakeConfig, entry: str) -> None:
    """Expired retired segments and orphaned sidecars go after `compact --hour`, `--all` and the asset alike."""
    land(config, random_ticks(10, seed=16))
    compact_all(config)
    (kept,) = consumed_dir(config.root).rglob("*.jsonl")
    orphan = landing_dir(config.root) / "date=2022-01-07" / "hour=05" / "gone-000001.arrow"
    orphan.write_bytes(b"the sidecar of a segment retired by a crash")
    for path in (kept, orphan):
        old = path.stat().st_mtime - 169 * 3600
        os.utime(path, (old, old))
    land(config, random_ticks(10, seed=17, start=T5 + 3_600_000_000), writer="x")
    if entry == "dagster":
        (result,) = compact_hours(config, [H5 + 1])  # what the `ticks` asset calls, under its lease
    else:
        args = ["--hour", "2022-01-07T06"] if entry == "--hour" else ["--all"]
        done = CliRunner().invoke(cli, ["--root", str(config.root), "compact", *args])
        assert done.exit_code == 0, done.output
    assert not kept.exists() and not orphan.exists()
    assert sum(n for _, _, n in live(config)) == 20


def test_wrong_hour_lines_are_quarantined(config: LakeConfig, make_tick: Callable[..., dict[str, Any]]) -> None:
    lines = [
        make_tick("2022-01-07T05:10:00Z"),
        make_tick("2022-01-07T06:00:00Z"),
        "[1]",
        make_tick("2022-01-07T04:59:59.999999Z"),
    ]
    data = b"".join((x if isinstance(x, str) else json.dumps(x)).encode() + b"\n" for x in lines)
    path = write_segment(config.root, H5, "external-000001.jsonl", data)  # a producer routed by its own clock
    result = compact_hour(config, H5)
    assert (result.lines, result.stored, result.quarantined) == (4, 1, 3)
    source = path.relative_to(config.root).as_posix()
    outside = "field 'timestamp' {} is outside the segment's hour 2022-01-07T05"
    assert [(r["source"], r["line"], r["reason"], r["field"], r["message"]) for r in read_quarantine(config.root)] == [
        (source, 2, "wrong_hour", "timestamp", outside.format("2022-01-07T06:00:00+00:00")),
        (source, 3, "not_an_object", None, "line is a JSON array, not an object"),
        (source, 4, "wrong_hour", "timestamp", outside.format("2022-01-07T04:59:59.999999+00:00")),
    ]
    assert query(config, "SELECT lines, rows_stored, rows_quarantined FROM segments") == [(4, 1, 3)]


# --- crash safety -------------------------------------------------------------------------------


@pytest.fixture
def other_writer_first(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Another compactor commits the same hour while this one writes its Parquet files."""
    calls: list[int] = []
    real = commit.write_data_file

    def write(path: Path, table: pa.Table, config: LakeConfig, schema: pa.Schema) -> int:
        if not calls:
            calls.append(1)
            calls.append(compact_hour(config, H5).snapshot or 0)  # its own catalog connection
        return real(path, table, config, schema)

    monkeypatch.setattr(commit, "write_data_file", write)
    yield calls


def test_commit_conflict_with_another_writer_is_retried(config: LakeConfig, other_writer_first: list[int]) -> None:
    land(config, random_ticks(120, seed=13))
    result = compact_hour(config, H5)
    assert other_writer_first == [1, 1]  # the other writer's commit is snapshot 1
    assert (result.snapshot, result.segments) == (None, 0)  # the retry found nothing new
    assert query(config, "SELECT count(*) FROM snapshots") == [(1,)]
    assert sum(n for _, _, n in live(config)) == 120 and len(live(config)) == 3
    assert parquet_on_disk(config) == {f for _, f, _ in live(config)}  # the losing writer's files were removed


def compact_while_locked(config: LakeConfig) -> None:
    """Compact H5 while another process holds the catalog's write lock: the commit fails."""
    open_catalog(config, create=True).close()
    impatient = Catalog(config.catalog_path, timeout=0.05)  # opened first: opening takes the write lock too
    blocker = sqlite3.connect(config.catalog_path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(CatalogLocked):
            compact_hour(config, H5, catalog=impatient)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
        impatient.close()


def test_failed_commit_leaves_the_catalog_unchanged(config: LakeConfig) -> None:
    land(config, random_ticks(50, seed=14))
    compact_while_locked(config)
    assert query(config, "SELECT count(*) FROM snapshots") == [(0,)] and live(config) == []
    assert len(sealed_segments(config.root)) == 1  # not retired: nothing was committed
    result = compact_hour(config, H5)
    assert (result.snapshot, result.stored) == (1, 50) and len(live(config)) == 3


def test_failed_commit_leaves_no_orphan_files(config: LakeConfig) -> None:
    land(config, random_ticks(50, seed=15))
    compact_while_locked(config)
    assert parquet_on_disk(config) == set()


def test_same_microsecond_ticks_of_separate_ingests_keep_arrival_order(config: LakeConfig, tmp_path: Path) -> None:
    for i in range(6):  # one batch after another: arrival order is 0..5
        source = tmp_path / f"batch{i}.jsonl"
        source.write_text(
            json.dumps({"timestamp": "2022-01-07T05:00:00.000001Z", "contract_id": 1, "tick_type": "last", "price": i})
        )
        ingest_files(config, [source])
    compact_all(config)
    ((_, path, _),) = live(config)
    assert pq.read_table(config.root / path).column("price").to_pylist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]


# --- real data ----------------------------------------------------------------------------------


def test_eurusd_quotes_round_trip_exactly(config: LakeConfig, tmp_path: Path) -> None:
    source_table = eurusd_ticks()
    path = tmp_path / "eurusd.jsonl"
    path.write_bytes(to_jsonl(source_table))
    report = ingest_files(config, [path])
    assert (report.quarantined, report.appended) == (0, source_table.num_rows)
    results = compact_all(config)
    assert sum(r.quarantined for r in results) == 0 and sum(r.stored for r in results) == source_table.num_rows
    files = [f for (f,) in query(config, "SELECT path FROM files WHERE removed_snapshot IS NULL ORDER BY ts_min")]
    assert len(files) == len(results) and all("/tick_type=bid_ask/" in f for f in files)
    back = pa.concat_tables([pq.read_table(config.root / f, schema=FILE_SCHEMA) for f in files])
    expected = source_table.drop_columns(["tick_type"])
    stamps = pc.cast(expected.column("timestamp"), pa.int64()).to_pylist()
    keys = list(zip(expected.column("contract_id").to_pylist(), stamps, strict=True))
    expected = expected.take(sorted(range(len(keys)), key=keys.__getitem__))  # stable: equal stamps keep file order
    assert back.select(expected.column_names).to_pylist() == expected.to_pylist()
