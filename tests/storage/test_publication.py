"""The published catalog: a writer publishes after every commit, a reader on another machine (read-only
credentials, an empty cache) answers from the bucket as the writer does, and sees new commits; the
writer's local files are left out and said so; an unchanged catalog costs one request (counted by
moto's own log) and no download; a wrong secret, a remote root given to a writing command and a second
writer are one-line errors; a failed publication never fails the commit."""

from __future__ import annotations

import gzip
import json
import logging
import sqlite3
from contextlib import closing
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

import ticklake
from tests.conftest import jsonl, tick
from tests.objectstore import MotoServer, S3Server
from tests.test_cli import run
from ticklake.build.archive import archive_lake
from ticklake.build.compaction import compact_all
from ticklake.cli import cli
from ticklake.config import LakeConfig
from ticklake.errors import ConfigError, NotFoundError, StorageError
from ticklake.landing.ingest import ingest_files
from ticklake.query.history import snapshot_history
from ticklake.status import has_contract, lake_status
from ticklake.storage.objects import S3Access
from ticklake.storage.publication import CATALOG_OBJECT, fetch_catalog, publish_catalog

QUERY = "SELECT tick_type, date, count(*), sum(size), sum(epoch_us(timestamp)) FROM ticks GROUP BY ALL ORDER BY ALL"
DAY_1 = [tick(f"2022-01-07T05:{m:02d}:00Z", 11 + m % 2, "last", price=10.0 + m, size=m + 1) for m in range(6)] + [
    tick(f"2022-01-07T06:{m:02d}:00Z", 12, "bid_ask") for m in range(3)
]
DAY_2 = [tick(f"2022-01-08T01:{m:02d}:00Z", 11, "last", price=20.0, size=7) for m in range(4)]


def now_after(day: str) -> float:
    """An archive run's `now`, a few days after `day`: every day up to it is old enough."""
    return datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp() + 3 * 86400


def land(config: LakeConfig, records: list[dict[str, object]], name: str) -> None:
    """Ingest `records` and compact them: each compaction commit publishes."""
    source = config.root.parent / f"{name}.jsonl"
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_bytes(jsonl(records))
    assert ingest_files(config, [source]).appended == len(records)
    compact_all(config)


def writer_answer(config: LakeConfig) -> list[str]:
    """The writer's own answer to QUERY, as CSV lines (no header)."""
    with ticklake.connect(config=config) as con:
        return [",".join("" if v is None else str(v) for v in row) for row in con.execute(QUERY).fetchall()]


def reader(
    server: S3Server, cache: Path, *args: str, secret: str | None = None, process: bool = False
) -> tuple[int, list[str], list[str]]:
    """``ticklake ARGS`` as a reader on another machine: read-only credentials, its own cache folder; in a
    new process with `process`, else in this one (quicker: the catalog and the objects are read alike)."""
    env = {**server.env(reader=True, secret=secret), "TICKLAKE_CACHE_DIR": str(cache)}
    if process:
        done = run(*args, env=env)
        return done.returncode, done.stdout.splitlines(), done.stderr.splitlines()
    result = CliRunner().invoke(cli, list(args), env=env)
    return result.exit_code, result.stdout.splitlines(), result.stderr.splitlines()


@pytest.fixture
def lake(tmp_path: Path, s3_prefix: str) -> LakeConfig:
    """A writer's lake whose cold tier is `s3_prefix`: one day compacted and archived."""
    config = LakeConfig(root=tmp_path / "writer" / "lakehouse", writer_id="test", cold_uri=s3_prefix)
    land(config, DAY_1, "day-1")
    archive_lake(config, 0, to=s3_prefix, now=now_after("2022-01-07"))
    return config


