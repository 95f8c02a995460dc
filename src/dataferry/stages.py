"""The three stages, composed from readers, stores and the warehouse.

Each stage waits for its targets to be ready, works dataset by dataset, records every load
in the target's ledger and returns the records. Stages know nothing of the CLI.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator
from typing import Any

from .connections import resolve_dynamodb, resolve_postgres
from .errors import DataferryError, InputError, NotSupported, TargetError
from .ledger import LoadCounts, LoadRecord, file_fingerprint, new_run_id, utcnow
from .readers import read_csv, read_json_records
from .readiness import DEFAULT_DEADLINE_S, wait_until_ready
from .spec import Dataset, Spec
from .stack import EmbeddedStack

__all__ = [
    "STAGES",
    "Progress",
    "dynamodb_items",
    "etl",
    "load_nosql",
    "load_sql",
    "open_warehouse",
    "run",
]

log = logging.getLogger("dataferry")
Progress = Callable[[str, int], None]  # (dataset, rows just done)


def _noop(dataset: str, rows: int) -> None:
    return None


def _record(spec: Spec, name: str, target: str, run_id: str, source: str) -> LoadRecord:
    ds = spec.datasets[name]
    return LoadRecord(
        run_id=run_id,
        dataset=name,
        target=target,
        table=ds.target.table,
        source=source,
        spec_sha256=spec.dataset_hash(name),
        started_at=utcnow(),
    )


def _finish(record: LoadRecord, counts: LoadCounts) -> LoadRecord:
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


def _fail(record: LoadRecord, err: Exception) -> None:
    record.status = "failed"
    record.error = str(err)
    record.finished_at = utcnow()


def load_sql(
    spec: Spec,
    datasets: list[str] | None = None,
    *,
    run_id: str | None = None,
    progress: Progress = _noop,
    wait_s: float = DEFAULT_DEADLINE_S,
) -> list[LoadRecord]:
    """CSV files -> PostgreSQL, parents first; one transaction per dataset."""
    import psycopg

    from .stores import postgres as pg

    order = spec.load_order(datasets)
    if not order:
        return []
    run_id = run_id or new_run_id()
    target = resolve_postgres(spec)
    wait_until_ready(lambda: pg.probe(target), f"PostgreSQL {target.display}", wait_s)
    records = []
    with pg.connect(target) as conn:
        for name in order:
            ds = spec.datasets[name]
            path = spec.resolve(ds.source.path)
            record = _record(spec, name, "postgres", run_id, str(path))
            try:
                if not path.is_file():
                    raise InputError(str(path), "no such file")
                record.file_size, record.file_sha256 = file_fingerprint(path)
                with conn.transaction():
                    pg.provision(conn, spec, ds)
                    batches = _counting(read_csv(path, ds), name, progress)
                    counts = pg.write(conn, spec, ds, batches, path)
                    pg.record_load(conn, _finish(record, counts))
            except (DataferryError, psycopg.Error) as e:
                err = (
                    e
                    if isinstance(e, DataferryError)
                    else TargetError(f"{name}: PostgreSQL refused the load: {_pg_message(e)}")
                )
                _fail(record, err)
                with conn.transaction():
                    pg.record_load(conn, record)
                raise err from None
            records.append(record)
    return records


def _pg_message(e: Exception) -> str:
    diag = getattr(e, "diag", None)
    primary = getattr(diag, "message_primary", None)
    return str(primary or e).strip()


def _counting(batches: Iterator[Any], name: str, progress: Progress) -> Iterator[Any]:
    for batch in batches:
        yield batch
        progress(name, batch.num_rows)


def dynamodb_items(path: Any, ds: Dataset, codec: Any) -> Iterator[dict[str, Any]]:
    fmt = ds.source.file_format
    for pos, rec in read_json_records(path, fmt):
        try:
            yield codec.encode(rec)
        except ValueError as e:
            where = {"line": pos} if fmt == "jsonl" else {"record": pos}
            raise InputError(str(path), str(e), **where) from None


def load_nosql(
    spec: Spec,
    datasets: list[str] | None = None,
    *,
    run_id: str | None = None,
    progress: Progress = _noop,
    wait_s: float = DEFAULT_DEADLINE_S,
) -> list[LoadRecord]:
    """JSON files -> DynamoDB. Each file is validated whole before its first write."""
    from .stores import dynamodb as ddb

    chosen = spec.datasets_for("dynamodb", datasets)
    if not chosen:
        return []
    run_id = run_id or new_run_id()
    target = resolve_dynamodb(spec)
    wait_until_ready(lambda: ddb.probe(target), f"DynamoDB {target.display}", wait_s)
    client = ddb.client(target)
    records = []
    for name, ds in chosen.items():
        path = spec.resolve(ds.source.path)
        record = _record(spec, name, "dynamodb", run_id, str(path))
        codec = ddb.ItemCodec(ds)
        try:
            if not path.is_file():
                raise InputError(str(path), "no such file")
            record.file_size, record.file_sha256 = file_fingerprint(path)
            n = sum(1 for _ in dynamodb_items(path, ds, codec))  # pass 1: nothing written
            ddb.provision(client, ds)
            result = ddb.write(
                client,
                ds.target.table,
                codec,
                dynamodb_items(path, ds, codec),
                on_progress=functools.partial(progress, name),
            )
            counts = LoadCounts(read=n, written=result.written, superseded=result.superseded)
            _finish(record, counts)
            ddb.record_load(client, record)
        except DataferryError as e:
            _fail(record, e)
            ddb.record_load(client, record)
            raise
        finally:
            if target.embedded:
                EmbeddedStack(spec.stack_dir).persist_dynamodb()
        records.append(record)
    return records


def open_warehouse(spec: Spec) -> Any:
    if spec.warehouse.kind == "snowflake":
        raise NotSupported(
            f"{spec.path}: warehouse.snowflake is not supported by this version yet; "
            "use warehouse.duckdb"
        )
    from .warehouse.duckdb_warehouse import DuckDBWarehouse

    return DuckDBWarehouse(spec.duckdb_path)


RAW_SCHEMAS = {"postgres": "raw_postgres", "dynamodb": "raw_dynamodb"}
RAW_POSTGRES, RAW_DYNAMODB = RAW_SCHEMAS["postgres"], RAW_SCHEMAS["dynamodb"]


def etl(
    spec: Spec,
    datasets: list[str] | None = None,
    *,
    run_id: str | None = None,
    progress: Progress = _noop,
    wait_s: float = DEFAULT_DEADLINE_S,
) -> list[LoadRecord]:
    """PostgreSQL and DynamoDB tables -> warehouse raw tables, merged on their keys."""
    import pyarrow as pa

    run_id = run_id or new_run_id()
    pg_sets = spec.datasets_for("postgres", datasets)
    ddb_sets = spec.datasets_for("dynamodb", datasets)
    records: list[LoadRecord] = []
    with open_warehouse(spec) as wh:
        if pg_sets:
            import psycopg

            from .stores import postgres as pg

            target = resolve_postgres(spec)
            wait_until_ready(lambda: pg.probe(target), f"PostgreSQL {target.display}", wait_s)
            with pg.connect(target) as conn:
                for name, ds in pg_sets.items():
                    source = f"postgres:{ds.target.schema_}.{ds.target.table}"
                    record = _record(spec, name, "warehouse", run_id, source)
                    schema = pa.schema([(n, c.type.arrow()) for n, c in ds.columns.items()])
                    try:
                        if pg.count(conn, ds) is None:
                            raise TargetError(
                                f"{name}: source table {ds.target.table} does not "
                                "exist in PostgreSQL (run `dataferry load sql`)"
                            )
                        wh.provision(RAW_POSTGRES, ds.target.table, schema, ds.primary_key)
                        counts = wh.merge(
                            RAW_POSTGRES,
                            ds.target.table,
                            ds.primary_key,
                            _counting(pg.read(conn, ds), name, progress),
                            source=source,
                            run_id=run_id,
                        )
                        conn.rollback()  # end the read transaction
                    except psycopg.Error as e:
                        _fail(record, e)
                        wh.record_load(record)
                        raise TargetError(f"{name}: {_pg_message(e)}") from None
                    except DataferryError as e:
                        _fail(record, e)
                        wh.record_load(record)
                        raise
                    wh.record_load(_finish(record, counts))
                    records.append(record)
        if ddb_sets:
            from .stores import dynamodb as ddb

            dtarget = resolve_dynamodb(spec)
            wait_until_ready(lambda: ddb.probe(dtarget), f"DynamoDB {dtarget.display}", wait_s)
            client = ddb.client(dtarget)
            for name, ds in ddb_sets.items():
                source = f"dynamodb:{ds.target.table}"
                record = _record(spec, name, "warehouse", run_id, source)
                try:
                    if ddb.count(client, ds) is None:
                        raise TargetError(
                            f"{name}: source table {ds.target.table} does not "
                            "exist in DynamoDB (run `dataferry load nosql`)"
                        )
                    schema = ddb.read_schema(ds)
                    wh.provision(RAW_DYNAMODB, ds.target.table, schema, ds.key_columns)
                    counts = wh.merge(
                        RAW_DYNAMODB,
                        ds.target.table,
                        ds.key_columns,
                        _counting(ddb.read(client, ds), name, progress),
                        source=source,
                        run_id=run_id,
                    )
                except DataferryError as e:
                    _fail(record, e)
                    wh.record_load(record)
                    raise
                wh.record_load(_finish(record, counts))
                records.append(record)
    return records


STAGES: dict[str, Callable[..., list[LoadRecord]]] = {
    "load sql": load_sql,
    "load nosql": load_nosql,
    "etl": etl,
}


def run(
    spec: Spec,
    datasets: list[str] | None = None,
    *,
    progress: Progress = _noop,
    wait_s: float = DEFAULT_DEADLINE_S,
) -> dict[str, list[LoadRecord]]:
    """All three stages in dependency order, under one run id."""
    run_id = new_run_id()
    return {
        stage: fn(spec, datasets, run_id=run_id, progress=progress, wait_s=wait_s)
        for stage, fn in STAGES.items()
    }
