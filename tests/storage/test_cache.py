"""The read-through cache against real S3 servers: one GET per miss and nothing else (counted by moto's
own request log), no request on a hit, LRU eviction that never takes a copy a reader holds, damaged
and mismatched downloads never served, and two processes filling the same entry at once."""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import s3fs

from tests.objectstore import MotoServer, S3Server
from ticklake.errors import StorageError
from ticklake.storage.cache import STALE_SECONDS, CachedObject, ObjectCache, entry_name
from ticklake.storage.objects import S3Access

KiB = 1024


@pytest.fixture
def moto(moto_server: MotoServer) -> MotoServer:
    moto_server.requests()
    return moto_server


@pytest.fixture
def access(moto: MotoServer) -> S3Access:
    return S3Access.from_environment(moto.env())


def put(access: S3Access, data: bytes, name: str = "a.parquet", bucket: str = "ticklake") -> tuple[str, int, str]:
    """Write an object below a fresh prefix; return its URI, size and SHA-256 as the catalog records them."""
    uri = f"s3://{bucket}/c-{uuid.uuid4().hex[:10]}/ticks/tick_type=last/date=2022-01-07/{name}"
    _writer(access).pipe_file(uri.removeprefix("s3://"), data)
    return uri, len(data), hashlib.sha256(data).hexdigest()


def put_at(access: S3Access, uri: str, data: bytes) -> None:
    _writer(access).pipe_file(uri.removeprefix("s3://"), data)


@functools.cache
def _writer(access: S3Access) -> s3fs.S3FileSystem:
    return access.filesystem()  # one client for every upload: a new one loads botocore's S3 model again


def key_path(uri: str) -> str:
    return "/" + uri.removeprefix("s3://")


def age(path: Path, seconds: float) -> None:
    """Make an entry look last used `seconds` ago (what LRU order reads)."""
    t = time.time() - seconds
    os.utime(path, (t, t))


def test_a_miss_is_one_get_and_a_hit_makes_no_request(moto: MotoServer, access: S3Access, tmp_path: Path) -> None:
    data = os.urandom(300 * KiB)
    uri, size, sha = put(access, data)
    moto.requests()
    cache = ObjectCache(tmp_path / "cache", 10 * size, access)
    path = cache.open(uri, size, sha)
    assert moto.requests() == [("GET", key_path(uri))]  # no HEAD, no LIST
    assert path == tmp_path / "cache" / entry_name(uri) and path.read_bytes() == data
    assert (cache.stats.hits, cache.stats.misses, cache.stats.requests, cache.stats.bytes_fetched) == (0, 1, 1, size)
    assert cache.open(uri, size, sha) == path  # the same reader again
    cache.release()

    again = ObjectCache(tmp_path / "cache", 10 * size, access)  # a repeated query in another reader
    assert again.open(uri, size, sha) == path and again.contains(uri, size)
    assert moto.requests() == []
    assert (again.stats.hits, again.stats.misses, again.stats.requests) == (1, 0, 0)
    usage = again.usage()
    assert (usage.entries, usage.bytes) == (1, size)
    again.release()


def test_a_querys_misses_are_fetched_at_once_each_with_one_get(moto: MotoServer, access: S3Access, tmp_path: Path) -> None:
    blobs = {n: os.urandom((50 + 10 * i) * KiB) for i, n in enumerate("abcdefghij")}
    objects = {n: CachedObject(*put(access, data, f"{n}.parquet")) for n, data in blobs.items()}
    cache = ObjectCache(tmp_path / "cache", 10 * 2**20, access)
    cache.open_many([objects["c"]])  # one hit among the misses
    moto.requests()
    names = sorted(objects)
    paths = cache.open_many([objects[n] for n in names])
    assert [p.read_bytes() if p else None for p in paths] == [blobs[n] for n in names]
    assert sorted(moto.requests()) == sorted(("GET", key_path(objects[n].uri)) for n in names if n != "c")
    assert (cache.stats.hits, cache.stats.misses, cache.stats.requests) == (1, 10, 10)  # c: its first open
    assert cache.stats.bytes_fetched == sum(len(b) for b in blobs.values())
    cache.release()
    # one damaged download among them fails the call, naming that object, and leaves no copy of it
    bad = objects["a"]._replace(uri=objects["a"].uri.replace("a.parquet", "z.parquet"))
    put_at(access, bad.uri, b"y" * bad.size)
    with pytest.raises(StorageError, match=r"z\.parquet: SHA-256"):
        ObjectCache(tmp_path / "cache", 10 * 2**20, access).open_many([objects["b"], bad])
    assert not (tmp_path / "cache" / entry_name(bad.uri)).exists()