def test_a_reader_elsewhere_answers_as_the_writer_and_sees_new_commits(
    lake: LakeConfig, s3_env: S3Server, s3_prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "reader-cache"
    code, out, err = reader(s3_env, cache, "--root", s3_prefix, "sql", QUERY, "--format", "csv", process=True)
    assert code == 0, err
    assert out[1:] == writer_answer(lake) and len(out) == 3 and err == []
    copy = cache / "catalogs" / s3_env.bucket / s3_prefix.split("/")[-1] / "catalog.sqlite"
    held = copy.stat().st_ino

    # Late ticks of the next day, compacted: on the writer's disk only, which the reader says.
    land(lake, DAY_2, "day-2")
    code, out, err = reader(s3_env, cache, "--root", s3_prefix, "sql", QUERY, "--format", "csv")
    assert code == 0 and out[1:] == writer_answer(lake)[:-1]
    assert err == ["warning: 1 files (4 rows) of the writer's local tier are not in the bucket"]
    assert copy.stat().st_ino != held  # a new commit: a new copy
    held = copy.stat().st_ino
    code, out, err = reader(s3_env, cache, "--root", s3_prefix, "status")
    assert code == 0, err
    assert out == [
        "snapshot 5: 3 files, 13 rows, " + out[0].split(" rows, ")[1].split(" bytes")[0] + " bytes;"
        " landing: on the writer's host, 3 consumed",
        "1 files (4 rows) of the writer's local tier are not in the bucket",
    ]
    assert copy.stat().st_ino == held  # unchanged: answered 304, nothing downloaded (SeaweedFS honours If-None-Match)
    remote = LakeConfig(cache_dir=str(cache)).with_root(s3_prefix)
    with monkeypatch.context() as as_reader:
        for k, v in s3_env.env(reader=True).items():
            as_reader.setenv(k, v)
        with ticklake.connect(config=remote) as con:
            explained = con.explain("SELECT count(*) FROM ticks").splitlines()
        assert "left out: 1 files (4 rows) of the writer's local tier are not in the bucket" in explained
        assert [row[2] for row in snapshot_history(remote)] == ["compact"] * 2 + ["archive"] * 2 + ["compact"]
        assert has_contract(remote, 11, date(2022, 1, 8)).rows == 4  # the catalog knows of the local file

    # Archived: the reader sees every row, as the writer does, with no warning.
    archive_lake(lake, 0, to=s3_prefix, now=now_after("2022-01-08"))
    code, out, err = reader(s3_env, cache, "--root", s3_prefix, "sql", QUERY, "--format", "csv")
    assert code == 0 and err == [] and out[1:] == writer_answer(lake) and len(out) == 4


def test_the_published_catalog_names_no_credential(lake: LakeConfig, s3_env: S3Server) -> None:
    body = S3Access.from_environment().filesystem().cat_file(f"{lake.cold_uri.removeprefix('s3://')}/{CATALOG_OBJECT}")
    raw = gzip.decompress(body)
    assert raw.startswith(b"SQLite format 3\x00") and raw[18:20] == b"\x01\x01"  # rollback journal: no -wal, no -shm to read
    for secret in (*s3_env.writer, *s3_env.reader):
        assert secret.encode() not in raw and secret.encode() not in body
    assert len(body) < len(raw) / 2


def test_a_wrong_secret_is_one_line_naming_the_bucket(s3_server: S3Server, s3_prefix: str, tmp_path: Path) -> None:
    code, out, err = reader(s3_server, tmp_path / "cache", "--root", s3_prefix, "status", secret="not-the-secret")
    assert code == 1 and out == []
    assert err == [
        f"Error: {s3_prefix}/{CATALOG_OBJECT}: access denied (check the access key and secret, and the bucket's policy)"
    ]
    assert "not-the-secret" not in "".join(err)


def test_commands_that_write_refuse_a_remote_root(tmp_path: Path) -> None:
    runner = CliRunner()
    for args in (["compact", "--all"], ["vacuum", "--older-than", "7d"], ["archive", "--older-than", "7d"], ["ingest", "-"]):
        done = runner.invoke(cli, ["--root", "s3://ticklake/lake", *args], env={"TICKLAKE_CACHE_DIR": str(tmp_path)})
        assert done.exit_code == 1 and done.stdout == ""
        assert (
            done.stderr
            == f"Error: {args[0]}: s3://ticklake/lake is a remote lake, read-only here; run {args[0]} on its writer's host\n"
        )
    assert not (tmp_path / "catalogs").exists()  # refused before anything was fetched or written


def test_a_second_writer_is_refused(lake: LakeConfig, s3_env: S3Server, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    other = replace(lake, root=tmp_path / "other" / "lakehouse")
    with caplog.at_level(logging.WARNING, "ticklake"):
        land(other, DAY_2, "other")  # its commit stands; its publication does not
    assert [r.getMessage() for r in caplog.records][0].startswith(
        f"warning: catalog not published: {lake.cold_uri}/{CATALOG_OBJECT}: another writer publishes here (writer "
    )
    with pytest.raises(ConfigError, match=r"another writer publishes here \(writer [0-9a-f]{12} on .+, snapshot \d+ at .+\)"):
        publish_catalog(other)
    assert [line.split(",")[:4] for line in writer_answer(other)] == [["last", "2022-01-08", "4", "28.0"]]
    land(lake, DAY_2, "day-2")  # the first writer goes on publishing
    assert publish_catalog(lake).unchanged

    # Once the first writer is gone for good, the second takes over; then the first is the other one.
    assert publish_catalog(other, take_over=True).snapshot == 1
    with pytest.raises(ConfigError, match="another writer publishes here"):
        publish_catalog(lake)


def test_an_unchanged_catalog_costs_one_request(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for k, v in moto_server.env().items():
        monkeypatch.setenv(k, v)
    location = f"s3://ticklake/p-{tmp_path.name[-12:]}"
    writer = LakeConfig(root=tmp_path / "writer", writer_id="test", cold_uri=location)
    remote = LakeConfig(cache_dir=str(tmp_path / "cache")).with_root(location)
    key = "/" + location.removeprefix("s3://") + "/" + CATALOG_OBJECT
    with pytest.raises(NotFoundError, match=f"{location}/{CATALOG_OBJECT}: no catalog published there"):
        lake_status(remote)
    moto_server.requests()
    land(writer, DAY_2, "day-2")  # one hour: one commit
    assert moto_server.requests() == [("HEAD", key), ("PUT", key)]  # its publication: a HEAD, a conditional PUT

    assert lake_status(remote).rows == 4 and moto_server.requests() == [("GET", key)]
    copy = remote.catalog_path.stat()
    for _ in range(2):
        assert lake_status(remote).rows == 4
        assert moto_server.requests() == [("GET", key)]  # If-None-Match: 304, nothing downloaded
        assert remote.catalog_path.stat().st_ino == copy.st_ino
    assert json.loads((remote.root / "publication.json").read_text())["manifest"]["snapshot"] == "1"
    assert publish_catalog(writer).unchanged and moto_server.requests() == [("HEAD", key)]  # nothing new, nothing sent

    land(writer, DAY_1, "day-1")
    moto_server.requests()
    fetched = fetch_catalog(remote)
    assert fetched.downloaded and fetched.manifest["snapshot"] == "3" and moto_server.requests() == [("GET", key)]
    assert lake_status(remote).rows == 13


def test_a_failed_publication_never_fails_the_commit(
    moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    for k, v in moto_server.env().items():
        monkeypatch.setenv(k, v)
    config = LakeConfig(root=tmp_path / "lakehouse", writer_id="test", cold_uri="s3://no-such-bucket/lake")
    with caplog.at_level(logging.WARNING, "ticklake"):
        land(config, DAY_1, "day-1")
    assert [r.getMessage() for r in caplog.records] == [
        "warning: catalog not published: s3://no-such-bucket/lake/_catalog/catalog.sqlite.gz: no such object or bucket;"
        " the commit stands, the next one publishes again"
    ] * 2
    assert len(writer_answer(config)) == 2
    with pytest.raises(StorageError, match=r"^s3://no-such-bucket/lake/_catalog/catalog.sqlite.gz: no such object or bucket$"):
        publish_catalog(config)  # `ticklake publish`: the error itself


def test_a_publication_copies_what_is_committed_while_another_writer_holds_the_lock(
    moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for k, v in moto_server.env().items():
        monkeypatch.setenv(k, v)
    config = LakeConfig(root=tmp_path / "lakehouse", writer_id="test", cold_uri=f"s3://ticklake/c-{tmp_path.name[-12:]}")
    land(config, DAY_2, "day-2")
    with closing(sqlite3.connect(config.catalog_path, isolation_level=None)) as other:
        other.execute("BEGIN IMMEDIATE")  # a writer in the middle of its commit
        other.execute("UPDATE snapshots SET operation = 'uncommitted'")
        assert publish_catalog(config).unchanged  # not blocked, and the copy holds only what was committed
        other.execute("ROLLBACK")
