"""Shared fixtures: a fresh lake in tmp_path, tick builders, JSONL writers. Real files only."""

from __future__ import annotations

import gc
import json
import os
import sqlite3
import tempfile
from collections.abc import Callable, Generator, Iterable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from ticklake.config import LakeConfig

# Hypothesis keeps caches in a folder; tests never write to the working directory.
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", str(Path(tempfile.gettempdir()) / "ticklake-hypothesis"))
settings.register_profile("ticklake", database=None, deadline=None)
settings.load_profile("ticklake")

# Object-storage servers (SeaweedFS, moto) and their per-test locations.
pytest_plugins = ["tests.objectstore"]

_FAILED = pytest.StashKey[bool]()


def open_sqlite_files(folder: Path) -> list[str]:
    """SQLite files (``*.sqlite``, their ``-wal`` and ``-shm``) below `folder` this process holds open."""
    try:
        fds = os.listdir("/proc/self/fd")
    except OSError:
        return []  # no procfs here: nothing is checked
    found = set()
    for fd in fds:
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(f"{folder}{os.sep}") and ".sqlite" in target:
            found.add(target.removesuffix(" (deleted)"))
    return sorted(found)


def open_connections(folder: Path) -> list[str]:
    """Database files below `folder` of sqlite3 connections of this thread that were never closed.

    A closed connection whose statement lives on (in a kept exception's traceback, say) holds its
    file until that statement is collected, harmlessly: it is not counted.
    """
    found = []
    for obj in gc.get_objects():
        if not isinstance(obj, sqlite3.Connection):
            continue
        try:
            files = [row[2] for row in sqlite3.Connection.execute(obj, "PRAGMA database_list")]
        except sqlite3.ProgrammingError:
            continue  # closed, or another thread's
        found += [f for f in files if f.startswith(f"{folder}{os.sep}")]
    return sorted(found)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Remember a failed phase, for `pytest_runtest_teardown`."""
    report = yield
    if report.failed:
        item.stash[_FAILED] = True
    return report


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, None, None]:
    """Fail a passing test that leaves a sqlite3 connection to a file of its tmp_path open after its teardown.

    A connection left open keeps SQLite's per-process state of its file (locks, the WAL index), which
    later connections of this process to that file share: deleting its -wal and -shm underneath, or
    a commit by another process, then makes them read an older catalog. `with sqlite3.connect(...)`
    only commits; with Python 3.11 an unclosed connection lives until the next garbage collection.
    A failed test is not checked: its traceback keeps its connections alive.
    """
    folder = (getattr(item, "funcargs", None) or {}).get("tmp_path")
    yield
    if folder is None or item.stash.get(_FAILED, False) or not open_sqlite_files(folder):
        return  # the file check is cheap; the connections are looked for only when a file is open
    if left := open_connections(folder):
        raise AssertionError(f"left open: {', '.join(left)} (close each connection, e.g. `with closing(...) as db, db:`)")


@pytest.fixture
def config(tmp_path: Path) -> LakeConfig:
    """A lake rooted in a fresh temporary folder, with defaults otherwise."""
    return LakeConfig(root=tmp_path / "lake", writer_id="test")


def tick(ts: str = "2022-01-07T05:00:00.000001Z", contract_id: int = 1, tick_type: str = "last", **fields: Any) -> dict[str, Any]:
    """One valid tick in the landing format; `fields` add or override."""
    record: dict[str, Any] = {"timestamp": ts, "contract_id": contract_id, "tick_type": tick_type}
    if tick_type in ("last", "mid_point"):
        record["price"] = 100.25
    if tick_type == "last":
        record["size"] = 100
    if tick_type == "bid_ask":
        record.update(bid_price=100.24, ask_price=100.26, bid_size=300, ask_size=200)
    record.update(fields)
    return {k: v for k, v in record.items() if v is not None}


@pytest.fixture
def make_tick() -> Callable[..., dict[str, Any]]:
    """The `tick` builder, as a fixture."""
    return tick


def jsonl(records: Iterable[dict[str, Any] | str | bytes]) -> bytes:
    """JSONL bytes; strings and bytes are taken as raw lines (for malformed input)."""
    out = []
    for r in records:
        if isinstance(r, bytes):
            out.append(r)
        elif isinstance(r, str):
            out.append(r.encode())
        else:
            out.append(json.dumps(r).encode())
    return b"\n".join(out) + b"\n"


@pytest.fixture
def write_jsonl(tmp_path: Path) -> Callable[[str, Iterable[Any]], Path]:
    """Write records (dicts, or raw str/bytes lines) as a JSONL file in tmp_path; return its path."""

    def write(name: str, records: Iterable[Any]) -> Path:
        path = tmp_path / "input" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(jsonl(records))
        return path

    return write
