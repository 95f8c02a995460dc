"""Stream a table out with COPY TO STDOUT, parsed by Arrow into typed record batches.

Never a whole-table fetch: memory holds one block of CSV and one batch at a time.
"""

from __future__ import annotations

import io
import itertools
import os
from collections.abc import Iterator
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
from psycopg import sql

from ...background import interleaved
from ...connections import PostgresTarget
from ...spec import Dataset
from .connection import connect, translated
from .copy_out import copy_out
from .ddl import row_filter, table_ident

__all__ = ["read", "read_parallel"]

# Against a server across a network, several COPY streams overlap their round trips and
# the server formats each range in its own backend. Against a local server they only
# compete with it for the same cores: 1M rows took 1.15-1.25 s in one stream and 1.26 s
# in two on the 2-core development machine, so a local server gets one. Below
# PARALLEL_MIN_ROWS a second connection costs more than it saves.
DEFAULT_PARTS = max(2, min(4, os.cpu_count() or 2))
PARALLEL_MIN_ROWS = 200_000

BLOCK_SIZE = 4 << 20


class _CopyStream(io.RawIOBase):
    """A read-only file over COPY's chunks, for Arrow's streaming CSV reader.

    libpq hands COPY data over one row at a time (about 50 bytes for an orders row), so
    ``read`` gathers as many rows as asked for in one call: a file that returned a row
    per call cost more than the COPY and the CSV parsing together.
    """

    def __init__(self, chunks: Iterator[bytes | bytearray | memoryview]) -> None:
        self._chunks = chunks
        self._buffer = bytearray()

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        # bytearray +=: holding libpq's row buffers in a list until a join was twice slower
        buffer = self._buffer
        limit = -1 if size is None else size
        if limit < 0 or len(buffer) < limit:
            for chunk in self._chunks:
                buffer += chunk
                if 0 <= limit <= len(buffer):
                    break
        if 0 <= limit < len(buffer):
            data = bytes(buffer[:limit])
            del buffer[:limit]
        else:
            data = bytes(buffer)
            buffer.clear()
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def read(
    conn: psycopg.Connection,
    ds: Dataset,
    since: Any = None,
    key_range: tuple[int, int] | None = None,
) -> Iterator[pa.RecordBatch]:
    """Yield the dataset's table (its rows from ``since`` on, by the dataset's cursor
    column, and within ``key_range`` of its first key column, when given) as record
    batches typed by the spec."""
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
        sql.SQL(", ").join(select), table_ident(ds), row_filter(ds, since, key_range)
    )
    with translated(f"reading {ds.target.schema_}.{ds.target.table}"):
        chunks = copy_out(conn, stmt.as_bytes(conn))
        first = next(chunks, None)
        if first is None:
            return  # an empty table: no CSV at all, which Arrow's reader refuses
        reader = pacsv.open_csv(
            _CopyStream(itertools.chain([first], chunks)),
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


def read_parallel(
    conn: psycopg.Connection,
    target: PostgresTarget,
    ds: Dataset,
    since: Any = None,
    rows: int | None = None,
    parts: int | None = None,
) -> Iterator[pa.RecordBatch]:
    """``read``, split into ``parts`` ranges of the first key column, each read by its own
    connection and thread, all in the snapshot of ``conn``'s transaction (exported with
    pg_export_snapshot), so together they see exactly what one read in ``conn`` would.
    ``conn`` must be in a REPEATABLE READ transaction. Falls back to one read when the
    key is not an integer, the caller counted too few ``rows`` to be worth it, or the
    server is local (``parts`` unset)."""
    if parts is None:
        parts = 1 if target.local else DEFAULT_PARTS
    key = ds.primary_key[0]
    few = rows is not None and rows < PARALLEL_MIN_ROWS
    if parts < 2 or few or ds.columns[key].type.int_range is None:
        yield from read(conn, ds, since)
        return
    row = conn.execute(
        sql.SQL("SELECT min({k}), max({k}) FROM {t}{w}").format(
            k=sql.Identifier(key), t=table_ident(ds), w=row_filter(ds, since)
        )
    ).fetchone()
    assert row is not None
    lo, hi = row
    if lo is None:
        return
    snapshot = conn.execute("SELECT pg_export_snapshot()").fetchone()
    assert snapshot is not None
    step = (hi - lo) // parts + 1
    ranges = [(lo + n * step, min(lo + (n + 1) * step, hi + 1)) for n in range(parts)]

    def part(key_range: tuple[int, int]) -> Iterator[pa.RecordBatch]:
        with connect(target) as c, c.transaction():
            c.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            c.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot[0])))
            yield from read(c, ds, since, key_range)

    yield from interleaved([part(r) for r in ranges if r[0] < r[1]])
