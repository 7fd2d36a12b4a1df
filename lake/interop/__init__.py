"""The lake as other engines read it: Apache Iceberg tables over the lake's own Parquet files, and
Dask DataFrames over the files the catalog cannot rule out."""
