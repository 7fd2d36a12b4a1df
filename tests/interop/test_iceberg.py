"""The lake published as Iceberg tables reads the same in every engine: DuckDB's iceberg_scan,
pyiceberg's own scan and Daft return exactly what `ticklake sql` returns, before and after late data
and an archive to S3, through pyiceberg's SQL catalog and through a real REST catalog (SeaweedFS's);
publishing twice changes nothing, and a crash between the two commits is caught up."""

from __future__ import annotations

import calendar
import os
import subprocess
import sys
import warnings
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import jsonl, tick
from tests.objectstore import S3Server
from ticklake.build.archive import archive_lake
from ticklake.build.compaction import compact_all
from ticklake.build.rollups import build_bars_1m
from ticklake.config import LakeConfig
from ticklake.datasets import DATASETS
from ticklake.errors import ConfigError, NotFoundError, StorageError
from ticklake.interop.iceberg import SNAPSHOT_KEY, open_iceberg, publish
from ticklake.landing.ingest import ingest_files
from ticklake.maintenance.vacuum import vacuum_lake
from ticklake.query.connection import connect
from ticklake.query.duck import connect_duckdb, load_extension
from ticklake.storage.layout import parse_hour
from ticklake.storage.objects import S3Access

TICKLAKE = str(Path(sys.executable).parent / "ticklake")
# Where a kill between the ticklake commit and the Iceberg one is tested (the fault matrix checks each point has a test).
ICEBERG_POINTS = ("iceberg.before_commit",)
AFTER = calendar.timegm((2022, 1, 10, 0, 0, 0)) * 1.0  # "now" for the archive: every day is old
ORDERED = {"ticks": "ORDER BY timestamp, contract_id, tick_type, price", "bars_1m": "ORDER BY minute, contract_id"}
AGGREGATES = [
    "SELECT tick_type, date, hour, count(*) AS n, sum(price) AS p, sum(size) AS s FROM {ticks} GROUP BY ALL ORDER BY ALL",
    "SELECT count(*) FROM {ticks} WHERE contract_id = 11"
    " AND timestamp >= TIMESTAMPTZ '2022-01-06' AND timestamp < TIMESTAMPTZ '2022-01-07'",
    "SELECT contract_id, max(timestamp), list_sort(list(DISTINCT exchange)) FROM {ticks}"
    " WHERE tick_type = 'bid_ask' GROUP BY ALL ORDER BY ALL",
]


def _ticks(days: tuple[int, ...], price: float = 0.0) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for d in days:
        for h in (5, 6):
            for m in range(6):
                ts = f"2022-01-0{d}T{h:02d}:{m:02d}:00Z"
                out.append(
                    tick(ts, 10 + m % 3, "last", price=price + d * 100 + m, size=m + 1, exchange="ARCA", conditions=["@", "T"])
                )
                out.append(
                    tick(ts.replace(":00Z", ":30Z"), 10 + m % 2, "bid_ask", bid_price=1.5, ask_price=2.5, exchange="ISLAND")
                )
    return out


def _land(config: LakeConfig, records: list[Any], name: str) -> None:
    source = config.root.parent / f"{name}.jsonl"
    source.write_bytes(jsonl(records))
    ingest_files(config, [source])


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[Any, ...]]:
    return con.sql(sql).fetchall()


def _expected(config: LakeConfig) -> dict[str, list[list[tuple[Any, ...]]]]:
    with connect(config.root) as con:
        tables = {name: con.sql(f"SELECT * FROM {name} {order}").fetchall() for name, order in ORDERED.items()}
        return {
            "tables": [tables["ticks"], tables["bars_1m"]],
            "aggregates": [con.sql(q.format(ticks="ticks")).fetchall() for q in AGGREGATES],
        }


def _duck() -> duckdb.DuckDBPyConnection:
    con = connect_duckdb()
    for name in ("httpfs", "avro", "iceberg"):
        load_extension(con, name)
    S3Access.from_environment().duckdb_secret(con)
    return con


def _answers(con: duckdb.DuckDBPyConnection, sources: dict[str, str]) -> dict[str, list[list[tuple[Any, ...]]]]:
    """The same queries over each table, given as a DuckDB table expression."""
    columns = {name: ", ".join(DATASETS[name].columns) for name in ORDERED}  # in ticklake's order
    tables = [_rows(con, f"SELECT {columns[name]} FROM {sources[name]} {order}") for name, order in ORDERED.items()]
    return {"tables": tables, "aggregates": [_rows(con, q.format(ticks=sources["ticks"])) for q in AGGREGATES]}


