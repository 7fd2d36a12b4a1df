"""Tests for catalog: migrations, WAL, optimistic commits between two connections, Bloom filters, pruning."""

from __future__ import annotations

import datetime as dt
import json
import random
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace as C
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from ticklake.build.compaction import compact_all
from ticklake.catalog import (
    BloomFilter,
    Catalog,
    CatalogCorrupt,
    CatalogError,
    CatalogLocked,
    Commit,
    CommitConflict,
    ConsumedSegment,
    LiveTotals,
    NewFile,
    prune_files,
)
from ticklake.catalog.bloom import bloom_size, canonical
from ticklake.catalog.inventory import value_presence
from ticklake.config import LakeConfig
from ticklake.datasets import TICKS
from ticklake.landing.writer import LandingWriter
from ticklake.sql import load_sql, migration_names
from ticklake.storage.layout import parse_hour

P1 = "tick_type=last/date=2022-01-07/hour=15"
P2 = "tick_type=bid_ask/date=2022-01-07/hour=15"


def new_file(name: str, partition: str = P1, rows: int = 10) -> NewFile:
    values = dict(kv.split("=") for kv in partition.split("/"))
    return NewFile(
        path=f"lake/ticks/{partition}/{name}.parquet",
        partition_path=partition,
        partition_values=values,
        rows=rows,
        bytes=100,
        ts_min=0,
        ts_max=1,
    )


def segment(sha: str, path: str = "landing/ticks/a.jsonl") -> ConsumedSegment:
    return ConsumedSegment(path, 10, sha, "2022-01-07T15", 2, 2, 0)


def state(catalog: Catalog) -> tuple[Any, ...]:
    db = catalog.db
    return tuple(
        db.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall()
        for t in ("snapshots", "files", "segments", "file_stats", "file_values")
    )


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "lake" / "catalog.sqlite"


@pytest.fixture
def two(path: Path) -> Iterator[tuple[Catalog, Catalog, int]]:
    """Two connections to one catalog file, as two compactors would hold them."""
    a = Catalog(path)
    dataset = a.ensure_dataset(TICKS)
    b = Catalog(path)
    yield a, b, dataset.dataset_id
    a.close()
    b.close()


# --- schema and opening -------------------------------------------------------------------------


def test_migrations_apply_once(path: Path) -> None:
    with Catalog(path) as catalog:
        first = catalog.db.execute("SELECT version, name, applied_at FROM schema_migrations").fetchall()
        assert [(v, n) for v, n, _ in first] == [(i, m.split("/")[1]) for i, m in enumerate(migration_names(), start=1)]
        assert catalog.schema_version() == len(migration_names()) >= 2
        tables = {r[0] for r in catalog.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"datasets", "snapshots", "files", "file_stats", "file_values", "file_blooms", "segments"} <= tables
    with Catalog(path) as again:  # reopening is a no-op
        assert again.db.execute("SELECT version, name, applied_at FROM schema_migrations").fetchall() == first
    with Catalog(path, read_only=True) as reader:
        assert reader.schema_version() == len(migration_names())


def test_wal_mode(path: Path) -> None:
    with Catalog(path) as catalog:
        assert catalog.db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        catalog.ensure_dataset(TICKS)
        assert path.with_name("catalog.sqlite-wal").exists()


def test_newer_schema_is_refused(path: Path) -> None:
    Catalog(path).close()
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("INSERT INTO schema_migrations VALUES (99, '0099_future', 'x')")
    with pytest.raises(CatalogCorrupt) as info:
        Catalog(path)
    assert str(info.value) == f"catalog {path}: schema version 99 is newer than this ticklake ({len(migration_names())})"
    with pytest.raises(CatalogCorrupt) as info:
        Catalog(path, read_only=True)
    assert str(info.value) == f"catalog {path}: unsupported schema version 99"


def test_read_only_open_of_a_missing_file(path: Path) -> None:
    with pytest.raises(CatalogCorrupt) as info:
        Catalog(path, read_only=True)
    assert str(info.value) == f"catalog {path}: no such file"
    assert not path.exists() and not path.parent.exists()


def test_non_catalog_sqlite_file_read_only(tmp_path: Path) -> None:
    other = tmp_path / "other.sqlite"
    with closing(sqlite3.connect(other)) as db, db:
        db.execute("CREATE TABLE notes (x)")
    with pytest.raises(CatalogCorrupt) as info:
        Catalog(other, read_only=True)
    assert str(info.value) == f"catalog {other}: not a ticklake catalog (no such table: schema_migrations)"


