"""Settings of the Dagster code location, declared once (like `ticklake.config.SETTINGS`) and read
from ``TICKLAKE_*`` variables when the code location loads its definitions, never at import.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from ticklake.config import Setting
from ticklake.errors import ConfigError

PARTITION_FORMAT = "%Y-%m-%d-%H:%M"  # Dagster's hourly partition keys: 2022-01-07-06:00

PIPELINE_SETTINGS: tuple[Setting, ...] = (
    Setting(
        "partitions_start", "2020-01-01-00:00", "First hourly partition (UTC, YYYY-MM-DD-HH:MM); backfills reach back to it."
    ),
    Setting("schedule_minute", 10, "Minutes past the hour when the schedule materializes the hour that just closed."),
    Setting("sensor_interval", 60, "Seconds between two evaluations of the late-data sensor."),
)
_BY_NAME = {s.name: s for s in PIPELINE_SETTINGS}


@dataclass(frozen=True)
class PipelineSettings:
    """How the hourly assets are partitioned and triggered."""

    partitions_start: str = "2020-01-01-00:00"
    schedule_minute: int = 10
    sensor_interval: int = 60

    def __post_init__(self) -> None:
        try:
            datetime.strptime(self.partitions_start, PARTITION_FORMAT)
        except ValueError as e:
            raise ConfigError(
                f"partitions_start {self.partitions_start!r}: expected YYYY-MM-DD-HH:MM, e.g. 2020-01-01-00:00"
            ) from e
        if not 0 <= self.schedule_minute <= 59:
            raise ConfigError(f"schedule_minute must be between 0 and 59, got {self.schedule_minute}")
        if self.sensor_interval < 1:
            raise ConfigError(f"sensor_interval must be at least 1 second, got {self.sensor_interval}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> PipelineSettings:
        """Defaults, overridden by the TICKLAKE_* variables that are set and not empty."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            setting = _BY_NAME[f.name]
            text = env.get(setting.env, "")
            if text == "":
                continue
            if isinstance(setting.default, int):
                try:
                    values[f.name] = int(text)
                except ValueError as e:
                    raise ConfigError(f"{setting.env}={text!r}: expected an integer") from e
            else:
                values[f.name] = text
        return cls(**values)
