"""The three stages, composed from readers, stores and the warehouse.

Each stage waits for its targets to be ready, works dataset by dataset, records every load
in the target's ledger and returns the records. Stages know nothing of the CLI.
"""

from __future__ import annotations

from collections.abc import Callable

from ..ledger import LoadRecord
from ..spec import Spec
from .common import RunContext, for_stage, open_warehouse
from .etl import check_models, etl
from .load_nosql import dynamodb_items, load_nosql, spool_items
from .load_sql import load_sql

__all__ = [
    "STAGES",
    "RunContext",
    "check_models",
    "dynamodb_items",
    "etl",
    "for_stage",
    "load_nosql",
    "load_sql",
    "open_warehouse",
    "run",
    "spool_items",
]

Stage = Callable[[Spec, "list[str] | None", "RunContext | None"], list[LoadRecord]]
STAGES: dict[str, Stage] = {"load sql": load_sql, "load nosql": load_nosql, "etl": etl}


def run(
    spec: Spec, datasets: list[str] | None = None, ctx: RunContext | None = None
) -> dict[str, list[LoadRecord]]:
    """All three stages in dependency order, under one run id."""
    ctx = ctx or RunContext()
    check_models(spec)
    return {stage: fn(spec, datasets, for_stage(ctx, stage)) for stage, fn in STAGES.items()}
