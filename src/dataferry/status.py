"""What each target holds now (tables, rows, the last load and the last change) and what
its ledger remembers (`dataferry history`)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from .connections import resolve_dynamodb, resolve_postgres
from .readiness import STATUS_WAIT_S
from .spec import Spec
from .stages import open_warehouse

__all__ = ["status"]


STACK_DOWN = "the embedded stack is down (`dataferry stack up` starts it)"


def _down(spec: Spec, store: str, endpoint: str) -> dict[str, Any]:
    """A stopped embedded server is reported, not started: status only looks."""
    tables = [_row(n, d.target.table, None, {}, {}) for n, d in spec.datasets_for(store).items()]
    return {
        "endpoint": endpoint,
        "tables": tables,
        "history": [],
        "note": STACK_DOWN,
        "down": True,
    }


@dataclass(frozen=True)
class _Ask:
    """What to read from each target: its tables' rows, and how much of its ledger."""

    wait_s: float
    counts: bool = True
    history: int = 0  # ledger rows, newest first (0: none)
    dataset: str | None = None  # only this dataset's history
    # count only these tables: (target, dataset or model) pairs
    counted: frozenset[tuple[str, str]] | None = None
    answered: frozenset[str] = frozenset()  # targets known to be up: no readiness probe

    def count(self, target: str, name: str) -> bool:
        return self.counts and (self.counted is None or (target, name) in self.counted)


def _row(
    name: str, table: str, rows: int | None, last: dict[str, Any], changed: dict[str, Any]
) -> dict[str, Any]:
    change = changed.get(name) or {}
    return {
        "dataset": name,
        "table": table,
        "rows": rows,
        "last_load": last.get(name),
        # a skipped run changes nothing: when the data last changed is the last ok load
        "last_change": change.get("finished_at") or change.get("started_at"),
    }


def _postgres(spec: Spec, ask: _Ask) -> dict[str, Any]:
    from .stores import postgres as pg

    target = resolve_postgres(spec, start=False)
    if target.embedded and not target.conninfo:
        return _down(spec, "postgres", "embedded PostgreSQL (down)")
    with pg.connect_when_ready(target, ask.wait_s) as conn:
        last, changed = pg.last_loads(conn), pg.last_loads(conn, status="ok")
        tables = [
            _row(
                n,
                f"{d.target.schema_}.{d.target.table}",
                pg.count(conn, d) if ask.count("postgres", n) else None,
                last,
                changed,
            )
            for n, d in spec.datasets_for("postgres").items()
        ]
        history = pg.history(conn, ask.history, ask.dataset) if ask.history else []
    return {"endpoint": target.display, "tables": tables, "history": history}


def _dynamodb(spec: Spec, ask: _Ask) -> dict[str, Any]:
    from .stores import dynamodb as ddb

    target = resolve_dynamodb(spec, start=False)
    if target.embedded and not target.endpoint_url:
        return _down(spec, "dynamodb", "embedded DynamoDB (down)")
    ledger = spec.stores.dynamodb.ledger_table
    if "dynamodb" in ask.answered:
        client = ddb.client(target, outage_s=ask.wait_s)
    else:
        client = ddb.client_when_ready(target, ledger, ask.wait_s)
    datasets = spec.datasets_for("dynamodb")
    last = ddb.last_loads(client, list(datasets), ledger)
    changed = ddb.last_loads(client, list(datasets), ledger, status="ok")
    # A local endpoint is counted exactly; AWS's ItemCount is free but up to 6 h old.
    count = ddb.count_exactly if target.embedded else ddb.count
    tables = [
        _row(
            n, d.target.table, count(client, d) if ask.count("dynamodb", n) else None, last, changed
        )
        for n, d in datasets.items()
    ]
    names = [ask.dataset] if ask.dataset else list(datasets)
    history = ddb.history(client, names, ask.history, ledger) if ask.history else []
    out: dict[str, Any] = {"endpoint": target.display, "tables": tables, "history": history}
    if not target.embedded:
        out["note"] = "rows: DynamoDB's ItemCount, refreshed by AWS about every 6 hours"
        out["estimated"] = True  # not a count to reconcile against
    return out


def _warehouse(spec: Spec, ask: _Ask) -> dict[str, Any]:
    with open_warehouse(spec, ask.wait_s) as wh:
        last, changed = wh.last_loads(), wh.last_loads(status="ok")
        names = [(n, spec.raw_table(n)) for n in spec.datasets]
        names += [(m, (spec.models.schema_, m)) for m in spec.models.tables]
        tables = [
            _row(
                name,
                f"{schema}.{table}",
                wh.count(schema, table) if ask.count("warehouse", name) else None,
                last,
                changed,
            )
            for name, (schema, table) in names
        ]
        history = wh.history(ask.history, ask.dataset) if ask.history else []
        endpoint = wh.display
    return {"endpoint": endpoint, "tables": tables, "history": history}


def status(
    spec: Spec,
    wait_s: float = STATUS_WAIT_S,
    *,
    counts: bool = True,
    history: int = 0,
    dataset: str | None = None,
    only: Collection[str] | None = None,
    counted: Collection[tuple[str, str]] | None = None,
    answered: Collection[str] = (),
) -> dict[str, dict[str, Any]]:
    """Per target (postgres, dynamodb, warehouse): endpoint and one row per dataset (and
    per model, in the warehouse): its rows (``counts``), its last load and when its data
    last changed; and the ledger's ``history`` rows, newest first. Each target gets
    ``wait_s`` to answer (or, for the DuckDB file, to be released by a run that is
    writing it). A stopped embedded server is reported as down, not started. ``only``:
    these targets alone; ``counted``: count only these tables, as (target, dataset or model)
    pairs (a count reads the whole table); ``answered``: targets a run has just used, not
    probed for readiness first (a client and a request more, through the network); their
    client still retries an endpoint gone since, within ``wait_s``."""
    ask = _Ask(
        wait_s,
        counts,
        history,
        dataset,
        None if counted is None else frozenset(counted),
        frozenset(answered),
    )
    out: dict[str, dict[str, Any]] = {}
    wanted = {"postgres", "dynamodb", "warehouse"} if only is None else set(only)
    if spec.datasets_for("postgres") and "postgres" in wanted:
        out["postgres"] = _postgres(spec, ask)
    if spec.datasets_for("dynamodb") and "dynamodb" in wanted:
        out["dynamodb"] = _dynamodb(spec, ask)
    if "warehouse" in wanted:
        out["warehouse"] = _warehouse(spec, ask)
    return out
