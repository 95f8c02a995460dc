"""PostgreSQL (Amazon RDS in production): COPY in, merge on the primary key, COPY out."""

from .connection import connect, probe
from .ddl import count, provision, table_ident
from .ledger import last_loads, ok_loads, record_load
from .read import read, read_parallel
from .write import write

__all__ = [
    "connect",
    "count",
    "last_loads",
    "ok_loads",
    "probe",
    "provision",
    "read",
    "read_parallel",
    "record_load",
    "table_ident",
    "write",
]
