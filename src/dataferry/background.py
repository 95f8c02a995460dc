"""Run a producer in a thread so its work overlaps with the consumer's (parsing and
validating the next batches while the database ingests the previous ones)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

__all__ = ["in_background"]

T = TypeVar("T")
_DONE = object()


def in_background(items: Iterable[T], depth: int = 4) -> Iterator[T]:
    """Yield ``items``, produced up to ``depth`` ahead by a worker thread.

    An exception in the producer is re-raised in the consumer at the point it happened;
    if the consumer stops early, the producer is told to stop.
    """
    q: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()
    failure: list[BaseException] = []

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
        except BaseException as e:
            failure.append(e)
        finally:
            while not stop.is_set():
                try:
                    q.put(_DONE, timeout=0.1)
                    break
                except queue.Full:
                    continue

    worker = threading.Thread(target=produce, name="dataferry-producer", daemon=True)
    worker.start()
    try:
        while (item := q.get()) is not _DONE:
            yield item  # type: ignore[misc]
        if failure:
            raise failure[0]
    finally:
        stop.set()
        worker.join()
