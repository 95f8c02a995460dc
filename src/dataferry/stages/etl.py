"""etl: PostgreSQL and DynamoDB tables -> warehouse raw tables, merged on their keys,
then the spec's models built from them inside the warehouse."""

from __future__ import annotations

import contextlib
import hashlib
from typing import TYPE_CHECKING, Any

from .. import interrupt
from ..connections import DynamoDBTarget, resolve_dynamodb, resolve_postgres, say_chosen
from ..errors import NotSupported, SpecError, TargetError
from ..ledger import LoadCounts, LoadRecord, utcnow
from ..spec import Dataset, Spec
from .common import RunContext, counting, finish, ledgered, new_record, open_warehouse

if TYPE_CHECKING:
    from ..stores.postgres import ArrowReader

__all__ = ["check_models", "etl"]


def _missing(name: str, ds: Dataset, store: str, stage: str) -> TargetError:
    return TargetError(
        f"{name}: source table {ds.target.table} does not exist in {store} "
        f"(run `dataferry {stage}`)"
    )


def _from_postgres(
    spec: Spec, datasets: dict[str, Dataset], wh: Any, ctx: RunContext, reader: ArrowReader
) -> list[LoadRecord]:
    from ..stores import postgres as pg

    target = reader.target
    records = []
    with pg.connect_when_ready(target, ctx.wait_s) as conn:
        for name, ds in datasets.items():
            source = f"postgres:{ds.target.schema_}.{ds.target.table}"
            record = new_record(spec, name, "warehouse", ctx, source)
            with ledgered(record, wh.record_load, ctx):
                raw = spec.raw_table(name)
                since = None
                if ds.etl.cursor and not ctx.full_refresh:
                    since = wh.watermark(*raw, ds.etl.cursor)
                if since is not None:
                    record.note = f"incremental: {ds.etl.cursor} >= {since}"
                # Count and read in one snapshot, so reconciliation compares like with like.
                with pg.snapshot(conn, f"{name}: reading {source}"):
                    with record.step("count source"):
                        source_rows = pg.count(conn, ds, since)
                    if source_rows is None:
                        raise _missing(name, ds, "PostgreSQL", "load sql")
                    ctx.progress.expect(name, source_rows)
                    columns = {n: c.type for n, c in ds.columns.items()}
                    with record.step("provision"):
                        wh.provision(*raw, columns, ds.primary_key)
                    with record.step("read, merge, reconcile"):
                        counts = wh.merge(
                            *raw,
                            ds.primary_key,
                            counting(
                                pg.read(conn, reader, ds, since, source_rows),
                                name,
                                ctx.progress,
                            ),
                            source=source,
                            run_id=ctx.run_id,
                            expected_rows=source_rows,
                            full=since is None,
                            deletes=ds.etl.deletes,
                            keys_unique=pg.keys_unique(conn, ds),
                        )
                    record.checks += wh.checks
                wh.record_load(finish(record, counts))
            records.append(record)
    return records


def _method(spec: Spec, name: str, ds: Dataset, client: Any, target: DynamoDBTarget) -> str:
    """scan or export, as etl.method says (auto: by the table's size, when a bucket is set)."""
    from ..stores import dynamodb as ddb

    store = spec.stores.dynamodb
    method = ds.etl.method
    exports = True
    if target.embedded:  # dynalite has no exports; moto's server has them, and S3
        from ..stack import EmbeddedStack

        exports = EmbeddedStack.for_spec(spec).dynamodb_engine() == "moto"
    if method == "auto":
        big = store.export_bucket and (ddb.size_bytes(client, ds) or 0) >= store.export_min_bytes
        method = "export" if big and exports else "scan"
    if method == "export" and not store.export_bucket:
        raise SpecError(
            f"{spec.path}: datasets.{name}: etl.method export needs stores.dynamodb.export_bucket"
        )
    if method == "export" and not exports:
        raise NotSupported(
            f"datasets.{name}: etl.method export: the embedded DynamoDB endpoint (dynalite) has "
            "no table exports; use etl.method scan, or moto's server (stack.dynamodb: moto), "
            "or AWS"
        )
    return method


