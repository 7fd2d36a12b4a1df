"""A small lake with a history (four snapshots, one of them a late-data rewrite), and the CLI as a process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import jsonl, tick
from ticklake.build.compaction import compact_all
from ticklake.config import LakeConfig
from ticklake.landing.ingest import ingest_files

TICKLAKE = str(Path(sys.executable).parent / "ticklake")

# Batches in commit order: hours 05, 06, 07 of 2022-01-07, then two late trades for hour 05.
BATCHES = [
    [tick(f"2022-01-07T05:{m:02d}:00Z", 11 + m % 2, "last", price=10.0 + m, size=1, symbol="AAA") for m in range(6)],
    [tick(f"2022-01-07T06:{m:02d}:00Z", 11, "last", price=20.0 + m, size=2, symbol="AAA") for m in range(4)],
    [tick(f"2022-01-07T07:{m:02d}:00Z", 12, "last", price=30.0 + m, size=3, symbol="BBB") for m in range(2)],
    [tick(f"2022-01-07T05:{m:02d}:30Z", 11, "last", price=40.0, size=4, symbol="AAA") for m in range(2)],
]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``ticklake ARGS`` as a user runs it: a new process, without the caller's TICKLAKE_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKLAKE_")}
    return subprocess.run([TICKLAKE, *args], env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def history_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Snapshots 1-3 add hours 05, 06, 07 (6, 4 and 2 trades); snapshot 4 rewrites hour 05 with 2 late trades."""
    folder = tmp_path_factory.mktemp("history")
    config = LakeConfig(root=folder / "lakehouse", writer_id="test")
    for i, batch in enumerate(BATCHES):
        source = folder / f"batch-{i}.jsonl"
        source.write_bytes(jsonl(batch))
        assert ingest_files(config, [source]).appended == len(batch)
        assert len(compact_all(config)) == 1
    return config.root
