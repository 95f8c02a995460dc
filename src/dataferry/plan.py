"""`dataferry plan`: what a run would change, computed against the targets without
changing them (in the spirit of ``terraform plan -detailed-exitcode``).

- PostgreSQL: every dataset is loaded as `load sql` would load it (DDL, COPY, key checks,
  merge) inside one transaction that is rolled back, parents first so that children see
  their parents' new rows; the merge's own counts say what is new, changed or unchanged.
  Identity sequences are not advanced (setval is not transactional).
- DynamoDB: the file is validated as `load nosql` does (pass 1), and each valid item is
  compared with the table's item of the same key (BatchGetItem, numbers compared as
  numbers), or the table would be created.
- The warehouse: a raw table is up to date when its last etl load (its ledger) ended
  after the source's last change (the source's ledger) and holds as many rows as the
  source; otherwise it would be read again, and what changes is known only then
  (Terraform's "known after apply"). A model would be built when it is missing or any
  table it reads would change.

Files unchanged since their last load (the ledgers' checksums) would be skipped, as a run
skips them. Nothing is written, and the embedded stack is not started.
"""

from __future__ import annotations

import datetime as dt
import functools
import sys
import tempfile
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from .connections import resolve_dynamodb, resolve_postgres
from .errors import DataferryError, TargetUnavailable
from .ledger import LoadRecord
from .readers import RejectLog, read_batches, reject_kind
from .sources import SourceFile, dataset_files
from .spec import Spec
from .stages.common import RunContext, files_to_load, new_record, skip_all, source_text
from .status import STACK_DOWN, status

__all__ = ["PlanItem", "plan"]


@dataclass
class PlanItem:
    stage: str  # load sql | load nosql | etl | model
    dataset: str
    table: str
    action: str  # create | update | no change | skip | fail
    ddl: list[str] = field(default_factory=list)
    new: int | None = None
    changed: int | None = None
    unchanged: int | None = None
    rejected: int | None = None
    note: str = ""
    files: list[dict[str, str]] = field(default_factory=list)  # each file: load or skip

    @property
    def changes(self) -> bool:
        return self.action in ("create", "update")


def _postgres(spec: Spec, names: list[str] | None, ctx: RunContext) -> list[PlanItem]:
    from .stores import postgres as pg
    from .stores.postgres.ddl import _create_statement

    order = spec.load_order(names)
    if not order:
        return []
    target = resolve_postgres(spec, start=False)
    if target.embedded and not target.conninfo:
        raise TargetUnavailable(STACK_DOWN)
    items = []
    with pg.connect_when_ready(target, ctx.wait_s) as conn, conn.transaction(force_rollback=True):
        for name in order:
            ds = spec.datasets[name]
            where = f"{ds.target.schema_}.{ds.target.table}"
            item = PlanItem("load sql", name, where, "no change")
            items.append(item)
            exists = pg.exists(conn, ds)
            record = new_record(spec, name, "postgres", ctx, source_text(spec, name))
            try:
                todo = _files(
                    item,
                    spec,
                    record,
                    ctx,
                    functools.partial(pg.file_loads, conn, name),
                    functools.partial(pg.ok_loads, conn, name),
                    exists,
                )
                if not todo:
                    continue
                if not exists:
                    item.ddl = [_create_statement(spec, ds).as_string(conn)]
                with conn.transaction():
                    done = pg.provision(conn, spec, ds, migrate=ctx.migrate)
                    if exists and done:
                        item.ddl = [f"-- {d}" for d in done]
                    log = RejectLog(record.source, kind=reject_kind(ds))
                    counts, _ = pg.write(
                        conn,
                        spec,
                        ds,
                        functools.partial(read_batches, todo, ds, log),
                        log,
                        sys.maxsize,
                        advance_identities=False,
                        single_file=len(todo) == 1,
                    )
            except DataferryError as e:
                item.action, item.note = "fail", str(e)
                continue
            item.new, item.changed = counts.inserted, counts.updated
            item.unchanged, item.rejected = counts.unchanged, len(log)
            allowed = ds.max_rejects if ctx.max_rejects is None else ctx.max_rejects
            if item.rejected > allowed:
                item.action = "fail"
                item.note = f"{item.rejected} rows would be rejected, more than {allowed} allowed"
            elif not exists:
                item.action = "create"
            elif counts.inserted or counts.updated or counts.deleted or item.ddl:
                item.action = "update"
                if counts.deleted:
                    item.note = f"{counts.deleted} rows would be deleted (mode: replace)"
    return items


