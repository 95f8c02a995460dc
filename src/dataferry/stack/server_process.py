"""The embedded servers as processes: who they are, how they start, how they end.

A pid alone proves nothing: after a reboot or a crash the pid in a state file may belong
to any program. A server is trusted (reported up, connected to, signalled) only when the
live process with that pid started when the record says and its command line names the
data folder it serves.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from .. import interrupt
from ..errors import StackError

__all__ = [
    "ServerRecord",
    "end_process",
    "identify",
    "launch",
    "read_record",
    "reap",
    "spawn_detached",
    "stop_recorded",
    "write_atomic",
]

log = logging.getLogger("dataferry.stack")
# Two readings of one process's start time differ by the clock tick (10 ms) at most; a
# record written from a server's own report is rounded to the second (PostgreSQL's).
START_TIME_SLACK_S = 2.0
# The servers outlive this process on purpose; holding their Popen keeps Python from
# warning that they still run, and lets a stop in this process reap them.
_detached: list[subprocess.Popen[bytes]] = []


@dataclass(frozen=True)
class ServerRecord:
    """What a started server wrote about itself (its state file, JSON)."""

    pid: int
    port: int
    engine: str
    data_dir: str
    started: float  # the process's start time, seconds since the epoch

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1) + "\n"


def read_record(path: Path) -> ServerRecord | None:
    """The state file's record; None when it is missing or unreadable (a half-written file
    cannot exist: it is always replaced whole)."""
    try:
        return ServerRecord(**json.loads(path.read_text("utf-8")))
    except (OSError, ValueError, TypeError):
        return None


def write_atomic(path: Path, data: str | bytes) -> None:
    """Replace ``path`` whole: a reader sees the old file or the new one, never a mix; two
    writers never share a temporary file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def identify(pid: int, started: float | None, markers: Sequence[str]) -> psutil.Process | None:
    """The live process ``pid`` if it is the server described, else None.

    ``started``: its start time as recorded (None: not checked); ``markers``: arguments
    its command line must hold, each whole (a data folder's path, a state file's). A zombie
    counts as gone.
    """
    try:
        proc = psutil.Process(pid)
        if started is not None and abs(proc.create_time() - started) > START_TIME_SLACK_S:
            return None
        if proc.status() == psutil.STATUS_ZOMBIE:
            reap(pid)  # a server of ours that died: collect it
            return None
        argv = set(proc.cmdline())
    except psutil.NoSuchProcess:
        reap(pid)
        return None
    except (psutil.Error, OSError):
        return None
    if not argv.issuperset(markers):
        return None
    return proc


def spawn_detached(argv: list[str], log_file: Path, env: dict[str, str] | None = None) -> int:
    """Start a server that outlives this command (its own session, so a Ctrl-C in the
    terminal does not reach it); its output goes to ``log_file``. Returns its pid."""
    with log_file.open("ab") as out:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
        )
    _detached.append(proc)
    return proc.pid


def launch(
    argv: list[str],
    env: dict[str, str] | None,
    state: Path,
    log_file: Path,
    what: str,
    verified: Callable[[ServerRecord], bool],
    timeout_s: float,
) -> None:
    """Start a detached server and wait until it has written its state file (``state``)
    and ``verified`` trusts it; a server that exits, or is not up in ``timeout_s``, is a
    StackError quoting its log (and is killed). Ctrl-C cuts the wait short."""
    state.unlink(missing_ok=True)  # stale: its server is gone (the caller checked)
    pid = spawn_detached(argv, log_file, env)
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            record = read_record(state)
            if record is not None and record.pid == pid and verified(record):
                return
            code = exit_status(pid)
            if code is not None:
                raise StackError(f"{what} exited with {code}: {_tail(log_file)}")
            if time.monotonic() > deadline:
                raise StackError(f"{what} did not start within {timeout_s:.0f}s (see {log_file})")
            interrupt.sleep(0.05)
    except BaseException:
        proc = identify(pid, None, [str(state)])
        if proc is not None:
            proc.kill()
        raise


def stop_recorded(state: Path, what: str, grace_s: Callable[[ServerRecord], float]) -> str | None:
    """Stop the server whose state file is ``state``, if it runs: SIGTERM, SIGKILL after
    ``grace_s(record)``. How it ended, or None when nothing ran (a crash's leftover
    state file is removed)."""
    record = read_record(state)
    if record is None:
        return None
    proc = identify(record.pid, record.started, [str(state)])
    if proc is None:
        state.unlink(missing_ok=True)
        return None
    how = end_process(proc, what.format(engine=record.engine), grace_s(record))
    if read_record(state) == record:  # killed before it could remove its own
        state.unlink(missing_ok=True)
    return how


def _tail(log_file: Path, lines: int = 5) -> str:
    try:
        text = log_file.read_text("utf-8", "replace").strip().splitlines()[-lines:]
    except OSError:
        return f"see {log_file}"
    return " | ".join(text) + f" (see {log_file})"


def exit_status(pid: int) -> int | None:
    """The exit code of a server this process started and that has ended; None while it
    runs or when it is not ours."""
    for proc in _detached:
        if proc.pid == pid:
            return proc.poll()
    return None


def reap(pid: int, wait_s: float = 0.0) -> None:
    """Collect a server of ours that has ended. ``wait_s``: a process seen gone may still
    be exiting (no longer listed, not yet waitable) for a moment."""
    for proc in [p for p in _detached if p.pid == pid]:
        try:
            proc.wait(wait_s)
        except subprocess.TimeoutExpired:
            continue
        _detached.remove(proc)


def _gone(proc: psutil.Process) -> bool:
    try:
        gone = not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        gone = True
    if gone:
        reap(proc.pid, 1.0)  # a child of ours stays a zombie until waited for
    return gone


def _wait_gone(proc: psutil.Process, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not _gone(proc):
        if time.monotonic() >= deadline:
            return False
        interrupt.sleep(0.05)
    return True


def end_process(
    proc: psutil.Process,
    what: str,
    grace_s: float,
    first: signal.Signals = signal.SIGTERM,
    then: tuple[tuple[signal.Signals, float], ...] = (),
) -> str:
    """End a verified server: ``first``, wait ``grace_s``, then each (signal, wait) of
    ``then``, and SIGKILL last. Returns how it ended, for the report."""
    steps = [(first, grace_s), *then]
    if hasattr(signal, "SIGKILL"):
        steps.append((signal.SIGKILL, 10.0))
    for n, (sig, wait_s) in enumerate(steps):
        try:
            proc.send_signal(sig)
        except ValueError:  # Windows has no such signal: terminate it
            sig = signal.SIGTERM
            proc.kill()
        except psutil.NoSuchProcess:
            return "stopped"
        except psutil.AccessDenied as e:
            raise StackError(f"{what} (pid {proc.pid}) cannot be signalled: {e}") from e
        if _wait_gone(proc, wait_s):
            return "stopped" if n == 0 else f"stopped by {sig.name}"
        log.warning("%s (pid %d) still runs %.0fs after %s", what, proc.pid, wait_s, sig.name)
    raise StackError(f"{what} (pid {proc.pid}) survived SIGKILL")