def test_non_catalog_sqlite_file_read_write(tmp_path: Path) -> None:
    other = tmp_path / "other.sqlite"
    with closing(sqlite3.connect(other)) as db, db:
        db.execute("CREATE TABLE notes (x)")
    with pytest.raises(CatalogCorrupt):
        Catalog(other)


@pytest.mark.parametrize("read_only", [False, True])
def test_a_file_that_is_not_sqlite(tmp_path: Path, read_only: bool) -> None:
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database, just text " * 40)
    with pytest.raises(CatalogCorrupt) as info:
        Catalog(junk, read_only=read_only)
    assert str(info.value) == f"catalog {junk}: file is not a database"


def test_live_totals_and_consumed_segments(two: tuple[Catalog, Catalog, int]) -> None:
    a, b, ds = two
    assert a.live_totals() == LiveTotals(files=0, rows=0, bytes=0) and a.consumed_segment_count() == 0
    a.commit(Commit(ds, "compact", add_files=(new_file("a"), new_file("b", P2, rows=5)), consume_segments=(segment("h1"),)))
    (fa,) = a.live_files(ds, partition_paths=[P1])
    assert fa.partition_values == {"tick_type": "last", "date": "2022-01-07", "hour": "15"}
    replaced = Commit(ds, "compact", add_files=(new_file("c", rows=7),), remove_file_ids=(fa.file_id,))
    a.commit(replace(replaced, consume_segments=(segment("h2", "landing/ticks/b.jsonl"),)))
    assert b.live_totals() == LiveTotals(files=2, rows=12, bytes=200) and b.consumed_segment_count() == 2


def test_value_presence_needs_an_inverted_index(two: tuple[Catalog, Catalog, int]) -> None:
    a, _, _ = two
    dataset = a.dataset("ticks")
    assert dataset is not None
    with pytest.raises(CatalogError, match="column 'symbol' of dataset 'ticks' has no inverted index"):
        value_presence(a, dataset, "symbol", "EUR.USD", 0, 1)


def test_commit_through_a_read_only_catalog(path: Path) -> None:
    with Catalog(path) as catalog:
        dataset_id = catalog.ensure_dataset(TICKS).dataset_id
    with Catalog(path, read_only=True) as reader, pytest.raises(CatalogError):
        reader.commit(Commit(dataset_id, "compact", add_files=(new_file("a"),)))


def test_datasets_are_registered_once(path: Path) -> None:
    with Catalog(path) as catalog:
        first = catalog.ensure_dataset(TICKS)
        assert catalog.ensure_dataset(replace(TICKS, location="elsewhere")) == first
        assert first.spec == TICKS and catalog.dataset("bars") is None
        assert [d.spec.name for d in catalog.datasets()] == ["ticks"]


# --- commits ------------------------------------------------------------------------------------


def test_commits_make_snapshots_and_files_live(two: tuple[Catalog, Catalog, int]) -> None:
    a, b, ds = two
    assert a.current_snapshot() == 0 and a.live_files(ds) == []
    s1 = a.commit(Commit(ds, "compact", add_files=(new_file("a"),), replace_partitions=(P1,), consume_segments=(segment("h1"),)))
    (fa,) = b.live_files(ds)  # the other connection sees it at once
    s2 = b.commit(Commit(ds, "compact", add_files=(new_file("b"),), remove_file_ids=(fa.file_id,), replace_partitions=(P1,)))
    assert (s1, s2, a.current_snapshot()) == (1, 2, 2)
    assert [f.path for f in a.live_files(ds)] == ["lake/ticks/" + P1 + "/b.parquet"]
    assert [f.path for f in a.live_files(ds, snapshot=1)] == ["lake/ticks/" + P1 + "/a.parquet"]
    assert a.live_files(ds, partition_paths=[P2]) == [] and a.live_files(ds, partition_paths=[]) == []
    assert [(s["snapshot_id"], s["parent_id"], s["summary"]) for s in a.snapshots()] == [
        (1, None, {"files_added": 1, "files_removed": 0, "segments_consumed": 1}),
        (2, 1, {"files_added": 1, "files_removed": 1, "segments_consumed": 0}),
    ]
    assert a.consumed_paths(["landing/ticks/a.jsonl", "x"]) == {"landing/ticks/a.jsonl"}
    assert a.consumed(["landing/ticks/a.jsonl"])["landing/ticks/a.jsonl"].sha256 == "h1"


