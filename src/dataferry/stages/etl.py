"""etl: PostgreSQL and DynamoDB tables -> warehouse raw tables, merged on their keys."""

from __future__ import annotations

from typing import Any

from ..connections import resolve_dynamodb, resolve_postgres
from ..errors import TargetError
from ..ledger import LoadRecord
from ..readiness import wait_until_ready
from ..spec import Dataset, Spec
from .common import RunContext, counting, finish, ledgered, new_record, open_warehouse

__all__ = ["etl"]


def _missing(name: str, ds: Dataset, store: str, stage: str) -> TargetError:
    return TargetError(
        f"{name}: source table {ds.target.table} does not exist in {store} "
        f"(run `dataferry {stage}`)"
    )


def _from_postgres(
    spec: Spec, datasets: dict[str, Dataset], wh: Any, ctx: RunContext
) -> list[LoadRecord]:
    import pyarrow as pa

    from ..stores import postgres as pg

    target = resolve_postgres(spec)
    wait_until_ready(lambda: pg.probe(target), f"PostgreSQL {target.display}", ctx.wait_s)
    records = []
    with pg.connect(target) as conn:
        for name, ds in datasets.items():
            source = f"postgres:{ds.target.schema_}.{ds.target.table}"
            record = new_record(spec, name, "warehouse", ctx, source)
            with ledgered(record, wh.record_load):
                # Count and read in one snapshot, so reconciliation compares like with like.
                with conn.transaction():
                    conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    source_rows = pg.count(conn, ds)
                    if source_rows is None:
                        raise _missing(name, ds, "PostgreSQL", "load sql")
                    schema = pa.schema([(n, c.type.arrow()) for n, c in ds.columns.items()])
                    raw = spec.raw_table(name)
                    wh.provision(*raw, schema, ds.primary_key)
                    counts = wh.merge(
                        *raw,
                        ds.primary_key,
                        counting(pg.read(conn, ds), name, ctx.progress),
                        source=source,
                        run_id=ctx.run_id,
                        expected_rows=source_rows,
                    )
                wh.record_load(finish(record, counts))
            records.append(record)
    return records


def _from_dynamodb(
    spec: Spec, datasets: dict[str, Dataset], wh: Any, ctx: RunContext
) -> list[LoadRecord]:
    from ..stores import dynamodb as ddb

    target = resolve_dynamodb(spec)
    wait_until_ready(lambda: ddb.probe(target), f"DynamoDB {target.display}", ctx.wait_s)
    client = ddb.client(target)
    records = []
    for name, ds in datasets.items():
        source = f"dynamodb:{ds.target.table}"
        record = new_record(spec, name, "warehouse", ctx, source)
        with ledgered(record, wh.record_load):
            if ddb.count(client, ds) is None:
                raise _missing(name, ds, "DynamoDB", "load nosql")
            raw = spec.raw_table(name)
            wh.provision(*raw, ddb.read_schema(ds), ds.key_columns)
            batches = counting(ddb.read(client, ds), name, ctx.progress)
            counts = wh.merge(*raw, ds.key_columns, batches, source=source, run_id=ctx.run_id)
            wh.record_load(finish(record, counts))
        records.append(record)
    return records


def etl(
    spec: Spec, datasets: list[str] | None = None, ctx: RunContext | None = None
) -> list[LoadRecord]:
    ctx = ctx or RunContext()
    pg_sets = spec.datasets_for("postgres", datasets)
    ddb_sets = spec.datasets_for("dynamodb", datasets)
    records: list[LoadRecord] = []
    with open_warehouse(spec) as wh:
        if pg_sets:
            records += _from_postgres(spec, pg_sets, wh, ctx)
        if ddb_sets:
            records += _from_dynamodb(spec, ddb_sets, wh, ctx)
    return records
