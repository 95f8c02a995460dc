"""CSV files -> typed Arrow record batches, streamed.

pyarrow's streaming CSV reader does the parsing (quotes, embedded delimiters and newlines,
CRLF) at C++ speed; columns are matched by header name, never by position. When pyarrow
rejects the file, the file is walked once more with Python's csv module to name the line.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv

from ..errors import InputError
from ..spec import CsvOptions, Dataset
from .convert import BadValue, convert_column

__all__ = ["ROW_COLUMN", "line_of_row", "read_csv"]

ROW_COLUMN = "_dataferry_row"  # 0-based data row index, to name lines in later errors
BLOCK_SIZE = 4 << 20


def _lines(path: Path, options: CsvOptions) -> Iterator[str]:
    """Decoded physical lines; a byte the encoding rejects is an error naming its line.

    Lines are decoded one by one (not in big chunks) so that the line number is exact.
    """
    encoding = options.encoding
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            if number == 1 and raw.startswith(codecs.BOM_UTF8) and "8" in encoding:
                raw = raw[len(codecs.BOM_UTF8) :]  # a BOM would glue onto the first name
            try:
                yield raw.decode(encoding)
            except UnicodeDecodeError as e:
                raise InputError(
                    str(path),
                    f"not valid {encoding}: {e.reason} (byte 0x{raw[e.start]:02x})",
                    line=number,
                ) from None


def _records(path: Path, options: CsvOptions) -> Iterator[tuple[int, list[str]]]:
    """(first line, fields) for each CSV record, as Python's csv module reads them."""
    reader = csv.reader(_lines(path, options), delimiter=options.delimiter, quotechar=options.quote)
    start = 1
    try:
        for record in reader:
            yield start, record
            start = reader.line_num + 1
    except csv.Error as e:
        raise InputError(str(path), str(e), line=start) from None


def _header(path: Path, ds: Dataset) -> list[str]:
    options = ds.source.csv
    if not options.header:
        return list(ds.columns)
    first = next(_records(path, options), None)
    header = first[1] if first else None
    if not header:
        raise InputError(str(path), "empty file: no header row", line=1)
    header = [h.strip() for h in header]
    missing = [c for c in ds.columns if c not in header]
    extra = [h for h in header if h not in ds.columns]
    dupes = sorted({h for h in header if header.count(h) > 1})
    problems = []
    if missing:
        problems.append(f"missing column(s) {', '.join(missing)}")
    if extra:
        problems.append(f"column(s) not in the spec: {', '.join(extra)}")
    if dupes:
        problems.append(f"repeated column(s) {', '.join(dupes)}")
    if problems:
        raise InputError(str(path), "header: " + "; ".join(problems), line=1)
    return header


def line_of_row(path: Path, options: CsvOptions, row: int) -> int:
    """The 1-based line where data row ``row`` (0-based) starts, counting quoted newlines."""
    skip = 1 if options.header else 0
    for i, (line, _) in enumerate(_records(path, options)):
        if i == row + skip:
            return line
    raise AssertionError(f"{path} has no data row {row}")  # pragma: no cover


def _diagnose(path: Path, ds: Dataset, ncols: int) -> InputError | None:
    """Walk the file with the csv module to find the first line pyarrow could not take."""
    try:
        for line, record in _records(path, ds.source.csv):
            if record and len(record) != ncols:
                return InputError(
                    str(path), f"expected {ncols} fields, found {len(record)}", line=line
                )
    except InputError as e:
        return e
    return None


def _open(
    path: Path, options: CsvOptions, header: list[str], on_invalid_row: Any
) -> pacsv.CSVStreamingReader:
    return pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(
            column_names=header,
            skip_rows=1 if options.header else 0,
            block_size=BLOCK_SIZE,
            encoding=options.encoding,
        ),
        parse_options=pacsv.ParseOptions(
            delimiter=options.delimiter,
            quote_char=options.quote,
            newlines_in_values=True,
            invalid_row_handler=on_invalid_row,
        ),
        convert_options=pacsv.ConvertOptions(
            column_types=dict.fromkeys(header, pa.string()),
            null_values=[options.null],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
        ),
    )


def read_csv(path: Path, ds: Dataset) -> Iterator[pa.RecordBatch]:
    """Yield typed batches in spec column order plus ROW_COLUMN; raise InputError on bad input."""
    options = ds.source.csv
    if not path.is_file():
        raise InputError(str(path), "no such file")
    header = _header(path, ds)
    ragged: list[int] = []

    def on_invalid_row(row: pacsv.InvalidRow) -> str:
        ragged.append(row.actual_columns)
        return "skip"

    try:
        reader = _open(path, options, header, on_invalid_row)
    except pa.ArrowInvalid as e:  # the first block is read on opening
        raise _diagnose(path, ds, len(header)) or InputError(str(path), str(e)) from None
    names = list(ds.columns)
    offset = 0
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            batch = None
        except pa.ArrowInvalid as e:
            raise _diagnose(path, ds, len(header)) or InputError(str(path), str(e)) from None
        if ragged:
            raise _diagnose(path, ds, len(header)) or InputError(
                str(path), f"a row has {ragged[0]} fields, expected {len(header)}"
            )
        if batch is None:
            return
        arrays = []
        try:
            for name in names:
                arrays.append(convert_column(batch.column(name), name, ds.columns[name]))
        except BadValue as bad:
            line = line_of_row(path, options, offset + bad.index)
            raise InputError(str(path), str(bad), line=line) from None
        rows = pa.array(range(offset, offset + batch.num_rows), pa.int64())
        yield pa.RecordBatch.from_arrays([*arrays, rows], names=[*names, ROW_COLUMN])
        offset += batch.num_rows
