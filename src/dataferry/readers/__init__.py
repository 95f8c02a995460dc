"""Readers turn data files into typed Arrow record batches, or say exactly what is wrong."""

from .csv_file import ROW_COLUMN, read_csv
from .json_file import read_json_records
from .rejects import Reject, RejectLog

__all__ = ["ROW_COLUMN", "Reject", "RejectLog", "read_csv", "read_json_records"]
