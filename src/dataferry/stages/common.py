"""What every stage shares: the run context, load records and their ledger bookkeeping."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ..errors import DataferryError, NotSupported
from ..ledger import LoadCounts, LoadRecord, new_run_id, utcnow
from ..readiness import DEFAULT_DEADLINE_S
from ..spec import Spec

__all__ = [
    "RAW_SCHEMAS",
    "Progress",
    "RunContext",
    "counting",
    "finish",
    "ledgered",
    "new_record",
    "open_warehouse",
]

log = logging.getLogger("dataferry")
Progress = Callable[[str, int], None]  # (dataset, rows just done)
RAW_SCHEMAS = {"postgres": "raw_postgres", "dynamodb": "raw_dynamodb"}


def _no_progress(dataset: str, rows: int) -> None:
    return None


@dataclass(frozen=True)
class RunContext:
    """One run: its id (shared by every stage of `dataferry run`), progress and wait."""

    run_id: str = field(default_factory=new_run_id)
    progress: Progress = _no_progress
    wait_s: float = DEFAULT_DEADLINE_S
    max_rejects: int | None = None  # overrides every dataset's max_rejects when given
    force: bool = False  # load files the ledger says are already loaded
    migrate: bool = False  # let load sql add nullable columns and widen types


def new_record(spec: Spec, name: str, target: str, ctx: RunContext, source: str) -> LoadRecord:
    ds = spec.datasets[name]
    return LoadRecord(
        run_id=ctx.run_id,
        dataset=name,
        target=target,
        table=ds.target.table,
        source=source,
        spec_sha256=spec.dataset_hash(name),
        started_at=utcnow(),
    )


def finish(record: LoadRecord, counts: LoadCounts) -> LoadRecord:
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


@contextmanager
def ledgered(record: LoadRecord, save: Callable[[LoadRecord], None]) -> Iterator[None]:
    """On a dataferry error, mark the record failed, save it to the ledger, re-raise."""
    try:
        yield
    except DataferryError as e:
        record.status = "failed"
        record.error = str(e)
        record.finished_at = utcnow()
        save(record)
        raise


def counting(batches: Iterator[Any], name: str, progress: Progress) -> Iterator[Any]:
    for batch in batches:
        yield batch
        progress(name, batch.num_rows)


def open_warehouse(spec: Spec) -> Any:
    if spec.warehouse.kind == "snowflake":
        raise NotSupported(
            f"{spec.path}: warehouse.snowflake is not supported by this version yet; "
            "use warehouse.duckdb"
        )
    from ..warehouse.duckdb_warehouse import DuckDBWarehouse

    return DuckDBWarehouse(spec.duckdb_path)
