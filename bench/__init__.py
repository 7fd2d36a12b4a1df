"""The benchmark suite: ticklake against DuckDB over Hive Parquet, DuckLake, Delta Lake and Iceberg.

Run on demand (``python -m bench --scale S``), never as timed assertions in tests.
"""
