"""A damaged catalog file raises the catalog's own one-line errors, never sqlite3's; creating one never
leaves a half-made file; a catalog in a folder nobody may write is still readable."""

from __future__ import annotations

import datetime as dt
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import threading
from contextlib import closing
from pathlib import Path

import pytest

from tests.mounts import read_only
from ticklake.access import find_catalog, open_catalog
from ticklake.build.compaction import compact_all
from ticklake.catalog import Catalog, CatalogCorrupt, CatalogError
from ticklake.catalog.errors import CatalogMissing
from ticklake.config import LakeConfig
from ticklake.demo.synthetic import make_contracts, synthetic_ticks, to_jsonl
from ticklake.errors import NotFoundError
from ticklake.landing.ingest import ingest_files
from ticklake.sql import migration_names
from ticklake.status import lake_status

PAGE = 4096
DAY = dt.date(2022, 1, 7)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> LakeConfig:
    """A real lake, compacted once: a synthetic day of 200 contracts (catalog tables of many pages)."""
    base = tmp_path_factory.mktemp("damage")
    config = LakeConfig(root=base / "lake", writer_id="test")
    source = base / "day.jsonl"
    source.write_bytes(to_jsonl(synthetic_ticks(DAY, make_contracts(200, seed=3), 20_000, seed=3)))
    ingest_files(config, [source])
    compact_all(config)
    return config


def data_files(config: LakeConfig) -> int:
    return sum(1 for _ in (config.root / "lake").rglob("*.parquet"))


@pytest.fixture
def lake(template: LakeConfig, tmp_path: Path) -> LakeConfig:
    """A copy of the template lake to damage."""
    shutil.copytree(template.root, tmp_path / "lake")
    return template.with_root(tmp_path / "lake")


def pages_of(path: Path, table: str) -> list[int]:
    """Page numbers of a table's b-tree, root first (from SQLite's dbstat)."""
    with closing(sqlite3.connect(path)) as db, db:
        return [r[0] for r in db.execute("SELECT pageno FROM dbstat WHERE name = ? ORDER BY path", (table,))]


def overwrite_page(path: Path, page: int) -> None:
    """Overwrite one page with random bytes, as a torn write or a bad sector would."""
    with open(path, "r+b") as f:
        f.seek((page - 1) * PAGE)
        f.write(random.Random(page).randbytes(PAGE))


def checkpointed(path: Path) -> Path:
    """Fold the write-ahead log into the file, so that damage to the file is all there is."""
    # Closed before -wal and -shm go (the context manager of a connection only commits): an open one
    # keeps the deleted WAL index, which later connections of this process to the file would share.
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for end in ("-wal", "-shm"):
        path.with_name(path.name + end).unlink(missing_ok=True)
    return path


# --- damaged files: the right class and one line naming the file, at open and later ------------


