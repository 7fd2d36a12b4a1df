"""Docs are tests: every command, option-bearing setting and quarantine reason appears in the README,
and the examples in every module's docstrings run (as sqlglot's tests/test_docs.py does)."""

from __future__ import annotations

import doctest
import importlib
import itertools
import pkgutil
import re
import tomllib
from pathlib import Path

import click
import pytest

from ticklake.cli import cli
from ticklake.config import SETTINGS, Setting
from ticklake.pipelines.settings import PIPELINE_SETTINGS
from ticklake.serve.settings import SERVE_SETTINGS

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


def readme_table(header: str) -> dict[str, dict[str, str]]:
    """The rows of the README table that starts with `header`, by environment variable, cells by column."""
    lines = README.splitlines()
    start = lines.index(header)
    columns = [c.strip() for c in header.strip("|").split("|")]
    rows: dict[str, dict[str, str]] = {}
    for line in itertools.takewhile(lambda line: line.startswith("|"), lines[start + 2 :]):
        cells = dict(zip(columns, (c.strip().strip("`") for c in line.strip("|").split("|")), strict=True))
        rows[cells["environment variable"]] = cells
    return rows


@pytest.mark.parametrize(
    ("header", "settings"),
    [
        ("| setting | environment variable | default | meaning |", SETTINGS),  # ## Settings
        ("| environment variable | default | meaning |", PIPELINE_SETTINGS),  # ## Pipelines (Dagster)
        ("| serve setting | environment variable | default | meaning |", SERVE_SETTINGS),  # ## Serving
    ],
    ids=["lake", "pipelines", "serve"],
)
def test_every_setting_is_documented_with_its_variable_and_default(header: str, settings: tuple[Setting, ...]) -> None:
    rows = readme_table(header)
    assert set(rows) == {s.env for s in settings}
    for s in settings:
        row = rows[s.env]
        assert row.get("setting", row.get("serve setting", s.name)) == s.name and row["meaning"], s.env
        if s.default != "":  # an empty default is documented by what it means (writer_id: host-pid)
            assert s.parse(row["default"]) == s.default, s.env


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


def test_the_layout_names_only_what_exists() -> None:
    block = README.split("## Layout", 1)[1].split("```")[1]
    parent = ROOT
    named = []
    for line in block.strip().splitlines():
        name = line.split()[0]
        if not line.startswith(" "):
            parent = ROOT / name if name.endswith("/") else ROOT
            path = ROOT / name
        else:
            path = parent / name
        named.append(path)
        assert path.exists(), f"README layout names {name}, which does not exist"
    folders = {p for p in (ROOT / "lake").iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert folders <= set(named), "every concept folder of lake/ has its line"
