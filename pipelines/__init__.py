"""The Dagster code location (hourly compaction as partitioned assets) — it calls `lake`, never the reverse."""
