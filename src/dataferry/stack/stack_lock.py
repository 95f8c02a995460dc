"""One command at a time starts or stops a stack: a lock held in the stack folder.

Without it, two commands starting the stack together each started a server, and the one
not recorded went on serving (and later overwrote data). The lock is the operating
system's (filelock: flock on POSIX, LockFileEx on Windows), so it dies with its holder;
who holds it is written beside it for the waiting command's message.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from .. import interrupt
from ..errors import StackError
from .server_process import write_atomic

__all__ = ["LOCK_WAIT_S", "stack_lock"]

log = logging.getLogger("dataferry.stack")
# Starting a stack the first time (initdb, installing dynalite) takes well under a minute;
# each step has its own deadline, so a holder cannot keep the lock longer than this.
LOCK_WAIT_S = 300.0


@contextlib.contextmanager
def stack_lock(root: Path, doing: str, wait_s: float = LOCK_WAIT_S) -> Iterator[None]:
    """Hold the stack folder's lock while ``doing`` (start, stop); wait for another
    command that holds it, saying so, up to ``wait_s``."""
    root.mkdir(parents=True, exist_ok=True)
    lock = FileLock(root / "stack.lock")
    holder_file = root / "stack.lock.holder"
    deadline = time.monotonic() + wait_s
    told = None
    while True:
        try:
            lock.acquire(timeout=0)
            break
        except Timeout:
            holder = _holder(holder_file)
            if time.monotonic() >= deadline:
                raise StackError(
                    f"the embedded stack in {root} is still held by another dataferry command "
                    f"({holder}) after {wait_s:.0f}s; if no such command runs, remove "
                    f"{root / 'stack.lock'}"
                ) from None
            if holder != told:
                log.warning("waiting for another dataferry command (%s)", holder)
                told = holder
            interrupt.sleep(0.1)
    try:
        write_atomic(holder_file, f"{doing} the stack: pid {os.getpid()} on {socket.gethostname()}")
        yield
    finally:
        holder_file.unlink(missing_ok=True)
        lock.release()


def _holder(path: Path) -> str:
    try:
        return path.read_text("utf-8").strip() or "unknown"
    except OSError:
        return "unknown"
