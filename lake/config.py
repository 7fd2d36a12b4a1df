"""Configuration: one frozen dataclass, built at the edges (CLI options, TICKLAKE_* variables, a Dagster resource).

Nothing here reads the environment at import time; `LakeConfig.from_env` does, when called.
Every setting is declared once in `SETTINGS` with its default and help; the README lists them all.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from ticklake.errors import ConfigError


@dataclass(frozen=True)
class Setting:
    """One configuration setting: its name, default, environment variable and help."""

    name: str
    default: Any
    help: str

    @property
    def env(self) -> str:
        """The environment variable that sets it."""
        return "TICKLAKE_" + self.name.upper()


SETTINGS: tuple[Setting, ...] = (
    Setting("root", "./lakehouse", "Lake root folder: landing buffer, Parquet files and catalog.sqlite live below it."),
    Setting("writer_id", "", "Name of this landing writer, used in segment file names (default: host-pid)."),
    Setting("segment_max_bytes", 64 * 1024 * 1024, "A landing segment is sealed and a new one started past this size."),
    Setting("segment_retention_hours", 168, "Consumed landing segments are kept this long after their commit, then deleted."),
    Setting("row_group_rows", 32768, "Rows per Parquet row group; smaller prunes finer on contract_id, larger scans faster."),
    Setting("zstd_level", 3, "zstd compression level of Parquet files."),
    Setting("bloom_fpp", 0.01, "False-positive rate of the per-file Bloom filters."),
    Setting("threads", 0, "Worker threads for parsing and DuckDB (0: one per core)."),
)
_BY_NAME = {s.name: s for s in SETTINGS}


@dataclass(frozen=True)
class LakeConfig:
    """Everything the library needs to know about one lake."""

    root: Path = Path("./lakehouse")
    writer_id: str = ""
    segment_max_bytes: int = 64 * 1024 * 1024
    segment_retention_hours: float = 168
    row_group_rows: int = 32768
    zstd_level: int = 3
    bloom_fpp: float = 0.01
    threads: int = 0

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
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            setting = _BY_NAME[f.name]
            if setting.env in env and env[setting.env] != "":
                values[f.name] = _parse(setting, env[setting.env])
        values.update({k: v for k, v in overrides.items() if v is not None})
        unknown = set(values) - set(_BY_NAME)
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


def _parse(setting: Setting, text: str) -> Any:
    kind = type(setting.default)
    try:
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
    except ValueError as e:
        raise ConfigError(f"{setting.env}={text!r}: expected a {kind.__name__}") from e
    return text
