"""Warehouses: DuckDB (a file, the default) and Snowflake (the optional connector), with
the same verbs: provision, merge, watermark, fingerprint, count, build_model, record_load,
last_loads."""