def test_what_cannot_be_cached_is_left_to_the_caller(moto: MotoServer, access: S3Access, tmp_path: Path) -> None:
    uri, size, sha = put(access, b"x" * 2 * KiB)
    moto.requests()
    assert ObjectCache(tmp_path / "small", size - 1, access).open(uri, size, sha) is None
    assert ObjectCache(tmp_path / "off", 0, access).open(uri, size, sha) is None
    assert moto.requests() == [] and not (tmp_path / "small").exists()


def test_least_recently_used_goes_first(moto: MotoServer, access: S3Access, tmp_path: Path) -> None:
    objects = {n: put(access, os.urandom(100 * KiB), f"{n}.parquet") for n in "abc"}
    cache = ObjectCache(tmp_path / "cache", 250 * KiB, access)  # room for two
    for n in "ab":
        cache.open(*objects[n])
        cache.release()
    age(tmp_path / "cache" / entry_name(objects["a"][0]), 300)
    age(tmp_path / "cache" / entry_name(objects["b"][0]), 200)
    cache.open(*objects["a"])  # a hit: a is now the most recently used
    cache.release()
    moto.requests()
    cache.open(*objects["c"])
    cache.release()
    assert moto.requests() == [("GET", key_path(objects["c"][0]))]
    present = {n for n, (uri, size, _) in objects.items() if cache.contains(uri, size)}
    assert present == {"a", "c"}
    assert cache.usage().bytes == 200 * KiB


def test_a_copy_a_reader_holds_is_not_evicted(access: S3Access, tmp_path: Path) -> None:
    x, y, z = (put(access, os.urandom(100 * KiB), f"{n}.parquet") for n in "xyz")
    reader = ObjectCache(tmp_path / "cache", 150 * KiB, access)
    held = reader.open(*x)
    assert held is not None
    other = ObjectCache(tmp_path / "cache", 150 * KiB, access)  # another process, same folder
    other.open(*y)
    assert reader.contains(x[0], x[1]) and held.read_bytes()  # over the bound, but x is in use
    assert other.usage().bytes == 200 * KiB
    reader.release()
    other.release()
    other.open(*z)
    assert not other.contains(x[0], x[1]) and other.contains(z[0], z[1])
    other.release()