def _engines(config: LakeConfig, uri: str) -> dict[str, dict[str, list[list[tuple[Any, ...]]]]]:
    """What DuckDB's iceberg_scan, pyiceberg's scan and Daft read from the published tables."""
    import daft

    iceberg = open_iceberg(config, uri)
    tables = {name: iceberg.load_table(f"ticklake.{name}") for name in ORDERED}
    con = _duck()
    out = {"duckdb": _answers(con, {n: f"iceberg_scan('{t.metadata_location}')" for n, t in tables.items()})}
    for name, t in tables.items():
        con.register(f"py_{name}", t.scan().to_arrow())
    out["pyiceberg"] = _answers(con, {n: f"py_{n}" for n in tables})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Daft warns that a scan without a partition filter reads every file
        for name, t in tables.items():
            con.register(f"daft_{name}", daft.read_iceberg(t).to_arrow())
    out["daft"] = _answers(con, {n: f"daft_{n}" for n in tables})
    return out


def _assert_same(config: LakeConfig, uri: str) -> None:
    expected = _expected(config)
    assert expected["tables"][0] and expected["tables"][1]
    for engine, answers in _engines(config, uri).items():
        assert answers == expected, engine


@pytest.fixture
def lake(tmp_path: Path) -> LakeConfig:
    """Three days of two tick types, their bars, and an hour whose every line was bad (the Iceberg
    bars_1m holds rolled-up hours: ``ticklake sql`` computes the others on the fly)."""
    config = LakeConfig(root=tmp_path / "lake", writer_id="t", cache_dir=str(tmp_path / "cache"))
    config.root.mkdir()
    _land(config, [*_ticks((5, 6, 7)), b'{"timestamp": "2022-01-07T09:00:00Z", "contract_id": "x"}'], "first")
    compact_all(config)
    for day in (5, 6, 7):
        for hour in (5, 6):
            build_bars_1m(config, parse_hour(f"2022-01-0{day}T0{hour}"))
    return config


def _current(config: LakeConfig, uri: str, name: str = "ticks") -> tuple[str, int, dict[str, str]]:
    table = open_iceberg(config, uri).load_table(f"ticklake.{name}")
    snapshot = table.current_snapshot()
    assert snapshot is not None and snapshot.summary is not None
    return table.metadata_location, len(table.snapshots()), dict(snapshot.summary.additional_properties)


def test_sql_catalog_reads_like_ticklake_before_and_after_late_data_and_an_archive(
    lake: LakeConfig, s3_env: S3Server, s3_prefix: str, tmp_path: Path
) -> None:
    uri = f"sqlite:///{tmp_path / 'iceberg.db'}"
    first = publish(lake, uri)
    ticks, bars = first.tables
    assert ticks.changed and ticks.added == ticks.files == 12 and ticks.rows == 72 and bars.files == 6
    _assert_same(lake, uri)

    again = publish(lake, uri)  # nothing to do: no commit, the same metadata
    assert not again.changed
    assert [t.metadata_location for t in again.tables] == [t.metadata_location for t in first.tables]

    _land(lake, _ticks((6,), price=0.25)[:12], "late")  # late trades and quotes for 2022-01-06 05:00
    compact_all(lake)
    build_bars_1m(lake, parse_hour("2022-01-06T05"))
    late = publish(lake, uri)
    assert late.tables[0].added == 2 and late.tables[0].removed == 2  # the hour's two files replaced
    location, count, summary = _current(lake, uri)
    assert summary[SNAPSHOT_KEY] == str(late.tables[0].snapshot)
    _assert_same(lake, uri)

    archived = archive_lake(lake, 0, to=s3_prefix, now=AFTER)
    assert len(archived.days) == 3 * 2  # three days of two tick types (bars stay warm)
    moved = publish(lake, uri)
    assert moved.tables[0].files == 6 and moved.tables[0].removed == 12 and moved.tables[1].files == 6
    paths = {task.file.file_path for task in open_iceberg(lake, uri).load_table("ticklake.ticks").scan().plan_files()}
    assert all(p.startswith(s3_prefix) for p in paths)
    specs = open_iceberg(lake, uri).load_table("ticklake.ticks").specs()
    assert len(specs) == 2  # hourly (default) and daily, however many archives switch between them
    _assert_same(lake, uri)


