"""Read a dataset's table as Arrow record batches typed by the spec, all in one snapshot.

The rows travel as PostgreSQL's binary COPY, decoded by ADBC's driver (arrow_stream.py):
never a whole-table fetch, memory holds a batch or two. Large tables on a remote server
are split into key ranges read in parallel, each by a connection of its own that shares
the caller's snapshot.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Generator, Iterator
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
from psycopg import sql

from ...background import interleaved
from ...connections import PostgresTarget
from ...errors import TargetError
from ...spec import Dataset
from ...types import LogicalType
from .arrow_stream import ArrowReader, stream
from .connection import translated
from .ddl import column_types, row_filter, table_ident

__all__ = ["read", "streams"]

# Against a server across a network, several streams overlap their round trips and the
# server encodes each range in its own backend. Against a local server they compete with
# it for the same cores, so a server on this machine gets one, unless its measured round
# trip says the connection crosses a network after all (an SSH tunnel or a proxy on a
# loopback port): through 3 ms, two streams read 1M orders in 0.61-0.66 s against
# 0.68-0.70 s for one (bench/README.md). Below PARALLEL_MIN_ROWS a second connection
# costs more than it saves.
DEFAULT_PARTS = max(2, min(4, os.cpu_count() or 2))
PARALLEL_MIN_ROWS = 200_000
# A Unix socket or loopback answers in tens of microseconds; a network in a millisecond
# or more (within an availability zone, a few hundred microseconds).
REMOTE_ROUND_TRIP_S = 0.0005
# The largest precision whose unscaled values fit a bigint (below 2**63).
_SCALED_MAX_PRECISION = 18
_NAN_CAST = "cannot convert NaN to bigint"  # PostgreSQL's words for that cast of a NaN
# PostgreSQL's earliest date and timestamp (4714-11-24 BC), as days and microseconds
# since 1970. The driver turns 'infinity' and '-infinity' into values far below them.
_EARLIEST = {
    "date": -2_440_588,
    "timestamp": -210_866_803_200_000_000,
    "timestamptz": -210_866_803_200_000_000,
}


class _Column:
    """How one column is selected and turned back into the spec's Arrow type."""

    def __init__(self, name: str, want: LogicalType, have: LogicalType | None) -> None:
        self.name = name
        self.arrow = want.arrow()
        self.earliest = _EARLIEST.get(want.name)
        # A numeric column declared exactly as the spec says, and small enough, travels as
        # its unscaled integer: the driver spells numerics out as text, which took longer
        # than the rest of the read. Any other numeric comes as text and is cast by Arrow,
        # which refuses to drop digits.
        self.scale = None
        if (
            want.name == "numeric"
            and have == want
            and want.precision is not None
            and want.precision <= _SCALED_MAX_PRECISION
        ):
            self.scale = want.scale or 0

    def select(self) -> sql.Composable:
        ident = sql.Identifier(self.name)
        if self.scale is None:
            return ident
        return sql.SQL("({} * {})::int8 AS {}").format(ident, sql.Literal(10**self.scale), ident)

    def restore(self, array: pa.Array) -> pa.Array:
        if isinstance(array.type, pa.BaseExtensionType):  # json, and numeric as text
            array = array.storage
        if self.scale is not None:
            # The unscaled integers as decimal(19,0), whose buffer is read as the spec's
            # decimal(p,s): the same 128-bit integers, the scale applied without arithmetic.
            unscaled = array.cast(pa.decimal128(19, 0))
            return pa.Array.from_buffers(
                self.arrow, len(unscaled), unscaled.buffers(), unscaled.null_count, unscaled.offset
            )
        if array.type != self.arrow:
            array = array.cast(self.arrow)  # a safe cast: overflow or lost digits raise
        return array

    def infinite_at(self, array: pa.Array) -> int | None:
        """The index of the first infinite date or timestamp in ``array``, if any."""
        if self.earliest is None or array.null_count == len(array):
            return None
        as_int = array.view(pa.int32() if pa.types.is_date32(array.type) else pa.int64())
        below = pc.less(as_int, pa.scalar(self.earliest, as_int.type))
        if not pc.any(below).as_py():
            return None
        return int(pc.index(below, True).as_py())


log = logging.getLogger("dataferry")


@contextlib.contextmanager
def snapshot(conn: psycopg.Connection, what: str) -> Iterator[None]:
    """A REPEATABLE READ, READ ONLY transaction around the block, so that its count and
    its read see one snapshot; psycopg errors in it become dataferry errors naming ``what``.

    The transaction wrote nothing, so its commit cannot undo what the block did with the
    rows (a warehouse merge, committed): a connection lost at that commit is logged, and
    the block still counts as done.
    """
    tx = conn.transaction()
    with translated(what):
        tx.__enter__()
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
    try:
        with translated(what):
            yield
    except BaseException:
        with contextlib.suppress(psycopg.Error):
            tx.__exit__(*sys.exc_info())
        raise
    try:
        tx.__exit__(None, None, None)
    except psycopg.Error as e:
        log.warning("%s: ending the read-only transaction failed after the read: %s", what, e)