def test_conflict_files_to_replace_were_already_replaced(two: tuple[Catalog, Catalog, int]) -> None:
    a, b, ds = two
    a.commit(Commit(ds, "compact", add_files=(new_file("a"),)))
    (seen,) = b.live_files(ds)  # both writers read file a
    a.commit(Commit(ds, "compact", add_files=(new_file("b"),), remove_file_ids=(seen.file_id,)))
    before = state(b)
    with pytest.raises(CommitConflict) as info:
        b.commit(Commit(ds, "compact", add_files=(new_file("c"),), remove_file_ids=(seen.file_id,)))
    assert str(info.value) == "snapshot 3: 1 file(s) to replace were already replaced"
    assert state(b) == before  # rolled back whole: no snapshot 3, no file c


def test_conflict_partition_changed_since_it_was_read(two: tuple[Catalog, Catalog, int]) -> None:
    a, b, ds = two
    a.commit(Commit(ds, "compact", add_files=(new_file("a"),), replace_partitions=(P1,)))
    (seen,) = b.live_files(ds, partition_paths=[P1])
    a.commit(Commit(ds, "compact", add_files=(new_file("b"),), remove_file_ids=(seen.file_id,), replace_partitions=(P1,)))
    (now,) = a.live_files(ds)
    before = state(b)
    with pytest.raises(CommitConflict) as info:
        b.commit(Commit(ds, "compact", add_files=(new_file("c"),), remove_file_ids=(seen.file_id,), replace_partitions=(P1,)))
    assert (
        str(info.value) == f"partitions {P1} changed since they were read (live files [{now.file_id}], expected [{seen.file_id}])"
    )
    assert state(b) == before


def test_conflict_partition_holds_a_file_the_writer_did_not_read(two: tuple[Catalog, Catalog, int]) -> None:
    a, b, ds = two
    assert b.live_files(ds, partition_paths=[P1, P2]) == []  # b reads an empty hour
    a.commit(Commit(ds, "compact", add_files=(new_file("a", P2),), replace_partitions=(P1, P2)))
    (added,) = a.live_files(ds)
    with pytest.raises(CommitConflict) as info:
        b.commit(Commit(ds, "compact", add_files=(new_file("b"),), replace_partitions=(P1, P2)))
    assert str(info.value) == f"partitions {P1}, {P2} changed since they were read (live files [{added.file_id}], expected [])"
    assert [f.path for f in b.live_files(ds)] == [added.path]


def test_conflict_segment_consumed_already(two: tuple[Catalog, Catalog, int]) -> None:
    """A segment is known by its path: consuming a path twice conflicts, equal content under two paths does not."""
    a, b, ds = two
    a.commit(Commit(ds, "compact", add_files=(new_file("a"),), consume_segments=(segment("abc", "landing/ticks/w-1.jsonl"),)))
    before = state(b)
    with pytest.raises(CommitConflict) as info:
        b.commit(
            Commit(ds, "compact", add_files=(new_file("b", P2),), consume_segments=(segment("xyz", "landing/ticks/w-1.jsonl"),))
        )
    assert str(info.value) == "segment landing/ticks/w-1.jsonl: already consumed by snapshot 1"
    assert state(b) == before
    b.commit(
        Commit(ds, "compact", add_files=(new_file("b", P2),), consume_segments=(segment("abc", "landing/ticks/copy.jsonl"),))
    )
    assert len(b.consumed(["landing/ticks/w-1.jsonl", "landing/ticks/copy.jsonl"])) == 2


def test_locked_catalog(path: Path) -> None:
    with Catalog(path) as holder:
        ds = holder.ensure_dataset(TICKS).dataset_id
        waiter = Catalog(path, timeout=0.05)
        with holder.transaction():
            with pytest.raises(CatalogLocked):
                waiter.commit(Commit(ds, "compact", add_files=(new_file("a"),)))
        assert waiter.commit(Commit(ds, "compact", add_files=(new_file("a"),))) == 1
        waiter.close()


def test_readers_do_not_block_on_a_writer(path: Path) -> None:
    with Catalog(path) as writer:
        ds = writer.ensure_dataset(TICKS).dataset_id
        writer.commit(Commit(ds, "compact", add_files=(new_file("a"),)))
        with Catalog(path, read_only=True, timeout=0.05) as reader, writer.transaction() as db:
            db.execute("INSERT INTO snapshots VALUES (2, 1, 'now', 'x', '{}', NULL)")
            assert reader.current_snapshot() == 1 and len(reader.live_files(ds)) == 1  # WAL: the last commit


