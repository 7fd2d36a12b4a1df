"""Docs are tests: every command, option-bearing setting and quarantine reason appears in the README."""

from __future__ import annotations

import re
from pathlib import Path

import click

from lake.cli import cli
from lake.config import SETTINGS, LakeConfig

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


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
    sources = "".join(p.read_text() for p in (Path(__file__).resolve().parent.parent / "lake").glob("*.py"))
    reasons = set(re.findall(r'Invalid\("([a-z_]+)"', sources)) | set(re.findall(r'Reject\([^,]+, "([a-z_]+)"', sources))
    assert reasons >= {"invalid_json", "missing_field", "wrong_type", "bad_value", "bad_timestamp", "wrong_hour"}
    for reason in reasons:
        assert f"`{reason}`" in README, reason


def test_the_two_commands_match_ci() -> None:
    ci = (Path(__file__).resolve().parent.parent / ".ci" / "run").read_text()
    assert "bash infra/test.sh" in README and "exec bash infra/test.sh" in ci
    assert "bash infra/setup.sh && .venv/bin/ticklake demo" in README
