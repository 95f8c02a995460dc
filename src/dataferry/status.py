"""What each target holds now: tables, row counts and the last load from its ledger."""

from __future__ import annotations

from typing import Any

from .connections import resolve_dynamodb, resolve_postgres
from .readiness import STATUS_WAIT_S, wait_until_ready
from .spec import Spec
from .stages import open_warehouse

__all__ = ["status"]


STACK_DOWN = "the embedded stack is down (`dataferry stack up` starts it)"


def _down(spec: Spec, store: str, endpoint: str) -> dict[str, Any]:
    """A stopped embedded server is reported, not started: status only looks."""
    tables = [
        {"dataset": n, "table": d.target.table, "rows": None, "last_load": None}
        for n, d in spec.datasets_for(store).items()
    ]
    return {"endpoint": endpoint, "tables": tables, "note": STACK_DOWN, "down": True}


def _postgres(spec: Spec, wait_s: float) -> dict[str, Any]:
    from .stores import postgres as pg

    target = resolve_postgres(spec, start=False)
    if target.embedded and not target.conninfo:
        return _down(spec, "postgres", "embedded PostgreSQL (down)")
    wait_until_ready(lambda t: pg.probe(target, t), f"PostgreSQL {target.display}", wait_s)
    with pg.connect(target) as conn:
        last = pg.last_loads(conn)
        tables = [
            {
                "dataset": n,
                "table": f"{d.target.schema_}.{d.target.table}",
                "rows": pg.count(conn, d),
                "last_load": last.get(n),
            }
            for n, d in spec.datasets_for("postgres").items()
        ]
    return {"endpoint": target.display, "tables": tables}


def _dynamodb(spec: Spec, wait_s: float) -> dict[str, Any]:
    from .stores import dynamodb as ddb

    target = resolve_dynamodb(spec, start=False)
    if target.embedded and not target.endpoint_url:
        return _down(spec, "dynamodb", "embedded DynamoDB (down)")
    wait_until_ready(lambda t: ddb.probe(target, t), f"DynamoDB {target.display}", wait_s)
    client = ddb.client(target, outage_s=wait_s)
    datasets = spec.datasets_for("dynamodb")
    last = ddb.last_loads(client, list(datasets), spec.stores.dynamodb.ledger_table)
    # A local endpoint is counted exactly; AWS's ItemCount is free but up to 6 h old.
    count = ddb.count_exactly if target.embedded else ddb.count
    tables = [
        {
            "dataset": n,
            "table": d.target.table,
            "rows": count(client, d),
            "last_load": last.get(n),
        }
        for n, d in datasets.items()
    ]
    out: dict[str, Any] = {"endpoint": target.display, "tables": tables}
    if not target.embedded:
        out["note"] = "rows: DynamoDB's ItemCount, refreshed by AWS about every 6 hours"
    return out


def _warehouse(spec: Spec, wait_s: float) -> dict[str, Any]:
    with open_warehouse(spec, wait_s) as wh:
        last = wh.last_loads()
        tables = []
        names = [(n, spec.raw_table(n)) for n in spec.datasets]
        names += [(m, (spec.models.schema_, m)) for m in spec.models.tables]
        for name, (schema, table) in names:
            tables.append(
                {
                    "dataset": name,
                    "table": f"{schema}.{table}",
                    "rows": wh.count(schema, table),
                    "last_load": last.get(name),
                }
            )
        endpoint = wh.display
    return {"endpoint": endpoint, "tables": tables}


def status(spec: Spec, wait_s: float = STATUS_WAIT_S) -> dict[str, dict[str, Any]]:
    """Per target (postgres, dynamodb, warehouse): endpoint and one row per dataset (and
    per model, in the warehouse). Each target gets ``wait_s`` to answer (or, for the
    DuckDB file, to be released by a run that is writing it)."""
    out: dict[str, dict[str, Any]] = {}
    if spec.datasets_for("postgres"):
        out["postgres"] = _postgres(spec, wait_s)
    if spec.datasets_for("dynamodb"):
        out["dynamodb"] = _dynamodb(spec, wait_s)
    out["warehouse"] = _warehouse(spec, wait_s)
    return out
