"""load nosql: JSON files -> DynamoDB.

The first pass reads and checks every record and writes nothing to DynamoDB, so a file
with more bad records than allowed leaves the table untouched; it spools the valid items,
already in DynamoDB's wire form, to a temporary file. A key that repeats in the file
rejects every record that holds it, as load sql does with a repeated primary key: which
copy is right is unknowable, and "the last one wins" would hide the question. The second
pass sends the rest.

A dataset of several files reads them in order as one load: a key repeated within one
file is rejected as above, while a key that a later file holds again is that later
file's (the earlier record is superseded, not sent), as if each file were a load of its own.
"""

from __future__ import annotations

import array
import contextlib
import functools
import itertools
import logging
import struct
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ..connections import resolve_dynamodb, say_chosen
from ..errors import DataferryError, InputError, NotSupported, RejectedRows, TargetError
from ..ledger import LoadCounts, LoadRecord
from ..readers import RejectLog, read_json_records
from ..sources import SourceFile, dataset_files, fetch_ahead
from ..spec import Dataset, Spec
from .common import (
    RunContext,
    check_rejects_folder,
    files_to_load,
    fingerprint_files,
    finish,
    keep_rejects,
    ledgered,
    new_record,
    rejects_kept,
    settle_files,
    skip_all,
    source_text,
)

__all__ = ["Spooled", "dynamodb_items", "load_nosql", "replay_spool", "spool_items"]

logger = logging.getLogger("dataferry")
IMPORT_DEADLINE_S = 6 * 3600.0  # an import of a large table takes hours on AWS


def _key_text(ds: Dataset, rec: dict[str, Any]) -> str | None:
    if ds.key is None:
        return None
    parts = [f"{a}={rec[a]}" for a in ds.key.attributes if a in rec]
    # printable whatever the key holds: a lone surrogate is shown escaped (\udc00)
    return ", ".join(parts).encode("utf-8", "backslashreplace").decode() or None


def dynamodb_items(
    source: SourceFile | Path, ds: Dataset, codec: Any, log: RejectLog | None = None
) -> Iterator[tuple[int, dict[str, Any]]]:
    """The file's valid records as DynamoDB items.

    Without ``log`` the first bad record is an InputError naming it; with one, every bad
    record (and bad JSON Lines line) is logged with its position and key, and skipped.
    """
    source = SourceFile.of(source, ds.source.codec)
    fmt = ds.source.file_format
    jsonl = fmt == "jsonl"

    def on_bad(line: int, why: str) -> None:
        assert log is not None
        log.add_record(line, None, None, why)

    for pos, rec in read_json_records(source, fmt, on_bad if log is not None else None):
        try:
            yield pos, codec.encode(rec)
        except ValueError as e:
            if log is None:
                where = {"line": pos} if jsonl else {"record": pos}
                raise InputError(str(source), str(e), **where) from None
            log.add_record(
                pos if jsonl else None,
                None if jsonl else pos,
                _key_text(ds, rec),
                str(e),
                column=getattr(e, "column", None),
            )


Position = tuple[int, int]  # (the file's index in the load, the record's line or index)


# A spooled item: its position (file index, record), the hash of its key (to route it,
# and to find repeated keys), and the length of its wire JSON, which follows.
_HEADER = struct.Struct("<iqqI")
SpooledItem = tuple[Position, int, bytes]


def spool_entry(spool: IO[bytes], pos: Position, key_hash: int, text: bytes) -> None:
    """Append one item to the spool: a header, then its wire JSON text (wire_json).

    The text is what DynamoDB's API and ImportTable take, so pass 2 sends it as it is (a
    request body is a join of bytes) instead of decoding the spool and encoding each
    request again: 15% of the client's CPU time for 100k items (bench/).
    """
    spool.write(_HEADER.pack(pos[0], pos[1], key_hash, len(text)))
    spool.write(text)


def replay_spool(
    spool: IO[bytes], skip: frozenset[Position] = frozenset()
) -> Iterator[SpooledItem]:
    """The spooled (position, key hash, wire JSON) items, in load order, less the ``skip``
    positions."""
    spool.seek(0)  # a buffered file: each read below is a copy out of its buffer
    while head := spool.read(_HEADER.size):
        f, pos, key_hash, size = _HEADER.unpack(head)
        text = spool.read(size)
        if (f, pos) not in skip:
            yield (f, pos), key_hash, text


@dataclass
class Spooled:
    """What pass 1 found: valid records, positions not to send (repeated keys, and
    records a later file supersedes) and how many were superseded."""

    valid: int
    skip: frozenset[Position]
    superseded: frozenset[Position] = frozenset()
    per_file: dict[int, int] = field(default_factory=dict)  # valid records of each file

    @property
    def to_send(self) -> int:
        return self.valid - len(self.skip)

    def read(self, rejected: int, file: int | None = None) -> int:
        """Records read (of one file): valid ones and rejected ones, each counted once
        (a record rejected for its repeated key was valid too)."""
        repeated = [p for p in self.skip - self.superseded if file is None or p[0] == file]
        valid = self.valid if file is None else self.per_file.get(file, 0)
        return valid + rejected - len(repeated)


