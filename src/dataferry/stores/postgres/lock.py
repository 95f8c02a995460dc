"""The PostgreSQL writer lock: one `load sql` at a time per database.

A session-level advisory lock on the load's own connection: it is held across the
load's transactions and released when the connection closes, so a killed process never
leaves it behind. The connection's application_name says who holds it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import psycopg

from ...connections import PostgresTarget
from ...locks import holder_identity, wait_for_lock
from .connection import translated

__all__ = ["LOCK_KEY", "writer_lock"]

LOCK_KEY = int.from_bytes(b"dferry01", "big")  # one bigint for every dataferry writer
_APP_PREFIX = "dataferry "


def _holder(conn: psycopg.Connection) -> str:
    row = conn.execute(
        "SELECT a.application_name, a.pid, a.backend_start FROM pg_locks l "
        "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' "
        "AND l.granted AND l.classid = %s AND l.objid = %s AND l.objsubid = 1",
        (LOCK_KEY >> 32, LOCK_KEY & 0xFFFFFFFF),
    ).fetchone()
    if row is None:
        return "a session that has just released it"
    name, pid, since = row
    who = name.removeprefix(_APP_PREFIX) if name.startswith(_APP_PREFIX) else repr(name)
    return f"{who}; server backend {pid}, connected since {since:%Y-%m-%d %H:%M:%S %Z}"


@contextlib.contextmanager
def writer_lock(
    conn: psycopg.Connection, target: PostgresTarget, run_id: str, wait_s: float
) -> Iterator[None]:
    """Hold the database's dataferry writer lock for the block, waiting up to ``wait_s``."""
    name = (_APP_PREFIX + holder_identity(run_id))[:63]
    with translated(f"PostgreSQL {target.display}: writer lock"):

        def attempt() -> str | None:
            # The name first (PostgreSQL evaluates a select list in order), so a waiting
            # run reading it always finds who holds the lock; one round trip for both.
            row = conn.execute(
                "SELECT set_config('application_name', %s, false), pg_try_advisory_lock(%s)",
                (name, LOCK_KEY),
            ).fetchone()
            return None if row and row[1] else _holder(conn)

        wait_for_lock(attempt, f"PostgreSQL {target.display}", wait_s)
    try:
        yield
    finally:
        with contextlib.suppress(psycopg.Error):  # a lost connection has released it
            conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
