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
from ..errors import DataferryError, Interrupted, NotSupported
from ..ledger import FileLoad, LoadCounts, LoadRecord, new_run_id, utcnow
from ..log_context import about
from ..progress import StageProgress
from ..readers import RejectLog
from ..readiness import DEFAULT_DEADLINE_S
from ..sources import SourceFile
from ..spec import Spec

__all__ = [
    "RunContext",
    "check_rejects_folder",
    "counting",
    "files_to_load",
    "fingerprint_files",
    "finish",
    "for_stage",
    "keep_rejects",
    "ledgered",
    "new_record",
    "open_warehouse",
    "rejects_kept",
    "settle_files",
    "skip",
    "skip_all",
    "source_text",
    "tally_files",
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


def source_text(spec: Spec, name: str) -> str:
    """The dataset's source as records and reports name it: the file, or its patterns."""
    paths = spec.datasets[name].source.paths
    return ", ".join(str(spec.resolve(p)) for p in paths)


def files_to_load(
    files: list[SourceFile],
    record: LoadRecord,
    mode: str,
    ctx: RunContext,
    earlier_files: Callable[[], list[dict[str, Any]]],
    ok_loads: Callable[[], list[dict[str, Any]]],
    target_exists: Callable[[], bool],
) -> list[SourceFile]:
    """The files of ``files`` this load must read; ``record.files`` gets an entry for
    each, loaded or skipped (the ledger's entries come from ``earlier_files``, newest
    first; a ledger from before file entries has only its loads, ``ok_loads``).

    - merge: a file is skipped when its latest load had these very bytes (SHA-256) under
      this very dataset spec;
    - append: a file is skipped when any load had these bytes, whatever the spec:
      appending it again would double its rows;
    - replace: the table becomes the union of the files, so all of them are read unless
      the last load read exactly these files, with these bytes, under this spec.

    A file is hashed only when an earlier entry has its size. --force, or a target table
    that is gone (the ledger no longer describes the data), reads every file.
    """
    record.files = [FileLoad(f.key, f.size) for f in files]
    entries_of = {e.source: e for e in record.files}

    def sha(f: SourceFile) -> str:  # hashed once, kept on its entry
        entry = entries_of[f.key]
        if entry.file_sha256 is None:
            entry.file_sha256 = f.fingerprint()[1]
        return entry.file_sha256

    with record.step("check ledger"):
        entries = (
            [] if ctx.force or not target_exists() else _entries(earlier_files, ok_loads, files)
        )
        skipped: dict[str, dict[str, Any]] = {}
        if entries and mode == "replace":
            last = [e for e in entries if e["run_id"] == entries[0]["run_id"]]
            if _same_files(files, last, record, sha):
                skipped = {f.key: last[0] for f in files}
        elif entries:
            for f in files:
                earlier = _earlier_load(f, entries, record, mode, sha)
                if earlier is not None:
                    skipped[f.key] = earlier
    for key, earlier in skipped.items():
        entries_of[key].status = "skipped"
        entries_of[key].earlier_run = str(earlier.get("run_id"))
    return [f for f in files if f.key not in skipped]


Hasher = Callable[[SourceFile], str]


def _entries(
    earlier_files: Callable[[], list[dict[str, Any]]],
    ok_loads: Callable[[], list[dict[str, Any]]],
    files: list[SourceFile],
) -> list[dict[str, Any]]:
    """The ledger's file entries, newest first. Loads recorded before file entries
    existed each read one file, named by its path as that run resolved it: for a
    dataset of one file, they count as entries of that file."""
    entries = earlier_files()
    if len(files) != 1:
        return entries
    seen = {e.get("run_id") for e in entries}
    legacy = [
        {**e, "source": files[0].key}
        for e in ok_loads()
        if e.get("file_sha256") and e.get("file_size") is not None and e.get("run_id") not in seen
    ]
    if not legacy:
        return entries
    return sorted(entries + legacy, key=lambda e: str(e.get("started_at")), reverse=True)


def _earlier_load(
    f: SourceFile, entries: list[dict[str, Any]], record: LoadRecord, mode: str, sha: Hasher
) -> dict[str, Any] | None:
    if mode == "append":
        if any(int(e.get("file_size") or -1) == f.size for e in entries):
            digest = sha(f)
            return next((e for e in entries if e.get("file_sha256") == digest), None)
        return None
    latest = next((e for e in entries if e.get("source") == f.key), None)
    if latest is None or int(latest.get("file_size") or -1) != f.size:
        return None
    if latest.get("spec_sha256") != record.spec_sha256 or latest.get("file_sha256") != sha(f):
        return None
    return latest


def _same_files(
    files: list[SourceFile], last: list[dict[str, Any]], record: LoadRecord, sha: Hasher
) -> bool:
    by_source = {e.get("source"): e for e in last}
    if set(by_source) != {f.key for f in files}:
        return False
    for f in files:
        e = by_source[f.key]
        if e.get("spec_sha256") != record.spec_sha256 or int(e.get("file_size") or -1) != f.size:
            return False
    return all(by_source[f.key].get("file_sha256") == sha(f) for f in files)


def fingerprint_files(files: list[SourceFile], record: LoadRecord) -> None:
    """Give the record's entries of ``files`` their SHA-256 where the ledger check did
    not (run beside the load, on another core: hashing reads every byte)."""
    entries = {e.source: e for e in record.files}
    for f in files:
        entry = entries[f.key]
        if entry.file_sha256 is None:
            entry.file_size, entry.file_sha256 = f.fingerprint()


def tally_files(record: LoadRecord, files: list[SourceFile], log: RejectLog) -> None:
    """Each loaded file's rows read and rejected, from the log that read them."""
    counts = log.tally()
    entries = {e.source: e for e in record.files}
    for f in files:
        entries[f.key].read, entries[f.key].rejected = counts.get(str(f), (0, 0))


def settle_files(record: LoadRecord) -> None:
    """The dataset record's own file size and checksum: those of its one file (loaded or
    skipped), or the total size of the files it loaded (their checksums are in their
    entries)."""
    loaded = record.loaded_files
    if len(record.files) == 1:
        only = record.files[0]
        record.file_size, record.file_sha256 = only.file_size, only.file_sha256
    elif loaded:
        record.file_size = sum(f.file_size or 0 for f in loaded)
    n = len(record.files) - len(loaded)
    if loaded and n:
        note = f"{n} of {len(record.files)} files unchanged since earlier runs, skipped"
        record.note = f"{record.note}; {note}" if record.note else note


def skip_all(record: LoadRecord) -> LoadRecord:
    """Every file is unchanged since an earlier load: mark the load skipped."""
    settle_files(record)
    runs = list(dict.fromkeys(f.earlier_run for f in record.files if f.earlier_run))
    more = f" and {len(runs) - 3} more" if len(runs) > 3 else ""
    return skip(record, {"run_id": ", ".join(runs[:3]) + more})


def skip(record: LoadRecord, earlier: dict[str, Any]) -> LoadRecord:
    """Mark a load skipped because ``earlier`` already loaded this very file."""
    record.status = "skipped"
    record.finished_at = utcnow()
    if len(record.files) <= 1:
        record.note = f"unchanged since run {earlier.get('run_id')} (use --force to load it again)"
    else:
        record.note = (
            f"all {len(record.files)} files unchanged since run(s) {earlier.get('run_id')} "
            "(use --force to load them again)"
        )
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
