"""Docs are tests: every command, option-bearing setting and quarantine reason appears in the README,
and the examples in every module's docstrings run (as sqlglot's tests/test_docs.py does)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import re
import tomllib
from pathlib import Path

import click
import pytest

from ticklake.cli import cli
from ticklake.config import SETTINGS, LakeConfig

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_command_has_help_and_is_in_the_readme() -> None:
    assert isinstance(cli, click.Group)
    for name, command in cli.commands.items():
        assert command.help, name
        assert f"ticklake {name}" in README, name
        for param in command.params:
            if isinstance(param, click.Option):
                assert param.help, f"{name} {param.opts}"


def test_every_setting_is_documented_with_its_variable_and_default() -> None:
    for setting in SETTINGS:
        row = next((line for line in README.splitlines() if line.startswith(f"| `{setting.name}` |")), None)
        assert row is not None, setting.name
        assert f"`{setting.env}`" in row
        if setting.default != "":
            assert str(setting.default).lstrip("./") in row.replace(",", "")
    assert {s.name for s in SETTINGS} == set(LakeConfig.__dataclass_fields__)


def test_every_quarantine_reason_is_documented() -> None:
    sources = "".join(p.read_text() for p in (Path(__file__).resolve().parent.parent / "lake").rglob("*.py"))
    reasons = set(re.findall(r'Invalid\("([a-z_]+)"', sources)) | set(re.findall(r'Reject\([^,]+, "([a-z_]+)"', sources))
    assert reasons >= {"invalid_json", "missing_field", "wrong_type", "bad_value", "bad_timestamp", "wrong_hour"}
    for reason in reasons:
        assert f"`{reason}`" in README, reason


def test_the_two_commands_match_ci() -> None:
    ci = (Path(__file__).resolve().parent.parent / ".ci" / "run").read_text()
    assert "bash infra/test.sh" in README and "exec bash infra/test.sh" in ci
    assert "bash infra/setup.sh && .venv/bin/ticklake demo" in README


def _modules() -> list[str]:
    """Every module of every package pyproject.toml installs, found by importing the packages."""
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    names = set(packages)
    for package in packages:
        path = importlib.import_module(package).__path__
        names.update(m.name for m in pkgutil.iter_modules(path, package + ".") if not m.ispkg)
    return sorted(names)


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, report=True)
    assert result.failed == 0, f"{name}: {result.failed} of {result.attempted} docstring examples failed"
