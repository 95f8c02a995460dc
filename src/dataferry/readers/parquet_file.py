"""Parquet files -> typed Arrow record batches, row group by row group; values that do
not fit their declared column go to a RejectLog, named by row group and row.

Parquet is typed, so a column is checked by what its type may hold: a widening (int32
values into a bigint column) casts whole, a narrowing (int64 values into an integer
column, a decimal with more scale, timestamps in nanoseconds into microseconds) is cast
with Arrow's safe cast and, only when that fails, walked value by value to find each
value that does not fit. Floats become numerics through their shortest decimal text
(0.1 is 0.1, never 0.1000000000000000055...). A column whose Parquet type cannot hold
the declared type at all (a date into an integer column) fails the file before any row
is read. String columns are converted as CSV values are (readers/convert.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..errors import InputError
from ..sources import SourceFile
from ..spec import Column, Dataset
from .convert import (
    Converted,
    cast_or_locate,
    check_year_one,
    convert_column,
    to_number,
    typed_batch,
)
from .rejects import RejectLog

__all__ = ["convert_typed", "read_parquet"]

BATCH_ROWS = 64 * 1024


def _family(t: pa.DataType) -> str:
    if pa.types.is_dictionary(t):  # pandas' categoricals, say: what the values are
        return _family(t.value_type)
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "string"
    if pa.types.is_integer(t):
        return "integer"
    if pa.types.is_floating(t):
        return "float"
    if pa.types.is_decimal(t):
        return "decimal"
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_date(t):
        return "date"
    if pa.types.is_timestamp(t):
        return "timestamp"
    if pa.types.is_null(t):
        return "null"
    return str(t)


# What each declared type may be read from, besides strings (parsed as CSV text is) and
# all-null columns.
_SOURCES = {
    "smallint": {"integer", "decimal", "float"},
    "integer": {"integer", "decimal", "float"},
    "bigint": {"integer", "decimal", "float"},
    "numeric": {"integer", "decimal", "float"},
    "real": {"integer", "decimal", "float"},
    "double": {"integer", "decimal", "float"},
    "boolean": {"boolean"},
    "date": {"date", "timestamp"},
    "timestamp": {"timestamp", "date"},
    "timestamptz": {"timestamp", "date"},
    "text": {"integer", "decimal", "boolean", "date"},
    "varchar": {"integer", "decimal", "boolean", "date"},
    "json": set(),
}


def convert_typed(arr: pa.Array, column: Column) -> Converted:
    """A typed Parquet column as ``column``'s type, flagging every value it cannot take."""
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    ltype = column.type
    family = _family(arr.type)
    if family == "string":
        return convert_column(arr.cast(pa.string()), column)
    if family == "null":
        return convert_column(pa.nulls(len(arr), pa.string()), column)
    label = str(ltype)
    if family == "float" and ltype.name in ("numeric", "text", "varchar"):
        return convert_column(arr.cast(pa.string()), column)
    if ltype.name in ("text", "varchar"):
        return convert_column(arr.cast(pa.string()), column)
    if ltype.int_range is not None or ltype.name in ("real", "double"):
        out = to_number(arr, column)
    else:
        out = cast_or_locate(arr, ltype.arrow(), label)
        check_year_one(out, arr)
    if not column.nullable and arr.null_count:
        for i in pc.indices_nonzero(pc.is_null(arr)).to_pylist():
            out.bad[i] = (None, "missing required value")
    return out


def _open(source: SourceFile) -> pq.ParquetFile:
    if source.compression is not None:
        raise InputError(
            str(source),
            f"a Parquet file cannot be read through {source.compression}: its footer needs "
            "random access (Parquet compresses its pages itself)",
        )
    local = source.on_disk()
    if local is None:  # an S3 object is fetched before it is read (sources.fetch_ahead)
        raise InputError(str(source), "a Parquet object is read from a local copy; none was made")
    try:
        # A page whose bytes changed decodes to other values without a word, unless its
        # CRC is checked: written by parquet-mr (Spark) by default, by pyarrow on request.
        return pq.ParquetFile(str(local), page_checksum_verification=True)
    except (pa.ArrowInvalid, OSError) as e:
        raise InputError(str(source), f"not a readable Parquet file: {e}") from None


def _check_schema(source: SourceFile, pf: pq.ParquetFile, ds: Dataset) -> None:
    schema = pf.schema_arrow
    present = set(schema.names)
    problems = []
    missing = [c for c in ds.columns if c not in present]
    extra = [n for n in schema.names if n not in ds.columns]
    if missing:
        problems.append(f"missing column(s) {', '.join(missing)}")
    if extra:
        problems.append(f"column(s) not in the spec: {', '.join(extra)}")
    for name, column in ds.columns.items():
        if name not in present:
            continue
        family = _family(schema.field(name).type)
        if family in ("string", "null") or family in _SOURCES.get(column.type.name, set()):
            continue
        problems.append(
            f"column {name} is {schema.field(name).type} in the file, which cannot hold "
            f"{column.type}"
        )
    if problems:
        raise InputError(str(source), "columns: " + "; ".join(problems))


def read_parquet(
    source: SourceFile | Path,
    ds: Dataset,
    log: RejectLog | None = None,
    expect: Callable[[int], None] | None = None,
    first_row: int = 0,
) -> Iterator[pa.RecordBatch]:
    """Yield typed batches (spec column order, plus ROW_COLUMN) of the rows that are
    valid, row group after row group. Without a ``log`` the first bad value is an
    InputError naming its row group and row."""
    source = SourceFile.of(source, ds.source.codec)
    if not source.exists():
        raise InputError(str(source), "no such file")
    strict = log is None
    log = log if log is not None else RejectLog(str(source), kind="parquet")
    with source.reading():
        pf = _open(source)
        _check_schema(source, pf, ds)
        meta = pf.metadata
        starts = [0]
        for g in range(meta.num_row_groups):
            starts.append(starts[-1] + meta.row_group(g).num_rows)
        if expect is not None:
            expect(meta.num_rows)
        log.begin(source, first_row, groups=starts[:-1])
        names = list(ds.columns)
        offset = first_row
        for g in range(meta.num_row_groups):
            for batch in pf.iter_batches(batch_size=BATCH_ROWS, row_groups=[g], columns=names):
                good = typed_batch(batch, ds, offset, log, convert_typed)
                offset += batch.num_rows
                log.next_row = offset
                if strict and len(log):
                    first = log.first()
                    assert first is not None
                    raise InputError(str(source), f"{log.locate(first)}: {first.reason}")
                if good.num_rows:
                    yield good
