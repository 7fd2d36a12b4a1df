"""The house style is checked, not hoped for: ruff and mypy (disallow_untyped_defs) must pass."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("lake", "catalog", "pipelines", "sql", "bench", "tests")


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)


def test_ruff() -> None:
    result = run("ruff", "check", "--no-cache", *SOURCES)
    assert result.returncode == 0, result.stdout + result.stderr


def package_tree(target: Path) -> Path:
    """Lay the `ticklake` package out under `target` as it is installed, with links to the sources.

    The folders map onto the package through setuptools' package-dir, which an editable install
    serves with an import hook; mypy reads files, so it is shown the package as a tree.
    """
    mapping: dict[str, str] = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    folders = {Path(folder) for folder in mapping.values()}
    for package, folder in mapping.items():
        for source in (ROOT / folder).rglob("*.py"):
            relative = source.relative_to(ROOT / folder)
            if any(Path(folder, *relative.parts[:i]) in folders - {Path(folder)} for i in range(1, len(relative.parts))):
                continue
            link = target.joinpath(*package.split("."), relative)
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(source)
    return target


def test_mypy(tmp_path: Path) -> None:
    tree = package_tree(tmp_path / "src")
    env = {**os.environ, "MYPYPATH": str(tree)}
    result = run("mypy", "--no-incremental", "--cache-dir=/dev/null", "-p", "ticklake", "-p", "bench", env=env)
    assert result.returncode == 0, (result.stdout + result.stderr).replace(str(tree) + "/", "")
