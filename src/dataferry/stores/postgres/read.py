"""Stream a table out with COPY TO STDOUT, parsed by Arrow into typed record batches.

Never a whole-table fetch: memory holds one block of CSV and one batch at a time.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterator
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
from psycopg import sql

from ...spec import Dataset
from .connection import translated
from .ddl import since_clause, table_ident

__all__ = ["read"]

BLOCK_SIZE = 4 << 20


class _CopyStream(io.RawIOBase):
    """A read-only file over COPY's chunks, for Arrow's streaming CSV reader."""

    def __init__(self, chunks: Iterator[bytes | bytearray | memoryview]) -> None:
        self._chunks = chunks
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = bytes(chunk)
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


def read(conn: psycopg.Connection, ds: Dataset, since: Any = None) -> Iterator[pa.RecordBatch]:
    """Yield the dataset's table (its rows from ``since`` on, by the dataset's cursor
    column, when given) as record batches typed by the spec."""
    names = list(ds.columns)
    select: list[sql.Composable] = []
    read_types: dict[str, pa.DataType] = {}
    for name, col in ds.columns.items():
        if col.type.name == "timestamptz":
            # PostgreSQL prints offsets as +00, which Arrow does not parse: export UTC wall time.
            select.append(sql.SQL("({} AT TIME ZONE 'UTC')").format(sql.Identifier(name)))
            read_types[name] = pa.timestamp("us")
        else:
            select.append(sql.Identifier(name))
            read_types[name] = col.type.arrow()
    stmt = sql.SQL("COPY (SELECT {} FROM {}{}) TO STDOUT (FORMAT csv)").format(
        sql.SQL(", ").join(select), table_ident(ds), since_clause(ds, since)
    )
    with (
        translated(f"reading {ds.target.schema_}.{ds.target.table}"),
        conn.cursor() as cur,
        cur.copy(stmt) as copy,
    ):
        chunks = iter(copy)
        first = next(chunks, None)
        if first is None:
            return  # an empty table: no CSV at all, which Arrow's reader refuses
        reader = pacsv.open_csv(
            io.BufferedReader(_CopyStream(itertools.chain([first], chunks)), buffer_size=1 << 20),
            read_options=pacsv.ReadOptions(
                column_names=names, block_size=BLOCK_SIZE, use_threads=False
            ),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types=read_types,
                strings_can_be_null=True,
                quoted_strings_can_be_null=False,
                true_values=["t"],
                false_values=["f"],
            ),
        )
        for batch in reader:
            arrays = [
                batch.column(n).cast(ds.columns[n].type.arrow())
                if ds.columns[n].type.name == "timestamptz"
                else batch.column(n)
                for n in names
            ]
            yield pa.RecordBatch.from_arrays(arrays, names=names)
