"""Connecting, and translating psycopg's errors into dataferry's at this one boundary."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from ...connections import PostgresTarget, read_secret
from ...errors import SpecError, TargetError, TargetUnavailable

__all__ = ["connect", "connect_kwargs", "connect_when_ready", "translated", "unusable"]

CONNECT_TIMEOUT_S = 10


def connect_kwargs(target: PostgresTarget) -> dict[str, Any]:
    """What the connection string lacks: the password (and the user, if none is given)
    from the target's Secrets Manager secret, read now and kept nowhere; or, with IAM
    authentication, a token made now for this connection."""
    from psycopg.conninfo import conninfo_to_dict

    if target.iam_region is not None:
        from .iam_auth import auth_token

        params = conninfo_to_dict(target.conninfo)
        user = params.get("user") or os.environ.get("PGUSER")
        host = params.get("host") or os.environ.get("PGHOST")
        if not user or not host or str(host).startswith("/"):
            raise SpecError(
                "stores.postgres.iam_auth: IAM tokens are signed for a user at a host name "
                f"and port; {target.display} names no user or no host"
            )
        port = int(params.get("port") or os.environ.get("PGPORT") or 5432)
        return {"password": auth_token(str(host), port, str(user), target.iam_region)}
    if target.password_secret is None:
        return {}

    secret = read_secret(target.password_secret)
    kwargs = {"password": secret.get("password")}
    if not conninfo_to_dict(target.conninfo).get("user") and secret.get("username"):
        kwargs["user"] = secret["username"]
    return kwargs


def connect(target: PostgresTarget, timeout_s: float = CONNECT_TIMEOUT_S) -> psycopg.Connection:
    """Open a connection; an unreachable server is TargetUnavailable (retrying may help)."""
    extra = connect_kwargs(target)
    from psycopg.conninfo import conninfo_to_dict

    if "application_name" not in conninfo_to_dict(target.conninfo):
        extra["application_name"] = "dataferry"  # what a DBA sees in pg_stat_activity
    try:
        # Autocommit: every unit of work is an explicit conn.transaction() block, so a
        # stray query can never open an implicit transaction that swallows the next ones.
        conn = psycopg.connect(
            # libpq takes whole seconds, and treats 1 as 2
            target.conninfo,
            connect_timeout=max(2, round(timeout_s)),
            autocommit=True,
            **extra,
        )
    except psycopg.OperationalError as e:
        # libpq's message names host and port but never the password.
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise TargetUnavailable(f"PostgreSQL at {target.display}: {reason}") from None
    try:
        conn.execute("SET TIME ZONE 'UTC'")
    except BaseException:
        conn.close()
        raise
    return conn


def connect_when_ready(target: PostgresTarget, wait_s: float) -> psycopg.Connection:
    """A connection, once the server accepts one: the successful attempt is the one
    used, so readiness costs no connection of its own (a handshake and a session setup,
    each a round trip or more to a server across a network)."""
    from ...readiness import wait_until_ready

    return wait_until_ready(
        lambda timeout_s: _ready(target, timeout_s), f"PostgreSQL {target.display}", wait_s
    )


def _ready(target: PostgresTarget, timeout_s: float) -> psycopg.Connection:
    try:
        return connect(target, timeout_s)
    except psycopg.OperationalError as e:
        # The server went away between the handshake and the session's first statement
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise TargetUnavailable(f"PostgreSQL at {target.display}: {reason}") from None


# SQLSTATE classes and codes of a server or connection that went away mid-work: the
# work was rolled back, and the same command run again later can succeed.
_GONE_CLASSES = ("08",)  # connection exception
_GONE_CODES = {"57P01", "57P02", "57P03"}  # admin_shutdown, crash_shutdown, cannot_connect_now


@contextmanager
def translated(what: str) -> Iterator[None]:
    """Turn a psycopg error into a TargetError naming ``what`` (and no connection secret):
    TargetUnavailable when the server or the connection went away (the transaction was
    rolled back; retrying may help)."""
    try:
        yield
    except psycopg.Error as e:
        diag = getattr(e, "diag", None)
        reason = str(getattr(diag, "message_primary", None) or e).strip()
        reason = reason.splitlines()[0] if reason else type(e).__name__
        state = e.sqlstate or ""
        gone = (
            isinstance(e, psycopg.OperationalError)
            and (not state or state.startswith(_GONE_CLASSES) or state in _GONE_CODES)
        ) or state in _GONE_CODES
        if gone:
            raise TargetUnavailable(
                f"{what}: the PostgreSQL connection was lost ({reason}); the open "
                "transaction was rolled back, nothing of it was kept"
            ) from None
        raise TargetError(f"{what}: PostgreSQL refused it: {reason}") from None


def unusable(conn: psycopg.Connection) -> bool:
    """Closed, or left in the middle of a command (an interrupted COPY): nothing more can
    be sent on it. A failed transaction that was rolled back leaves it usable."""
    from psycopg.pq import TransactionStatus

    return conn.closed or conn.info.transaction_status not in (
        TransactionStatus.IDLE,
        TransactionStatus.INTRANS,
        TransactionStatus.INERROR,
    )
