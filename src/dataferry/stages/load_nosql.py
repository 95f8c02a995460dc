"""load nosql: JSON files -> DynamoDB.

The first pass reads and checks every record and writes nothing to DynamoDB, so a file
with more bad records than allowed leaves the table untouched; it spools the valid items,
already in DynamoDB's wire form, to a temporary file. The second pass sends them.
"""

from __future__ import annotations

import functools
import marshal
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from ..connections import resolve_dynamodb
from ..errors import InputError, RejectedRows
from ..ledger import LoadCounts, LoadRecord, file_fingerprint
from ..readers import RejectLog, read_json_records
from ..readiness import wait_until_ready
from ..spec import Dataset, Spec
from .common import RunContext, finish, keep_rejects, ledgered, new_record, skip, unchanged_since

__all__ = ["dynamodb_items", "load_nosql"]


def _key_text(ds: Dataset, rec: dict[str, Any]) -> str | None:
    if ds.key is None:
        return None
    parts = [f"{a}={rec[a]}" for a in ds.key.attributes if a in rec]
    return ", ".join(parts) or None


def dynamodb_items(
    path: Path, ds: Dataset, codec: Any, log: RejectLog | None = None
) -> Iterator[dict[str, Any]]:
    """The file's valid records as DynamoDB items.

    Without ``log`` the first bad record is an InputError naming it; with one, every bad
    record (and bad JSON Lines line) is logged with its position and key, and skipped.
    """
    fmt = ds.source.file_format
    jsonl = fmt == "jsonl"

    def on_bad(line: int, why: str) -> None:
        assert log is not None
        log.add_record(line, None, None, why)

    for pos, rec in read_json_records(path, fmt, on_bad if log is not None else None):
        try:
            yield codec.encode(rec)
        except ValueError as e:
            if log is None:
                where = {"line": pos} if jsonl else {"record": pos}
                raise InputError(str(path), str(e), **where) from None
            log.add_record(
                pos if jsonl else None, None if jsonl else pos, _key_text(ds, rec), str(e)
            )


def _replay(spool: IO[bytes]) -> Iterator[dict[str, Any]]:
    # marshal: the wire form is only str, bytes, bool, dicts and lists, and reading it
    # back costs far less than parsing and encoding the JSON again.
    while True:
        try:
            yield marshal.load(spool)  # noqa: S302 (our own spool, written just before)
        except EOFError:
            return


def _load_one(client: Any, spec: Spec, name: str, ctx: RunContext) -> LoadRecord:
    from ..stores import dynamodb as ddb

    ds = spec.datasets[name]
    path = spec.resolve(ds.source.path)
    record = new_record(spec, name, "dynamodb", ctx, str(path))
    log = RejectLog(path, dest=spec.rejects_path(name), kind="json")
    allowed = ds.max_rejects if ctx.max_rejects is None else ctx.max_rejects
    codec = ddb.ItemCodec(ds)
    ledger = spec.stores.dynamodb.ledger_table

    def save_failure(record: LoadRecord) -> None:
        keep_rejects(log, record, write=False)
        ddb.record_load(client, record, ledger)

    try:
        with ledgered(record, save_failure):
            earlier = unchanged_since(
                path,
                record,
                ds.mode,
                ctx,
                lambda: ddb.ok_loads(client, name, table=ledger),
                lambda: ddb.count(client, ds) is not None,
            )
            if earlier is not None:
                ddb.record_load(client, skip(record, earlier), ledger)
                return record
            if record.file_sha256 is None:
                record.file_size, record.file_sha256 = file_fingerprint(path)
            with tempfile.TemporaryFile(prefix="dataferry-", suffix=".spool") as spool:
                valid = 0
                for item in dynamodb_items(path, ds, codec, log):  # pass 1: nothing sent
                    marshal.dump(item, spool)
                    valid += 1
                if len(log) > allowed:
                    raise RejectedRows(str(path), len(log), allowed, log.summary(), str(log.dest))
                ddb.provision(client, ds)
                spool.seek(0)
                result = ddb.write(
                    client,
                    ds.target.table,
                    codec,
                    _replay(spool),  # pass 2
                    on_progress=functools.partial(ctx.progress, name),
                )
            counts = LoadCounts(
                read=valid + len(log),
                written=result.written,
                rejected=len(log),
                superseded=result.superseded,
                consumed_capacity=result.consumed_capacity,
            )
            ddb.record_load(client, finish(record, counts), ledger)
    finally:
        keep_rejects(log, record)
    return record


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
    try:
        return [_load_one(client, spec, name, ctx) for name in chosen]
    finally:
        if target.embedded:  # moto keeps tables in memory: put this load on disk now
            from ..stack import EmbeddedStack

            EmbeddedStack(spec.stack_dir).persist_dynamodb()
