"""Where things live below the lake root, and the event-hour keys that name partitions.

<root>/catalog.sqlite
<root>/landing/ticks/date=YYYY-MM-DD/hour=HH/<writer>-<seq>.jsonl   sealed segments
<root>/landing/_quarantine/<source>.jsonl                           rejected lines, with reasons
<root>/landing/_consumed/...                                        consumed segments, kept for retention
<root>/landing/_conflicts/...                                       segments set aside: a consumed name, other content
<root>/landing/_checkpoints/<fingerprint>.json                      how far `ticklake ingest` read each source
<root>/lake/<dataset>/<key>=<value>/.../<unique>.parquet            data files
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ticklake.errors import ConfigError

HOUR_US = 3_600_000_000
_HOUR_RE = re.compile(r"^(\d{4}-\d{2}-\d{2})[T ](\d{2})(?::00(?::00)?)?(?:Z|\+00:?00)?$")


def hour_of(us: int) -> int:
    """The event hour (hours since the epoch) of a timestamp in epoch microseconds.

    >>> hour_of(1641531600123456)
    455981
    """
    return us // HOUR_US


def hour_key(hour: int) -> str:
    """The text key of an event hour.

    >>> hour_key(455981)
    '2022-01-07T05'
    """
    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(hours=hour)).strftime("%Y-%m-%dT%H")


def parse_hour(text: str) -> int:
    """An event hour from ``YYYY-MM-DDTHH`` (also ``YYYY-MM-DD HH``, ``...THH:00``, ``...THH:00:00Z``).

    >>> parse_hour("2022-01-07T05"), parse_hour("2022-01-07 05:00")
    (455981, 455981)
    """
    m = _HOUR_RE.match(text.strip())
    if not m:
        raise ConfigError(f"hour {text!r}: expected YYYY-MM-DDTHH, e.g. 2022-01-07T05")
    try:
        start = datetime.fromisoformat(f"{m.group(1)}T{m.group(2)}:00:00+00:00")
    except ValueError as e:
        raise ConfigError(f"hour {text!r}: {e}") from e
    if not 1970 <= start.year <= 2099:  # the years a tick's timestamp may have
        raise ConfigError(f"hour {text!r}: outside 1970-2099, the years ticks may have")
    return int(start.timestamp()) // 3600


def hour_partition(hour: int) -> dict[str, object]:
    """The ``date`` and ``hour`` partition values of an event hour.

    >>> hour_partition(455981)
    {'date': '2022-01-07', 'hour': 5}
    """
    key = hour_key(hour)
    return {"date": key[:10], "hour": int(key[11:13])}


def partition_path(values: dict[str, object]) -> str:
    """Hive path of partition values; hours are zero-padded.

    >>> partition_path({"tick_type": "last", "date": "2022-01-07", "hour": 5})
    'tick_type=last/date=2022-01-07/hour=05'
    """
    return "/".join(f"{k}={v:02d}" if k == "hour" and isinstance(v, int) else f"{k}={v}" for k, v in values.items())


def landing_dir(root: Path) -> Path:
    """The landing buffer of the ticks dataset."""
    return root / "landing" / "ticks"


def landing_hour_dir(root: Path, hour: int) -> Path:
    """The folder holding one event hour's landing segments.

    >>> landing_hour_dir(Path("/lake"), 455981).as_posix()
    '/lake/landing/ticks/date=2022-01-07/hour=05'
    """
    return landing_dir(root) / partition_path(hour_partition(hour))


def quarantine_dir(root: Path) -> Path:
    """Where rejected lines are kept, one JSONL file per source."""
    return root / "landing" / "_quarantine"


def consumed_dir(root: Path) -> Path:
    """Where consumed segments wait out their retention."""
    return root / "landing" / "_consumed"


def conflicts_dir(root: Path) -> Path:
    """Where compaction sets aside a segment whose name was consumed already with other content."""
    return root / "landing" / "_conflicts"


def checkpoints_dir(root: Path) -> Path:
    """Where `ticklake ingest` keeps one checkpoint per source (see `ticklake.landing.checkpoints`)."""
    return root / "landing" / "_checkpoints"


_DATE_DIR = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")
_HOUR_DIR = re.compile(r"^hour=(\d{2})$")


def landing_folder_hour(date_dir: str, hour_dir: str) -> int | None:
    """The event hour a landing folder pair names, or None when it is not exactly an hour partition.

    >>> landing_folder_hour("date=2022-01-07", "hour=05")
    455981
    >>> [landing_folder_hour(d, h) for d, h in [("date=2022-01-07", "hour=5"), ("date=2022-13-45", "hour=05"),
    ...  ("date=2022-01-07", "hour=05.bak"), ("date=2022-01-07", "hour=24")]]
    [None, None, None, None]
    """
    date, hour = _DATE_DIR.match(date_dir), _HOUR_DIR.match(hour_dir)
    if date is None or hour is None or int(hour.group(1)) > 23:
        return None
    try:
        start = datetime.fromisoformat(f"{date.group(1)}T{hour.group(1)}:00:00+00:00")
    except ValueError:
        return None
    return int(start.timestamp()) // 3600


def hour_from_landing_path(path: Path) -> int:
    """The event hour a segment's folder names.

    >>> hour_from_landing_path(Path("/x/date=2022-01-07/hour=05/w-1.jsonl"))
    455981
    """
    date = path.parent.parent.name.removeprefix("date=")
    hour = path.parent.name.removeprefix("hour=")
    return parse_hour(f"{date}T{hour}")
