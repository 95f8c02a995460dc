"""DynamoDB: tables from the spec, validated items through BatchWriteItem, paginated Scan."""

from .codec import ItemCodec
from .connection import client, probe
from .ledger import last_loads, ok_loads, record_load
from .provision import count, provision
from .read import read
from .read import schema as read_schema
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
    "read_schema",
    "record_load",
    "write",
]
