"""BatchWriteItem from worker threads, UnprocessedItems re-sent with backoff and jitter.

Items come with their position in the source file, so that a batch the server refuses
is reported by the records it held. Keys must not repeat (load nosql rejects repeated
keys before anything is sent): DynamoDB refuses a batch holding one key twice.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from tenacity import (
    Retrying,
    retry_if_exception_type,
    stop_after_delay,
    wait_exponential_jitter,
)

from ... import interrupt
from ...errors import TargetError, TargetUnavailable
from .codec import wire_json
from .connection import translate

__all__ = ["BatchRefused", "WriteResult", "put_all", "write"]

BATCH_SIZE = 25  # BatchWriteItem's limit
log = logging.getLogger("dataferry")
# Requests are latency-bound: more in flight, not more CPU. Through 10 ms to dynalite,
# 100k items took 6.93-6.97 s with 16 and 6.25-6.30 s with 32; with no added latency
# the two are within the noise (6.07-6.24 s and 6.33 s, the same CPU).
DEFAULT_WORKERS = 32
# Batches waiting for the writer threads, in all (each up to 25 items): 128 x 25 items
# of 400 KB at worst, which is what 16 workers with 8 each held before.
QUEUED_BATCHES = 128
DEADLINE_S = 600.0  # how long a table that keeps answering UnprocessedItems is waited for
JOIN_AFTER_FAILURE_S = 30.0  # a worker mid-request finishes it (botocore's own timeouts)


@dataclass
class WriteResult:
    written: int = 0
    consumed_capacity: float = 0.0


class BatchRefused(TargetError):
    """DynamoDB refused a whole batch (a ValidationException): nothing of it was written."""

    def __init__(self, message: str, positions: list[int]) -> None:
        super().__init__(message)
        self.positions = positions


Batch = list[tuple[Any, bytes]]  # (position in the source, the item's wire JSON)


class _Unprocessed(Exception):
    pass


# The items come as their wire-form JSON text (wire_json, written once when load nosql
# checks them), so a request body is a join of bytes: botocore would otherwise walk
# every attribute of every item against its model once more (about a fifth of the
# client's CPU per 100k items, bench/), and a dict would be serialised per request.
# botocore's documented event hooks carry the body in; signing, retries and response
# parsing stay botocore's.
_BODY_EVENT = "before-call.dynamodb.BatchWriteItem"
_prebuilt = threading.local()


def _use_prebuilt_body(params: dict[str, Any], **_: Any) -> None:
    body = getattr(_prebuilt, "body", None)
    if body is not None:
        params["body"] = body
        _prebuilt.body = None


def _batch_write(client: Any, table: str, items: list[bytes]) -> dict[str, Any]:
    _prebuilt.body = b"".join(
        (
            b'{"RequestItems":{',
            json.dumps(table).encode(),
            b":[",
            b",".join(b'{"PutRequest":{"Item":' + item + b"}}" for item in items),
            b']},"ReturnConsumedCapacity":"TOTAL"}',
        )
    )
    try:
        return client.batch_write_item(RequestItems={}, ReturnConsumedCapacity="TOTAL")
    finally:
        _prebuilt.body = None


def _send(client: Any, table: str, batch: Batch, deadline_s: float) -> float:
    pending = [item for _, item in batch]
    consumed = 0.0
    retrying = Retrying(
        retry=retry_if_exception_type(_Unprocessed),
        wait=wait_exponential_jitter(multiplier=0.05, max=5.0, jitter=0.05),
        stop=stop_after_delay(deadline_s),
        sleep=interrupt.sleep,
        reraise=True,
    )
    try:
        for attempt in retrying:
            with attempt:
                resp = _batch_write(client, table, pending)
                consumed += sum(
                    c.get("CapacityUnits", 0.0) for c in resp.get("ConsumedCapacity", []) or []
                )
                # botocore parsed these (binary values as bytes): sent as JSON again
                unprocessed = (resp.get("UnprocessedItems") or {}).get(table) or []
                pending = [wire_json(r["PutRequest"]["Item"]) for r in unprocessed]
                if pending:
                    raise _Unprocessed
    except _Unprocessed:
        left = len(pending)
        raise TargetUnavailable(
            f"DynamoDB table {table}: {left} items still unprocessed after {deadline_s:.0f}s"
        ) from None
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") == "ValidationException":
            positions = [pos for pos, _ in batch]
            raise BatchRefused(
                f"{translate(e, f'table {table}')}; nothing of that batch was written",
                positions,
            ) from None
        raise translate(e, f"table {table}") from None
    except BotoCoreError as e:
        raise translate(e, f"table {table}") from None
    return consumed


def put_all(client: Any, table: str, items: list[dict[str, Any]]) -> None:
    """Put a few wire-form items (a ledger's), 25 a request, from this thread."""
    client.meta.events.register(_BODY_EVENT, _use_prebuilt_body, unique_id=_BODY_EVENT)
    for start in range(0, len(items), BATCH_SIZE):
        batch = [(n, wire_json(item)) for n, item in enumerate(items[start : start + BATCH_SIZE])]
        _send(client, table, batch, DEADLINE_S)


def write(
    client: Any,
    table: str,
    items: Iterable[tuple[Any, int, bytes]],
    *,
    workers: int = DEFAULT_WORKERS,
    deadline_s: float = DEADLINE_S,
    on_progress: Callable[[int], None] | None = None,
) -> WriteResult:
    """Put every item, given as (position in the source, hash of its key, its wire_json
    text); return counts. Items must be valid (see ItemCodec.encode) and their keys
    distinct.

    The reading thread groups items by key hash into batches of 25 and hands them to
    that hash's worker. The first failure in any worker, or a cancelling signal, stops
    every worker after its current request; the failure is raised here.
    """
    client.meta.events.register(_BODY_EVENT, _use_prebuilt_body, unique_id=_BODY_EVENT)
    result = WriteResult()
    lock = threading.Lock()
    failure: list[BaseException] = []
    log.info("%s: %d writer threads, 25 items a request", table, workers)
    # QUEUED_BATCHES in all, whatever the workers: what waits in memory stays bounded
    depth = max(2, QUEUED_BATCHES // workers)
    queues: list[queue.Queue[Batch | None]] = [queue.Queue(maxsize=depth) for _ in range(workers)]

    def stopped() -> bool:
        return bool(failure) or interrupt.cancelled()

    def send(batch: Batch) -> None:
        consumed = _send(client, table, batch, deadline_s)
        with lock:
            result.written += len(batch)
            result.consumed_capacity += consumed
        if on_progress:
            on_progress(len(batch))

    def worker(q: queue.Queue[Batch | None]) -> None:
        # Every batch is taken off the queue, also after a failure, so that the reading
        # thread never blocks on a full queue; the end marker is taken exactly once.
        try:
            while (batch := q.get()) is not None:
                if not stopped():
                    send(batch)
        except BaseException as e:
            failure.append(e)
            while q.get() is not None:
                pass

    threads = [
        threading.Thread(target=worker, args=(q,), name=f"dataferry-put-{n}", daemon=True)
        for n, q in enumerate(queues)
    ]
    for t in threads:
        t.start()
    chunks: list[Batch] = [[] for _ in range(workers)]
    try:
        for pos, key_hash, item in items:
            if stopped():
                break
            n = key_hash % workers
            chunks[n].append((pos, item))
            if len(chunks[n]) == BATCH_SIZE:
                queues[n].put(chunks[n])
                chunks[n] = []
        for n, chunk in enumerate(chunks):
            if chunk and not stopped():
                queues[n].put(chunk)
    finally:
        for q in queues:
            # After a failure the workers drain their queues; one still mid-request
            # frees its slot within botocore's timeouts, or is left behind (a daemon).
            with contextlib.suppress(queue.Full):
                q.put(None, timeout=JOIN_AFTER_FAILURE_S if stopped() else None)
        # Bounded: a worker mid-request ends it within botocore's timeouts; after a
        # failure or an interruption nothing waits for a straggler beyond that.
        for t in threads:
            t.join(timeout=None if not stopped() else JOIN_AFTER_FAILURE_S)
    if failure:
        raise failure[0]
    interrupt.check()
    return result