def _storage_integration(spec: Spec, ds: Dataset) -> tuple[str | None, str | None]:
    """The storage integration an export is copied into Snowflake through, if any; else
    why an integration the spec names cannot be used for this dataset."""
    from ..warehouse.snowflake_export import UNSUPPORTED

    snowflake = spec.warehouse.snowflake
    if snowflake is None or not snowflake.storage_integration:
        return None, None
    for column, c in ds.columns.items():
        if c.type.name in UNSUPPORTED:
            return None, (
                f"column {column} is {c.type}, which Snowflake cannot round to in SQL "
                "(declare it double to copy the export from S3)"
            )
    return snowflake.storage_integration, None


def _from_dynamodb(
    spec: Spec, datasets: dict[str, Dataset], wh: Any, ctx: RunContext
) -> list[LoadRecord]:
    from ..stores import dynamodb as ddb

    target = resolve_dynamodb(spec)
    say_chosen("DynamoDB", target)
    client = ddb.client_when_ready(target, spec.stores.dynamodb.ledger_table, ctx.wait_s)
    records = []
    for name, ds in datasets.items():
        source = f"dynamodb:{ds.target.table}"
        record = new_record(spec, name, "warehouse", ctx, source)
        with ledgered(record, wh.record_load, ctx):
            items = ddb.count(client, ds)  # DescribeTable's ItemCount
            if items is None:
                raise _missing(name, ds, "DynamoDB", "load nosql")
            raw = spec.raw_table(name)
            with record.step("provision"):
                wh.provision(*raw, ddb.read_columns(ds), ds.key_columns)
            expected = None
            if _method(spec, name, ds, client, target) == "export":
                store = spec.stores.dynamodb
                assert store.export_bucket is not None
                prefix = f"{store.export_prefix}{ds.target.table}/{ctx.run_id}"
                with record.step("export"):
                    exported = ddb.export_table(
                        client, ddb.s3_client(target), ds, store.export_bucket, prefix, ctx.wait_s
                    )
                record.note = f"export: s3://{store.export_bucket}/{prefix}"
                integration, why_not = _storage_integration(spec, ds)
                if integration:
                    from ..stores.dynamodb.scan import EXTRA_COLUMN
                    from ..warehouse.snowflake_warehouse import ExportFiles

                    url, folders = exported.location()
                    record.note += f", copied into Snowflake by storage integration {integration}"
                    ctx.progress.expect(name, exported.item_count)
                    with record.step("copy from S3, merge, reconcile"):
                        counts = wh.merge_export(
                            *raw,
                            ds.key_columns,
                            ddb.read_columns(ds),
                            ExportFiles(
                                table=ds.target.table,
                                url=url,
                                folders=folders,
                                integration=integration,
                                item_count=exported.item_count,
                                extras=EXTRA_COLUMN,
                            ),
                            source=source,
                            run_id=ctx.run_id,
                            deletes=ds.etl.deletes,
                        )
                    ctx.progress.advance(name, counts.read)
                    record.checks += wh.checks
                    wh.record_load(finish(record, counts))
                    records.append(record)
                    continue
                if why_not:
                    record.note += f", read through this machine: {why_not}"
                batches = counting(exported.batches(), name, ctx.progress)
                # the export says how many items it wrote: a count independent of the read
                expected = exported.item_count
                ctx.progress.expect(name, expected)
            else:
                if items:  # AWS refreshes it about every 6 h: the progress's estimate only
                    ctx.progress.expect(name, items)
                batches = counting(ddb.read(client, ds), name, ctx.progress)
            with record.step("read, merge, reconcile"):
                counts = wh.merge(
                    *raw,
                    ds.key_columns,
                    batches,
                    source=source,
                    run_id=ctx.run_id,
                    expected_rows=expected,
                    deletes=ds.etl.deletes,
                )
            record.checks += wh.checks
            wh.record_load(finish(record, counts))
        records.append(record)
    return records


