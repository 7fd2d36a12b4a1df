"""Hourly partitions by event hour (UTC), and conversions between partition keys and lake hours."""

from __future__ import annotations

from datetime import UTC, datetime

from dagster import HourlyPartitionsDefinition

from ticklake.pipelines.settings import PARTITION_FORMAT
from ticklake.storage.layout import HOUR_US


def hourly_partitions(start: str) -> HourlyPartitionsDefinition:
    """One partition per UTC event hour from `start` (``YYYY-MM-DD-HH:MM``) to the last closed hour."""
    return HourlyPartitionsDefinition(start_date=start, timezone="UTC", fmt=PARTITION_FORMAT)


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
