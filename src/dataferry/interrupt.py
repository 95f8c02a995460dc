"""SIGINT and SIGTERM: cancel the run promptly, roll back, and say what was done.

The first signal raises :class:`~dataferry.errors.Interrupted` in the main thread (at the
next bytecode, like KeyboardInterrupt) and sets a process-wide cancellation event that
worker threads and retry waits watch. Python runs signal handlers only between bytecodes
of the main thread, so a main thread blocked inside a driver's C code (a DuckDB MERGE, a
PostgreSQL query) would not see the signal until that call returns: a watcher thread,
woken through ``signal.set_wakeup_fd``, calls the cancel hooks registered around such
calls (``DuckDBPyConnection.interrupt``, libpq's cancel request). A second signal ends the
process at once, as users expect of a second Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterator

from .errors import Interrupted

__all__ = [
    "cancellation_hook",
    "cancelled",
    "check",
    "handle_signals",
    "received_signal",
    "sleep",
]

# SIGTERM is not delivered on Windows
_SIGNALS = (signal.SIGINT,) if sys.platform == "win32" else (signal.SIGINT, signal.SIGTERM)
_event = threading.Event()
_hooks: dict[int, Callable[[], None]] = {}
_hooks_lock = threading.Lock()
_received: list[int] = []  # the first cancelling signal, as whoever saw it first noted it
_raised: list[int] = []  # the main thread has raised Interrupted for it


def cancelled() -> bool:
    """True once a cancelling signal arrived."""
    return _event.is_set()


def received_signal() -> int:
    """The first cancelling signal's number (SIGINT when none was received)."""
    return _received[0] if _received else int(signal.SIGINT)


def check() -> None:
    """Raise Interrupted if the run was cancelled (for loops in worker threads)."""
    if _received:
        raise Interrupted(_received[0])


def sleep(seconds: float) -> None:
    """time.sleep that a cancelling signal cuts short (then raises Interrupted)."""
    _event.wait(seconds)
    check()


@contextlib.contextmanager
def cancellation_hook(cancel: Callable[[], None]) -> Iterator[None]:
    """While the block runs, a cancelling signal calls ``cancel`` from another thread: it
    must be safe to call from there (it stops a call the block is blocked in)."""
    key = id(cancel)
    with _hooks_lock:
        _hooks[key] = cancel
    try:
        yield
    finally:
        with _hooks_lock:
            _hooks.pop(key, None)


def _run_hooks() -> None:
    with _hooks_lock:
        hooks = list(_hooks.values())
    for hook in hooks:
        with contextlib.suppress(Exception):  # a connection already gone has nothing to stop
            hook()


def _on_signal(signum: int, frame: object) -> None:
    # The watcher thread sees the signal through the wakeup fd, often before this runs
    # in the main thread: whether to raise is this handler's own decision.
    if _raised:
        return  # the watcher thread ends the process on a second signal
    _raised.append(signum)
    if not _received:
        _received.append(signum)
    _event.set()
    raise Interrupted(signum)


def _watch(reader: socket.socket) -> None:
    seen = 0
    while True:
        try:
            data = reader.recv(64)
        except OSError:
            return
        if not data:
            return
        for signum in data:
            if signum not in _SIGNALS:
                continue
            seen += 1
            if seen == 1:
                if not _received:
                    _received.append(signum)
                _event.set()
                _run_hooks()
            else:
                with contextlib.suppress(OSError):
                    os.write(2, b"\ninterrupted again: exiting now, without cleaning up\n")
                os._exit(128 + signum)


@contextlib.contextmanager
def handle_signals() -> Iterator[None]:
    """Install the handlers for the block (the CLI's whole command); main thread only."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _received.clear()
    _raised.clear()
    _event.clear()
    reader, writer = socket.socketpair()
    reader.setblocking(True)
    writer.setblocking(False)
    previous = {s: signal.getsignal(s) for s in _SIGNALS}
    old_fd = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    for s in _SIGNALS:
        signal.signal(s, _on_signal)
    watcher = threading.Thread(target=_watch, args=(reader,), name="dataferry-signals", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        signal.set_wakeup_fd(old_fd)
        writer.close()
        watcher.join(timeout=1)
        reader.close()
