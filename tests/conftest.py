"""Shared fixtures: a fresh lake in tmp_path, tick builders, JSONL writers. Real files only."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable
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
