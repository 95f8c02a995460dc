"""What a file's name says: its compression and, under it, its format's suffix. Kept
apart (and light) because the spec asks it of every path it validates."""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["COMPRESSIONS", "compression_of", "is_pattern", "plain_suffix"]

_GLOB_CHARS = re.compile(r"[*?\[]")


def is_pattern(path: str) -> bool:
    """Whether a path is a glob (holds *, ? or [)."""
    return bool(_GLOB_CHARS.search(path))


# Each codec's file name endings; Arrow's codec names.
COMPRESSIONS: dict[str, tuple[str, ...]] = {
    "gzip": (".gz", ".gzip"),
    "zstd": (".zst", ".zstd"),
    "bz2": (".bz2",),
}


def compression_of(name: str) -> str | None:
    """The codec a file name's last suffix says, or None."""
    lowered = name.lower()
    for codec, endings in COMPRESSIONS.items():
        if lowered.endswith(endings):
            return codec
    return None


def plain_suffix(name: str) -> str:
    """The suffix that tells the format, under any compression suffix (".csv" of
    "orders.csv.gz")."""
    path = Path(name)
    if compression_of(name) is not None:
        path = path.with_suffix("")
    return path.suffix.lower()