@pytest.mark.parametrize("read_only", [True, False])
@pytest.mark.parametrize(
    ("damage", "kind", "message"),
    [
        ("random", CatalogCorrupt, "file is not a database"),
        ("header", CatalogCorrupt, "file is not a database"),
        ("truncated", CatalogCorrupt, "database disk image is malformed"),
        ("empty", CatalogCorrupt, "empty file (0 bytes), not a catalog"),
    ],
)
def test_a_damaged_file_is_refused_at_open(
    lake: LakeConfig, damage: str, kind: type[CatalogError], message: str, read_only: bool
) -> None:
    path = checkpointed(lake.catalog_path)
    size = path.stat().st_size
    if damage == "random":
        path.write_bytes(random.Random(1).randbytes(size))
    elif damage == "header":
        overwrite_page(path, 1)
    elif damage == "truncated":
        os.truncate(path, size // 2)
    else:
        path.write_bytes(b"")
    before = path.read_bytes()
    with pytest.raises(kind) as info:
        Catalog(path, read_only=read_only)
    assert str(info.value) == f"catalog {path}: {message}"
    assert type(info.value) is kind
    assert path.read_bytes() == before  # a writer did not "repair" it into an empty catalog


def test_a_page_overwritten_in_the_middle_fails_the_query_that_reads_it(lake: LakeConfig) -> None:
    path = checkpointed(lake.catalog_path)
    overwrite_page(path, pages_of(path, "files")[0])
    with Catalog(path, read_only=True) as catalog:  # the schema pages are intact: it opens
        assert catalog.schema_version() == len(migration_names())
        with pytest.raises(CatalogCorrupt) as info:
            catalog.live_totals()
    assert str(info.value) == f"catalog {path}: database disk image is malformed"
    with pytest.raises(CatalogCorrupt, match=r"^catalog .*: database disk image is malformed$"):
        lake_status(lake)


def test_damage_found_half_way_through_a_scan(lake: LakeConfig) -> None:
    path = checkpointed(lake.catalog_path)
    leaves = pages_of(path, "file_values")
    assert len(leaves) >= 3
    overwrite_page(path, leaves[-1])  # the last leaf: the scan reads good rows first
    with Catalog(path, read_only=True) as catalog:
        cursor = catalog.db.execute("SELECT * FROM file_values")
        rows = 0
        with pytest.raises(CatalogCorrupt) as info:
            while True:
                next(cursor)
                rows += 1
        assert rows > 0
        assert str(info.value) == f"catalog {path}: database disk image is malformed"
        for fetch in (lambda c: list(c), lambda c: c.fetchall(), lambda c: c.fetchmany(100_000)):
            with pytest.raises(CatalogCorrupt):
                fetch(catalog.db.execute("SELECT * FROM file_values"))


def test_sqlite_errors_inside_a_transaction_are_the_catalogs(lake: LakeConfig) -> None:
    with Catalog(lake.catalog_path) as catalog:
        before = catalog.current_snapshot()
        with pytest.raises(CatalogError) as info, catalog.transaction() as db:
            db.execute(
                "INSERT INTO snapshots (snapshot_id, parent_id, committed_at, operation, summary) VALUES (1, 0, 'x', 'x', '{}')"
            )
        assert str(info.value) == f"catalog {lake.catalog_path}: UNIQUE constraint failed: snapshots.snapshot_id"
        assert isinstance(info.value.__cause__, sqlite3.IntegrityError)
        assert not catalog.db.in_transaction and catalog.current_snapshot() == before


def test_misuse_of_the_api_is_a_bug_not_a_catalog_error(lake: LakeConfig) -> None:
    catalog = Catalog(lake.catalog_path, read_only=True)
    catalog.close()
    with pytest.raises(sqlite3.ProgrammingError):
        catalog.current_snapshot()


# --- a catalog gone while data files remain -----------------------------------------------------


def test_data_files_without_a_catalog_are_refused_by_readers_and_writers(lake: LakeConfig) -> None:
    for name in ("catalog.sqlite", "catalog.sqlite-wal", "catalog.sqlite-shm"):
        (lake.root / name).unlink(missing_ok=True)
    expected = (
        f"{lake.root}: no catalog.sqlite but {data_files(lake)} data files under lake/ — "
        "rebuild it with `ticklake repair --rebuild-catalog`"
    )
    for opening in (
        lambda: open_catalog(lake),
        lambda: open_catalog(lake, create=True),
        lambda: find_catalog(lake),
        lambda: lake_status(lake),
        lambda: compact_all(lake),
    ):
        with pytest.raises(CatalogMissing) as info:
            opening()
        assert str(info.value) == expected
    assert not lake.catalog_path.exists()  # no fresh catalog shadows the files


def test_a_missing_root_is_no_lake(tmp_path: Path) -> None:
    config = LakeConfig(root=tmp_path / "nowhere")
    for reading in (lambda: open_catalog(config), lambda: lake_status(config)):
        with pytest.raises(NotFoundError) as info:
            reading()
        assert str(info.value) == f"no lake at {config.root} (no such folder, so no catalog.sqlite)"
    assert find_catalog(config) is None  # a writer (ingest) may start a lake there
    assert not config.root.exists()


# --- creating a catalog --------------------------------------------------------------------------


CREATE_UNDER_FILE_SIZE_LIMIT = """
import resource, signal, sys
from ticklake.catalog import Catalog, CatalogError
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead of killing
resource.setrlimit(resource.RLIMIT_FSIZE, (16384, 16384))
try:
    Catalog(sys.argv[1])
except CatalogError as e:
    print(f"{type(e).__name__}: {e}")
"""


def test_a_failed_creation_leaves_no_catalog(tmp_path: Path) -> None:
    # A real write failure without privileges: a file-size limit (EFBIG) below a migrated catalog's size.
    path = tmp_path / "lake" / "catalog.sqlite"
    done = subprocess.run(
        [sys.executable, "-c", CREATE_UNDER_FILE_SIZE_LIMIT, str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"CatalogError: catalog {path}: disk I/O error (is the disk full?)\n"
    assert os.listdir(path.parent) == []  # no catalog.sqlite, no temporary file, no journal
    with Catalog(path) as catalog:  # with room, the same call creates it
        assert catalog.schema_version() == len(migration_names())
    assert os.listdir(path.parent) == ["catalog.sqlite"]


def test_concurrent_creations_agree_on_one_catalog(tmp_path: Path) -> None:
    path = tmp_path / "lake" / "catalog.sqlite"
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def create() -> None:
        start.wait()
        try:
            with Catalog(path) as catalog:
                catalog.db.execute("INSERT INTO leases VALUES (?, 'x', 'x', 'x', 0)", (str(threading.get_ident()),))
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=create) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with Catalog(path, read_only=True) as catalog:  # every writer wrote into the one file that won
        assert catalog.db.execute("SELECT count(*) FROM leases").fetchone() == (4,)
    assert [n for n in os.listdir(path.parent) if n.startswith(".")] == []


# --- reading where nothing may be written -------------------------------------------------------


CRASH_AFTER_A_READ = """
import os, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("SELECT count(*) FROM snapshots").fetchone()
os._exit(0)  # no close: -wal and -shm stay, as after a crash
"""


@pytest.mark.parametrize("leftovers", [False, True])
def test_a_catalog_in_a_read_only_folder_is_read(lake: LakeConfig, leftovers: bool) -> None:
    # Without -shm and -wal (every connection closed), SQLite cannot open a WAL file read-only in
    # a folder it cannot write, and the catalog falls back to reading the file as it is; with the
    # two left by a process that did not close, mode=ro works as usual.
    with Catalog(lake.catalog_path, read_only=True) as catalog:
        expected = catalog.live_totals()
    path = checkpointed(lake.catalog_path)
    if leftovers:
        subprocess.run([sys.executable, "-c", CRASH_AFTER_A_READ, str(path)], check=True, timeout=60)
        assert path.with_name("catalog.sqlite-shm").exists()
    with read_only(lake.root):
        if not leftovers:
            plain = sqlite3.connect(path.absolute().as_uri() + "?mode=ro", uri=True)
            with pytest.raises(sqlite3.OperationalError, match="unable to open database file"):
                plain.execute("SELECT 1 FROM snapshots").fetchone()
            plain.close()
        with Catalog(path, read_only=True) as catalog:
            assert catalog.live_totals() == expected
        assert lake_status(lake).rows == expected.rows == 20_000
        with pytest.raises(CatalogError, match=r"^catalog .*: read-only \("):
            Catalog(path)


def test_read_only_open_refuses_to_skip_commits_waiting_in_the_log(lake: LakeConfig, tmp_path: Path) -> None:
    path = checkpointed(lake.catalog_path)
    copy = tmp_path / "copy" / "catalog.sqlite"
    copy.parent.mkdir()
    writer = sqlite3.connect(path, isolation_level=None)
    try:
        writer.execute("PRAGMA wal_autocheckpoint=0")
        writer.execute("INSERT INTO leases VALUES ('x', 'x', 'x', 'x', 0)")  # a commit in the log only
        shutil.copy(path, copy)  # while the writer is open, the log is not folded into the file
        shutil.copy(path.with_name("catalog.sqlite-wal"), copy.with_name("catalog.sqlite-wal"))
    finally:
        writer.close()
    with read_only(copy.parent), pytest.raises(CatalogError) as info:
        Catalog(copy, read_only=True)
    assert str(info.value) == (
        f"catalog {copy}: read-only folder, and its write-ahead log catalog.sqlite-wal holds commits not yet in the catalog;"
        " open it once where it can be written"
    )


def test_writing_into_a_read_only_file_names_it(lake: LakeConfig) -> None:
    if os.geteuid() == 0:
        pytest.skip("root writes read-only files anyway; the read-only mount test covers the root case")
    path = lake.catalog_path
    path.chmod(0o444)
    try:
        with pytest.raises(CatalogError) as info:
            Catalog(path)
        assert str(info.value) == f"catalog {path}: read-only (file {path} is not writable)"
    finally:
        path.chmod(0o644)
