"""Connecting, and translating psycopg's errors into dataferry's at this one boundary."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from ...connections import PostgresTarget, read_secret
from ...errors import TargetError, TargetUnavailable

__all__ = ["connect", "connect_kwargs", "probe", "translated"]

CONNECT_TIMEOUT_S = 10


def connect_kwargs(target: PostgresTarget) -> dict[str, Any]:
    """What the connection string lacks: the password (and the user, if none is given)
    from the target's Secrets Manager secret, read now and kept nowhere."""
    if target.password_secret is None:
        return {}
    from psycopg.conninfo import conninfo_to_dict

    secret = read_secret(target.password_secret)
    kwargs = {"password": secret.get("password")}
    if not conninfo_to_dict(target.conninfo).get("user") and secret.get("username"):
        kwargs["user"] = secret["username"]
    return kwargs


def connect(target: PostgresTarget) -> psycopg.Connection:
    """Open a connection; an unreachable server is TargetUnavailable (retrying may help)."""
    extra = connect_kwargs(target)
    try:
        # Autocommit: every unit of work is an explicit conn.transaction() block, so a
        # stray query can never open an implicit transaction that swallows the next ones.
        conn = psycopg.connect(
            target.conninfo, connect_timeout=CONNECT_TIMEOUT_S, autocommit=True, **extra
        )
    except psycopg.OperationalError as e:
        # libpq's message names host and port but never the password.
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise TargetUnavailable(f"PostgreSQL at {target.display}: {reason}") from None
    conn.execute("SET TIME ZONE 'UTC'")
    return conn


@contextmanager
def translated(what: str) -> Iterator[None]:
    """Turn a psycopg error into a TargetError naming ``what`` (and no connection secret)."""
    try:
        yield
    except psycopg.Error as e:
        diag = getattr(e, "diag", None)
        reason = str(getattr(diag, "message_primary", None) or e).strip()
        raise TargetError(f"{what}: PostgreSQL refused it: {reason}") from None


def probe(target: PostgresTarget) -> None:
    """Succeed once the server accepts a connection and answers a query."""
    with connect(target) as conn:
        conn.execute("SELECT 1")
