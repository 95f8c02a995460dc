"""COPY ... TO STDOUT at libpq's pace: the rows gathered into blocks of about 1 MiB.

libpq hands COPY output over one row at a time. psycopg's Copy object passes each row
through its generic wait loop, about 0.5 us of Python per row, which made the read of a
large table CPU-bound in the client. Here the rows libpq has already buffered are taken
with get_copy_data in its non-blocking form, and the socket is waited on only when none
is left: half the time per row (bench/README.md). This is psycopg's documented libpq
wrapper (psycopg.pq), used on a connection that does nothing else meanwhile; errors
become psycopg's own exception classes, so the caller's translation applies unchanged.
"""

from __future__ import annotations

import selectors
from collections.abc import Iterator

import psycopg
from psycopg import pq
from psycopg.errors import error_from_result

__all__ = ["copy_out"]

BLOCK = 1 << 20


def _wait(sel: selectors.BaseSelector, pgconn: pq.abc.PGconn) -> None:
    sel.select()
    pgconn.consume_input()


def _finish(pgconn: pq.abc.PGconn, sel: selectors.BaseSelector) -> pq.abc.PGresult | None:
    """Collect the results left after the copy; return the first that is an error."""
    failed = None
    while True:
        while pgconn.is_busy():
            _wait(sel, pgconn)
        res = pgconn.get_result()
        if res is None:
            return failed
        if res.status == pq.ExecStatus.FATAL_ERROR and failed is None:
            failed = res


def copy_out(conn: psycopg.Connection, statement: bytes) -> Iterator[bytes]:
    """Run a ``COPY ... TO STDOUT`` statement; yield its output in blocks."""
    pgconn = conn.pgconn
    encoding = conn.info.encoding
    sel = selectors.DefaultSelector()
    sel.register(pgconn.socket, selectors.EVENT_READ)
    done = False
    try:
        pgconn.send_query(statement)
        while pgconn.is_busy():
            _wait(sel, pgconn)
        res = pgconn.get_result()
        if res is None or res.status != pq.ExecStatus.COPY_OUT:
            failed = res if res is not None else _finish(pgconn, sel)
            _finish(pgconn, sel)
            done = True
            if failed is not None:
                raise error_from_result(failed, encoding=encoding)
            raise psycopg.ProgrammingError("the statement is not a COPY ... TO STDOUT")
        block = bytearray()
        get = pgconn.get_copy_data
        while True:
            size, data = get(1)  # 1: return 0 instead of waiting when no row is buffered
            if size > 0:
                block += data
                if len(block) >= BLOCK:
                    yield bytes(block)
                    block.clear()
            elif size == 0:
                _wait(sel, pgconn)
            else:
                break  # -1: the copy is over; -2: an error, reported by its result
        failed = _finish(pgconn, sel)
        done = True
        if failed is not None:
            raise error_from_result(failed, encoding=encoding)
        if block:
            yield bytes(block)
    finally:
        if not done:
            # The reader stopped early: cancel the copy and drain what is in flight, so
            # the connection can roll back (the cancel aborts the transaction).
            conn.cancel_safe()
            while pgconn.get_copy_data(0)[0] >= 0:
                pass
            _finish(pgconn, sel)
        sel.close()
