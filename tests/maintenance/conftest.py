"""Lakes built with the real command (`ticklake ingest` + `compact --all` + `rollup`), copied per test
so each can damage its own, and a runner for `.venv/bin/ticklake` as a user runs it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import jsonl, tick

TICKLAKE = Path(sys.executable).with_name("ticklake")
Run = Callable[..., subprocess.CompletedProcess[str]]


def ticklake(root: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``ticklake --root ROOT ARGS`` in a new process, with no TICKLAKE_* settings but `env`."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TICKLAKE_")}
    full_env.update(env or {})
    return subprocess.run([str(TICKLAKE), "--root", str(root), *args], env=full_env, capture_output=True, text=True, timeout=300)


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    """`result`, asserted to have exited 0."""
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def hour_ticks(hour: int, n: int, seed: int = 0) -> list[dict[str, object]]:
    """`n` ticks of 2022-01-07 at `hour`, all three tick types, five contracts."""
    kinds = ("last", "bid_ask", "mid_point")
    return [
        tick(
            f"2022-01-07T{hour:02d}:{(i * 7 + seed) % 60:02d}:{(i * 13) % 60:02d}.{i:06d}Z",
            100 + (i + seed) % 5,
            kinds[i % 3],
            symbol=f"S{(i + seed) % 5}",
            exchange=("NYSE", "ARCA")[i % 2],
        )
        for i in range(n)
    ]


def land(root: Path, name: str, records: list[dict[str, object]]) -> None:
    """Ingest `records` through the CLI."""
    source = root.parent / f"{name}.jsonl"
    source.write_bytes(jsonl(records))
    ok(ticklake(root, "ingest", str(source)))


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Hours 05 and 06 of 2022-01-07 (hour 05 with a late merge), compacted; bars of hour 05."""
    root = tmp_path_factory.mktemp("template") / "lake"
    land(root, "first", hour_ticks(5, 60) + hour_ticks(6, 30, seed=3))
    ok(ticklake(root, "compact", "--all"))
    land(root, "late", hour_ticks(5, 9, seed=1))
    ok(ticklake(root, "compact", "--all"))
    ok(ticklake(root, "rollup", "--hour", "2022-01-07T05"))
    shutil.rmtree(root / "_pins", ignore_errors=True)
    return root


@pytest.fixture
def lake(template: Path, tmp_path: Path) -> Path:
    """A copy of the template lake, to damage."""
    root = tmp_path / "lake"
    shutil.copytree(template, root)
    return root


def backdate(path: Path, seconds: float = 7200) -> Path:
    """Make `path` look `seconds` old, as a crash leftover of that age would be."""
    stamp = path.stat().st_mtime - seconds
    os.utime(path, (stamp, stamp))
    return path


def rows_of(root: Path, query: str = "SELECT * FROM ticks ORDER BY ALL") -> str:
    """A query's CSV output through the CLI over what is committed (no hot tier): what a user would see."""
    return ok(ticklake(root, "sql", query, "--format", "csv", "--no-fresh")).stdout