# --- Bloom filters ------------------------------------------------------------------------------


@pytest.mark.parametrize(("fpp", "low", "high"), [(0.01, 0.004, 0.02), (0.1, 0.06, 0.15)])
def test_bloom_filter_has_no_false_negatives_and_about_the_configured_fpp(fpp: float, low: float, high: float) -> None:
    rng = random.Random(1)
    members = {rng.randrange(10**9) for _ in range(2000)} | {f"SYM{i}" for i in range(500)}
    bloom = BloomFilter.build([*members, None], fpp)
    assert all(bloom.might_contain(v) for v in members)
    others = [v for v in (rng.randrange(10**9, 2 * 10**9) for _ in range(20_000))]
    rate = sum(bloom.might_contain(v) for v in others) / len(others)
    assert low <= rate <= high
    assert (bloom.num_bits, bloom.num_hashes) == bloom_size(len(members), fpp) and len(bloom.bits) == bloom.num_bits // 8


def test_bloom_canonical_values() -> None:
    bloom = BloomFilter.build([12087792, "EUR.USD", 5.0], 0.01)
    assert bloom.might_contain("12087792") and bloom.might_contain(5) and bloom.might_contain("5")
    assert canonical(5.5) == b"5.5" and canonical("é") == "é".encode()
    with pytest.raises(TypeError):
        canonical(True)
    assert not BloomFilter.build([], 0.01).might_contain(1)
    for bad in (0, 1, -0.5):
        with pytest.raises(ValueError):
            bloom_size(10, bad)


# --- pruning over a real compacted lake ---------------------------------------------------------

HOURS = {14: (1, 2), 15: (2, 3), 16: (4,)}  # hour -> contracts traded in it


