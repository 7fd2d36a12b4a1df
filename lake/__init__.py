"""ticklake: a lakehouse for market tick data (landing buffer, hourly compaction, SQLite catalog, DuckDB SQL).

The public API is re-exported lazily, so ``import ticklake`` (and the CLI) stays fast: a name's
module is imported on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "LakeConfig": "ticklake.config",
    "SETTINGS": "ticklake.config",
    "LakeError": "ticklake.errors",
    "TicklakeError": "ticklake.errors",
    "ConfigError": "ticklake.errors",
    "StorageError": "ticklake.errors",
    "SchemaError": "ticklake.errors",
    "NotFoundError": "ticklake.errors",
    "QueryError": "ticklake.errors",
    "LandingWriter": "ticklake.landing.writer",
    "ingest_files": "ticklake.landing.ingest",
    "compact_hour": "ticklake.build.compaction",
    "compact_all": "ticklake.build.compaction",
    "compact_hours": "ticklake.build.compaction",
    "pending_hours": "ticklake.build.compaction",
    "build_bars_1m": "ticklake.build.rollups",
    "check_hour": "ticklake.build.health",
    "waiting_hours": "ticklake.landing.arrivals",
    "connect": "ticklake.query.connection",
    "LakeConnection": "ticklake.query.connection",
    "lake_cost": "ticklake.cost",
    "query_cost": "ticklake.cost",
    "has_contract": "ticklake.status",
    "lake_status": "ticklake.status",
    "parse_hour": "ticklake.storage.layout",
    "run_demo": "ticklake.demo.run",
    "to_dask": "ticklake.interop.dataframes",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'ticklake' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return __all__
