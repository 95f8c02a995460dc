"""One writer at a time per target: waiting for a lock, and naming who holds it.

Each target keeps its own lock, which dies with its holder: a PostgreSQL session-level
advisory lock (released when the connection closes, also when the process is killed), a
lease item in the DynamoDB ledger table (renewed while held, taken over once expired),
and DuckDB's own lock on its file (released by the operating system with the process).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable

from . import interrupt
from .errors import TargetBusy

__all__ = ["holder_identity", "wait_for_lock"]

log = logging.getLogger("dataferry")
MAX_POLL_S = 2.0


def holder_identity(run_id: str) -> str:
    """Who holds a lock, as another run's message will name it."""
    return f"run {run_id}, pid {os.getpid()} on {socket.gethostname()}"


def wait_for_lock(try_acquire: Callable[[], str | None], what: str, deadline_s: float) -> None:
    """Call ``try_acquire`` (None: acquired; else the holder's description) until it
    succeeds, or raise TargetBusy naming the holder once ``deadline_s`` has passed."""
    deadline = time.monotonic() + deadline_s
    delay = 0.05
    told = None
    while (holder := try_acquire()) is not None:
        if time.monotonic() + delay > deadline:
            raise TargetBusy(
                f"{what} is being written by another dataferry run ({holder}); gave up "
                f"waiting after {deadline_s:.0f}s (--wait). Run again when it has finished."
            )
        if told != holder:
            log.warning(
                "%s is being written by another dataferry run (%s): waiting up to %.0fs",
                what,
                holder,
                deadline - time.monotonic(),
            )
            told = holder
        interrupt.sleep(delay)
        delay = min(delay * 2, MAX_POLL_S)
