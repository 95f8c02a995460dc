"""The DynamoDB ledger: the table ``dataferry_loads`` (hash dataset, range started_at).

It lives beside the data, so an ephemeral CI runner still sees what an earlier one loaded.
The files a dataset's successful loads read are items of the same table, under the hash
key ``<dataset>#files`` (no dataset name holds ``#``) and the file's key as range: one
item per file, its latest load (DynamoDB datasets merge, so only the latest counts).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ...ledger import LoadRecord
from ...spec import Dataset, Target
from .codec import ItemCodec, wire_value
from .connection import translate
from .provision import provision

__all__ = [
    "LEDGER_TABLE",
    "ensure_ledger",
    "file_loads",
    "history",
    "last_loads",
    "ok_loads",
    "record_load",
]

LEDGER_TABLE = "dataferry_loads"


def _ledger_dataset(table: str) -> Dataset:
    return Dataset.model_validate(
        {
            "source": {"path": "-"},
            "target": Target(store="dynamodb", table=table),
            "key": {"hash": "dataset", "range": "started_at"},
        }
    )


def _plain(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(str(value))
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def ensure_ledger(client: Any, table: str = LEDGER_TABLE) -> None:
    """Create the ledger table if it is missing (and wait until it is ACTIVE)."""
    provision(client, _ledger_dataset(table))


def _files_key(dataset: str) -> str:
    return f"{dataset}#files"


def record_load(client: Any, record: LoadRecord, table: str = LEDGER_TABLE) -> None:
    """Put the record; when it succeeded, first an item per file it loaded (a crash
    between the two leaves files marked loaded whose data is written: safe to skip)."""
    ensure_ledger(client, table)
    row = {k: _plain(v) for k, v in record.flat().items() if v is not None}
    try:
        if record.status == "ok":
            _put_files(client, record, table)
        client.put_item(TableName=table, Item={k: wire_value(v) for k, v in row.items()})
    except (BotoCoreError, ClientError) as e:
        raise translate(e, f"table {table}") from None


def _put_files(client: Any, record: LoadRecord, table: str) -> None:
    from .write import put_all

    items = []
    for f in record.loaded_files:
        entry = {
            "dataset": _files_key(record.dataset),
            "started_at": f.source,  # the range key: one item per file
            "run_id": record.run_id,
            "source": f.source,
            "spec_sha256": record.spec_sha256,
            "file_size": f.file_size,
            "file_sha256": f.file_sha256,
            "read": f.read,
            "rejected": f.rejected,
            "loaded_at": record.started_at.isoformat(),
        }
        items.append({k: wire_value(v) for k, v in entry.items() if v is not None})
    put_all(client, table, items)


def _newest(
    client: Any, table: str, dataset: str, limit: int | None, status: str | None = None
) -> list[dict[str, Any]] | None:
    """The dataset's ledger items, newest first, at most ``limit`` (all: None; of that
    ``status``); None when there is no ledger table."""
    query: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "#d = :d",
        "ExpressionAttributeNames": {"#d": "dataset"},
        "ExpressionAttributeValues": {":d": {"S": dataset}},
        "ScanIndexForward": False,
    }
    if status:  # a filter is applied after Limit: page through instead of limiting
        query["FilterExpression"] = "#s = :s"
        query["ExpressionAttributeNames"]["#s"] = "status"
        query["ExpressionAttributeValues"][":s"] = {"S": status}
    elif limit is not None:
        query["Limit"] = limit
    out: list[dict[str, Any]] = []
    try:
        for page in client.get_paginator("query").paginate(**query):
            out += [ItemCodec.decode(i) for i in page.get("Items", [])]
            if limit is not None and len(out) >= limit:
                break
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return None
        raise translate(e, f"table {table}") from None
    return out if limit is None else out[:limit]


def last_loads(
    client: Any, datasets: list[str], table: str = LEDGER_TABLE, status: str | None = None
) -> dict[str, dict[str, Any]]:
    """The latest ledger item per dataset (of that ``status`` when given)."""
    out: dict[str, dict[str, Any]] = {}
    for name in datasets:
        rows = _newest(client, table, name, 1, status)
        if rows is None:
            return {}
        if rows:
            out[name] = rows[0]
    return out


def history(
    client: Any, datasets: list[str], limit: int, table: str = LEDGER_TABLE
) -> list[dict[str, Any]]:
    """The datasets' ledger items, newest first, at most ``limit`` in all."""
    rows: list[dict[str, Any]] = []
    for name in datasets:
        rows += _newest(client, table, name, limit) or []
    rows.sort(key=lambda r: str(r.get("started_at")), reverse=True)
    return rows[:limit]


def ok_loads(
    client: Any, dataset: str, limit: int = 1000, table: str = LEDGER_TABLE
) -> list[dict[str, Any]]:
    """The dataset's successful loads, newest first."""
    return _newest(client, table, dataset, limit, "ok") or []


def file_loads(client: Any, dataset: str, table: str = LEDGER_TABLE) -> list[dict[str, Any]]:
    """The latest successful load of each file of the dataset, newest first."""
    rows = _newest(client, table, _files_key(dataset), None) or []
    for r in rows:
        r["started_at"] = r.pop("loaded_at", None)
    rows.sort(key=lambda r: str(r.get("started_at")), reverse=True)
    return rows
