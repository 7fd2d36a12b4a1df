"""Limits of `ticklake serve`, declared once (as `ticklake.config.LakeConfig`'s settings are) and read
from ``TICKLAKE_SERVE_*`` variables; the CLI's flags override them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ticklake.config import Setting, between, read_env, setting, settings_of, validate_settings


def _memory(text: str) -> str | None:
    number = text.strip().upper().rstrip("IB").rstrip("KMGT")
    return None if text == "" or number.replace(".", "", 1).isdigit() else "expected a size such as 2GB or 512MiB"


@dataclass(frozen=True)
class ServeSettings:
    """How much one server takes on at once, and how long and large one request may be."""

    serve_queries: int = setting(4, "Flight SQL queries that run at once; more wait for a free slot.", between(1, 256))
    serve_wait_seconds: float = setting(
        10.0, "Seconds a query waits for a free slot before it is refused as busy (UNAVAILABLE).", between(0)
    )
    serve_query_seconds: float = setting(
        300.0, "A query still running (or streaming) after this many seconds is cancelled and reported.", between(0, open=True)
    )
    serve_query_memory: str = setting(
        "", "Memory one query's connection may hold (DuckDB's syntax: 2GB); empty: DuckDB's default.", _memory
    )
    serve_statement_seconds: float = setting(
        600.0,
        "A prepared statement left idle this many seconds is dropped (a result never fetched goes at serve_query_seconds).",
        between(1),
    )
    serve_body_bytes: int = setting(
        64 * 2**20, "Largest HTTP request body (line protocol or JSON Lines) accepted; larger gets 413.", between(1)
    )
    serve_connections: int = setting(
        64, "HTTP connections served at once; more are answered 503 (clients retry).", between(1, 4096)
    )

    def __post_init__(self) -> None:
        validate_settings(self)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> ServeSettings:
        """Defaults, then TICKLAKE_SERVE_* variables, then explicit `overrides` (None: not given)."""
        values = read_env(SERVE_SETTINGS, environ)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


SERVE_SETTINGS: tuple[Setting, ...] = settings_of(ServeSettings)