@pytest.fixture
def lake(config: LakeConfig) -> LakeConfig:
    ticks = []
    for hh, contracts in HOURS.items():
        for i in range(60):
            cid = contracts[i % len(contracts)]
            kind = ("last", "bid_ask", "mid_point")[i // len(contracts) % 3]
            t: dict[str, Any] = {"timestamp": f"2022-01-07T{hh}:{i:02d}:00.000001Z", "contract_id": cid, "tick_type": kind}
            t.update({"bid_price": 10.0 * cid + i / 100} if kind == "bid_ask" else {"price": 10.0 * cid + i / 100, "size": i})
            t.update(symbol=f"S{cid}", exchange="NYSE" if cid % 2 else "ARCA")
            ticks.append(t)
    with LandingWriter(config, "w") as writer:
        writer.append(ticks)
    compact_all(config)
    return config


def plan(config: LakeConfig, *conditions: C, snapshot: int | None = None) -> tuple[list[str], list[tuple[str, int]]]:
    with Catalog(config.catalog_path, read_only=True) as catalog:
        dataset = catalog.dataset("ticks")
        assert dataset is not None
        p = prune_files(catalog, dataset, conditions, snapshot=snapshot)
    return [f.path for f in p.files], [(s.name, s.files) for s in p.steps]


def matching(config: LakeConfig, column: str, values: set[Any]) -> set[str]:
    """Ground truth: the live files holding a row with `column` in `values`, found by reading them."""
    found = set()
    for path in plan(config)[0]:
        if set(pq.read_table(config.root / path).column(column).to_pylist()) & values:
            found.add(path)
    return found


def hour_of(path: str) -> int:
    return int(path.split("hour=")[1][:2])


def test_no_conditions_keep_every_live_file(lake: LakeConfig) -> None:
    files, steps = plan(lake)
    assert len(files) == 9 and steps == [("snapshot", 9), ("partitions", 9), ("min/max", 9), ("inverted index", 9), ("bloom", 9)]


@pytest.mark.parametrize(
    ("condition", "hours", "types"),
    [
        (C(column="tick_type", op="=", values=("last",)), {14, 15, 16}, {"last"}),
        (C(column="tick_type", op="in", values=("last", "mid_point")), {14, 15, 16}, {"last", "mid_point"}),
        (C(column="hour", op="=", values=(15,)), {15}, None),
        (C(column="hour", op=">=", values=(15,)), {15, 16}, None),
        (C(column="date", op="=", values=(dt.date(2022, 1, 7),)), {14, 15, 16}, None),
        (C(column="date", op="=", values=("2022-01-08",)), set(), None),
        (C(column="timestamp", op=">=", values=(parse_hour("2022-01-07T15") * 3_600_000_000,)), {15, 16}, None),
        (C(column="timestamp", op="<", values=(parse_hour("2022-01-07T15") * 3_600_000_000,)), {14}, None),
        (C(column="timestamp", op="=", values=(parse_hour("2022-01-07T16") * 3_600_000_000 + 1,)), {16}, {"last"}),
    ],
)
def test_partition_and_time_pruning(lake: LakeConfig, condition: C, hours: set[int], types: set[str] | None) -> None:
    files, steps = plan(lake, condition)
    assert {hour_of(f) for f in files} == hours
    if types is not None:
        assert {f.split("tick_type=")[1].split("/")[0] for f in files} == types
    assert steps[1] == ("partitions", len(files))


@pytest.mark.parametrize(("values", "hours"), [((3,), {15}), ((1, 4), {14, 16}), ((99,), set()), ((2,), {14, 15})])
def test_inverted_index_prunes_contracts_exactly(lake: LakeConfig, values: tuple[int, ...], hours: set[int]) -> None:
    op = "=" if len(values) == 1 else "in"
    files, steps = plan(lake, C(column="contract_id", op=op, values=values))
    assert set(files) == matching(lake, "contract_id", set(values))
    assert {hour_of(f) for f in files} == hours
    assert dict(steps)["inverted index"] == len(files)


def test_bloom_prunes_symbols_without_false_negatives(lake: LakeConfig) -> None:
    for symbol in ("S1", "S3", "S4", "S9"):
        files, steps = plan(lake, C(column="symbol", op="=", values=(symbol,)))
        truth = matching(lake, "symbol", {symbol})
        assert truth <= set(files)  # never a false negative
        assert set(files) == truth  # and, for these values, no false positive either
        assert dict(steps)["bloom"] == len(truth)


def test_min_max_pruning(lake: LakeConfig) -> None:
    files, steps = plan(lake, C(column="price", op=">", values=(35.0,)))
    assert {hour_of(f) for f in files} == {16} and dict(steps)["min/max"] == len(files)
    assert plan(lake, C(column="price", op=">", values=(1e9,)))[0] == []
    assert len(plan(lake, C(column="size", op=">=", values=(0,)))[0]) == 6  # bid_ask files have no size at all


def test_conditions_combine_and_unusable_ones_are_ignored(lake: LakeConfig) -> None:
    files, _ = plan(
        lake,
        C(column="contract_id", op="=", values=(2,)),
        C(column="tick_type", op="=", values=("bid_ask",)),
        C(column="hour", op="=", values=(15,)),
    )
    assert len(files) == 1 and "tick_type=bid_ask" in files[0] and hour_of(files[0]) == 15
    assert len(plan(lake, C(column="nope", op="=", values=(1,)), C(column="contract_id", op="like", values=("1%",)))[0]) == 9
    assert (
        plan(lake, C(column="contract_id", op="=", values=("2",)))[0]
        == plan(lake, C(column="contract_id", op="=", values=(2,)))[0]
    )


def test_pruning_reads_a_given_snapshot(lake: LakeConfig) -> None:
    old_files, _ = plan(lake)
    with LandingWriter(lake, "late") as writer:
        writer.append([{"timestamp": "2022-01-07T15:30:00.5Z", "contract_id": 7, "tick_type": "last", "price": 1.0}])
    compact_all(lake)
    new_files, _ = plan(lake, C(column="contract_id", op="=", values=(7,)))
    assert len(new_files) == 1 and new_files[0] not in old_files
    assert plan(lake, C(column="contract_id", op="=", values=(7,)), snapshot=3)[0] == []
    assert plan(lake, snapshot=3)[0] == old_files


def test_catalog_bloom_filters_hold_every_value_of_their_file(lake: LakeConfig) -> None:
    with closing(sqlite3.connect(lake.catalog_path)) as db, db:
        rows = db.execute(
            "SELECT f.path, b.column_name, b.num_bits, b.num_hashes, b.bits FROM file_blooms b JOIN files f USING (file_id)"
        ).fetchall()
    assert len(rows) == 18
    for path, column, bits, hashes, data in rows:
        bloom = BloomFilter(bits, hashes, data)
        values = pc.unique(pq.read_table(lake.root / path).column(column)).to_pylist()
        assert values and all(bloom.might_contain(v) for v in values)
    assert {r[1] for r in rows} == {"contract_id", "symbol"}


def test_compacted_bloom_filter_has_the_configured_false_positive_rate(config: LakeConfig) -> None:
    config = replace(config, bloom_fpp=0.05)
    contracts = random.Random(2).sample(range(1, 10**9), 2000)
    with LandingWriter(config, "w") as writer:
        writer.append(
            {"timestamp": f"2022-01-07T15:00:{i % 60:02d}Z", "contract_id": c, "tick_type": "mid_point", "price": 1.0}
            for i, c in enumerate(contracts)
        )
    compact_all(config)
    with closing(sqlite3.connect(config.catalog_path)) as db, db:
        (bits, hashes, data), *more = db.execute(
            "SELECT num_bits, num_hashes, bits FROM file_blooms WHERE column_name = 'contract_id'"
        )
    bloom = BloomFilter(bits, hashes, data)
    assert more == [] and all(bloom.might_contain(c) for c in contracts)
    strangers = set(range(10**9, 10**9 + 20_000))
    assert 0.03 <= sum(bloom.might_contain(c) for c in strangers) / len(strangers) <= 0.08


def test_version_1_catalog_is_upgraded_with_its_file_span(path: Path) -> None:
    """A catalog written before migration 0002 gains max_file_span computed from its files."""
    path.parent.mkdir(parents=True)
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)")
        db.executescript(load_sql("catalog/0001_init"))
        db.execute("INSERT INTO schema_migrations VALUES (1, '0001_init', 'x')")
        db.execute(
            "INSERT INTO datasets (name, location, partition_keys, time_column, columns, indexed_columns, bloom_columns,"
            " created_at) VALUES ('ticks', 'lake/ticks', '[]', 'timestamp', '{}', '[]', '[]', 'x')"
        )
        db.execute("INSERT INTO snapshots VALUES (1, NULL, 'x', 'compact', '{}')")
        db.execute(
            "INSERT INTO files (dataset_id, path, partition_path, partition_values, rows, bytes, ts_min, ts_max,"
            " added_snapshot) VALUES (1, 'a.parquet', '', '{}', 1, 1, 100, 3600100, 1)"
        )
    with Catalog(path) as catalog:
        assert catalog.schema_version() == len(migration_names())
        assert catalog.db.execute("SELECT max_file_span FROM datasets").fetchone() == (3_600_000,)
        catalog.commit(Commit(dataset_id=1, operation="compact", add_files=(new_file("b"),)))
        assert catalog.db.execute("SELECT max_file_span FROM datasets").fetchone() == (3_600_000,)  # b spans 1 µs


