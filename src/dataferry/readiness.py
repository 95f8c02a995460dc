"""Wait for a target to be ready, with exponential backoff, jitter and a deadline.

Freshly created cloud resources are only eventually available (the original split its
stages over git branches because of it); dataferry waits instead of assuming.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from tenacity import (
    Retrying,
    before_sleep_log,
    retry_if_exception_type,
    stop_before_delay,
    wait_exponential_jitter,
)

from . import interrupt
from .errors import TargetUnavailable

__all__ = ["DEFAULT_DEADLINE_S", "PROBE_TIMEOUT_S", "STATUS_WAIT_S", "wait_until_ready"]

T = TypeVar("T")
DEFAULT_DEADLINE_S = 120.0
STATUS_WAIT_S = 10.0  # `status` only looks: it should answer promptly or say why not
PROBE_TIMEOUT_S = 10.0  # one attempt's connect and answer, at most
log = logging.getLogger("dataferry.readiness")


def wait_until_ready(
    probe: Callable[[float], T], what: str, deadline_s: float = DEFAULT_DEADLINE_S
) -> T:
    """Call ``probe(timeout_s)`` until it stops raising TargetUnavailable, or the deadline
    passes. Each attempt gets the time left (1 to PROBE_TIMEOUT_S seconds), so the whole
    wait ends close to the deadline, and no new attempt starts after it."""
    deadline = time.monotonic() + deadline_s

    def attempt() -> T:
        return probe(max(1.0, min(PROBE_TIMEOUT_S, deadline - time.monotonic())))

    retrying = Retrying(
        retry=retry_if_exception_type(TargetUnavailable),
        wait=wait_exponential_jitter(multiplier=0.2, max=5.0, jitter=0.2),
        stop=stop_before_delay(deadline_s),
        sleep=interrupt.sleep,
        before_sleep=before_sleep_log(log, logging.INFO),
        reraise=True,
    )
    try:
        return retrying(attempt)
    except TargetUnavailable as e:
        raise TargetUnavailable(f"{what} not ready after {deadline_s:.0f}s: {e}") from None
