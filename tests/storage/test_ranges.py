"""Reading archived objects by the byte ranges of the row groups a query can need: the row groups are
picked as the catalog prunes files, only their spans are fetched (one ranged GET per run, counted by
moto's own request log) into a slice DuckDB reads, damaged bytes are never cached, and every answer
equals the answer over whole objects."""

from __future__ import annotations

import contextlib
import sqlite3
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import ticklake
import ticklake.storage.ranges as ranges
from tests.build.test_archive import WEEK, lake_config, local_data_files, make_tick
from tests.objectstore import MotoServer
from ticklake.access import open_catalog
from ticklake.build.archive import archive_lake
from ticklake.build.compaction import compact_all
from ticklake.config import LakeConfig
from ticklake.errors import StorageError
from ticklake.landing.writer import LandingWriter
from ticklake.storage.cache import CachedObject, entry_name
from ticklake.storage.objects import S3Access
from ticklake.storage.parquet import file_footer, sort_ticks, write_data_file
from ticklake.storage.ranges import MAGIC, PARTIAL_SHARE, RangePlan, plan_ranges, slice_footer, verify_slice

CONTRACTS = 40
PER_CONTRACT = 50


@dataclass(frozen=True)
class Cond:
    column: str
    op: str
    values: tuple[Any, ...]


@pytest.fixture(autouse=True)
def small_objects_by_ranges(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test objects are kilobytes; below `SMALL` they would be read whole."""
    monkeypatch.setattr(ranges, "SMALL", 0)


@pytest.fixture(scope="module")
def archived(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes, pa.Table]:
    """An object as the archive writes it: 2,000 ticks sorted by contract, 100-row groups."""
    config = LakeConfig(root=tmp_path_factory.mktemp("ranges"), archive_row_group_rows=100)
    n = CONTRACTS * PER_CONTRACT
    table = sort_ticks(
        pa.table(
            {
                "timestamp": pa.array([1_641_500_000_000_000 + i for i in range(n)], pa.timestamp("us", "UTC")),
                "contract_id": pa.array([(i * 7) % CONTRACTS + 1 for i in range(n)], pa.int64()),
                "price": pa.array([100.0 + (i % 97) / 4 for i in range(n)]),
                "exchange": pa.array(["ISLAND", "ARCA"] * (n // 2)),
            }
        )
    )
    path = config.root / "day.parquet"
    write_data_file(path, table, config, table.schema, archive=True)
    return path, path.read_bytes(), table


def slice_of(data: bytes, plan: RangePlan, path: Path, pieces: list[bytes] | None = None) -> Path:
    """The slice the read cache makes of `plan`'s spans of the object `data`."""
    spans = pieces if pieces is not None else [data[start : start + length] for start, length in plan.spans]
    path.write_bytes(MAGIC + b"".join(spans) + plan.tail)
    return path


def test_one_contract_is_a_slice_of_the_row_groups_that_may_hold_it(
    archived: tuple[Path, bytes, pa.Table], tmp_path: Path
) -> None:
    path, data, table = archived
    footer = file_footer(path)
    plan = plan_ranges(footer, len(data), [Cond("contract_id", "=", (17,))])
    assert plan is not None and len(plan.row_groups) in (1, 2) and len(plan.spans) == 1
    assert plan.bytes < len(data) / 5
    piece = slice_of(data, plan, tmp_path / "slice.parquet")
    assert piece.stat().st_size == plan.slice_bytes
    verify_slice(piece, plan)
    # the slice is the row groups, whole: every one of their rows, in the object's order
    groups = pq.ParquetFile(path).read_row_groups(list(plan.row_groups))
    assert pq.read_table(piece).equals(groups) and groups.num_rows == 100 * len(plan.row_groups)
    sql = "SELECT * FROM read_parquet(?) WHERE contract_id = 17 ORDER BY ALL"
    with contextlib.closing(duckdb.connect()) as con:
        assert con.execute(sql, [str(piece)]).fetchall() == con.execute(sql, [str(path)]).fetchall()
        assert con.execute("SELECT count(*) FROM read_parquet(?) WHERE contract_id = 17", [str(piece)]).fetchall() == [
            (PER_CONTRACT,)
        ]


def test_a_span_merged_across_a_gap_holds_only_the_row_groups_picked(
    archived: tuple[Path, bytes, pa.Table], tmp_path: Path
) -> None:
    path, data, table = archived
    footer = file_footer(path)
    plan = plan_ranges(footer, len(data), [Cond("contract_id", "in", (2, 6))], gap=len(data))
    assert plan is not None and len(plan.spans) == 1
    everything = pq.ParquetFile(path).metadata.num_row_groups
    between = set(range(min(plan.row_groups), max(plan.row_groups) + 1)) - set(plan.row_groups)
    assert between and len(plan.row_groups) < everything  # the span holds row groups the footer leaves out
    piece = slice_of(data, plan, tmp_path / "slice.parquet")
    assert pq.read_table(piece).equals(pq.ParquetFile(path).read_row_groups(list(plan.row_groups)))
    with contextlib.closing(duckdb.connect()) as con:
        got = con.execute(
            "SELECT contract_id, count(*) FROM read_parquet(?) WHERE contract_id IN (2, 6) GROUP BY ALL ORDER BY 1", [str(piece)]
        )
        assert got.fetchall() == [(2, PER_CONTRACT), (6, PER_CONTRACT)]


def test_distant_contracts_are_separate_spans_and_what_nothing_matches_fetches_nothing(
    archived: tuple[Path, bytes, pa.Table],
) -> None:
    path, data, _ = archived
    footer = file_footer(path)
    plan = plan_ranges(footer, len(data), [Cond("contract_id", "in", (2, 39))], gap=0)
    assert plan is not None and len(plan.spans) == 2
    near = plan_ranges(footer, len(data), [Cond("contract_id", "in", (2, 39))])  # the bytes between cost less than a GET
    assert near is None or len(near.spans) == 1
    none = plan_ranges(footer, len(data), [Cond("contract_id", ">", (1000,))])
    assert none is not None and none.row_groups == () and none.spans == ()


def test_an_object_is_read_whole_when_little_of_it_is_ruled_out(archived: tuple[Path, bytes, pa.Table]) -> None:
    path, data, _ = archived
    footer = file_footer(path)
    assert plan_ranges(footer, len(data), []) is None  # nothing to judge row groups by
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ranges, "SMALL", len(data) + 1)  # a small object: one GET of it all
        assert plan_ranges(footer, len(data), [Cond("contract_id", "=", (17,))]) is None
    assert plan_ranges(footer, len(data), [Cond("contract_id", ">=", (2,))]) is None  # most of it: one GET of all
    assert plan_ranges(footer, len(data), [Cond("contract_id", "=", (17,))], skip={"contract_id"}) is None
    assert plan_ranges(footer, len(data), [Cond("no_such_column", "=", (1,))]) is None
    # floats are not judged (their min/max leave NaN out, which DuckDB sorts above every number)
    assert plan_ranges(footer, len(data), [Cond("price", ">", (1000.0,))]) is None
    half = plan_ranges(footer, len(data), [Cond("contract_id", "<=", (10,))])
    assert half is not None and half.bytes <= PARTIAL_SHARE * len(data)


