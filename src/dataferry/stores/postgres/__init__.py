"""PostgreSQL (Amazon RDS in production): COPY in, merge on the primary key; read out as
Arrow through ADBC."""

from .arrow_stream import ArrowReader
from .connection import connect, connect_when_ready, translated, unusable
from .ddl import count, ensure_schema, exists, keys_unique, provision, table_ident
from .ledger import file_loads, history, last_loads, ok_loads, record_load
from .lock import writer_lock
from .read import read, snapshot
from .write import write

__all__ = [
    "ArrowReader",
    "connect",
    "connect_when_ready",
    "count",
    "ensure_schema",
    "exists",
    "file_loads",
    "history",
    "keys_unique",
    "last_loads",
    "ok_loads",
    "provision",
    "read",
    "record_load",
    "snapshot",
    "table_ident",
    "translated",
    "unusable",
    "write",
    "writer_lock",
]
