"""load nosql: JSON files -> DynamoDB. Each file is validated whole before its first write."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..connections import resolve_dynamodb
from ..errors import InputError
from ..ledger import LoadCounts, LoadRecord, file_fingerprint
from ..readers import read_json_records
from ..readiness import wait_until_ready
from ..spec import Dataset, Spec
from ..stack import EmbeddedStack
from .common import RunContext, finish, ledgered, new_record

__all__ = ["dynamodb_items", "load_nosql"]


def dynamodb_items(path: Path, ds: Dataset, codec: Any) -> Iterator[dict[str, Any]]:
    """The file's records as validated DynamoDB items; InputError names the bad record."""
    fmt = ds.source.file_format
    for pos, rec in read_json_records(path, fmt):
        try:
            yield codec.encode(rec)
        except ValueError as e:
            where = {"line": pos} if fmt == "jsonl" else {"record": pos}
            raise InputError(str(path), str(e), **where) from None


def load_nosql(
    spec: Spec, datasets: list[str] | None = None, ctx: RunContext | None = None
) -> list[LoadRecord]:
    from ..stores import dynamodb as ddb

    ctx = ctx or RunContext()
    chosen = spec.datasets_for("dynamodb", datasets)
    if not chosen:
        return []
    target = resolve_dynamodb(spec)
    wait_until_ready(lambda: ddb.probe(target), f"DynamoDB {target.display}", ctx.wait_s)
    client = ddb.client(target)
    records = []
    try:
        for name, ds in chosen.items():
            path = spec.resolve(ds.source.path)
            record = new_record(spec, name, "dynamodb", ctx, str(path))
            codec = ddb.ItemCodec(ds)
            with ledgered(record, functools.partial(ddb.record_load, client)):
                if not path.is_file():
                    raise InputError(str(path), "no such file")
                record.file_size, record.file_sha256 = file_fingerprint(path)
                n = sum(1 for _ in dynamodb_items(path, ds, codec))  # pass 1: nothing written
                ddb.provision(client, ds)
                result = ddb.write(
                    client,
                    ds.target.table,
                    codec,
                    dynamodb_items(path, ds, codec),
                    on_progress=functools.partial(ctx.progress, name),
                )
                counts = LoadCounts(read=n, written=result.written, superseded=result.superseded)
                ddb.record_load(client, finish(record, counts))
            records.append(record)
    finally:
        if target.embedded:  # moto keeps tables in memory: put this load on disk now
            EmbeddedStack(spec.stack_dir).persist_dynamodb()
    return records
