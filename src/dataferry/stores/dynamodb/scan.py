"""Scan a table, every page (the original read only the first), into typed Arrow batches.

Declared columns come out typed by the spec; attributes the spec does not declare are kept
together, exactly, as one JSON object in the ``_attributes`` column, so nothing is lost.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
from botocore.exceptions import BotoCoreError, ClientError

from ...errors import TargetError
from ...spec import Dataset
from ...types import LogicalType
from .connection import translate
from .wire_columns import BadAttribute, column_array, extras_array, wire_json

__all__ = ["EXTRA_COLUMN", "columns", "read", "schema"]

log = logging.getLogger("dataferry")
EXTRA_COLUMN = "_attributes"
BATCH_ITEMS = 10_000
DEFAULT_SEGMENTS = 4  # Scan segments read at once; DynamoDB spreads them over partitions


def columns(ds: Dataset) -> dict[str, LogicalType]:
    """The raw table's columns: the key, the declared attributes, and the rest as JSON."""
    out = {a: ds.key_type(a) for a in ds.key_columns}
    out |= {n: c.type for n, c in ds.columns.items() if n not in out}
    return out | {EXTRA_COLUMN: LogicalType("json")}


def schema(ds: Dataset) -> pa.Schema:
    return pa.schema([(n, t.arrow()) for n, t in columns(ds).items()])


def _to_batch(
    ds: Dataset, cols: dict[str, LogicalType], items: list[dict[str, Any]]
) -> pa.RecordBatch:
    declared = [n for n in cols if n != EXTRA_COLUMN]
    try:
        arrays = [column_array(n, cols[n], items) for n in declared]
    except BadAttribute as e:
        item = items[e.index]
        key = ", ".join(
            f"{a}={wire_json(item[a]) if a in item else '(none)'}" for a in ds.key_columns
        )
        raise TargetError(f"DynamoDB table {ds.target.table}: item {key}: {e}") from None
    except ValueError as e:
        raise TargetError(f"DynamoDB table {ds.target.table}: {e}") from None
    arrays.append(extras_array(set(declared), items))
    return pa.RecordBatch.from_arrays(arrays, names=[*declared, EXTRA_COLUMN])


# Scan pages are parsed here with json.loads, not by botocore, whose model-driven parser
# walked every attribute of every item (most of the client's CPU time on a large table).
# botocore's documented before-parse event hands over the body; the items are kept aside
# and botocore parses what remains (LastEvaluatedKey, counts) as usual.
_RAW_ITEMS = "DataferryRawItems"
_PARSE_EVENT = "before-parse.dynamodb.Scan"


def _take_raw_items(
    response_dict: dict[str, Any], customized_response_dict: dict[str, Any], **_: Any
) -> None:
    if response_dict.get("status_code") != 200:
        return
    body = json.loads(response_dict["body"])
    customized_response_dict[_RAW_ITEMS] = body.pop("Items", [])
    response_dict["body"] = json.dumps(body).encode()


def _segment_pages(
    client: Any, table: str, segment: int, total: int, out: queue.Queue[Any], stop: threading.Event
) -> None:
    """Every page of one Scan segment onto ``out`` (a page at a time, so memory stays
    bounded by the queue); then None, or the exception that ended it."""
    try:
        kwargs: dict[str, Any] = {"TableName": table}
        if total > 1:
            kwargs |= {"Segment": segment, "TotalSegments": total}
        pages = items = 0
        for page in client.get_paginator("scan").paginate(**kwargs):
            if stop.is_set():
                break
            got = page[_RAW_ITEMS] if _RAW_ITEMS in page else page.get("Items", [])
            pages, items = pages + 1, items + len(got)
            log.debug(
                "%s: segment %d/%d, page %d, %d items so far",
                table,
                segment + 1,
                total,
                pages,
                items,
            )
            out.put(got)
        log.info(
            "%s: segment %d/%d read: %d items in %d pages", table, segment + 1, total, items, pages
        )
        out.put(None)
    except BaseException as e:
        out.put(e)


def read(client: Any, ds: Dataset, segments: int = DEFAULT_SEGMENTS) -> Iterator[pa.RecordBatch]:
    """Yield the whole table as record batches of at most BATCH_ITEMS rows.

    A parallel Scan: ``segments`` threads each read their segment, every page of it (the
    original read only the first page of the whole table). Pages arrive in no particular
    order; the warehouse merges on the key, so order does not matter.
    """
    cols = columns(ds)
    client.meta.events.register(_PARSE_EVENT, _take_raw_items, unique_id=_PARSE_EVENT)
    out: queue.Queue[Any] = queue.Queue(maxsize=4 * segments)
    stop = threading.Event()
    threads = [
        threading.Thread(
            target=_segment_pages,
            args=(client, ds.target.table, n, segments, out, stop),
            name=f"dataferry-scan-{n}",
            daemon=True,
        )
        for n in range(segments)
    ]
    for t in threads:
        t.start()
    items: list[dict[str, Any]] = []
    running = segments
    try:
        while running:
            got = out.get()
            if got is None:
                running -= 1
                continue
            if isinstance(got, BaseException):
                if isinstance(got, (BotoCoreError, ClientError)):
                    raise translate(got, f"table {ds.target.table}") from None
                raise got
            items += got
            while len(items) >= BATCH_ITEMS:
                yield _to_batch(ds, cols, items[:BATCH_ITEMS])
                del items[:BATCH_ITEMS]
        if items:
            yield _to_batch(ds, cols, items)
    finally:
        stop.set()
        while any(t.is_alive() for t in threads):  # let blocked producers finish
            with contextlib.suppress(queue.Empty):
                out.get(timeout=0.05)
