"""Warehouses: DuckDB (embedded default). Snowflake is configured in the spec but its writer
is not in this version: selecting it fails with a clear NotSupported error."""
