"""load sql: CSV files -> PostgreSQL, parents first, one transaction per dataset."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..connections import resolve_postgres
from ..errors import InputError
from ..ledger import LoadRecord, file_fingerprint, utcnow
from ..readers import RejectLog, read_csv
from ..readiness import wait_until_ready
from ..spec import Spec
from .common import RunContext, counting, finish, ledgered, new_record

__all__ = ["load_sql"]

logger = logging.getLogger("dataferry")
_HASHER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dataferry-sha256")


def _already_loaded(
    conn: Any, spec: Spec, name: str, path: Path, record: LoadRecord
) -> dict[str, Any] | None:
    """The earlier load that makes this one unnecessary, if any.

    merge and replace: the latest successful load had this very file (SHA-256) under
    this very dataset spec. append: any successful load had this file, whatever the spec:
    appending it again would double its rows. The file is hashed only when an earlier
    load had a file of the same size.
    """
    from ..stores import postgres as pg

    ds = spec.datasets[name]
    earlier = pg.ok_loads(conn, name)
    size = path.stat().st_size
    if not any(e["file_size"] == size for e in earlier):
        return None
    record.file_size, record.file_sha256 = file_fingerprint(path)
    if ds.mode == "append":
        return next((e for e in earlier if e["file_sha256"] == record.file_sha256), None)
    last = earlier[0]
    same = last["file_sha256"] == record.file_sha256 and last["spec_sha256"] == record.spec_sha256
    return last if same else None


def _load_one(conn: Any, spec: Spec, name: str, ctx: RunContext) -> LoadRecord:
    from ..stores import postgres as pg

    ds = spec.datasets[name]
    path = spec.resolve(ds.source.path)
    record = new_record(spec, name, "postgres", ctx, str(path))
    log = RejectLog(path, dest=spec.rejects_path(name))
    allowed = ds.max_rejects if ctx.max_rejects is None else ctx.max_rejects

    def note_rejects(record: LoadRecord) -> None:
        if len(log):
            record.counts.rejected = len(log)
            record.rejects_file = str(log.dest)

    def save_failure(record: LoadRecord) -> None:
        note_rejects(record)
        with conn.transaction():  # the load's own transaction was rolled back
            pg.record_load(conn, record)

    try:
        with ledgered(record, save_failure):
            if not path.is_file():
                raise InputError(str(path), "no such file")
            earlier = None if ctx.force else _already_loaded(conn, spec, name, path, record)
            if earlier is not None:
                record.status = "skipped"
                record.finished_at = utcnow()
                record.note = (
                    f"unchanged since run {earlier['run_id']} (use --force to load it again)"
                )
                logger.info("%s: %s", name, record.note)
                with conn.transaction():
                    pg.record_load(conn, record)
                return record
            # Hashing reads the whole file: do it on another core while the load runs.
            fingerprint = _HASHER.submit(file_fingerprint, path)
            with conn.transaction():
                changes = pg.provision(conn, spec, ds, migrate=ctx.migrate)
                if changes and not changes[0].startswith("created"):
                    record.note = "migrated: " + "; ".join(changes)
                    logger.info("%s: %s", name, record.note)
                counts = pg.write(
                    conn,
                    spec,
                    ds,
                    lambda: counting(read_csv(path, ds, log), name, ctx.progress),
                    log,
                    allowed,
                )
                record.file_size, record.file_sha256 = fingerprint.result()
                finish(record, counts)
                note_rejects(record)
                pg.record_load(conn, record)  # in the transaction of the data it describes
    finally:
        # This run's rejects, or no file at all: a stale one from an earlier run would lie.
        assert log.dest is not None
        if record.status == "skipped":
            pass  # the earlier load's rejects file still describes this very file
        elif len(log):
            log.write(log.dest)
        else:
            log.dest.unlink(missing_ok=True)
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
    wait_until_ready(lambda: pg.probe(target), f"PostgreSQL {target.display}", ctx.wait_s)
    with pg.connect(target) as conn:
        return [_load_one(conn, spec, name, ctx) for name in order]
