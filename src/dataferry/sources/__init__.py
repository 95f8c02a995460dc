"""Where a dataset's rows come from: its files (local or in S3), found, ordered, fetched,
opened and decompressed."""

from __future__ import annotations

from .discovery import dataset_files, is_pattern, source_files
from .s3 import fetch_ahead, is_s3
from .source_file import COMPRESSIONS, SourceFile, compression_of, plain_suffix

__all__ = [
    "COMPRESSIONS",
    "SourceFile",
    "compression_of",
    "dataset_files",
    "fetch_ahead",
    "is_pattern",
    "is_s3",
    "plain_suffix",
    "source_files",
]