def _reject_repeated_keys(
    spool: IO[bytes],
    key_hashes: array.array[int],
    codec: Any,
    ds: Dataset,
    log: RejectLog,
    files: list[SourceFile],
) -> tuple[frozenset[Position], frozenset[Position]]:
    """Log every record whose key another record of its file also has; supersede a
    record whose key a later file holds. Returns (positions not to send, superseded).

    The first pass kept only a 64-bit hash per key (8 bytes a record): the spool is read
    again only when two hashes are equal, and only those records' keys are compared.
    """
    ordered = sorted(key_hashes)
    suspects = {a for a, b in itertools.pairwise(ordered) if a == b}
    del ordered
    if not suspects:
        return frozenset(), frozenset()
    from ..stores.dynamodb import wire_from_json

    groups: dict[tuple[Any, ...], list[Position]] = {}
    for at, key_hash, text in replay_spool(spool):
        if key_hash in suspects:
            groups.setdefault(codec.key_of(wire_from_json(text)), []).append(at)
    jsonl = ds.source.file_format == "jsonl"
    what = "lines" if jsonl else "records"
    skipped: set[Position] = set()
    superseded: set[Position] = set()
    for key, positions in groups.items():
        if len(positions) < 2:
            continue
        shown = ", ".join(f"{a}={v}" for a, (_, v) in zip(codec.key_attributes, key, strict=True))
        by_file: dict[int, list[int]] = {}
        for f, pos in positions:
            by_file.setdefault(f, []).append(pos)
        kept: list[Position] = []
        for f, where in by_file.items():
            if len(where) == 1:
                kept.append((f, where[0]))
                continue
            for pos in where:
                log.add_record(
                    pos if jsonl else None,
                    None if jsonl else pos,
                    shown,
                    f"key ({shown}) repeats in this file ({what} {', '.join(map(str, where))}): "
                    "which one is right is unknowable, so none of them is loaded",
                    source=files[f],
                )
                skipped.add((f, pos))
        kept.sort()
        superseded.update(kept[:-1])  # the last file's record is the one loaded
    return frozenset(skipped | superseded), frozenset(superseded)


def spool_items(
    files: list[SourceFile] | SourceFile | Path,
    ds: Dataset,
    codec: Any,
    log: RejectLog,
    spool: IO[bytes],
) -> Spooled:
    """Pass 1: every valid record's (position, item) into ``spool``, file after file;
    bad records and repeated keys into ``log``."""
    from ..stores.dynamodb import wire_json

    if not isinstance(files, list):
        files = [SourceFile.of(files, ds.source.codec)]
    key_hashes = array.array("q")
    per_file: dict[int, int] = {}
    for i, source in enumerate(fetch_ahead(files)):
        log.begin(source)
        before = len(key_hashes)
        for pos, item in dynamodb_items(source, ds, codec, log):
            key_hash = hash(codec.key_of(item))
            spool_entry(spool, (i, pos), key_hash, wire_json(item))
            key_hashes.append(key_hash)
        per_file[i] = len(key_hashes) - before
    skip, superseded = _reject_repeated_keys(spool, key_hashes, codec, ds, log, files)
    return Spooled(len(key_hashes), skip, superseded, per_file)


