"""The embedded DynamoDB endpoint: dynalite by default, moto where dynalite cannot be had.

dynalite (Node.js, LevelDB on disk, validates requests as DynamoDB does) carries the
sizes ``generate`` invites: on a 2-core machine it takes about 11,500 items/s from
``load nosql`` and serves a Scan at over 100,000 items/s (bench/README.md). moto's server
keeps tables in Python objects (snapshotted to disk by moto_runner) and manages about
3,900 written and 2,000 scanned items/s: the fallback when there is no Node.js, or no
network the first time dynalite is installed.

A data folder belongs to the engine that created it (written in its ``engine`` file):
tables written by one are not visible to the other. Each server writes its state file
(``server.json``: pid, port, start time) once it listens, and a server is trusted only
when the live process matches it (server_process.identify).
"""

from __future__ import annotations

import logging
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..errors import NotSupported, StackError
from .server_process import (
    ServerRecord,
    identify,
    launch,
    read_record,
    stop_recorded,
    write_atomic,
)

__all__ = ["ENGINES", "DynamoDBStatus", "snapshot", "start", "status", "stop"]

log = logging.getLogger("dataferry.stack")
ENGINES = ("dynalite", "moto")
Choice = Literal["auto", "dynalite", "moto"]
START_TIMEOUT_S = 60.0
STOP_GRACE_S = {"dynalite": 15.0, "moto": 60.0}  # moto writes its snapshot as it stops
SNAPSHOT_TIMEOUT_S = 120.0
FALLBACK_COST = (
    "moto writes about 3,900 items/s and scans about 2,000 items/s, against dynalite's "
    "11,500 and over 100,000 (bench/README.md)"
)


@dataclass(frozen=True)
class DynamoDBStatus:
    running: bool
    data_dir: Path
    url: str | None = None
    pid: int | None = None
    engine: str | None = None  # whose data the folder holds; None: no data yet


def _state_file(data_dir: Path) -> Path:
    return data_dir / "server.json"


def _engine_file(data_dir: Path) -> Path:
    return data_dir / "engine"


def folder_engine(data_dir: Path) -> str | None:
    """The engine whose tables the folder holds (moto's snapshot predates the file)."""
    try:
        name = _engine_file(data_dir).read_text("utf-8").strip()
    except OSError:
        return "moto" if (data_dir / "tables.pickle").exists() else None
    return name if name in ENGINES else None


def _verified(data_dir: Path, record: ServerRecord | None) -> bool:
    if record is None or record.engine not in ENGINES:
        return False
    marker = str(_state_file(data_dir))
    return identify(record.pid, record.started, [marker]) is not None


def status(data_dir: Path) -> DynamoDBStatus:
    record = read_record(_state_file(data_dir))
    engine = folder_engine(data_dir)
    if record is None or not _verified(data_dir, record):
        return DynamoDBStatus(False, data_dir, engine=engine)
    url = f"http://127.0.0.1:{record.port}"
    return DynamoDBStatus(True, data_dir, url=url, pid=record.pid, engine=record.engine)


def _choose_engine(data_dir: Path, choice: Choice) -> tuple[str, list[str], dict[str, str] | None]:
    """The engine for this folder and the command that serves it."""
    engine = folder_engine(data_dir)
    if engine is not None and choice != "auto" and engine != choice:
        raise StackError(
            f"{data_dir} holds tables of the embedded {engine} endpoint, but the spec asks "
            f"for {choice} (stack.dynamodb); set it to {engine} or auto, or remove that "
            "folder (its tables are lost) to start over"
        )
    wanted = engine or choice
    state = str(_state_file(data_dir))
    if wanted in ("auto", "dynalite"):
        from .dynalite_install import Unavailable, ensure_dynalite

        try:
            dynalite = ensure_dynalite()
        except Unavailable as e:
            if wanted == "dynalite":
                raise StackError(f"the embedded DynamoDB (dynalite) cannot be had: {e}") from None
            log.warning(
                "embedded DynamoDB: dynalite cannot be had (%s); using moto instead, for good "
                "in %s: %s",
                e,
                data_dir,
                FALLBACK_COST,
            )
        else:
            argv = [
                *dynalite.command(),
                *("--host", "127.0.0.1", "--port", "0", "--state-file", state),
                *("--path", str(data_dir / "leveldb"), "--engine", "dynalite"),
                # Tables are ACTIVE at once, as after a real CreateTable's short wait.
                *("--createTableMs", "20", "--deleteTableMs", "20", "--updateTableMs", "20"),
            ]
            return "dynalite", argv, dynalite.environment()
    try:
        import moto  # noqa: F401
    except ImportError:
        raise NotSupported(
            "the embedded DynamoDB endpoint needs dataferry's embedded extra: "
            "pip install 'dataferry[embedded]'"
        ) from None
    argv = [sys.executable, "-m", "dataferry.stack.moto_runner", "--state-file", state]
    return "moto", [*argv, "--snapshot", str(data_dir / "tables.pickle")], None


def start(data_dir: Path, choice: Choice = "auto") -> DynamoDBStatus:
    """Start the endpoint on its data folder; a running one is reused. The caller holds the
    stack's lock."""
    current = status(data_dir)
    if current.running:
        return current
    data_dir.mkdir(parents=True, exist_ok=True)
    engine, argv, env = _choose_engine(data_dir, choice)
    write_atomic(_engine_file(data_dir), engine + "\n")
    log.info("starting the DynamoDB endpoint (%s) in %s", engine, data_dir)
    launch(
        argv,
        env,
        _state_file(data_dir),
        data_dir / "server.log",
        f"the embedded DynamoDB ({engine})",
        lambda record: _verified(data_dir, record),
        START_TIMEOUT_S,
    )
    return status(data_dir)


def snapshot(url: str) -> None:
    """Ask moto's server to write its tables to disk now (dynalite writes as it goes)."""
    from .moto_runner import SNAPSHOT_PATH

    # The URL is the one our own runner wrote: http on loopback, never user input.
    req = urllib.request.Request(url + SNAPSHOT_PATH, data=b"", method="POST")  # noqa: S310
    with urllib.request.urlopen(req, timeout=SNAPSHOT_TIMEOUT_S) as resp:  # noqa: S310
        resp.read()


def stop(data_dir: Path) -> str | None:
    """Stop the endpoint of this folder if it runs: SIGTERM (dynalite closes LevelDB, moto
    writes its snapshot), SIGKILL after a grace period. How it ended, or None."""
    return stop_recorded(
        _state_file(data_dir),
        "embedded DynamoDB ({engine})",
        lambda record: STOP_GRACE_S.get(record.engine, 15.0),
    )
