"""Configuration: one frozen dataclass, built at the edges (CLI options, TICKLAKE_* variables, a Dagster resource).

Each setting is declared once, as a field of its dataclass made with `setting(default, help)`; its
type is the field's annotation and its variable is TICKLAKE_<NAME>. `SETTINGS` is derived from
`LakeConfig` (and `ticklake.pipelines.settings.PIPELINE_SETTINGS` likewise), the README lists them
all, and `read_env` parses any of them. Nothing here reads the environment at import time.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, TypeVar, get_type_hints

from ticklake.errors import ConfigError

_T = TypeVar("_T")

# The types a setting may have: how its variable's text is parsed, and what a bad value was expected to be.
_PARSERS: dict[type, tuple[Callable[[str], Any], str]] = {
    int: (int, "an integer"),
    float: (float, "a float"),
    str: (str, "a string"),
    Path: (Path, "a path"),
}


@dataclass(frozen=True)
class Setting:
    """One configuration setting, derived from its dataclass field: name, type, default and help."""

    name: str
    type: type
    default: Any
    help: str

    def __post_init__(self) -> None:
        if self.type not in _PARSERS:
            raise TypeError(f"setting {self.name}: type {self.type!r} cannot be read from the environment")

    @property
    def env(self) -> str:
        """The environment variable that sets it."""
        return "TICKLAKE_" + self.name.upper()

    def parse(self, text: str) -> Any:
        """The value of its variable's `text`, by the setting's type.

        >>> Setting("bloom_fpp", float, 0.01, "").parse("0.5")
        0.5
        >>> Setting("zstd_level", int, 3, "").parse("high")
        Traceback (most recent call last):
        ticklake.errors.ConfigError: TICKLAKE_ZSTD_LEVEL='high': expected an integer
        """
        convert, expected = _PARSERS[self.type]
        try:
            return convert(text)
        except ValueError as e:
            raise ConfigError(f"{self.env}={text!r}: expected {expected}") from e


def setting(default: _T, help: str) -> _T:
    """A dataclass field that declares a setting: its default and its one-line help."""
    return field(default=default, metadata={"help": help})


def settings_of(cls: type[Any]) -> tuple[Setting, ...]:
    """The settings a dataclass declares, one per field, typed by its annotations."""
    hints = get_type_hints(cls)
    derived = []
    for f in fields(cls):
        if "help" not in f.metadata:
            raise TypeError(f"{cls.__name__}.{f.name}: declare it with setting(default, help)")
        derived.append(Setting(f.name, hints[f.name], f.default, f.metadata["help"]))
    return tuple(derived)


def read_env(settings: Iterable[Setting], environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The values of the `settings` whose variables are set and not empty (default: in os.environ), parsed."""
    env = os.environ if environ is None else environ
    return {s.name: s.parse(env[s.env]) for s in settings if env.get(s.env, "") != ""}


@dataclass(frozen=True)
class LakeConfig:
    """Everything the library needs to know about one lake."""

    root: Path = setting(Path("./lakehouse"), "Lake root folder: landing buffer, Parquet files and catalog.sqlite live below it.")
    writer_id: str = setting("", "Name of this landing writer, used in segment file names (default: host-pid).")
    segment_max_bytes: int = setting(64 * 1024 * 1024, "A landing segment is sealed and a new one started past this size.")
    segment_retention_hours: float = setting(
        168.0, "Consumed landing segments are kept this long after their commit, then deleted."
    )
    row_group_rows: int = setting(32768, "Rows per Parquet row group; smaller prunes finer on contract_id, larger scans faster.")
    zstd_level: int = setting(3, "zstd compression level of Parquet files.")
    bloom_fpp: float = setting(0.01, "False-positive rate of the per-file Bloom filters.")
    threads: int = setting(0, "Worker threads for parsing and DuckDB (0: one per core).")

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))
        if self.segment_max_bytes < 1024:
            raise ConfigError(f"segment_max_bytes must be at least 1024, got {self.segment_max_bytes}")
        if self.row_group_rows < 1:
            raise ConfigError(f"row_group_rows must be positive, got {self.row_group_rows}")
        if not 0 < self.bloom_fpp < 1:
            raise ConfigError(f"bloom_fpp must be between 0 and 1, got {self.bloom_fpp}")
        if not 1 <= self.zstd_level <= 22:
            raise ConfigError(f"zstd_level must be between 1 and 22, got {self.zstd_level}")
        if self.segment_retention_hours < 0 or self.threads < 0:
            raise ConfigError("segment_retention_hours and threads must not be negative")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> LakeConfig:
        """Defaults, then TICKLAKE_* variables, then explicit `overrides` (None means: not given)."""
        values = read_env(SETTINGS, environ)
        values.update({k: v for k, v in overrides.items() if v is not None})
        unknown = set(values) - {s.name for s in SETTINGS}
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        return cls(**values)

    def with_root(self, root: str | Path) -> LakeConfig:
        """The same settings for another lake root."""
        return replace(self, root=Path(root))

    @property
    def writer_name(self) -> str:
        """The writer id used in segment names: the setting, or host-pid."""
        return self.writer_id or f"{socket.gethostname()}-{os.getpid()}"

    @property
    def catalog_path(self) -> Path:
        """The SQLite catalog file of this lake."""
        return self.root / "catalog.sqlite"


SETTINGS: tuple[Setting, ...] = settings_of(LakeConfig)
