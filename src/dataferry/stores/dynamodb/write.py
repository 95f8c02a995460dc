"""BatchWriteItem from worker threads, UnprocessedItems re-sent with backoff and jitter.

Items are routed to workers by key, and each worker sends its batches in file order, so
when a key repeats in a file the last record wins deterministically, as it would with a
single writer; a repeat inside one batch (which DynamoDB rejects) is resolved beforehand.
"""

from __future__ import annotations

import base64
import json
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

from ...errors import TargetUnavailable
from .codec import ItemCodec
from .connection import translate

__all__ = ["WriteResult", "write"]

BATCH_SIZE = 25  # BatchWriteItem's limit
DEFAULT_WORKERS = 8  # requests are latency-bound: more in flight, not more CPU
DEADLINE_S = 600.0


@dataclass
class WriteResult:
    written: int = 0
    # Records replaced by a later record with the same key in the same batch. A repeat
    # further apart is an overwrite DynamoDB performs itself; it is not counted here.
    superseded: int = 0
    consumed_capacity: float = 0.0


class _Unprocessed(Exception):
    pass


# The items are already in DynamoDB's wire form (ItemCodec), so the request body is one
# json.dumps. botocore would otherwise walk every attribute of every item against its
# model once more: about a fifth of the client's CPU time per 100k items (bench/).
# botocore's documented event hooks carry the body in; signing, retries and response
# parsing stay botocore's.
_BODY_EVENT = "before-call.dynamodb.BatchWriteItem"
_prebuilt = threading.local()


def _use_prebuilt_body(params: dict[str, Any], **_: Any) -> None:
    body = getattr(_prebuilt, "body", None)
    if body is not None:
        params["body"] = body
        _prebuilt.body = None


def _blob(value: Any) -> str:
    """Binary attributes (B, BS) travel base64-encoded, as botocore would send them."""
    raw = value.value if hasattr(value, "value") else value
    if isinstance(raw, (bytes, bytearray)):
        return base64.b64encode(raw).decode()
    raise TypeError(f"cannot send {type(value).__name__} to DynamoDB")


def _batch_write(client: Any, request_items: dict[str, Any]) -> dict[str, Any]:
    _prebuilt.body = json.dumps(
        {"RequestItems": request_items, "ReturnConsumedCapacity": "TOTAL"},
        default=_blob,
        separators=(",", ":"),
    ).encode()
    try:
        return client.batch_write_item(RequestItems={}, ReturnConsumedCapacity="TOTAL")
    finally:
        _prebuilt.body = None


def _send(client: Any, table: str, batch: list[dict[str, Any]], deadline_s: float) -> float:
    pending: dict[str, Any] = {table: [{"PutRequest": {"Item": item}} for item in batch]}
    consumed = 0.0
    retrying = Retrying(
        retry=retry_if_exception_type(_Unprocessed),
        wait=wait_exponential_jitter(multiplier=0.05, max=5.0, jitter=0.05),
        stop=stop_after_delay(deadline_s),
        reraise=True,
    )
    try:
        for attempt in retrying:
            with attempt:
                resp = _batch_write(client, pending)
                consumed += sum(
                    c.get("CapacityUnits", 0.0) for c in resp.get("ConsumedCapacity", []) or []
                )
                pending = resp.get("UnprocessedItems") or {}
                if pending:
                    raise _Unprocessed
    except _Unprocessed:
        left = len(pending.get(table, []))
        raise TargetUnavailable(
            f"DynamoDB table {table}: {left} items still unprocessed after {deadline_s:.0f}s"
        ) from None
    except (BotoCoreError, ClientError) as e:
        raise translate(e, f"table {table}") from None
    return consumed


def write(
    client: Any,
    table: str,
    codec: ItemCodec,
    items: Iterable[dict[str, Any]],
    *,
    workers: int = DEFAULT_WORKERS,
    deadline_s: float = DEADLINE_S,
    on_progress: Callable[[int], None] | None = None,
) -> WriteResult:
    """Put every item; return counts. Items must already be valid (see ItemCodec.encode).

    The reading thread groups items by key partition into batches of 25 and hands whole
    batches to the partition's worker, which resolves repeated keys and sends them.
    """
    client.meta.events.register(_BODY_EVENT, _use_prebuilt_body, unique_id=_BODY_EVENT)
    result = WriteResult()
    lock = threading.Lock()
    failure: list[BaseException] = []
    queues: list[queue.Queue[list[tuple[Any, dict[str, Any]]] | None]] = [
        queue.Queue(maxsize=8) for _ in range(workers)
    ]

    def send(batch: dict[Any, dict[str, Any]]) -> None:
        consumed = _send(client, table, list(batch.values()), deadline_s)
        with lock:
            result.written += len(batch)
            result.consumed_capacity += consumed
        if on_progress:
            on_progress(len(batch))

    def worker(q: queue.Queue[list[tuple[Any, dict[str, Any]]] | None]) -> None:
        pending: dict[Any, dict[str, Any]] = {}
        superseded = 0
        try:
            while (chunk := q.get()) is not None:
                if failure:
                    continue  # drain so the reader never blocks
                for key, item in chunk:
                    if key in pending:
                        superseded += 1
                        del pending[key]  # the later record wins, and moves to the end
                    pending[key] = item
                    if len(pending) == BATCH_SIZE:
                        send(pending)
                        pending = {}
            if pending and not failure:
                send(pending)
        except BaseException as e:
            failure.append(e)
            while q.get() is not None:
                pass
        with lock:
            result.superseded += superseded

    threads = [threading.Thread(target=worker, args=(q,), daemon=True) for q in queues]
    for t in threads:
        t.start()
    chunks: list[list[tuple[Any, dict[str, Any]]]] = [[] for _ in range(workers)]
    try:
        for item in items:
            if failure:
                break
            key = codec.key_of(item)
            n = hash(key) % workers
            chunks[n].append((key, item))
            if len(chunks[n]) == BATCH_SIZE:
                queues[n].put(chunks[n])
                chunks[n] = []
        for n, chunk in enumerate(chunks):
            if chunk and not failure:
                queues[n].put(chunk)
    finally:
        for q in queues:
            q.put(None)
        for t in threads:
            t.join()
    if failure:
        raise failure[0]
    return result
