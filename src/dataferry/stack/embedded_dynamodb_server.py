"""The embedded DynamoDB endpoint: moto's server as a detached process (see moto_runner)."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import psutil

from ..errors import StackError
from .moto_runner import SNAPSHOT_PATH

__all__ = ["DynamoDBStatus", "snapshot", "start", "status", "stop"]

START_TIMEOUT_S = 60.0
# The server outlives this process on purpose; holding its Popen keeps Python from
# collecting it (and warning that it still runs) while we are alive.
_detached: list[subprocess.Popen[bytes]] = []


@dataclass(frozen=True)
class DynamoDBStatus:
    running: bool
    data_dir: Path
    url: str | None = None
    pid: int | None = None

    @property
    def snapshot_file(self) -> Path:
        return self.data_dir / "tables.pickle"


def _ready_file(data_dir: Path) -> Path:
    return data_dir / "server.ready"


def status(data_dir: Path) -> DynamoDBStatus:
    ready = _ready_file(data_dir)
    try:
        port_text, pid_text = ready.read_text().split()[:2]
        port, pid = int(port_text), int(pid_text)
        proc = psutil.Process(pid)
        alive = proc.is_running() and "moto_runner" in " ".join(proc.cmdline())
    except (OSError, ValueError, psutil.Error):
        return DynamoDBStatus(False, data_dir)
    if not alive:
        return DynamoDBStatus(False, data_dir)
    return DynamoDBStatus(True, data_dir, url=f"http://127.0.0.1:{port}", pid=pid)


def start(data_dir: Path) -> DynamoDBStatus:
    """Start the endpoint, restoring its last snapshot; a running one is reused."""
    current = status(data_dir)
    if current.running:
        return current
    data_dir.mkdir(parents=True, exist_ok=True)
    ready = _ready_file(data_dir)
    ready.unlink(missing_ok=True)
    log = data_dir / "server.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dataferry.stack.moto_runner",
                "--port",
                "0",
                "--state",
                str(current.snapshot_file),
                "--ready-file",
                str(ready),
            ],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # outlives this command, like the PostgreSQL server
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise StackError(f"embedded DynamoDB exited with {proc.returncode} (see {log})")
        if ready.exists():
            _detached.append(proc)
            return status(data_dir)
        time.sleep(0.05)
    proc.kill()
    raise StackError(f"embedded DynamoDB did not start within {START_TIMEOUT_S:.0f}s (see {log})")


def snapshot(url: str) -> None:
    """Ask the endpoint to write its tables to disk now."""
    # The URL is the one our own runner wrote: http on loopback, never user input.
    req = urllib.request.Request(url + SNAPSHOT_PATH, data=b"", method="POST")  # noqa: S310
    with urllib.request.urlopen(req, timeout=120) as resp:  # noqa: S310
        resp.read()


def stop(data_dir: Path) -> bool:
    """Snapshot and stop the endpoint if it runs; return whether it was running."""
    current = status(data_dir)
    if not current.running or current.pid is None:
        return False
    assert current.url is not None
    snapshot(current.url)
    proc = psutil.Process(current.pid)
    proc.terminate()
    try:
        proc.wait(timeout=60)
    except psutil.TimeoutExpired:
        proc.kill()
        raise StackError(f"embedded DynamoDB (pid {current.pid}) did not stop; killed") from None
    for child in [p for p in _detached if p.pid == current.pid]:
        child.wait()  # reap it: it was ours
        _detached.remove(child)
    return True