def read(
    conn: psycopg.Connection,
    reader: ArrowReader,
    ds: Dataset,
    since: Any = None,
    rows: int | None = None,
    parts: int | None = None,
) -> Iterator[pa.RecordBatch]:
    """Yield the dataset's table (its rows from ``since`` on, by its cursor column) as
    record batches typed by the spec.

    When ``conn`` is in a REPEATABLE READ transaction, the rows are exactly those its
    snapshot sees (exported with pg_export_snapshot), whichever connections read them.
    The table is split into ``parts`` ranges of its first key column, read in parallel;
    by default as ``streams`` decides, and one when the caller counted fewer ``rows``
    than are worth it or the key is not an integer.
    """
    where = f"{ds.target.schema_}.{ds.target.table}"
    with translated(f"reading {where}"):
        have = column_types(conn, ds)
        columns = [_Column(n, c.type, have.get(n)) for n, c in ds.columns.items()]
        snapshot = None
        if conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS:
            row = conn.execute("SELECT pg_export_snapshot()").fetchone()
            assert row is not None
            snapshot = str(row[0])
        ranges = _ranges(conn, reader.target, ds, since, rows, parts)
        statements = [
            sql.SQL("SELECT {} FROM {}{}")
            .format(
                sql.SQL(", ").join(c.select() for c in columns),
                table_ident(ds),
                row_filter(ds, since, key_range),
            )
            .as_string(conn)
            for key_range in ranges
        ]

    def part(adbc: Any, statement: str) -> Generator[pa.RecordBatch, None, None]:
        try:
            for batch in stream(adbc, statement, f"reading {where}"):
                yield _restored(batch, columns, ds, where)
        except TargetError as e:
            # A scaled numeric's cast to its unscaled integer meets a NaN (which another
            # writer may have stored: dataferry's loads refuse it)
            if _NAN_CAST not in str(e):
                raise
            scaled = " or ".join(c.name for c in columns if c.scale is not None)
            raise TargetError(
                f"reading {where}: a value of {scaled} is NaN, which the spec's numeric "
                "type cannot hold (nor the warehouse's DECIMAL)"
            ) from None

    with contextlib.ExitStack() as connections:
        # Opened here, one after the other: ADBC objects take one caller at a time, and
        # each connection is then used by its own part's thread only.
        streams = [
            part(connections.enter_context(reader.connection(snapshot)), statement)
            for statement in statements
        ]
        try:
            yield from streams[0] if len(streams) == 1 else interleaved(list(streams))
        finally:
            for each in streams:  # each statement ends before its connection closes
                each.close()


def streams(conn: psycopg.Connection, target: PostgresTarget) -> int:
    """How many streams a large read takes: DEFAULT_PARTS from a server across a network
    (by its host, or by the round trip measured now), one from this machine's."""
    if not target.local:
        return DEFAULT_PARTS
    best = min(_round_trip_s(conn) for _ in range(3))
    if best < REMOTE_ROUND_TRIP_S:
        return 1
    log.info(
        "%s: a %.1f ms round trip, not a local server's: %d streams",
        target.display,
        best * 1000,
        DEFAULT_PARTS,
    )
    return DEFAULT_PARTS


def _round_trip_s(conn: psycopg.Connection) -> float:
    began = time.perf_counter()
    conn.execute("SELECT 1")
    return time.perf_counter() - began


def _ranges(
    conn: psycopg.Connection,
    target: PostgresTarget,
    ds: Dataset,
    since: Any,
    rows: int | None,
    parts: int | None,
) -> list[tuple[int, int] | None]:
    """The key ranges to read in parallel, or [None]: the whole table in one stream."""
    key = ds.primary_key[0]
    few = rows is not None and rows < PARALLEL_MIN_ROWS
    if few or ds.columns[key].type.int_range is None:
        return [None]
    if parts is None:
        parts = streams(conn, target)
    if parts < 2:
        return [None]
    row = conn.execute(
        sql.SQL("SELECT min({k}), max({k}) FROM {t}{w}").format(
            k=sql.Identifier(key), t=table_ident(ds), w=row_filter(ds, since)
        )
    ).fetchone()
    assert row is not None
    lo, hi = row
    if lo is None:
        return [None]
    step = (hi - lo) // parts + 1
    ranges = [(lo + n * step, min(lo + (n + 1) * step, hi + 1)) for n in range(parts)]
    return [r for r in ranges if r[0] < r[1]]


def _restored(
    batch: pa.RecordBatch, columns: list[_Column], ds: Dataset, where: str
) -> pa.RecordBatch:
    arrays = []
    for n, column in enumerate(columns):
        try:
            arrays.append(column.restore(batch.column(n)))
        except pa.ArrowException as e:
            raise TargetError(
                f"reading {where}: column {column.name} does not fit the spec's "
                f"{ds.columns[column.name].type}: {e}"
            ) from None
    restored = pa.RecordBatch.from_arrays(arrays, names=[c.name for c in columns])
    for column, array in zip(columns, arrays, strict=True):
        at = column.infinite_at(array)
        if at is not None:
            key = ", ".join(f"{k}={restored.column(k)[at].as_py()!r}" for k in ds.primary_key)
            raise TargetError(
                f"reading {where}: row {key}: column {column.name} is infinite, which the "
                "warehouse cannot hold; nothing was loaded"
            )
    return restored
