"""Durations as people type them for maintenance: ``0s``, ``90m``, ``36h``, ``7d``."""

from __future__ import annotations

import re

from ticklake.errors import ConfigError

FORMS = "a whole number followed by s, m, h or d (e.g. 0s, 90m, 36h, 7d)"
_DURATION = re.compile(r"([0-9]+)([smhd])")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_LONGEST = 36500 * 86400  # a hundred years: anything longer keeps everything, and overflows dates


def parse_duration(text: str | None, what: str = "duration") -> float:
    """Seconds in `text`; a missing or garbled one is refused with the accepted forms.

    >>> parse_duration("0s"), parse_duration("90m"), parse_duration("36h"), parse_duration("7d")
    (0.0, 5400.0, 129600.0, 604800.0)
    >>> parse_duration("7 days", "--older-than")
    Traceback (most recent call last):
    ticklake.errors.ConfigError: --older-than '7 days': expected a whole number followed by s, m, h or d (e.g. 0s, 90m, 36h, 7d)
    """
    if text is None:
        raise ConfigError(f"{what} missing: expected {FORMS}")
    m = _DURATION.fullmatch(text)
    if m is None or len(m.group(1)) > 12:
        raise ConfigError(f"{what} {text!r}: expected {FORMS}")
    seconds = float(int(m.group(1)) * _SECONDS[m.group(2)])
    if seconds > _LONGEST:
        raise ConfigError(f"{what} {text!r}: longer than the lake can be old (at most 36500d)")
    return seconds
