"""Sources: `sources` is the package's face (resolve, open and fingerprint the configured source);
behind it, one reader module per kind of source.

Every reader returns a DuckDB relation and raises `BadInputError` with one line naming the source
and the problem. Files are read by DuckDB itself (CSV, Parquet, JSON); Excel and databases are read
by a Python driver into Arrow and copied into a DuckDB temporary table, because the DuckDB
extensions for them download at run time (see docs/decisions/0001-duckdb-extensions-offline.md).
"""
