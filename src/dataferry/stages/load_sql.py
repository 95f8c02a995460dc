"""load sql: CSV files -> PostgreSQL, parents first, one transaction per dataset."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..connections import resolve_postgres
from ..errors import InputError
from ..ledger import LoadRecord, file_fingerprint
from ..readers import RejectLog, read_csv
from ..readiness import wait_until_ready
from ..spec import Spec
from .common import RunContext, counting, finish, ledgered, new_record

__all__ = ["load_sql"]

_HASHER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dataferry-sha256")


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
            # Hashing reads the whole file: do it on another core while the load runs.
            fingerprint = _HASHER.submit(file_fingerprint, path)
            with conn.transaction():
                pg.provision(conn, spec, ds)
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
        if len(log):
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
