"""The lakes the fault tests break (built once, copied by each test), and the matrix, written once
after every fault test of the session has added its row.

A: ticks 0-1499 ingested, compacted and rolled up (`landed`); then B: ticks 1500-2999 and five
bad lines, in two files, ingested (`ingested`); then B compacted (`compacted`), which replaces
every file of A and leaves every hour's bars out of date.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.matrix import BAD, HOURS, ROWS, A, B, artifacts_dir, bad_lines, copy_lake, matrix_markdown, run, tick_lines


@pytest.fixture(scope="session", autouse=True)
def fault_matrix() -> Iterator[None]:
    """Write the rows recorded by the tests as `fault-matrix.md` in the artifacts folder."""
    yield
    if ROWS:
        folder = artifacts_dir()
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "fault-matrix.md").write_text(matrix_markdown(ROWS), encoding="utf-8")


@pytest.fixture(scope="session")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The input files: A, and B in two parts with the bad lines in the second."""
    folder = tmp_path_factory.mktemp("inputs")
    files = {"a": tick_lines(A), "b1": tick_lines(B[:750]), "b2": tick_lines(B[750:]) + bad_lines(BAD)}
    for name, data in files.items():
        (folder / f"{name}.jsonl").write_bytes(data)
    return {name: folder / f"{name}.jsonl" for name in files}


@pytest.fixture(scope="session")
def landed(tmp_path_factory: pytest.TempPathFactory, inputs: dict[str, Path]) -> Path:
    """A compacted and rolled up: the lake before B arrives."""
    root = tmp_path_factory.mktemp("landed") / "lake"
    assert run("--root", str(root), "ingest", str(inputs["a"])).returncode == 0
    assert run("--root", str(root), "compact", "--all").returncode == 0
    done = run("--root", str(root), "rollup", *(f"--hour={h}" for h in HOURS))
    assert done.returncode == 0, done.stderr
    return root


@pytest.fixture(scope="session")
def ingested(tmp_path_factory: pytest.TempPathFactory, landed: Path, inputs: dict[str, Path]) -> Path:
    """`landed` with B in the landing buffer, waiting for compaction."""
    root = copy_lake(landed, tmp_path_factory.mktemp("ingested") / "lake")
    assert run("--root", str(root), "ingest", str(inputs["b1"]), str(inputs["b2"])).returncode == 1  # the bad lines
    return root


@pytest.fixture(scope="session")
def compacted(tmp_path_factory: pytest.TempPathFactory, ingested: Path) -> Path:
    """`ingested` with B compacted: every hour's bars are out of date."""
    root = copy_lake(ingested, tmp_path_factory.mktemp("compacted") / "lake")
    assert run("--root", str(root), "compact", "--all").returncode == 0
    return root
