"""The embedded S3: moto's server for S3 alone, its buckets and objects on disk.

Sources may be ``s3://`` URLs; on a laptop or a CI runner they are served here, the same
way the embedded DynamoDB serves tables. moto keeps objects in memory: moto_runner
writes them to ``objects.pickle`` when it stops and whenever asked
(``persist``), and restores them when it starts. Objects are a local stand-in for a
landing bucket, sized for development, not a store for large data.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path

from ..errors import NotSupported
from .server_process import ServerRecord, identify, launch, read_record, stop_recorded

__all__ = ["S3Status", "start", "status", "stop"]

log = logging.getLogger("dataferry.stack")
START_TIMEOUT_S = 60.0
STOP_GRACE_S = 60.0  # it writes its snapshot as it stops


@dataclass(frozen=True)
class S3Status:
    running: bool
    data_dir: Path
    url: str | None = None
    pid: int | None = None


def _state_file(data_dir: Path) -> Path:
    return data_dir / "server.json"


def _verified(data_dir: Path, record: ServerRecord | None) -> bool:
    if record is None:
        return False
    return identify(record.pid, record.started, [str(_state_file(data_dir))]) is not None


def status(data_dir: Path) -> S3Status:
    record = read_record(_state_file(data_dir))
    if record is None or not _verified(data_dir, record):
        return S3Status(False, data_dir)
    return S3Status(True, data_dir, f"http://127.0.0.1:{record.port}", record.pid)


def start(data_dir: Path) -> S3Status:
    """Start the server on its folder; a running one is reused. The caller holds the
    stack's lock."""
    current = status(data_dir)
    if current.running:
        return current
    try:
        import moto  # noqa: F401
    except ImportError:
        raise NotSupported(
            "the embedded S3 needs dataferry's embedded extra: pip install 'dataferry[embedded]'"
        ) from None
    data_dir.mkdir(parents=True, exist_ok=True)
    state = _state_file(data_dir)
    argv = [
        *(sys.executable, "-m", "dataferry.stack.moto_runner", "--service", "s3"),
        *("--state-file", str(state), "--snapshot", str(data_dir / "objects.pickle")),
    ]
    log.info("starting the embedded S3 (moto) in %s", data_dir)
    launch(
        argv,
        None,
        state,
        data_dir / "server.log",
        "the embedded S3 (moto)",
        lambda record: _verified(data_dir, record),
        START_TIMEOUT_S,
    )
    return status(data_dir)


def stop(data_dir: Path) -> str | None:
    """Stop the server of this folder if it runs (it writes its snapshot as it ends).
    How it ended, or None."""
    return stop_recorded(_state_file(data_dir), "embedded S3 (moto)", lambda _: STOP_GRACE_S)