def check_models(spec: Spec) -> None:
    """Read and resolve every model's SQL, so a missing file or a bad reference fails a
    run before anything is loaded, not after."""
    if not spec.models.tables:
        return
    from ..warehouse.model_inputs import model_inputs

    model_inputs(spec)  # parsed only when a model or a name changed since it last was


def _build_models(spec: Spec, wh: Any, ctx: RunContext) -> list[LoadRecord]:
    """Every model, parents first; the first failure stops the rest (they may read it).

    A model is rebuilt only when its SQL (its file, the spec's names, the dialect), its
    inputs' state or a parent changed since its last good build (or with
    --full-refresh): re-running an unchanged pipeline rebuilds nothing, and parses no
    SQL (sqlglot is loaded only for a model to build).
    """
    if not spec.models.tables:
        return []
    from ..warehouse.model_inputs import model_digests, model_inputs

    records = []
    last = wh.last_loads()
    built: dict[str, str] = {}  # model -> fingerprint of this run
    planned: dict[str, Any] | None = None
    digests = model_digests(spec, wh.dialect)
    for name, schema, datasets, parents in model_inputs(spec):
        h = hashlib.sha256(digests[name].encode())
        for dataset in sorted(datasets):
            state = wh.fingerprint(*spec.raw_table(dataset))
            if state is None:
                raise TargetError(
                    f"model {name} reads dataset {dataset}, whose raw table "
                    f"{'.'.join(spec.raw_table(dataset))} does not exist yet "
                    "(run `dataferry etl` without --dataset)"
                )
            h.update(f"\0{dataset}\0{state}".encode())
        for parent in sorted(parents):
            h.update(f"\0{parent}\0{built[parent]}".encode())
        built[name] = h.hexdigest()
        record = LoadRecord(
            run_id=ctx.run_id,
            dataset=name,
            target="model",
            table=f"{schema}.{name}",
            source=str(spec.resolve(spec.models.tables[name].sql)),
            spec_sha256=built[name],
            started_at=utcnow(),
        )
        earlier = last.get(name)
        rows = wh.count(schema, name)
        if (
            not ctx.full_refresh
            and rows is not None
            and earlier is not None
            and earlier.get("status") == "ok"
            and earlier.get("spec_sha256") == record.spec_sha256
        ):
            record.counts = LoadCounts(read=rows)
            record.status = "skipped"
            record.finished_at = utcnow()
            record.note = f"SQL and inputs unchanged since run {earlier.get('run_id')}"
            records.append(record)
            ctx.completed.append(record)  # as a skipped load is: the run's report lists it
            continue
        if planned is None:
            from ..warehouse.models import plan_models

            planned = {m.name: m for m in plan_models(spec, wh.dialect, wh.staging_suffix)}
        with ledgered(record, wh.record_load, ctx), record.step("build"):
            rows = wh.build_model(planned[name])
            record.checks += wh.checks
            wh.record_load(finish(record, LoadCounts(read=rows, written=rows)))
        records.append(record)
    return records


def etl(
    spec: Spec, datasets: list[str] | None = None, ctx: RunContext | None = None
) -> list[LoadRecord]:
    ctx = ctx or RunContext()
    pg_sets = spec.datasets_for("postgres", datasets)
    ddb_sets = spec.datasets_for("dynamodb", datasets)
    records: list[LoadRecord] = []
    with contextlib.ExitStack() as resources:
        reader = None
        if pg_sets:
            from ..stores import postgres as pg

            # Opened first: the driver's own start-up runs while the warehouse opens.
            source = resolve_postgres(spec)
            say_chosen("PostgreSQL", source)
            reader = resources.enter_context(pg.ArrowReader(source))
        wh = resources.enter_context(open_warehouse(spec, ctx.wait_s))
        if hasattr(wh, "interrupt"):  # a signal stops a long warehouse query at once
            resources.enter_context(interrupt.cancellation_hook(wh.interrupt))
        if reader is not None:
            records += _from_postgres(spec, pg_sets, wh, ctx, reader)
        if ddb_sets:
            records += _from_dynamodb(spec, ddb_sets, wh, ctx)
        records += _build_models(spec, wh, ctx)
    return records