def test_warm_files_carry_field_ids_and_no_name_mapping_is_needed(lake: LakeConfig) -> None:
    warm = next((lake.root / "lake/ticks").rglob("*.parquet"))
    schema = pq.read_schema(warm)
    ids = {f.name: int((f.metadata or {})[b"PARQUET:field_id"]) for f in schema}
    assert ids["timestamp"] == 1 and ids["contract_id"] == 2 and ids["price"] == 4 and "tick_type" not in ids
    assert ids["extra"] == 12 and ids["conditions"] == 15  # list columns are numbered after the plain ones
    conditions = schema.field("conditions").type
    assert isinstance(conditions, pa.ListType) and (conditions.value_field.metadata or {}).get(b"PARQUET:field_id")


def test_a_crash_between_the_ticklake_commit_and_the_iceberg_commit_is_caught_up(lake: LakeConfig, tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'iceberg.db'}"
    publish(lake, uri)
    _, before, _ = _current(lake, uri)
    _land(lake, _ticks((8,)), "next")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKLAKE_")}
    env.update(TICKLAKE_ICEBERG_URI=uri, TICKLAKE_FAULT=ICEBERG_POINTS[0], TICKLAKE_CACHE_DIR=lake.cache_dir)
    crashed = subprocess.run([TICKLAKE, "--root", str(lake.root), "compact", "--all"], env=env, capture_output=True, text=True)
    assert crashed.returncode == -9, crashed.stderr  # killed after the ticklake commit, inside the Iceberg one
    with connect(lake.root) as con:
        assert con.sql("SELECT count(*) FROM ticks WHERE date = '2022-01-08'").fetchone() == (24,)
    assert _current(lake, uri)[1] == before  # the Iceberg table did not move

    env.pop("TICKLAKE_FAULT")
    caught = subprocess.run([TICKLAKE, "--root", str(lake.root), "iceberg", "publish"], env=env, capture_output=True, text=True)
    assert caught.returncode == 0, caught.stderr
    assert "ticklake.ticks: +4 -0 files; 16 files, 96 rows" in caught.stdout
    _roll_up_day_8(lake)
    publish(lake, uri)
    _assert_same(lake, uri)
    twice = subprocess.run([TICKLAKE, "--root", str(lake.root), "iceberg", "publish"], env=env, capture_output=True, text=True)
    assert "ticklake.ticks: unchanged" in twice.stdout and "ticklake.bars_1m: unchanged" in twice.stdout


def test_the_setting_publishes_every_commit_in_commit_order(lake: LakeConfig, tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'iceberg.db'}"
    publish(lake, uri)
    _, before, _ = _current(lake, uri)
    configured = LakeConfig(root=lake.root, writer_id="t", cache_dir=lake.cache_dir, iceberg_uri=uri)
    _land(configured, _ticks((8,)), "next")
    hours = compact_all(configured)  # two hours, compacted in parallel: their publishes race
    commits = [h.snapshot for h in hours if h.snapshot is not None]
    _, after, summary = _current(lake, uri)
    # Commits that land together may be published together; the table never steps back to an older one.
    assert before < after <= before + len(commits) and summary[SNAPSHOT_KEY] == str(max(commits))
    _roll_up_day_8(configured)  # published too, into ticklake.bars_1m
    _assert_same(lake, uri)
    _assert_never_stepped_back(lake, uri)


def _assert_never_stepped_back(config: LakeConfig, uri: str) -> None:
    for name in ORDERED:
        table = open_iceberg(config, uri).load_table(f"ticklake.{name}")
        published = [int(s.summary.additional_properties[SNAPSHOT_KEY]) for s in table.snapshots() if s.summary is not None]
        assert published == sorted(published), name


def test_two_compactions_at_once_publish_in_commit_order(lake: LakeConfig, tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'iceberg.db'}"
    publish(lake, uri)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKLAKE_")}
    env.update(TICKLAKE_ICEBERG_URI=uri, TICKLAKE_CACHE_DIR=lake.cache_dir)
    for day in (8, 9):
        _land(lake, _ticks((day,)), f"day{day}")
        runs = [
            subprocess.Popen([TICKLAKE, "--root", str(lake.root), "compact", "--hour", f"2022-01-0{day}T0{h}"], env=env)
            for h in (5, 6)
        ]
        assert [r.wait(timeout=120) for r in runs] == [0, 0]
    with connect(lake.root) as con:
        assert con.sql("SELECT count(*) FROM ticks").fetchone() == (72 + 2 * 24,)
    counts = _duck().sql(f"SELECT count(*) FROM iceberg_scan('{_current(lake, uri)[0]}')").fetchone()
    assert counts == (72 + 2 * 24,)
    _assert_never_stepped_back(lake, uri)


