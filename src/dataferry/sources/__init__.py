"""Where a dataset's rows come from: its files (local or in S3), found, ordered, fetched,
opened and decompressed.

Names are loaded on first use: the spec asks only what a name says (naming.py), and
S3's machinery is not imported for local files.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .discovery import dataset_files, source_files
    from .naming import COMPRESSIONS, compression_of, is_pattern, plain_suffix
    from .s3 import fetch_ahead, is_s3
    from .source_file import SourceFile

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

_WHERE = {
    "COMPRESSIONS": "naming",
    "compression_of": "naming",
    "plain_suffix": "naming",
    "SourceFile": "source_file",
    "dataset_files": "discovery",
    "is_pattern": "naming",
    "source_files": "discovery",
    "fetch_ahead": "s3",
    "is_s3": "s3",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
