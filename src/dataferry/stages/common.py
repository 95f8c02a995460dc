"""What every stage shares: the run context, load records and their ledger bookkeeping."""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import interrupt
from ..errors import DataferryError, InputError, Interrupted, NotSupported
from ..ledger import LoadCounts, LoadRecord, file_fingerprint, new_run_id, utcnow
from ..log_context import about
from ..progress import StageProgress
from ..readers import RejectLog
from ..readiness import DEFAULT_DEADLINE_S
from ..spec import Spec

__all__ = [
    "RunContext",
    "already_loaded",
    "check_rejects_folder",
    "counting",
    "finish",
    "for_stage",
    "keep_rejects",
    "ledgered",
    "new_record",
    "open_warehouse",
    "rejects_kept",
    "skip",
    "unchanged_since",
]

log = logging.getLogger("dataferry")


@dataclass(frozen=True)
class RunContext:
    """One run: its id (shared by every stage of `dataferry run`), progress and wait."""

    run_id: str = field(default_factory=new_run_id)
    progress: StageProgress = field(default_factory=StageProgress)
    wait_s: float = DEFAULT_DEADLINE_S
    max_rejects: int | None = None  # overrides every dataset's max_rejects when given
    force: bool = False  # load files the ledger says are already loaded
    migrate: bool = False  # let load sql add nullable columns and widen types
    full_refresh: bool = False  # etl: read whole tables even where a cursor allows less
    # Every load that ended (ok, skipped, failed, interrupted), in order: what a failed or
    # interrupted run did before it stopped is told from here.
    completed: list[LoadRecord] = field(default_factory=list)


def for_stage(ctx: RunContext, stage: str) -> RunContext:
    """The run's context with its progress labelled by ``stage`` (the rest is shared)."""
    return dataclasses.replace(ctx, progress=StageProgress(ctx.progress.display, stage))


def new_record(spec: Spec, name: str, target: str, ctx: RunContext, source: str) -> LoadRecord:
    ds = spec.datasets[name]
    return LoadRecord(
        run_id=ctx.run_id,
        dataset=name,
        target=target,
        table=ds.target.table,
        source=source,
        spec_sha256=spec.dataset_hash(name),
        started_at=utcnow(),
    )


def finish(record: LoadRecord, counts: LoadCounts) -> LoadRecord:
    record.counts = counts
    record.status = "ok"
    record.finished_at = utcnow()
    if record.target == "dynamodb":
        # PutItem is an upsert: DynamoDB does not say whether an item was new or changed.
        log.info("%s: %s read, %s put", record.dataset, counts.read, counts.written)
    else:
        log.info(
            "%s: %s read, %s written (%s new, %s changed, %s unchanged)",
            record.dataset,
            counts.read,
            counts.written,
            counts.inserted,
            counts.updated,
            counts.unchanged,
        )
    return record


@contextmanager
def ledgered(
    record: LoadRecord, save: Callable[[LoadRecord], None], ctx: RunContext | None = None
) -> Iterator[None]:
    """Note the record in ``ctx.completed`` when the block ends. On a dataferry error or
    an interruption, mark it failed or interrupted, save it to the ledger, re-raise.

    Saving the failure is best effort: the error that ended the load (a server gone, a
    signal) may stop the ledger write too, and must not be hidden by that second error.
    """
    try:
        with about(dataset=record.dataset):
            yield
    except Exception as e:
        if ctx is not None:
            ctx.progress.done(record.dataset)
        if not isinstance(e, DataferryError) and not interrupt.cancelled():
            raise  # a bug: not recorded as a failure of the data
        # After a signal, a driver reports its own stop (DuckDB: "Query interrupted").
        cause = Interrupted(interrupt.received_signal()) if interrupt.cancelled() else e
        _end(record, save, ctx, cause)
        raise
    except Interrupted as e:
        if ctx is not None:
            ctx.progress.done(record.dataset)
        _end(record, save, ctx, e)
        raise
    if ctx is not None:
        ctx.progress.done(record.dataset)
        ctx.completed.append(record)


def _end(
    record: LoadRecord,
    save: Callable[[LoadRecord], None],
    ctx: RunContext | None,
    e: BaseException,
) -> None:
    record.status = "interrupted" if isinstance(e, Interrupted) else "failed"
    record.error = str(e)
    record.finished_at = utcnow()
    if ctx is not None:
        ctx.completed.append(record)
    for attempt in (1, 2):
        try:
            save(record)
            return
        except Interrupted as again:
            # A driver can report the signal (DuckDB's "Query interrupted") before
            # Python's handler runs: the handler's Interrupted then lands in this save.
            # It is raised once per run, so the save is tried once more.
            if attempt == 2:
                log.warning("%s: the ledger could not record this load: %s", record.dataset, again)
        except Exception as again:
            log.warning("%s: the ledger could not record this load: %s", record.dataset, again)
            return


