"""Warehouses: DuckDB (a file, the default) and Snowflake (the optional connector), with
the same verbs: provision, merge, watermark, fingerprint, count, build_model, record_load,
last_loads."""

# Set on a raw row when a full read no longer found it at the source (etl.deletes: soft).
DELETED_AT = "_dataferry_deleted_at"
