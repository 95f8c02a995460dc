"""DynamoDB: tables from the spec, validated items through BatchWriteItem, paginated Scan."""

from typing import Any

from .codec import ItemCodec
from .connection import client, probe
from .ledger import last_loads, ok_loads, record_load
from .provision import count, provision
from .write import write

__all__ = [
    "ItemCodec",
    "client",
    "count",
    "last_loads",
    "ok_loads",
    "probe",
    "provision",
    "read",
    "read_columns",
    "record_load",
    "write",
]


def __getattr__(name: str) -> Any:
    # The Scan reader builds Arrow batches: import pyarrow only when the etl reads.
    if name in ("read", "read_columns"):
        from . import scan as module

        return module.read if name == "read" else module.columns
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