def test_live_file_count_is_recorded_for_every_snapshot(path: Path) -> None:
    with Catalog(path) as catalog:
        dataset = catalog.ensure_dataset(TICKS)
        catalog.commit(Commit(dataset.dataset_id, "compact", add_files=(new_file("a"), new_file("b", P2))))
        (a,) = [f.file_id for f in catalog.live_files(dataset.dataset_id) if f.path.endswith("a.parquet")]
        catalog.commit(Commit(dataset.dataset_id, "compact", add_files=(new_file("c"),), remove_file_ids=(a,)))
        catalog.commit(Commit(dataset.dataset_id, "compact", add_files=(new_file("d", P2),)))
        for snapshot in range(1, catalog.current_snapshot() + 1):
            counted = len(catalog.live_files(dataset.dataset_id, snapshot=snapshot))
            assert catalog.live_file_count(dataset.dataset_id, snapshot) == counted
        assert [catalog.live_file_count(dataset.dataset_id, s) for s in (1, 2, 3)] == [2, 2, 3]


def test_the_readmes_sqlite_utils_commands_browse_a_catalog(two: tuple[Catalog, Catalog, int], path: Path) -> None:
    a, _, ds = two
    a.commit(Commit(ds, "compact", add_files=(new_file("a"), new_file("b", P2, rows=5))))
    tool = Path(sys.executable).parent / "sqlite-utils"

    def browse(*args: str) -> str:
        done = subprocess.run([str(tool), *args], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    tables = json.loads(browse("tables", str(path), "--counts"))
    assert {"table": "files", "count": 2} in tables and {"table": "snapshots", "count": 1} in tables
    assert len(json.loads(browse("rows", str(path), "snapshots", "--limit", "5"))) == 1
    live = json.loads(browse("query", str(path), "SELECT partition_path, rows FROM files WHERE removed_snapshot IS NULL"))
    assert sorted(r["rows"] for r in live) == [5, 10]
