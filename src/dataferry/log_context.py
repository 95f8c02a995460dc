"""What a log line is about (run id, stage, dataset), and logs as JSON lines.

The run, the stage and the dataset are context variables, set where each begins (the CLI
for the run and each stage, ``stages.common.ledgered`` for each dataset), so any module's
log call carries them without passing them along. ``--log-format json`` writes each
record as one JSON object per line, for log collectors.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import json
import logging
from collections.abc import Iterator
from typing import Any

__all__ = ["JsonFormatter", "about"]

_run_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("run_id", default=None)
_stage: contextvars.ContextVar[str | None] = contextvars.ContextVar("stage", default=None)
_dataset: contextvars.ContextVar[str | None] = contextvars.ContextVar("dataset", default=None)
_VARS = {"run_id": _run_id, "stage": _stage, "dataset": _dataset}
# what a LogRecord holds of its own: everything else on it came as `extra`
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


@contextlib.contextmanager
def about(**values: str | None) -> Iterator[None]:
    """Within the block, log records name these (run_id, stage, dataset)."""
    tokens = [(_VARS[k], _VARS[k].set(v)) for k, v in values.items()]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, the run, stage and
    dataset it is about, and any ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        out.update({k: v.get() for k, v in _VARS.items() if v.get() is not None})
        out.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            out["traceback"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)
