"""Settings of the Dagster code location, declared once (as `ticklake.config.LakeConfig`'s are) and read
from ``TICKLAKE_*`` variables when the code location loads its definitions or a run starts, never at import.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from ticklake.config import Setting, between, read_env, setting, settings_of, validate_settings

PARTITION_FORMAT = "%Y-%m-%d-%H:%M"  # Dagster's hourly partition keys: 2022-01-07-06:00


@dataclass(frozen=True)
class PipelineSettings:
    """How the hourly assets are partitioned, triggered and wait for each other."""

    partitions_start: str = setting(
        "",
        "First hourly partition (UTC, YYYY-MM-DD-HH:MM); backfills reach back to it. Empty: midnight (UTC) of the"
        " first day the lake has data of, read when the code location loads (today for a lake without data).",
        lambda text: None if not text or _is_partition_key(text) else "expected YYYY-MM-DD-HH:MM, e.g. 2020-01-01-00:00",
    )
    schedule_minute: int = setting(
        10, "Minutes past the hour when the schedule materializes the hour that just closed.", between(0, 59)
    )
    sensor_interval: int = setting(60, "Seconds between two evaluations of each sensor (late data, catalog commits).", between(1))
    archive_older_than: str = setting(
        "7d",
        "Days that ended longer ago than this move to the cold tier when the daily archive runs.",
        lambda text: None if _is_duration(text) else "expected a duration such as 36h or 7d",
    )
    archive_cron: str = setting(
        "30 2 * * *",
        "When the daily archive runs (cron, UTC); it skips while TICKLAKE_COLD_URI is unset.",
        lambda text: None if len(text.split()) == 5 else "expected a cron expression of five fields",
    )
    lease_wait: float = setting(
        30.0,
        "Seconds to wait for another run's lease on the same partition before failing (the retry policy retries).",
        between(0),
    )
    backfill_hours_per_run: int = setting(
        168,
        "Hourly partitions a backfill puts in one run (compacted in parallel inside it); 1: a run per hour.",
        between(1),
    )

    def __post_init__(self) -> None:
        validate_settings(self)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> PipelineSettings:
        """Defaults, overridden by the TICKLAKE_* variables that are set and not empty."""
        return cls(**read_env(PIPELINE_SETTINGS, environ))


def _is_duration(text: str) -> bool:
    from ticklake.errors import ConfigError  # noqa: PLC0415
    from ticklake.maintenance.duration import parse_duration  # noqa: PLC0415

    try:
        parse_duration(text, "archive_older_than")
    except ConfigError:
        return False
    return True


def _is_partition_key(text: str) -> bool:
    try:
        datetime.strptime(text, PARTITION_FORMAT)
    except (TypeError, ValueError):
        return False
    return True


PIPELINE_SETTINGS: tuple[Setting, ...] = settings_of(PipelineSettings)
