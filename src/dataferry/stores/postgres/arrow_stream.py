"""Bulk reads through ADBC's PostgreSQL driver (Apache Arrow's own): the server sends COPY
in its binary format and the driver decodes it into Arrow record batches in C, with no
Python per row. psycopg stays the driver for everything else; this module opens ADBC
connections and translates ADBC's errors into dataferry's at this one boundary.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import adbc_driver_manager
import adbc_driver_postgresql
import pyarrow as pa
from psycopg import sql

from ...connections import PostgresTarget
from ...errors import TargetError, TargetUnavailable
from .connection import CONNECT_TIMEOUT_S, connect_kwargs

__all__ = ["ArrowReader", "stream"]

# About 16 MB of Arrow a batch (the driver's default): small enough for memory, large
# enough that per-batch work in Python is noise.
BATCH_BYTES = 16 << 20
_ERRORS = (adbc_driver_manager.Error, pa.ArrowException, OSError)


def _conninfo(target: PostgresTarget) -> str:
    """The target's libpq connection string, with the password from its secret when it
    has one. Holds a secret: pass it to the driver, never print it."""
    from psycopg.conninfo import make_conninfo

    return make_conninfo(
        target.conninfo, connect_timeout=CONNECT_TIMEOUT_S, **connect_kwargs(target)
    )


def _reason(e: BaseException) -> str:
    """The first line of a driver error: libpq's own message, which names host and port
    but never the password."""
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


# libpq's words for a server or connection gone mid-work (ADBC passes them through; its
# errors carry no SQLSTATE for these)
_LOST = (
    "server closed the connection unexpectedly",
    "terminating connection",
    "no connection to the server",
    "could not receive data from server",
    "connection to server",
)


def _lost(e: BaseException) -> bool:
    state = str(getattr(e, "sqlstate", "") or "")
    text = str(e)
    return state.startswith(("08", "57P0")) or any(words in text for words in _LOST)


class ArrowReader:
    """The driver's handle on one PostgreSQL server, shared by every read of a run.

    Opening it costs about 30 ms (the driver reads the server's type catalog), so it is
    opened once, in a thread of its own, while the caller opens the warehouse and counts
    rows; each read then takes a connection of its own from it (a few ms).
    """

    def __init__(self, target: PostgresTarget) -> None:
        self.target = target
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="dataferry-adbc")
        self._database = self._pool.submit(self._open)

    def _unavailable(self, e: BaseException) -> TargetUnavailable:
        return TargetUnavailable(f"PostgreSQL at {self.target.display}: {_reason(e)}")

    def _open(self) -> adbc_driver_manager.AdbcDatabase:
        try:
            return adbc_driver_postgresql.connect(_conninfo(self.target))
        except _ERRORS as e:
            raise self._unavailable(e) from None

    def close(self) -> None:
        self._pool.shutdown()
        if self._database.exception() is None:
            self._database.result().close()

    def __enter__(self) -> ArrowReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def connection(self, snapshot: str | None) -> Iterator[adbc_driver_manager.AdbcConnection]:
        """A connection of its own; with ``snapshot`` (from pg_export_snapshot), in a
        read-only REPEATABLE READ transaction that sees exactly what the exporting one
        sees."""
        try:
            database = self._database.result()
        except TargetUnavailable:
            # Tried before the server was ready (the caller waits for it meanwhile): again.
            self._database = self._pool.submit(self._open)
            database = self._database.result()
        try:
            conn = adbc_driver_manager.AdbcConnection(database)
        except _ERRORS as e:
            raise self._unavailable(e) from None
        try:
            if snapshot is not None:
                conn.set_autocommit(False)  # the driver sends BEGIN
                _execute(conn, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                _execute(conn, f"SET TRANSACTION SNAPSHOT {sql.quote(snapshot)}")
            yield conn
        finally:
            conn.close()


def _execute(conn: adbc_driver_manager.AdbcConnection, statement: str) -> None:
    stmt = adbc_driver_manager.AdbcStatement(conn)
    try:
        stmt.set_sql_query(statement)
        stmt.execute_update()
    except _ERRORS as e:
        raise TargetError(f"PostgreSQL refused {statement.split()[0]}: {_reason(e)}") from None
    finally:
        stmt.close()


def stream(
    conn: adbc_driver_manager.AdbcConnection, query: str, what: str
) -> Iterator[pa.RecordBatch]:
    """Yield the record batches of ``query``'s result; an error names ``what``."""
    stmt = adbc_driver_manager.AdbcStatement(conn)
    reader = None
    try:
        stmt.set_options(**{"adbc.postgresql.batch_size_hint_bytes": str(BATCH_BYTES)})
        stmt.set_sql_query(query)
        handle, _ = stmt.execute_query()
        reader = pa.RecordBatchReader.from_stream(handle)
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                return
            yield batch
    except _ERRORS as e:
        if _lost(e):
            raise TargetUnavailable(
                f"{what}: the PostgreSQL connection was lost ({_reason(e)}); nothing of "
                "this read was kept"
            ) from None
        raise TargetError(f"{what}: PostgreSQL failed the read: {_reason(e)}") from None
    finally:
        # Stopping early is safe: the connection is closed right after, ending the COPY.
        if reader is not None:
            reader.close()
        stmt.close()
