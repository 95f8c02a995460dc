"""Fault injectors: an HTTP endpoint in front of a real DynamoDB-compatible server that
does to BatchWriteItem calls what DynamoDB does and the local servers never do.

- ``unprocessed``: every other batch gets half of its items back as UnprocessedItems (as
  under throttling); only the processed half reaches the server.
- ``refuse_batch=N``: the Nth batch is answered with a ValidationException, as DynamoDB
  refuses a whole batch holding one item it cannot take; nothing of it is written.

Everything else is forwarded unchanged. A real HTTP fault, not a mock: the client under
test runs its own retry and error paths.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

__all__ = ["fault_proxy"]


@contextmanager
def fault_proxy(
    target_url: str, *, unprocessed: bool = False, refuse_batch: int | None = None
) -> Iterator[tuple[str, dict[str, int]]]:
    """Yield the proxy's URL and its counters (batch calls seen, items withheld, batches
    refused)."""
    target = urlsplit(target_url)
    stats = {"batch_calls": 0, "withheld": 0, "refused": 0}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def answer(self, status: int, headers: list[tuple[str, str]], payload: bytes) -> None:
            self.send_response(status)
            for k, v in headers:
                # the body may have changed, so its length and CRC32 are set anew or dropped
                if k.lower() not in ("content-length", "x-amz-crc32", "connection", "date"):
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            withheld: dict[str, list[object]] = {}
            if self.headers.get("X-Amz-Target", "").endswith(".BatchWriteItem"):
                request = json.loads(body)
                ((table, puts),) = request["RequestItems"].items()
                with lock:
                    stats["batch_calls"] += 1
                    n = stats["batch_calls"]
                    refuse = refuse_batch is not None and n == refuse_batch
                    split = unprocessed and n % 2 == 1 and len(puts) > 1
                    stats["refused"] += refuse
                    if split:
                        stats["withheld"] += len(puts) - len(puts) // 2
                if refuse:
                    error = {
                        "__type": "com.amazon.coral.validate#ValidationException",
                        "message": "One or more parameter values were invalid: injected fault",
                    }
                    ctype = [("Content-Type", "application/x-amz-json-1.0")]
                    self.answer(400, ctype, json.dumps(error).encode())
                    return
                if split:
                    half = len(puts) // 2
                    withheld = {table: puts[half:]}
                    request["RequestItems"] = {table: puts[:half]}
                    body = json.dumps(request).encode()
            conn = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
            headers = {k: v for k, v in self.headers.items() if k.lower() != "content-length"}
            conn.request("POST", self.path, body=body, headers=headers)
            resp = conn.getresponse()
            payload = resp.read()
            conn.close()
            if withheld and resp.status == 200:
                answer = json.loads(payload)
                answer["UnprocessedItems"] = withheld
                payload = json.dumps(answer).encode()
            self.answer(resp.status, resp.getheaders(), payload)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", stats
    finally:
        server.shutdown()
        server.server_close()
