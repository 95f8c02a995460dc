"""A TCP proxy on loopback that holds every client-to-server chunk for a fixed delay:
what a client outside the table's region sees (about 10 ms a request), or a database
across a network. Chunks are pipelined: a stream is delayed, not slowed chunk by chunk.

    python bench/latency_proxy.py LISTEN_PORT TARGET_PORT [DELAY_MS]

Loopback only, by design: it serves the benchmark's own local servers.
"""

from __future__ import annotations

import asyncio
import sys


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    """Forward each chunk ``delay`` after it arrived, reading on meanwhile: a link with
    that latency, not one that stalls a stream for ``delay`` at every chunk."""
    loop = asyncio.get_running_loop()
    chunks: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()

    async def forward() -> None:
        try:
            while (chunk := await chunks.get()) is not None:
                due, data = chunk
                if (wait := due - loop.time()) > 0:
                    await asyncio.sleep(wait)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    sending = asyncio.create_task(forward())
    try:
        while data := await reader.read(65536):
            chunks.put_nowait((loop.time() + delay, data))
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        chunks.put_nowait(None)
        await sending


async def main(listen: int, target: int, delay_ms: float) -> None:
    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection("127.0.0.1", target)
        await asyncio.gather(
            _pump(client_r, server_w, delay_ms / 1000),
            _pump(server_r, client_w, 0),
        )

    server = await asyncio.start_server(handle, "127.0.0.1", listen)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(
        main(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]) if len(sys.argv) > 3 else 10)
    )
