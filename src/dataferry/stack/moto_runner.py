"""The fallback embedded DynamoDB endpoint: moto's server, with its state on disk.

moto keeps tables in memory only. This runner restores them from a snapshot file when it
starts and writes the snapshot when it stops (SIGTERM/SIGINT) and whenever a client POSTs
``/_dataferry/snapshot`` (the nosql stage does, after each load), so data survives
``stack down`` / ``stack up``. It holds a lock on its snapshot for its whole life, so a
second runner on the same folder exits at once instead of overwriting the first's tables.
Run as ``python -m dataferry.stack.moto_runner``.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

SNAPSHOT_PATH = "/_dataferry/snapshot"
# One request at a time: a snapshot must never see a table half-way through a write, and
# two snapshots never write at once.
_lock = threading.Lock()


def _backends() -> Any:
    from moto.dynamodb.models import dynamodb_backends

    return dynamodb_backends


def save(snapshot: Path) -> None:
    """Write the DynamoDB state atomically (a crash mid-write keeps the previous file)."""
    from .server_process import write_atomic

    with _lock:
        # Table exports are threads (they cannot be pickled, and an export is not data to
        # keep): left out of the snapshot, put back after it.
        regions = [r for account in _backends().values() for r in account.values()]
        exports = [r.__dict__.pop("table_exports", None) for r in regions]
        try:
            data = pickle.dumps(dict(_backends()), protocol=pickle.HIGHEST_PROTOCOL)
        finally:
            for region, kept in zip(regions, exports, strict=True):
                region.__dict__["table_exports"] = kept if kept is not None else {}
        write_atomic(snapshot, data)


def restore(snapshot: Path) -> None:
    if not snapshot.exists():
        return
    # The file is this runner's own, in the project's private .dataferry folder.
    saved = pickle.loads(snapshot.read_bytes())  # noqa: S301
    for account in saved.values():
        for region in account.values():
            region.__dict__.setdefault("table_exports", {})
    _backends().update(saved)


def _wrap(app: Callable[..., Iterable[bytes]], snapshot: Path) -> Callable[..., Iterable[bytes]]:
    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == SNAPSHOT_PATH and environ["REQUEST_METHOD"] == "POST":
            save(snapshot)
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"saved\n"]
        with _lock:
            # Materialise the body inside the lock so the write is complete before release.
            return list(app(environ, start_response))

    return wsgi


def _write_state(state_file: Path, port: int) -> None:
    import psutil

    from .server_process import write_atomic

    record = {
        "pid": os.getpid(),
        "port": port,
        "engine": "moto",
        "data_dir": str(state_file.parent),
        "started": psutil.Process().create_time(),
    }
    write_atomic(state_file, json.dumps(record, indent=1) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--snapshot", type=Path, required=True, help="the tables' file")
    parser.add_argument("--state-file", type=Path, required=True, help="pid and port, JSON")
    args = parser.parse_args(argv)

    from filelock import FileLock, Timeout

    held = FileLock(args.snapshot.with_name(args.snapshot.name + ".lock"))
    try:
        held.acquire(timeout=0)
    except Timeout:
        print(f"another server already serves {args.snapshot}", file=sys.stderr)
        sys.exit(3)

    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    restore(args.snapshot)
    app = DomainDispatcherApplication(create_backend_app)
    server = make_server(
        args.host,
        args.port,
        _wrap(app, args.snapshot),
        threaded=True,
        request_handler=MotoRequestHandler,
    )

    def stop(signum: int, frame: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    _write_state(args.state_file, server.server_address[1])
    try:
        server.serve_forever()
    finally:
        save(args.snapshot)
        args.state_file.unlink(missing_ok=True)
        held.release()
    sys.exit(0)


if __name__ == "__main__":
    main()
