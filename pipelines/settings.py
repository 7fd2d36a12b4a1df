"""Settings of the Dagster code location, declared once (as `ticklake.config.LakeConfig`'s are) and read
from ``TICKLAKE_*`` variables when the code location loads its definitions or a run starts, never at import.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from ticklake.config import Setting, read_env, setting, settings_of
from ticklake.errors import ConfigError

PARTITION_FORMAT = "%Y-%m-%d-%H:%M"  # Dagster's hourly partition keys: 2022-01-07-06:00


@dataclass(frozen=True)
class PipelineSettings:
    """How the hourly assets are partitioned, triggered and wait for each other."""

    partitions_start: str = setting(
        "2020-01-01-00:00", "First hourly partition (UTC, YYYY-MM-DD-HH:MM); backfills reach back to it."
    )
    schedule_minute: int = setting(10, "Minutes past the hour when the schedule materializes the hour that just closed.")
    sensor_interval: int = setting(60, "Seconds between two evaluations of the late-data sensor.")
    lease_wait: float = setting(
        30.0,
        "Seconds to wait for another run's lease on the same partition before failing (the retry policy retries).",
    )

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
        if self.lease_wait < 0:
            raise ConfigError(f"lease_wait must not be negative, got {self.lease_wait}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> PipelineSettings:
        """Defaults, overridden by the TICKLAKE_* variables that are set and not empty."""
        return cls(**read_env(PIPELINE_SETTINGS, environ))


PIPELINE_SETTINGS: tuple[Setting, ...] = settings_of(PipelineSettings)
