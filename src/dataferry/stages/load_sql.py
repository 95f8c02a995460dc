"""load sql: CSV files -> PostgreSQL, parents first, one transaction per dataset."""

from __future__ import annotations

from ..connections import resolve_postgres
from ..errors import InputError
from ..ledger import LoadRecord, file_fingerprint
from ..readers import read_csv
from ..readiness import wait_until_ready
from ..spec import Spec
from .common import RunContext, counting, finish, ledgered, new_record

__all__ = ["load_sql"]


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
    records = []
    with pg.connect(target) as conn:

        def save_failure(record: LoadRecord) -> None:
            with conn.transaction():  # the load's own transaction was rolled back
                pg.record_load(conn, record)

        for name in order:
            ds = spec.datasets[name]
            path = spec.resolve(ds.source.path)
            record = new_record(spec, name, "postgres", ctx, str(path))
            with ledgered(record, save_failure):
                if not path.is_file():
                    raise InputError(str(path), "no such file")
                record.file_size, record.file_sha256 = file_fingerprint(path)
                with conn.transaction():
                    pg.provision(conn, spec, ds)
                    batches = counting(read_csv(path, ds), name, ctx.progress)
                    counts = pg.write(conn, spec, ds, batches, path)
                    pg.record_load(conn, finish(record, counts))  # with the data it describes
            records.append(record)
    return records
