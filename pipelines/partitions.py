"""Hourly partitions by event hour (UTC), and conversions between partition keys and lake hours."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from dagster import HourlyPartitionsDefinition

from ticklake.config import LakeConfig
from ticklake.errors import TicklakeError
from ticklake.pipelines.settings import PARTITION_FORMAT
from ticklake.status import first_hour
from ticklake.storage.layout import HOUR_US


def hourly_partitions(start: str) -> HourlyPartitionsDefinition:
    """One partition per UTC event hour from `start` (``YYYY-MM-DD-HH:MM``) to the last closed hour."""
    return HourlyPartitionsDefinition(start_date=start, timezone="UTC", fmt=PARTITION_FORMAT)


def lake_start(config: LakeConfig, now: datetime | None = None) -> str:
    """The first partition key for the lake's data: midnight (UTC) of the first day it has ticks of
    (committed or landed), else of today (`now`).

    Midnight rather than the first hour, so a day's hours are always there to backfill together. A
    lake that cannot be read now (locked past the timeout, damaged) gets today, with a warning in the
    code location's log: a code location that does not load would hide the rest of Dagster too.
    """
    try:
        hour = first_hour(config)
    except TicklakeError as e:
        logging.getLogger(__name__).warning(f"partitions start today: cannot find where the lake's data starts ({e})")
        hour = None
    start = datetime.fromtimestamp(hour * 3600, UTC) if hour is not None else (now or datetime.now(UTC))
    return start.astimezone(UTC).strftime("%Y-%m-%d-00:00")


def partition_hour(key: str) -> int:
    """The lake's event hour (hours since the epoch) of a partition key.

    >>> partition_hour("2022-01-07-05:00")
    455981
    """
    start = datetime.strptime(key, PARTITION_FORMAT).replace(tzinfo=UTC)
    return int(start.timestamp()) * 1_000_000 // HOUR_US


def partition_key(hour: int) -> str:
    """The partition key of an event hour.

    >>> partition_key(455981)
    '2022-01-07-05:00'
    """
    return datetime.fromtimestamp(hour * 3600, UTC).strftime(PARTITION_FORMAT)
