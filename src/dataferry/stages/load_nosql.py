"""load nosql: JSON files -> DynamoDB.

The first pass reads and checks every record and writes nothing to DynamoDB, so a file
with more bad records than allowed leaves the table untouched; it spools the valid items,
already in DynamoDB's wire form, to a temporary file. A key that repeats in the file
rejects every record that holds it, as load sql does with a repeated primary key: which
copy is right is unknowable, and "the last one wins" would hide the question. The second
pass sends the rest.
"""

from __future__ import annotations

import array
import contextlib
import functools
import itertools
import logging
import marshal
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from ..connections import resolve_dynamodb, say_chosen
from ..errors import DataferryError, InputError, RejectedRows, TargetError
from ..ledger import LoadCounts, LoadRecord, file_fingerprint
from ..readers import RejectLog, read_json_records
from ..readiness import wait_until_ready
from ..spec import Dataset, Spec
from .common import (
    RunContext,
    check_rejects_folder,
    finish,
    keep_rejects,
    ledgered,
    new_record,
    rejects_kept,
    skip,
    unchanged_since,
)

__all__ = ["dynamodb_items", "load_nosql", "replay_spool", "spool_items"]

logger = logging.getLogger("dataferry")


def _key_text(ds: Dataset, rec: dict[str, Any]) -> str | None:
    if ds.key is None:
        return None
    parts = [f"{a}={rec[a]}" for a in ds.key.attributes if a in rec]
    # printable whatever the key holds: a lone surrogate is shown escaped (\udc00)
    return ", ".join(parts).encode("utf-8", "backslashreplace").decode() or None


def dynamodb_items(
    path: Path, ds: Dataset, codec: Any, log: RejectLog | None = None
) -> Iterator[tuple[int, dict[str, Any]]]:
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
            yield pos, codec.encode(rec)
        except ValueError as e:
            if log is None:
                where = {"line": pos} if jsonl else {"record": pos}
                raise InputError(str(path), str(e), **where) from None
            log.add_record(
                pos if jsonl else None,
                None if jsonl else pos,
                _key_text(ds, rec),
                str(e),
                column=getattr(e, "column", None),
            )


def replay_spool(spool: IO[bytes], skip: frozenset[int] = frozenset()) -> Iterator[Any]:
    """The spooled (position, item) pairs, in file order, less the ``skip`` positions."""
    # marshal: the wire form is only str, bytes, bool, dicts and lists, and reading it
    # back costs far less than parsing and encoding the JSON again.
    spool.seek(0)
    while True:
        try:
            entry = marshal.load(spool)  # noqa: S302 (our own spool, written just before)
        except EOFError:
            return
        if entry[0] not in skip:
            yield entry


def _reject_repeated_keys(
    spool: IO[bytes], key_hashes: array.array[int], codec: Any, ds: Dataset, log: RejectLog
) -> frozenset[int]:
    """Log every record whose key another record of the file also has; their positions.

    The first pass kept only a 64-bit hash per key (8 bytes a record): the file is read
    again only when two hashes are equal, and only those records' keys are compared.
    """
    ordered = sorted(key_hashes)
    suspects = {a for a, b in itertools.pairwise(ordered) if a == b}
    del ordered
    if not suspects:
        return frozenset()
    groups: dict[tuple[Any, ...], list[int]] = {}
    for pos, item in replay_spool(spool):
        key = codec.key_of(item)
        if hash(key) in suspects:
            groups.setdefault(key, []).append(pos)
    jsonl = ds.source.file_format == "jsonl"
    what = "lines" if jsonl else "records"
    rejected: set[int] = set()
    for key, positions in groups.items():
        if len(positions) < 2:
            continue
        shown = ", ".join(f"{a}={v}" for a, (_, v) in zip(codec.key_attributes, key, strict=True))
        where = ", ".join(map(str, positions))
        for pos in positions:
            log.add_record(
                pos if jsonl else None,
                None if jsonl else pos,
                shown,
                f"key ({shown}) repeats in this file ({what} {where}): which one is right "
                "is unknowable, so none of them is loaded",
            )
        rejected.update(positions)
    return frozenset(rejected)


