"""A fault injector: an HTTP endpoint in front of a real DynamoDB-compatible server that
answers every other BatchWriteItem with half of its items as UnprocessedItems (what
DynamoDB does under throttling, which the local servers never do). Only the processed
half reaches the server; everything else is forwarded unchanged."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

__all__ = ["unprocessed_proxy"]


@contextmanager
def unprocessed_proxy(target_url: str) -> Iterator[tuple[str, dict[str, int]]]:
    """Yield the proxy's URL and its counters (batch calls seen, items withheld)."""
    target = urlsplit(target_url)
    stats = {"batch_calls": 0, "withheld": 0}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            withheld: dict[str, list[object]] = {}
            if self.headers.get("X-Amz-Target", "").endswith(".BatchWriteItem"):
                request = json.loads(body)
                ((table, puts),) = request["RequestItems"].items()
                with lock:
                    stats["batch_calls"] += 1
                    split = stats["batch_calls"] % 2 == 1 and len(puts) > 1
                    if split:
                        stats["withheld"] += len(puts) - len(puts) // 2
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
            self.send_response(resp.status)
            for k, v in resp.getheaders():
                # the body may have changed, so its length and CRC32 are set anew or dropped
                if k.lower() not in ("content-length", "x-amz-crc32", "connection", "date"):
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", stats
    finally:
        server.shutdown()
        server.server_close()
