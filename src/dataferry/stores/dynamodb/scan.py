"""Scan a table, every page (the original read only the first), into typed Arrow batches.

Declared columns come out typed by the spec; attributes the spec does not declare are kept
together, exactly, as one JSON object in the ``_attributes`` column, so nothing is lost.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pyarrow as pa
from botocore.exceptions import BotoCoreError, ClientError

from ...errors import TargetError
from ...spec import Dataset
from ...types import LogicalType
from .codec import ItemCodec, to_json
from .connection import translate

__all__ = ["EXTRA_COLUMN", "columns", "read", "schema"]

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


def _column_value(ds: Dataset, name: str, value: Any) -> Any:
    if value is None:
        return None
    t = ds.key_type(name)
    if t.int_range is not None and isinstance(value, Decimal):
        return int(value)
    if t.name in ("real", "double") and isinstance(value, Decimal):
        return float(value)
    if t.name in ("json", "string_set", "number_set"):
        return to_json(value)  # sets come out sorted, as JSON arrays
    if t.name == "binary":
        return bytes(value.value) if hasattr(value, "value") else bytes(value)
    return value


def _to_batch(ds: Dataset, sch: pa.Schema, rows: list[dict[str, Any]]) -> pa.RecordBatch:
    declared = [f.name for f in sch if f.name != EXTRA_COLUMN]
    columns: dict[str, list[Any]] = {n: [] for n in declared}
    extras: list[str | None] = []
    for row in rows:
        for n in declared:
            columns[n].append(_column_value(ds, n, row.get(n)))
        rest = {k: v for k, v in row.items() if k not in columns}
        extras.append(to_json(rest) if rest else None)
    arrays = []
    for f in sch:
        data = extras if f.name == EXTRA_COLUMN else columns[f.name]
        try:
            arrays.append(pa.array(data, type=f.type))
        except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
            raise TargetError(
                f"DynamoDB table {ds.target.table}: attribute {f.name} holds a value that is "
                f"not {ds.key_type(f.name)}: {e}"
            ) from None
    return pa.RecordBatch.from_arrays(arrays, schema=sch)


def _segment_pages(
    client: Any, table: str, segment: int, total: int, out: queue.Queue[Any], stop: threading.Event
) -> None:
    """Every page of one Scan segment onto ``out`` (a page at a time, so memory stays
    bounded by the queue); then None, or the exception that ended it."""
    try:
        kwargs: dict[str, Any] = {"TableName": table}
        if total > 1:
            kwargs |= {"Segment": segment, "TotalSegments": total}
        for page in client.get_paginator("scan").paginate(**kwargs):
            if stop.is_set():
                break
            out.put(page.get("Items", []))
        out.put(None)
    except BaseException as e:
        out.put(e)


def read(client: Any, ds: Dataset, segments: int = DEFAULT_SEGMENTS) -> Iterator[pa.RecordBatch]:
    """Yield the whole table as record batches of at most BATCH_ITEMS rows.

    A parallel Scan: ``segments`` threads each read their segment, every page of it (the
    original read only the first page of the whole table). Pages arrive in no particular
    order; the warehouse merges on the key, so order does not matter.
    """
    sch = schema(ds)
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
    rows: list[dict[str, Any]] = []
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
            for item in got:
                rows.append(ItemCodec.decode(item))
                if len(rows) >= BATCH_ITEMS:
                    yield _to_batch(ds, sch, rows)
                    rows = []
        if rows:
            yield _to_batch(ds, sch, rows)
    finally:
        stop.set()
        while any(t.is_alive() for t in threads):  # let blocked producers finish
            with contextlib.suppress(queue.Empty):
                out.get(timeout=0.05)