def spool_items(
    path: Path, ds: Dataset, codec: Any, log: RejectLog, spool: IO[bytes]
) -> tuple[int, frozenset[int]]:
    """Pass 1: every valid record's (position, item) into ``spool``; bad records and
    repeated keys into ``log``. Returns (valid records, positions of repeated keys)."""
    key_hashes = array.array("q")
    for pos, item in dynamodb_items(path, ds, codec, log):
        marshal.dump((pos, item), spool)
        key_hashes.append(hash(codec.key_of(item)))
    return len(key_hashes), _reject_repeated_keys(spool, key_hashes, codec, ds, log)


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

    with rejects_kept(log, record), ledgered(record, save_failure, ctx):
        check_rejects_folder(log.dest)
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
            with record.step("hash file"):
                record.file_size, record.file_sha256 = file_fingerprint(path)
        with _spool() as spool:
            try:
                with record.step("read, validate"):
                    valid, repeated = spool_items(path, ds, codec, log, spool)  # pass 1
                    spool.flush()
            except OSError as e:
                raise DataferryError(
                    f"{path}: the checked items could not be spooled to "
                    f"{tempfile.gettempdir()} ({e.strerror or e}); nothing was loaded "
                    "(TMPDIR chooses another folder)"
                ) from None
            if len(log) > allowed:
                raise RejectedRows(str(path), len(log), allowed, log.summary(), str(log.dest))
            with record.step("provision"):
                ddb.provision(client, ds)
            ctx.progress.expect(name, valid - len(repeated))
            try:
                with record.step("write"):
                    result = ddb.write(
                        client,
                        ds.target.table,
                        codec,
                        replay_spool(spool, repeated),  # pass 2
                        on_progress=functools.partial(ctx.progress.advance, name),
                    )
            except ddb.BatchRefused as e:
                raise _refused(path, ds, e) from None
        counts = LoadCounts(
            read=valid + len(log) - len(repeated),
            written=result.written,
            rejected=len(log),
            consumed_capacity=result.consumed_capacity,
        )
        with record.step("ledger"):
            ddb.record_load(client, finish(record, counts), ledger)
    return record


@contextlib.contextmanager
def _spool() -> Iterator[Any]:
    """A temporary file for pass 1. Closing it never raises: the one error it could give
    (a buffer it cannot flush, a full disk) was raised already by the write that failed."""
    f = tempfile.TemporaryFile(prefix="dataferry-", suffix=".spool")  # noqa: SIM115 (closed below, quietly)
    try:
        yield f
    finally:
        with contextlib.suppress(OSError):
            f.close()


def _refused(path: Path, ds: Dataset, err: Any) -> TargetError:
    what = "lines" if ds.source.file_format == "jsonl" else "records"
    positions = ", ".join(map(str, sorted(err.positions)))
    return TargetError(
        f"{path}: DynamoDB refused the batch holding {what} {positions}: {err}. The "
        "batches sent before it are written; fix those records and run again (the load "
        "is idempotent)"
    )


def load_nosql(
    spec: Spec, datasets: list[str] | None = None, ctx: RunContext | None = None
) -> list[LoadRecord]:
    from ..stores import dynamodb as ddb

    ctx = ctx or RunContext()
    chosen = spec.datasets_for("dynamodb", datasets)
    if not chosen:
        return []
    target = resolve_dynamodb(spec)
    say_chosen("DynamoDB", target)
    wait_until_ready(lambda t: ddb.probe(target, t), f"DynamoDB {target.display}", ctx.wait_s)
    client = ddb.client(target, outage_s=ctx.wait_s)
    ledger = spec.stores.dynamodb.ledger_table
    try:
        with ddb.writer_lock(client, ledger, target.display, ctx.run_id, ctx.wait_s):
            return [_load_one(client, spec, name, ctx) for name in chosen]
    finally:
        if target.embedded:  # moto keeps tables in memory: put this load on disk now
            _persist_embedded(spec)


def _persist_embedded(spec: Spec) -> None:
    from ..stack import EmbeddedStack

    try:
        EmbeddedStack.for_spec(spec).persist_dynamodb()
    except OSError as e:
        # The tables are still in the server's memory, and written when it stops.
        logger.warning("the embedded DynamoDB could not write its tables to disk now: %s", e)