def _files(
    item: PlanItem,
    spec: Spec,
    record: LoadRecord,
    ctx: RunContext,
    earlier_files: Any,
    ok_loads: Any,
    exists: bool,
) -> list[SourceFile]:
    """The files a run would read (files_to_load); the item lists every file, and is
    marked skipped when a run would read none."""
    files = dataset_files(spec, record.dataset, start=False)
    mode = spec.datasets[record.dataset].mode
    todo = files_to_load(files, record, mode, ctx, earlier_files, ok_loads, lambda: exists)
    item.files = [
        {"file": f.source, "action": "load" if f.status == "loaded" else "skip"}
        for f in record.files
    ]
    if not todo:
        skip_all(record)
        item.action, item.note = "skip", record.note or ""
    elif len(todo) < len(record.files):
        item.note = (
            f"{len(todo)} of {len(record.files)} files would be read, the rest are unchanged"
        )
    return todo


def _same(a: Any, b: Any) -> bool:
    """Two DynamoDB wire values alike as DynamoDB stores them (1.50 is 1.5; sets unordered)."""
    if not (isinstance(a, dict) and isinstance(b, dict)) or a.keys() != b.keys() or not a:
        return False
    kind = next(iter(a))
    x: Any = a[kind]
    y: Any = b[kind]
    try:
        if kind == "N":
            return Decimal(x) == Decimal(y)
        if kind == "NS":
            return {Decimal(v) for v in x} == {Decimal(v) for v in y}
    except (InvalidOperation, TypeError):
        return False
    if kind in ("SS", "BS"):
        return set(x) == set(y)
    if kind == "L":
        return len(x) == len(y) and all(_same(p, q) for p, q in zip(x, y, strict=True))
    if kind == "M":
        return x.keys() == y.keys() and all(_same(x[k], y[k]) for k in x)
    return bool(x == y)


def _same_item(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)


def _dynamodb(spec: Spec, names: list[str] | None, ctx: RunContext) -> list[PlanItem]:
    from .stages.load_nosql import replay_spool, spool_items
    from .stores import dynamodb as ddb

    chosen = spec.datasets_for("dynamodb", names)
    if not chosen:
        return []
    target = resolve_dynamodb(spec, start=False)
    if target.embedded and not target.endpoint_url:
        raise TargetUnavailable(STACK_DOWN)
    ledger = spec.stores.dynamodb.ledger_table
    client = ddb.client_when_ready(target, ledger, ctx.wait_s)
    items = []
    for name, ds in chosen.items():
        item = PlanItem("load nosql", name, ds.target.table, "no change")
        items.append(item)
        exists = ddb.count(client, ds) is not None
        record = new_record(spec, name, "dynamodb", ctx, source_text(spec, name))
        codec = ddb.ItemCodec(ds)
        log = RejectLog(record.source, kind="json")
        try:
            todo = _files(
                item,
                spec,
                record,
                ctx,
                functools.partial(ddb.file_loads, client, name, table=ledger),
                functools.partial(ddb.ok_loads, client, name, table=ledger),
                exists,
            )
            if not todo:
                continue
            with tempfile.TemporaryFile() as spool:
                spooled = spool_items(todo, ds, codec, log, spool)
                item.rejected = len(log)
                if not exists:
                    keys = ", ".join(ds.key_columns)
                    item.action, item.new = "create", spooled.to_send
                    item.ddl = [f"CreateTable {ds.target.table} (key: {keys})"]
                else:
                    item.new, item.changed, item.unchanged = _compare(
                        client, ds, codec, replay_spool(spool, spooled.skip)
                    )
                    if item.new or item.changed:
                        item.action = "update"
        except DataferryError as e:
            item.action, item.note = "fail", str(e)
            continue
        allowed = ds.max_rejects if ctx.max_rejects is None else ctx.max_rejects
        if item.rejected > allowed:
            item.action = "fail"
            item.note = f"{item.rejected} records would be rejected, more than {allowed} allowed"
    return items


