"""Warehouses: DuckDB (a file, the default) and Snowflake (the optional connector), with
the same verbs: provision, merge, watermark, fingerprint, count, build_model, record_load,
last_loads."""

from typing import Any

# Set on a raw row when a full read no longer found it at the source (etl.deletes: soft).
DELETED_AT = "_dataferry_deleted_at"


def reconciled(expected: int | None, src: Any, raw: Any) -> str:
    """A merge's reconciliation that passed, as one line for the run report: ``src`` and
    ``raw`` are (rows, checksum) of the staged source and of those rows in the raw table."""
    counted = "" if expected is None else f"the source counted {expected:,}; "
    return (
        f"rows and values: {counted}{int(src[0]):,} arrived (checksum {src[1]}), the raw "
        f"table holds all {int(raw[0]):,} with the same values (checksum {raw[1]})"
    )
