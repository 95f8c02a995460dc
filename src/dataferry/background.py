"""Run a producer in a thread so its work overlaps with the consumer's (parsing and
validating the next batches while the database ingests the previous ones)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from typing import Any, TypeVar

__all__ = ["in_background", "interleaved", "submit"]

T = TypeVar("T")
_DONE = object()


def submit(fn: Callable[..., T], *args: Any) -> Future[T]:
    """Run ``fn(*args)`` in a daemon thread; its Future. Unlike a ThreadPoolExecutor's,
    the thread does not hold the process at exit (an interrupted load must not wait for
    a large file to finish hashing)."""
    future: Future[T] = Future()

    def run() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(fn(*args))
        except BaseException as e:
            future.set_exception(e)

    threading.Thread(target=run, name="dataferry-submit", daemon=True).start()
    return future


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


def interleaved(sources: list[Iterable[T]], depth: int = 4) -> Iterator[T]:
    """Yield the items of every source, each produced by a thread of its own, in the order
    they arrive. An exception in any producer is re-raised in the consumer; if the
    consumer stops early, every producer is told to stop."""
    q: queue.Queue[object] = queue.Queue(maxsize=depth * len(sources))
    stop = threading.Event()
    failure: list[BaseException] = []

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce(items: Iterable[T]) -> None:
        try:
            for item in items:
                if not put(item):
                    return
        except BaseException as e:
            failure.append(e)
        finally:
            put(_DONE)

    workers = [
        threading.Thread(target=produce, args=(s,), name=f"dataferry-producer-{n}", daemon=True)
        for n, s in enumerate(sources)
    ]
    for w in workers:
        w.start()
    try:
        running = len(workers)
        while running:
            item = q.get()
            if item is _DONE:
                running -= 1
                if failure:
                    raise failure[0]
                continue
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        for w in workers:
            w.join()
