"""A TCP port on loopback in front of a PostgreSQL Unix socket that holds every chunk
for a fixed delay each way: a server across a network, as a client measures it, while
its host name says "this machine" (as through an SSH tunnel). A real link, not a mock."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

__all__ = ["slow_link"]


def _pump(src: socket.socket, dst: socket.socket, delay_s: float) -> None:
    with contextlib.suppress(OSError):
        while data := src.recv(65536):
            time.sleep(delay_s)
            dst.sendall(data)
    with contextlib.suppress(OSError):
        dst.shutdown(socket.SHUT_WR)


@contextlib.contextmanager
def slow_link(unix_socket: str, delay_s: float) -> Iterator[int]:
    """Yield a loopback port whose connections reach ``unix_socket`` ``delay_s`` later
    each way."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    open_sockets: list[socket.socket] = [listener]

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = listener.accept()
                server = socket.socket(socket.AF_UNIX)
                server.connect(unix_socket)
                open_sockets.extend((client, server))
                for a, b in ((client, server), (server, client)):
                    threading.Thread(target=_pump, args=(a, b, delay_s), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield listener.getsockname()[1]
    finally:
        for s in open_sockets:
            with contextlib.suppress(OSError):
                s.close()