def test_a_damaged_copy_is_fetched_again(moto: MotoServer, access: S3Access, tmp_path: Path) -> None:
    data = os.urandom(64 * KiB)
    uri, size, sha = put(access, data)
    cache = ObjectCache(tmp_path / "cache", 10 * size, access)
    path = cache.open(uri, size, sha)
    cache.release()
    assert path is not None
    with open(path, "r+b") as f:
        f.truncate(size // 2)
    moto.requests()
    fresh = ObjectCache(tmp_path / "cache", 10 * size, access)
    assert fresh.open(uri, size, sha) == path and path.read_bytes() == data
    assert moto.requests() == [("GET", key_path(uri))] and fresh.stats.misses == 1
    fresh.release()


@pytest.mark.parametrize("wrong", ["sha256", "size"])
def test_a_download_that_does_not_match_the_catalog_is_refused(access: S3Access, tmp_path: Path, wrong: str) -> None:
    uri, size, sha = put(access, os.urandom(16 * KiB))
    cache = ObjectCache(tmp_path / "cache", 100 * size, access)
    claimed = (size, "0" * 64) if wrong == "sha256" else (size + 1, sha)
    with pytest.raises(StorageError) as e:
        cache.open(uri, *claimed)
    assert str(e.value).startswith(f"{uri}: ") and "not cached" in str(e.value) and "\n" not in str(e.value)
    assert [p for p in (tmp_path / "cache").rglob("*") if p.is_file()] == []  # neither an entry nor a temp file
    assert cache.open(uri, size, sha) is not None  # the right claim still works
    cache.release()


def test_a_missing_object_is_one_line_naming_it(access: S3Access, tmp_path: Path) -> None:
    uri = f"s3://ticklake/c-{uuid.uuid4().hex[:10]}/gone.parquet"
    with pytest.raises(StorageError, match=r"^s3://ticklake/c-\w+/gone.parquet: no such object or bucket$"):
        ObjectCache(tmp_path / "cache", 10**6, access).open(uri, 100, None)


# A reader process: opens the object once told to go (a line on stdin), prints path, content hash, GETs made.
CHILD = """
import hashlib, json, sys
from pathlib import Path
from ticklake.storage.cache import ObjectCache
from ticklake.storage.objects import S3Access
folder, env, obj = json.loads(sys.argv[1])
cache = ObjectCache(Path(folder), 10 * obj[1], S3Access.from_environment(env))
print("ready", flush=True)
sys.stdin.readline()
path = cache.open(*obj)
print(json.dumps([str(path), hashlib.sha256(path.read_bytes()).hexdigest(), cache.stats.requests]), flush=True)
"""


def test_two_processes_filling_the_same_entry_both_get_a_valid_copy(moto: MotoServer, access: S3Access, tmp_path: Path) -> None:
    obj = put(access, os.urandom(4 * 1024 * KiB))
    arg = json.dumps([str(tmp_path / "cache"), moto.env(), obj])
    children = [
        subprocess.Popen([sys.executable, "-c", CHILD, arg], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    try:
        assert [c.stdout.readline() for c in children if c.stdout] == ["ready\n", "ready\n"]
        for c in children:  # both start together: each misses, fetches and publishes
            assert c.stdin is not None
            c.stdin.write("go\n")
            c.stdin.flush()
        results = [json.loads(c.communicate(timeout=60)[0]) for c in children]
    finally:
        for c in children:
            if c.poll() is None:
                c.kill()
                c.wait()
    assert [c.returncode for c in children] == [0, 0]
    assert {(path, sha) for path, sha, _ in results} == {(str(tmp_path / "cache" / entry_name(obj[0])), obj[2])}
    assert 1 <= sum(requests for _, _, requests in results) <= 2
    assert [p.name for p in (tmp_path / "cache").rglob("*") if p.is_file()] == [Path(entry_name(obj[0])).name]


def test_temp_files_of_a_killed_download_are_no_entries_and_are_cleaned(access: S3Access, tmp_path: Path) -> None:
    uri, size, sha = put(access, os.urandom(8 * KiB))
    cache = ObjectCache(tmp_path / "cache", 10 * size, access)
    path = cache.open(uri, size, sha)
    cache.release()
    assert path is not None
    dead, running = path.with_name(f".{path.name}.0badf00d.tmp"), path.with_name(f".{path.name}.0000beef.tmp")
    dead.write_bytes(b"half")
    running.write_bytes(b"half")
    age(dead, STALE_SECONDS + 60)
    assert (cache.usage().entries, cache.usage().bytes) == (1, size)
    removed = cache.clear()
    assert (removed.entries, removed.bytes, removed.locked) == (1, size, 0)
    assert not path.exists() and not dead.exists() and running.exists()  # a download in progress is left alone


def test_seaweedfs_object_read_through_the_cache_by_duckdb(s3_env: S3Server, s3_prefix: str, tmp_path: Path) -> None:
    buffer = io.BytesIO()
    pq.write_table(pa.table({"contract_id": [1, 2, 3], "price": [1.5, 2.5, 3.5]}), buffer)
    data = buffer.getvalue()
    uri = f"{s3_prefix}/ticks/tick_type=last/date=2022-01-07/1-a.parquet"
    access = S3Access.from_environment()
    access.filesystem().pipe_file(uri.removeprefix("s3://"), data)
    size, sha = len(data), hashlib.sha256(data).hexdigest()
    first = ObjectCache(tmp_path / "cache", 10**6, access)
    path = first.open(uri, size, sha)
    assert path is not None and first.stats.requests == 1
    con = duckdb.connect()
    assert con.execute("SELECT sum(price) FROM read_parquet($p)", {"p": str(path)}).fetchone() == (7.5,)
    second = ObjectCache(tmp_path / "cache", 10**6, access)
    assert second.open(uri, size, sha) == path and (second.stats.hits, second.stats.requests) == (1, 0)
    first.release()
    second.release()


def ticklake(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("TICKLAKE_")} | env
    return subprocess.run(
        [sys.executable, "-m", "ticklake.cli", *args], env=full, cwd=cwd, capture_output=True, text=True, timeout=60
    )


def test_cache_command_shows_and_clears_without_a_lake(access: S3Access, tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    env = {"TICKLAKE_CACHE_DIR": str(folder), "TICKLAKE_CACHE_BYTES": "1000000"}
    reader = ObjectCache(folder, 1_000_000, access)
    for n, length in (("held", 3000), ("idle", 5000)):
        reader.open(*put(access, b"t" * length, f"{n}.parquet"))
        if n == "held":
            kept = ObjectCache(folder, 1_000_000, access)  # a running reader holding the first copy
            kept.open(*put(access, b"k" * 2000, "kept.parquet"))
    reader.release()
    shown = ticklake("--root", str(tmp_path / "no-lake"), "cache", env=env, cwd=tmp_path)
    assert (shown.returncode, shown.stderr) == (0, "")
    assert shown.stdout == f"{folder}: 3 cached objects, 10,000 of 1,000,000 bytes used (1.0%)\n"
    cleared = ticklake("--root", str(tmp_path / "no-lake"), "cache", "--clear", env=env, cwd=tmp_path)
    assert (cleared.returncode, cleared.stderr) == (0, "")
    assert cleared.stdout == f"cleared {folder}: removed 2 cached objects (8,000 bytes); 1 in use by a running reader left\n"
    kept.release()
    assert not (tmp_path / "no-lake").exists()
    assert ObjectCache(folder, 0).usage().entries == 1
