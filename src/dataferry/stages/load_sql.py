"""load sql: CSV files -> PostgreSQL, parents first, one transaction per dataset."""

from __future__ import annotations

import functools
import logging
import time
from typing import Any

from ..background import submit
from ..connections import resolve_postgres, say_chosen
from ..ledger import LoadRecord
from ..readers import RejectLog
from ..sources import dataset_files
from ..spec import Spec
from .common import (
    RunContext,
    check_rejects_folder,
    counting,
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
    tally_files,
)

__all__ = ["load_sql"]

logger = logging.getLogger("dataferry")


def _load_one(conn: Any, target: Any, spec: Spec, name: str, ctx: RunContext) -> LoadRecord:
    from ..readers import read_batches, reject_kind  # pyarrow: only when files are loaded
    from ..stores import postgres as pg

    ds = spec.datasets[name]
    record = new_record(spec, name, "postgres", ctx, source_text(spec, name))
    log = RejectLog(record.source, dest=spec.rejects_path(name), kind=reject_kind(ds))
    allowed = ds.max_rejects if ctx.max_rejects is None else ctx.max_rejects

    def save_failure(record: LoadRecord) -> None:
        keep_rejects(log, record, write=False)
        with pg.translated(f"{name}: ledger"):
            if pg.unusable(conn):
                # Interrupted mid-command (a COPY cut short), the connection cannot be
                # trusted: closing it makes the server roll the load back for sure.
                conn.close()
                with pg.connect(target) as fresh, fresh.transaction():
                    pg.record_load(fresh, record)
                return
            with conn.transaction():
                pg.record_load(conn, record)  # the load's own transaction was rolled back

    with (
        rejects_kept(log, record),
        ledgered(record, save_failure, ctx),
        pg.translated(f"{name}: {record.source}"),
    ):
        check_rejects_folder(log.dest)
        files = dataset_files(spec, name)
        if len(files) == 1:
            log.source = str(files[0])
        todo = files_to_load(
            files,
            record,
            ds.mode,
            ctx,
            lambda: pg.file_loads(conn, name),
            lambda: pg.ok_loads(conn, name),
            lambda: pg.exists(conn, ds),
        )
        if not todo:
            with conn.transaction():
                pg.record_load(conn, skip_all(record))
            return record
        # Hashing reads every file: do it on another core while the load runs.
        fingerprints = submit(fingerprint_files, todo, record)
        with conn.transaction():
            with record.step("provision"):
                changes = pg.provision(conn, spec, ds, migrate=ctx.migrate)
            if changes and not changes[0].startswith("created"):
                record.note = "migrated: " + "; ".join(changes)
                logger.info("%s: %s", name, record.note)
            with record.step("read, validate, write"):
                counts, table_rows = pg.write(
                    conn,
                    spec,
                    ds,
                    lambda: counting(
                        read_batches(todo, ds, log, functools.partial(ctx.progress.expect, name)),
                        name,
                        ctx.progress,
                    ),
                    log,
                    allowed,
                    single_file=len(todo) == 1,
                )
            with record.step("count table"):  # for the report (see LoadRecord.rows_after)
                record.rows_after = table_rows if table_rows is not None else pg.count(conn, ds)
            with record.step("hash file"):  # what is left of it once the load is done
                fingerprints.result()
            tally_files(record, todo, log)
            settle_files(record)
            finish(record, counts)
            keep_rejects(log, record, write=False)
            pg.record_load(conn, record)  # in the transaction of the data it describes
            committing = time.perf_counter()
        record.steps["commit"] = time.perf_counter() - committing
    return record


def load_sql(
    spec: Spec, datasets: list[str] | None = None, ctx: RunContext | None = None
) -> list[LoadRecord]:
    from ..stores import postgres as pg

    ctx = ctx or RunContext()
    order = spec.load_order(datasets)
    if not order:
        return []
    target = resolve_postgres(spec)
    say_chosen("PostgreSQL", target)
    with (
        pg.connect_when_ready(target, ctx.wait_s) as conn,
        pg.writer_lock(conn, target, ctx.run_id, ctx.wait_s),
    ):
        return [_load_one(conn, target, spec, name, ctx) for name in order]
