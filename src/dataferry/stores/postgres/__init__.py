"""PostgreSQL (Amazon RDS in production): COPY in, merge on the primary key; read out as
Arrow through ADBC."""

from typing import TYPE_CHECKING, Any

from .connection import connect, connect_when_ready, translated, unusable
from .ddl import count, ensure_schema, exists, keys_unique, provision, table_ident
from .ledger import file_loads, history, last_loads, ok_loads, record_load
from .lock import writer_lock
from .write import write

if TYPE_CHECKING:
    from .arrow_stream import ArrowReader
    from .reading import read, snapshot

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


def __getattr__(name: str) -> Any:
    # The etl's reading side (ADBC's driver manager and driver): not loaded for a load.
    if name == "ArrowReader":
        from .arrow_stream import ArrowReader

        return ArrowReader
    if name in ("read", "snapshot"):
        from . import reading

        return getattr(reading, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