def _compare(client: Any, ds: Any, codec: Any, entries: Any) -> tuple[int, int, int]:
    """(new, changed, unchanged) of the items against the table, 100 keys a request."""
    from botocore.exceptions import BotoCoreError, ClientError

    from .stores.dynamodb import wire_from_json
    from .stores.dynamodb.connection import translate

    new = changed = unchanged = 0
    batch: list[dict[str, Any]] = []

    def flush() -> None:
        nonlocal new, changed, unchanged
        wanted = {codec.key_of(i): i for i in batch}
        keys = [{a: i[a] for a in codec.key_attributes} for i in batch]
        found: dict[Any, dict[str, Any]] = {}
        request: dict[str, Any] = {ds.target.table: {"Keys": keys, "ConsistentRead": True}}
        try:
            while request:
                resp = client.batch_get_item(RequestItems=request)
                for got in resp.get("Responses", {}).get(ds.target.table, []):
                    found[codec.key_of(got)] = got
                request = resp.get("UnprocessedKeys") or {}
        except (BotoCoreError, ClientError) as e:
            raise translate(e, f"table {ds.target.table}") from None
        for key, item in wanted.items():
            have = found.get(key)
            if have is None:
                new += 1
            elif _same_item(have, item):
                unchanged += 1
            else:
                changed += 1
        batch.clear()

    for _, _, text in entries:
        batch.append(wire_from_json(text))
        if len(batch) == 100:
            flush()
    if batch:
        flush()
    return new, changed, unchanged


def _warehouse(
    spec: Spec, names: list[str] | None, ctx: RunContext, loads: list[PlanItem]
) -> list[PlanItem]:
    from .stages import open_warehouse

    changing = {i.dataset for i in loads if i.changes}
    chosen = [n for n in spec.datasets if not names or n in names]
    found = status(spec, ctx.wait_s, counts=True)
    sources = {
        t["dataset"]: t
        for store in ("postgres", "dynamodb")
        for t in found.get(store, {}).get("tables", [])
    }
    raw = {t["dataset"]: t for t in found["warehouse"]["tables"]}
    items = []
    for name in chosen:
        schema, table = spec.raw_table(name)
        item = PlanItem("etl", name, f"{schema}.{table}", "no change")
        items.append(item)
        here, there = raw.get(name, {}), sources.get(name, {})
        if here.get("rows") is None:
            item.action, item.note = "create", "raw table missing: read whole from the source"
        elif name in changing:
            item.action, item.note = "update", "its load would change the source (known after)"
        elif _instant(here.get("last_change")) < _instant(there.get("last_change")):
            item.action, item.note = "update", "the source changed after the last etl"
        elif there.get("rows") is not None and here["rows"] < there["rows"]:
            item.action = "update"
            item.note = f"source holds {there['rows']} rows, the raw table {here['rows']}"
    changed = {i.dataset for i in items if i.changes}
    if not spec.models.tables or names:  # --dataset: a run builds no models either
        return items
    from .warehouse.models import plan_models

    with open_warehouse(spec, ctx.wait_s) as wh:
        for model in plan_models(spec, "duckdb", ""):  # parents first
            item = PlanItem("model", model.name, f"{model.schema}.{model.name}", "no change")
            items.append(item)
            if wh.count(model.schema, model.name) is None:
                item.action, item.note = "create", "model table missing"
            elif (model.datasets | model.models) & changed:
                item.action, item.note = "update", "a table it reads would change"
            if item.changes:
                changed.add(model.name)
    return items


def _instant(value: Any) -> dt.datetime:
    """A ledger time, comparable whatever the ledger stored (datetime or ISO text)."""
    if isinstance(value, str) and value:
        value = dt.datetime.fromisoformat(value)
    if not isinstance(value, dt.datetime):
        return dt.datetime.min.replace(tzinfo=dt.timezone.utc)
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def plan(spec: Spec, names: list[str] | None, ctx: RunContext) -> list[PlanItem]:
    """What `dataferry run` (with the same options) would do, per dataset and model."""
    loads = _postgres(spec, names, ctx) + _dynamodb(spec, names, ctx)
    return loads + _warehouse(spec, names, ctx, loads)
