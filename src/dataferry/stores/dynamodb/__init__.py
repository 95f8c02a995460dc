"""DynamoDB: tables from the spec, validated items through BatchWriteItem, paginated Scan."""

from typing import Any

from .codec import ItemCodec, wire_from_json, wire_json
from .connection import client, client_when_ready, s3_client
from .ledger import file_loads, history, last_loads, ok_loads, record_load
from .lock import writer_lock
from .provision import count, count_exactly, provision, size_bytes
from .write import BatchRefused, WriteResult, write

__all__ = [
    "BatchRefused",
    "ItemCodec",
    "WriteResult",
    "client",
    "client_when_ready",
    "count",
    "count_exactly",
    "export_table",
    "file_loads",
    "history",
    "import_new_table",
    "last_loads",
    "ok_loads",
    "provision",
    "read",
    "read_columns",
    "record_load",
    "s3_client",
    "size_bytes",
    "wire_from_json",
    "wire_json",
    "write",
    "writer_lock",
]


def __getattr__(name: str) -> Any:
    # The Scan reader builds Arrow batches: import pyarrow only when the etl reads.
    if name in ("read", "read_columns"):
        from . import scan as module

        return module.read if name == "read" else module.columns
    if name == "export_table":
        from .export import export_table

        return export_table
    if name == "import_new_table":
        from .bulk_import import import_new_table

        return import_new_table
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
