"""Wait for a target to be ready, with exponential backoff, jitter and a deadline.

Freshly created cloud resources are only eventually available (the original split its
stages over git branches because of it); dataferry waits instead of assuming.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from tenacity import (
    Retrying,
    before_sleep_log,
    retry_if_exception_type,
    stop_after_delay,
    wait_exponential_jitter,
)

from .errors import TargetUnavailable

__all__ = ["DEFAULT_DEADLINE_S", "wait_until_ready"]

T = TypeVar("T")
DEFAULT_DEADLINE_S = 120.0
log = logging.getLogger("dataferry.readiness")


def wait_until_ready(
    probe: Callable[[], T], what: str, deadline_s: float = DEFAULT_DEADLINE_S
) -> T:
    """Call ``probe`` until it stops raising TargetUnavailable, or the deadline passes."""
    retrying = Retrying(
        retry=retry_if_exception_type(TargetUnavailable),
        wait=wait_exponential_jitter(multiplier=0.2, max=5.0, jitter=0.2),
        stop=stop_after_delay(deadline_s),
        before_sleep=before_sleep_log(log, logging.INFO),
        reraise=True,
    )
    try:
        return retrying(probe)
    except TargetUnavailable as e:
        raise TargetUnavailable(f"{what} not ready after {deadline_s:.0f}s: {e}") from None
