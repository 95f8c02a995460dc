"""Readers turn data files into typed Arrow record batches, or say exactly what is wrong.

Names are loaded on first use: JSON loads need neither pyarrow nor the CSV reader.
``read_batches`` reads a dataset's files (CSV or Parquet) as one stream.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .batches import read_batches, reject_kind
    from .csv_file import ROW_COLUMN, csv_records, read_csv
    from .json_file import read_json_records
    from .parquet_file import read_parquet
    from .rejects import Reject, RejectLog

__all__ = [
    "ROW_COLUMN",
    "Reject",
    "RejectLog",
    "csv_records",
    "read_batches",
    "read_csv",
    "read_json_records",
    "read_parquet",
    "reject_kind",
]

_WHERE = {
    "ROW_COLUMN": "csv_file",
    "read_csv": "csv_file",
    "csv_records": "csv_file",
    "read_batches": "batches",
    "reject_kind": "batches",
    "read_parquet": "parquet_file",
    "read_json_records": "json_file",
    "Reject": "rejects",
    "RejectLog": "rejects",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
