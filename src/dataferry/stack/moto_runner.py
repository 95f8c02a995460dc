"""moto's server with its state on disk: the fallback embedded DynamoDB endpoint
(``--service dynamodb``) and the embedded S3 (``--service s3``).

moto keeps tables and objects in memory only. This runner restores the service's state
from a snapshot file when it starts and writes the snapshot when it stops
(SIGTERM/SIGINT) and whenever a client POSTs ``/_dataferry/snapshot`` (the nosql stage
does, after each load; the stack's S3 after each change), so data survives
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
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

SNAPSHOT_PATH = "/_dataferry/snapshot"
# One request at a time: a snapshot must never see a table half-way through a write, and
# two snapshots never write at once.
_lock = threading.Lock()


SERVICES = ("dynamodb", "s3")
# What of a backend is not state to keep: DynamoDB's export and import jobs are threads
# (they cannot be pickled), left out of the snapshot and put back after it.
_TRANSIENT = {"dynamodb": ("table_exports", "table_imports"), "s3": ()}


def _backends(service: str) -> Any:
    if service == "s3":
        from moto.s3.models import s3_backends

        return s3_backends
    from moto.dynamodb.models import dynamodb_backends

    return dynamodb_backends


def save(snapshot: Path, service: str = "dynamodb") -> None:
    """Write the service's state atomically (a crash mid-write keeps the previous file)."""
    from .server_process import write_atomic

    with _lock:
        regions = [r for account in _backends(service).values() for r in account.values()]
        kept = [{k: r.__dict__.pop(k, None) for k in _TRANSIENT[service]} for r in regions]
        try:
            data = pickle.dumps(dict(_backends(service)), protocol=pickle.HIGHEST_PROTOCOL)
        finally:
            for region, fields in zip(regions, kept, strict=True):
                for k, v in fields.items():
                    region.__dict__[k] = v if v is not None else {}
        write_atomic(snapshot, data)


def restore(snapshot: Path, service: str = "dynamodb") -> None:
    if not snapshot.exists():
        return
    # The file is this runner's own, in the project's private .dataferry folder.
    saved = pickle.loads(snapshot.read_bytes())  # noqa: S301
    for account in saved.values():
        for region in account.values():
            for k in _TRANSIENT[service]:
                region.__dict__.setdefault(k, {})
    _backends(service).update(saved)


SAVE_AFTER_S = 2.0  # S3: objects written are on disk this long after the last write
_dirty = threading.Event()


def _saver(snapshot: Path, service: str) -> None:
    """S3 is written to by other programs (an upload), which never ask for a snapshot:
    the state is saved shortly after each change instead."""
    while True:
        _dirty.wait()
        time.sleep(SAVE_AFTER_S)
        _dirty.clear()
        save(snapshot, service)


def _wrap(
    app: Callable[..., Iterable[bytes]], snapshot: Path, service: str
) -> Callable[..., Iterable[bytes]]:
    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if service == "s3" and environ["REQUEST_METHOD"] in ("PUT", "POST", "DELETE"):
            _dirty.set()
        if environ.get("PATH_INFO") == SNAPSHOT_PATH and environ["REQUEST_METHOD"] == "POST":
            save(snapshot, service)
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
    parser.add_argument("--snapshot", type=Path, required=True, help="the state's file")
    parser.add_argument("--service", choices=SERVICES, default="dynamodb")
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

    restore(args.snapshot, args.service)
    app = DomainDispatcherApplication(create_backend_app)
    server = make_server(
        args.host,
        args.port,
        _wrap(app, args.snapshot, args.service),
        threaded=True,
        request_handler=MotoRequestHandler,
    )

    def stop(signum: int, frame: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.service == "s3":
        threading.Thread(target=_saver, args=(args.snapshot, args.service), daemon=True).start()
    _write_state(args.state_file, server.server_address[1])
    try:
        server.serve_forever()
    finally:
        save(args.snapshot, args.service)
        args.state_file.unlink(missing_ok=True)
        held.release()
    sys.exit(0)


if __name__ == "__main__":
    main()