def _load_one(client: Any, target: Any, spec: Spec, name: str, ctx: RunContext) -> LoadRecord:
    from ..stores import dynamodb as ddb

    ds = spec.datasets[name]
    record = new_record(spec, name, "dynamodb", ctx, source_text(spec, name))
    log = RejectLog(record.source, dest=spec.rejects_path(name), kind="json")
    allowed = ds.max_rejects if ctx.max_rejects is None else ctx.max_rejects
    codec = ddb.ItemCodec(ds)
    ledger = spec.stores.dynamodb.ledger_table

    def save_failure(record: LoadRecord) -> None:
        keep_rejects(log, record, write=False)
        ddb.record_load(client, record, ledger)

    with rejects_kept(log, record), ledgered(record, save_failure, ctx):
        check_rejects_folder(log.dest)
        files = dataset_files(spec, name)
        todo = files_to_load(
            files,
            record,
            ds.mode,
            ctx,
            lambda: ddb.file_loads(client, name, table=ledger),
            lambda: ddb.ok_loads(client, name, table=ledger),
            lambda: ddb.count(client, ds) is not None,
        )
        if not todo:
            ddb.record_load(client, skip_all(record), ledger)
            return record
        with record.step("hash file"):
            fingerprint_files(todo, record)
        with _spool() as spool:
            try:
                with record.step("read, validate"):
                    spooled = spool_items(todo, ds, codec, log, spool)  # pass 1
                    spool.flush()
            except OSError as e:
                raise DataferryError(
                    f"{record.source}: the checked items could not be spooled to "
                    f"{tempfile.gettempdir()} ({e.strerror or e}); nothing was loaded "
                    "(TMPDIR chooses another folder)"
                ) from None
            if len(log) > allowed:
                raise RejectedRows(record.source, len(log), allowed, log.summary(), str(log.dest))
            ctx.progress.expect(name, spooled.to_send)
            progress = functools.partial(ctx.progress.advance, name)
            if _method(client, target, spec, ds, todo, record) == "import":
                with record.step("import"):
                    imported = ddb.import_new_table(
                        client,
                        ddb.s3_client(target),
                        ds,
                        spec.stores.dynamodb.import_bucket or "",
                        f"{spec.stores.dynamodb.import_prefix}{ds.target.table}/{ctx.run_id}/",
                        replay_spool(spool, spooled.skip),  # pass 2, to S3
                        spooled.to_send,
                        ctx.wait_s + IMPORT_DEADLINE_S,
                        on_progress=progress,
                    )
                    ddb.provision(client, ds, made_by_load=True)
                record.checks.append(
                    f"ImportTable {imported.arn}: {imported.items:,} imported of "
                    f"{spooled.to_send:,} validated, {imported.errors} errors: ok"
                )
                result = ddb.WriteResult(written=imported.items)
            else:
                with record.step("provision"):
                    ddb.provision(client, ds)
                try:
                    with record.step("write"):
                        result = ddb.write(
                            client,
                            ds.target.table,
                            replay_spool(spool, spooled.skip),  # pass 2
                            on_progress=progress,
                        )
                except ddb.BatchRefused as e:
                    raise _refused(todo, ds, e) from None
        rejected = log.tally()
        entries = {e.source: e for e in record.files}
        for i, f in enumerate(todo):
            bad = rejected.get(str(f), (0, 0))[1]
            entries[f.key].read, entries[f.key].rejected = spooled.read(bad, i), bad
        settle_files(record)
        counts = LoadCounts(
            read=spooled.read(len(log)),
            written=result.written,
            rejected=len(log),
            consumed_capacity=result.consumed_capacity,
            superseded=len(spooled.superseded),
        )
        with record.step("ledger"):
            ddb.record_load(client, finish(record, counts), ledger)
    return record


def _method(
    client: Any, target: Any, spec: Spec, ds: Dataset, files: list[SourceFile], record: LoadRecord
) -> str:
    """batch or import (see NosqlLoadOptions): ImportTable only makes new tables, and
    only where the endpoint has it. Of the embedded engines only moto has it (dynalite
    has not), as with exports; any other endpoint is taken to have it (AWS has), and
    says so itself if it has not."""
    from ..stores import dynamodb as ddb

    wanted = ds.load.method
    settings = spec.stores.dynamodb
    if wanted == "batch" or not settings.import_bucket:
        return "batch"
    if wanted == "auto" and sum(f.size for f in files) < settings.import_min_bytes:
        return "batch"
    if ddb.count(client, ds) is not None:
        if wanted == "import":
            note = (
                f"load.method import makes new tables only: {ds.target.table} exists, so "
                "BatchWriteItem loaded it"
            )
            record.note = f"{record.note}; {note}" if record.note else note
            logger.warning("%s: %s", record.dataset, note)
        return "batch"
    if target.embedded:
        from ..stack import EmbeddedStack

        if EmbeddedStack.for_spec(spec).dynamodb_engine() != "moto":
            if wanted == "import":
                raise NotSupported(
                    f"{record.dataset}: load.method import: the embedded DynamoDB (dynalite) "
                    "has no ImportTable; use load.method batch, the stack's moto engine "
                    "(stack.dynamodb: moto), or AWS"
                )
            return "batch"
    return "import"


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


def _refused(files: list[SourceFile], ds: Dataset, err: Any) -> TargetError:
    what = "lines" if ds.source.file_format == "jsonl" else "records"
    by_file: dict[int, list[int]] = {}
    for f, pos in sorted(err.positions):
        by_file.setdefault(f, []).append(pos)
    if len(by_file) == 1:
        [(f, positions)] = by_file.items()
        held = f"{files[f]}: DynamoDB refused the batch holding {what} {_listed(positions)}"
    else:
        held = "DynamoDB refused the batch holding " + "; ".join(
            f"{files[f]} {what} {_listed(positions)}" for f, positions in by_file.items()
        )
    return TargetError(
        f"{held}: {err}. The batches sent before it are written; fix those records and run "
        "again (the load is idempotent)"
    )


def _listed(positions: list[int]) -> str:
    return ", ".join(map(str, positions))


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
    ledger = spec.stores.dynamodb.ledger_table
    client = ddb.client_when_ready(target, ledger, ctx.wait_s)
    try:
        with ddb.writer_lock(client, ledger, target.display, ctx.run_id, ctx.wait_s):
            return [_load_one(client, target, spec, name, ctx) for name in chosen]
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
