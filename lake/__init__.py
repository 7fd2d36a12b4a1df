"""ticklake: a lakehouse for market tick data (landing buffer, hourly compaction, SQLite catalog, DuckDB SQL).

The public API is re-exported lazily, so ``import lake`` (and the CLI) stays fast: a name's
module is imported on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "LakeConfig": "lake.config",
    "SETTINGS": "lake.config",
    "LakeError": "lake.errors",
    "TicklakeError": "lake.errors",
    "ConfigError": "lake.errors",
    "StorageError": "lake.errors",
    "SchemaError": "lake.errors",
    "NotFoundError": "lake.errors",
    "QueryError": "lake.errors",
    "LandingWriter": "lake.landing",
    "ingest_files": "lake.ingest",
    "compact_hour": "lake.compaction",
    "compact_all": "lake.compaction",
    "pending_hours": "lake.compaction",
    "build_bars_1m": "lake.rollups",
    "check_hour": "lake.checks",
    "waiting_hours": "lake.arrivals",
    "connect": "lake.query",
    "LakeConnection": "lake.query",
    "has_contract": "lake.inventory",
    "lake_status": "lake.inventory",
    "parse_hour": "lake.layout",
    "run_demo": "lake.demo",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'lake' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return __all__
