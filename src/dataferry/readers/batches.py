"""A dataset's files as one stream of typed batches, whatever their format."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pyarrow as pa

from ..sources import SourceFile, fetch_ahead
from ..spec import Dataset
from .rejects import RejectLog

__all__ = ["read_batches", "reject_kind"]


def reject_kind(ds: Dataset) -> str:
    """The rejects file's layout for the dataset's format: csv, parquet or json."""
    fmt = ds.source.file_format
    return "parquet" if fmt == "parquet" else ("json" if fmt in ("json", "jsonl") else "csv")


def read_batches(
    files: list[SourceFile],
    ds: Dataset,
    log: RejectLog,
    expect: Callable[[int], None] | None = None,
) -> Iterator[pa.RecordBatch]:
    """The valid rows of every file in turn (CSV or Parquet), their row indexes running
    on from one file to the next; ``expect`` is told the rows of the files seen so far."""
    if ds.source.file_format == "parquet":
        from .parquet_file import read_parquet as read_one
    else:
        from .csv_file import read_csv as read_one
    expected = 0

    def more(n: int) -> None:
        nonlocal expected
        expected += n
        if expect is not None:
            expect(expected)

    for source in fetch_ahead(files):
        # the next file's rows come after every row of this one, kept or left out
        yield from read_one(source, ds, log, more, log.next_row)
