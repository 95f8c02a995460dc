"""Where a dataset's rows come from: its files, found, ordered, opened and decompressed."""

from __future__ import annotations

from .discovery import dataset_files, is_pattern, source_files
from .source_file import COMPRESSIONS, SourceFile, compression_of, plain_suffix

__all__ = [
    "COMPRESSIONS",
    "SourceFile",
    "compression_of",
    "dataset_files",
    "is_pattern",
    "plain_suffix",
    "source_files",
]