def test_a_lake_file_listed_twice_by_another_writer_is_listed_once_again(lake: LakeConfig, tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'iceberg.db'}"
    publish(lake, uri)
    table = open_iceberg(lake, uri).load_table("ticklake.ticks")
    one = next(iter(table.scan().plan_files())).file
    with table.transaction() as tx, tx.update_snapshot().fast_append() as append:
        append.append_data_file(one)  # a foreign writer appends one of the lake's files again
    fixed = publish(lake, uri)
    assert fixed.tables[0].added == fixed.tables[0].removed == 1
    entries = [task.file.file_path for task in open_iceberg(lake, uri).load_table("ticklake.ticks").scan().plan_files()]
    assert len(entries) == len(set(entries)) == 12
    _assert_same(lake, uri)


def _roll_up_day_8(config: LakeConfig) -> None:
    for hour in (5, 6):
        build_bars_1m(config, parse_hour(f"2022-01-08T0{hour}"))


def test_wrong_uris_get_one_line_errors(lake: LakeConfig, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="must be sqlite:///PATH"):
        publish(lake, "postgres://somewhere")
    with pytest.raises(ConfigError, match="no such folder"):
        publish(lake, f"sqlite:///{tmp_path / 'missing' / 'iceberg.db'}")
    with pytest.raises(ConfigError, match="no catalog given"):
        publish(lake)
    with pytest.raises(ConfigError, match="the lake's own catalog"):
        publish(lake, f"sqlite:///{lake.catalog_path}")
    missing = LakeConfig(root=tmp_path / "no-lake")
    with pytest.raises(NotFoundError):
        publish(missing, f"sqlite:///{tmp_path / 'elsewhere.db'}")
    assert not (tmp_path / "elsewhere.db").exists()  # nothing is created for a lake that is not there
    (lake.root / "iceberg").mkdir()
    relative = publish(lake, "sqlite:///iceberg/lake.db")  # relative to the lake, whichever folder runs it
    assert relative.changed and (lake.root / "iceberg/lake.db").exists()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKLAKE_")}
    result = subprocess.run(
        [TICKLAKE, "--root", str(lake.root), "iceberg", "publish", "--uri", "ftp://x"], env=env, capture_output=True, text=True
    )
    assert result.returncode == 1 and result.stderr.strip().count("\n") == 0 and "sqlite:///PATH" in result.stderr


@pytest.fixture
def rest(s3_env: S3Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The S3 server's Iceberg REST catalog, reached with SigV4 as the writer."""
    monkeypatch.setenv("TICKLAKE_ICEBERG_SIGV4", "1")
    monkeypatch.setenv("TICKLAKE_ICEBERG_WAREHOUSE", s3_env.warehouse)
    yield s3_env.iceberg_uri


def test_rest_catalog_reads_like_ticklake_before_and_after_an_archive(lake: LakeConfig, rest: str, s3_prefix: str) -> None:
    unsigned = LakeConfig(root=lake.root, cache_dir=lake.cache_dir)
    with pytest.raises(StorageError, match="ticklake.ticks at http"):  # the server wants SigV4: one line, no traceback
        publish(unsigned, rest)
    config = LakeConfig.from_env(root=lake.root, writer_id="t", cache_dir=lake.cache_dir)
    first = publish(config, rest)
    assert first.tables[0].metadata_location.startswith("s3://")
    _assert_same(config, rest)
    assert not publish(config, rest).changed
    archive_lake(config, 0, to=s3_prefix, now=AFTER)
    assert publish(config, rest).tables[0].removed == 12
    _assert_same(config, rest)


def test_vacuum_publishes_first_so_the_table_never_names_a_deleted_file(lake: LakeConfig, tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'iceberg.db'}"
    publish(lake, uri)
    _land(lake, _ticks((6,), price=0.25)[:12], "late")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKLAKE_")}
    env.update(TICKLAKE_ICEBERG_URI=uri, TICKLAKE_CACHE_DIR=lake.cache_dir)
    crashed = subprocess.run(
        [TICKLAKE, "--root", str(lake.root), "compact", "--all"], env={**env, "TICKLAKE_FAULT": ICEBERG_POINTS[0]}
    )
    assert crashed.returncode == -9  # the late hour is committed; the Iceberg table still names the files it replaced
    vacuumed = vacuum_lake(replace(lake, iceberg_uri=uri), 0)  # as the CLI and the Dagster job call it
    assert vacuumed.replaced
    named = [task.file.file_path for task in open_iceberg(lake, uri).load_table("ticklake.ticks").scan().plan_files()]
    assert named and all(Path(p.removeprefix("file://")).exists() for p in named)
    build_bars_1m(lake, parse_hour("2022-01-06T05"))
    publish(lake, uri)
    _assert_same(lake, uri)  # every file the current snapshot names is there