def test_damaged_bytes_fail_the_check_and_a_footer_outside_the_spans_is_refused(
    archived: tuple[Path, bytes, pa.Table], tmp_path: Path
) -> None:
    path, data, _ = archived
    footer = file_footer(path)
    plan = plan_ranges(footer, len(data), [Cond("contract_id", "=", (17,))])
    assert plan is not None
    [(start, length)] = plan.spans
    flipped = bytearray(data[start : start + length])
    flipped[length // 2] ^= 0xFF
    with pytest.raises(StorageError, match="CRC-32 mismatch|header cannot be read|run past the column chunk"):
        verify_slice(slice_of(data, plan, tmp_path / "damaged.parquet", [bytes(flipped)]), plan)
    with pytest.raises(StorageError, match="outside the spans fetched"):
        slice_footer(footer, plan.row_groups, [(start + 64, length - 64)])
    with pytest.raises(StorageError, match="footer in the catalog cannot be parsed"):
        plan_ranges(b"\xff" * 40 + footer[-8:], len(data), [Cond("contract_id", "=", (17,))])


@pytest.fixture
def cold_lake(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[LakeConfig, list[str]]:
    """Five days of 40 contracts archived to moto in 200-row groups; the objects' URIs."""
    for k, v in moto_server.env().items():
        monkeypatch.setenv(k, v)
    for k in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(k, raising=False)
    config = replace(lake_config(tmp_path), archive_row_group_rows=200)
    ticks = [make_tick(d, 12, s, "last", c, s, 1) for d in range(5) for c in range(1, CONTRACTS + 1) for s in range(30)]
    with LandingWriter(config) as writer:
        writer.append(ticks)
    compact_all(config)
    result = archive_lake(config, WEEK, to=f"s3://ticklake/r-{uuid.uuid4().hex[:10]}")
    assert len(result.days) == 5 and local_data_files(config) == []
    return config, [d.uri for d in result.days]


QUERY = "SELECT contract_id, count(*), sum(price), min(timestamp) FROM ticks WHERE contract_id = {c} GROUP BY ALL"


def test_a_contracts_ticks_are_one_ranged_get_per_object(
    cold_lake: tuple[LakeConfig, list[str]], moto_server: MotoServer
) -> None:
    config, uris = cold_lake
    whole = replace(config, cache_dir=config.cache_dir + "-whole")
    moto_server.requests()
    with ticklake.connect(config=config) as lake:
        answer = lake.sql(QUERY.format(c=23)).fetchall()
        stats = lake._cold.cache.stats  # type: ignore[union-attr]
        assert (stats.requests, stats.misses) == (len(uris), len(uris))
        fetched = stats.bytes_fetched
    requests = moto_server.requests()
    assert sorted(requests) == sorted(("GET", "/" + u.removeprefix("s3://")) for u in uris)  # no LIST, no HEAD, no footer
    with open_catalog(config) as catalog:
        sizes = sum(int(r[0]) for r in catalog.db.execute("SELECT bytes FROM files WHERE path LIKE 's3://%'"))
    assert fetched < sizes / 5  # the spans of one contract's row groups, not the objects
    with ticklake.connect(config=config) as lake:
        assert lake.sql(QUERY.format(c=23)).fetchall() == answer
    assert moto_server.requests() == []  # the cached spans serve a repeat in a new reader
    # the same answers over whole objects: a query the row groups cannot narrow reads them whole
    with ticklake.connect(config=whole) as lake:
        everything = lake.sql("SELECT contract_id, count(*), sum(price), min(timestamp) FROM ticks GROUP BY ALL").fetchall()
    assert [row for row in everything if row[0] == 23] == answer == [(23, 5 * 30, answer[0][2], answer[0][3])]
    assert len(moto_server.requests()) == len(uris)


def test_every_contract_reads_the_same_by_ranges_and_whole(cold_lake: tuple[LakeConfig, list[str]]) -> None:
    config, _ = cold_lake
    sql = "SELECT * FROM ticks WHERE contract_id = {c} ORDER BY timestamp"
    with ticklake.connect(config=replace(config, cache_dir=config.cache_dir + "-whole")) as lake:
        whole = {c: lake.sql(sql.format(c=c)).fetchall() for c in (1, 2, 20, 40)}
    with ticklake.connect(config=config) as lake:
        for c, rows in whole.items():
            assert lake.sql(sql.format(c=c)).fetchall() == rows and len(rows) == 5 * 30
        assert lake.sql(sql.format(c=41)).fetchall() == []
        # a view over slices holds only their rows meeting its integer conditions, in a temp table of its own
        tables = lake.con.execute("SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall()
        assert len([t for (t,) in tables if t.endswith("_rows")]) == 4
        assert lake.sql("SELECT count(*) FROM ticks WHERE contract_id IN (3, 38) AND price > 0").fetchall() == [(2 * 5 * 30,)]


def test_a_catalog_without_footers_reads_objects_whole(cold_lake: tuple[LakeConfig, list[str]], moto_server: MotoServer) -> None:
    config, uris = cold_lake
    with contextlib.closing(sqlite3.connect(config.root / "catalog.sqlite")) as db, db:
        db.execute("DELETE FROM file_footers")  # as a catalog from before footers were kept
    moto_server.requests()
    with ticklake.connect(config=config) as lake:
        assert lake.sql(QUERY.format(c=5)).fetchall()[0][1] == 5 * 30
    assert sorted(moto_server.requests()) == sorted(("GET", "/" + u.removeprefix("s3://")) for u in uris)


def test_a_damaged_range_in_the_bucket_is_an_error_naming_the_object_and_is_not_cached(
    cold_lake: tuple[LakeConfig, list[str]],
) -> None:
    config, uris = cold_lake
    access = S3Access.from_environment()
    with open_catalog(config) as catalog:
        [(file_id, size)] = catalog.db.execute("SELECT file_id, bytes FROM files WHERE path = ?", [uris[2]]).fetchall()
        footer = catalog.footers([file_id])[file_id]
    plan = plan_ranges(footer, size, [Cond("contract_id", "=", (23,))])
    assert plan is not None
    data = bytearray(access.filesystem().cat_file(uris[2].removeprefix("s3://")))
    start, length = plan.spans[0]
    for at in range(start + length // 3, start + length // 3 + 64):  # a run of flipped bits inside the row groups
        data[at] ^= 0x5A
    access.filesystem().pipe_file(uris[2].removeprefix("s3://"), bytes(data))  # same name, same size: damaged in place
    with ticklake.connect(config=config) as lake, pytest.raises(StorageError, match=uris[2].rsplit("/", 1)[1] + ".*damaged"):
        lake.sql(QUERY.format(c=23)).fetchall()
    entry = Path(config.cache_dir) / entry_name(CachedObject(uris[2], plan.slice_bytes, None, plan).key)
    assert not entry.exists() and not list(entry.parent.glob(".*"))  # no copy, no temporary file left
    with ticklake.connect(config=config) as lake, pytest.raises(StorageError, match="damaged"):
        lake.sql(QUERY.format(c=23)).fetchall()  # fetched and refused again, never served
    assert not entry.exists()


def test_no_credential_shows_through_sql_and_a_confined_reader_reads_the_cold_tier(
    cold_lake: tuple[LakeConfig, list[str]],
) -> None:
    config, _ = cold_lake
    # A server's connection: only the lake and its cache are readable, and the cold bucket.
    with ticklake.LakeConnection(config, readable=[config.root, config.cache_folder]) as lake:
        assert lake.sql(QUERY.format(c=7)).fetchall()[0][1] == 150
        shown = lake.sql(
            "SELECT current_setting('s3_secret_access_key'), current_setting('s3_access_key_id'),"
            " (SELECT string_agg(secret_string, ' ') FROM duckdb_secrets())"
        ).fetchall()[0]
    assert shown[0] == shown[1] == ""  # httpfs had copied AWS_* here
    assert "secret=redacted" in shown[2]  # the S3 secret redacts itself
