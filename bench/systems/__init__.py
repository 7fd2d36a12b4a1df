"""One module per system under test, each with a `System` subclass registered in `SYSTEMS`."""

from __future__ import annotations

import importlib

from bench.systems.base import System

# name -> "module:Class"; peers import their libraries lazily, so a missing extra only skips that peer.
SYSTEMS = {
    "ticklake": "bench.systems.ticklake:TicklakeSystem",
    "duckdb-hive": "bench.systems.rawduckdb:RawDuckDBSystem",
    "ducklake": "bench.systems.ducklake:DuckLakeSystem",
    "delta": "bench.systems.delta:DeltaSystem",
    "iceberg": "bench.systems.iceberg:IcebergSystem",
}


def load_system(name: str) -> type[System]:
    """The System class registered as `name`."""
    module, cls = SYSTEMS[name].split(":")
    system: type[System] = getattr(importlib.import_module(module), cls)
    return system