def already_loaded(
    earlier: list[dict[str, Any]], path: Path, record: LoadRecord, mode: str
) -> dict[str, Any] | None:
    """The earlier load (from the target's ledger, newest first) that makes this one
    unnecessary, if any.

    merge and replace: the latest successful load had this very file (SHA-256) under
    this very dataset spec. append: any successful load had this file, whatever the spec:
    appending it again would double its rows. The file is hashed only when an earlier
    load had a file of the same size; the hash is kept on the record.
    """
    size = path.stat().st_size
    if not any(int(e.get("file_size") or -1) == size for e in earlier):
        return None
    record.file_size, record.file_sha256 = file_fingerprint(path)
    if mode == "append":
        return next((e for e in earlier if e.get("file_sha256") == record.file_sha256), None)
    last = earlier[0]
    same = last.get("file_sha256") == record.file_sha256 and (
        last.get("spec_sha256") == record.spec_sha256
    )
    return last if same else None


def unchanged_since(
    path: Path,
    record: LoadRecord,
    mode: str,
    ctx: RunContext,
    ok_loads: Callable[[], list[dict[str, Any]]],
    target_exists: Callable[[], bool],
) -> dict[str, Any] | None:
    """Check the source file exists; return the earlier load that makes this one
    unnecessary (see already_loaded), or None when it must run: --force says so, or the
    target table is gone (dropped since: the ledger no longer describes the data)."""
    if not path.is_file():
        raise InputError(str(path), "no such file")
    with record.step("check ledger"):
        if ctx.force or not target_exists():
            return None
        return already_loaded(ok_loads(), path, record, mode)


def skip(record: LoadRecord, earlier: dict[str, Any]) -> LoadRecord:
    """Mark a load skipped because ``earlier`` already loaded this very file."""
    record.status = "skipped"
    record.finished_at = utcnow()
    record.note = f"unchanged since run {earlier.get('run_id')} (use --force to load it again)"
    log.info("%s: %s", record.dataset, record.note)
    return record


def check_rejects_folder(dest: Path | None) -> None:
    """Before anything is loaded: the rejects file's folder exists (made if needed) and
    takes a new file, so that rejects found later can be written."""
    if dest is None:
        return
    folder = dest.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise DataferryError(
            f"{folder}: the rejects folder cannot be written ({e.strerror or e}); "
            "nothing was loaded"
        ) from None


def keep_rejects(log: RejectLog, record: LoadRecord, write: bool = True) -> None:
    """Note the rejects on the record; with ``write``, write this run's rejects file, or
    remove a stale one when nothing was rejected (an earlier run's file would lie). A
    skipped load keeps the file: it still describes this very file."""
    if len(log):
        record.counts.rejected = len(log)
        record.rejects_file = str(log.dest)
    if not write or record.status == "skipped" or log.dest is None:
        return
    try:
        if len(log):
            log.write(log.dest)
        else:
            log.dest.unlink(missing_ok=True)
    except OSError as e:
        raise DataferryError(
            f"{log.dest}: the rejects file could not be written ({e.strerror or e})"
        ) from None


@contextmanager
def rejects_kept(rejects: RejectLog, record: LoadRecord) -> Iterator[None]:
    """Write (or clear) the rejects file when the block ends. If the block failed, a
    failure to write them is logged, not raised: the first error is the one to tell."""
    try:
        yield
    except BaseException:
        try:
            keep_rejects(rejects, record)
        except DataferryError as e:
            log.warning("%s", e)
        raise
    keep_rejects(rejects, record)


def counting(batches: Iterator[Any], name: str, progress: StageProgress) -> Iterator[Any]:
    for batch in batches:
        yield batch
        progress.advance(name, batch.num_rows)


def open_warehouse(spec: Spec, wait_s: float = 0.0) -> Any:
    """The spec's warehouse, connected: DuckDB (a file, waiting up to ``wait_s`` for
    another process's lock on it) or Snowflake."""
    if spec.warehouse.kind == "snowflake":
        from ..connections import resolve_snowflake

        try:
            from ..warehouse.snowflake_warehouse import SnowflakeWarehouse
        except ImportError:
            raise NotSupported(
                f"{spec.path}: warehouse.snowflake needs the Snowflake connector: "
                "pip install 'dataferry[snowflake]'"
            ) from None
        return SnowflakeWarehouse(resolve_snowflake(spec))
    from ..warehouse.duckdb_warehouse import DuckDBWarehouse

    return DuckDBWarehouse(spec.duckdb_path, spec.duckdb_settings.memory_limit, wait_s)
