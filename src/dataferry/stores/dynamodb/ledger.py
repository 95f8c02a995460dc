"""The DynamoDB ledger: the table ``dataferry_loads`` (hash dataset, range started_at).

It lives beside the data, so an ephemeral CI runner still sees what an earlier one loaded.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from ...ledger import LoadRecord
from ...spec import Dataset, Target
from .codec import ItemCodec
from .connection import translate
from .provision import provision

__all__ = ["LEDGER_TABLE", "ensure_ledger", "last_loads", "ok_loads", "record_load"]

LEDGER_TABLE = "dataferry_loads"
_serializer = TypeSerializer()


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


def record_load(client: Any, record: LoadRecord, table: str = LEDGER_TABLE) -> None:
    ensure_ledger(client, table)
    row = {k: _plain(v) for k, v in record.flat().items() if v is not None}
    try:
        client.put_item(TableName=table, Item={k: _serializer.serialize(v) for k, v in row.items()})
    except (BotoCoreError, ClientError) as e:
        raise translate(e, f"table {table}") from None


def last_loads(
    client: Any, datasets: list[str], table: str = LEDGER_TABLE
) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name in datasets:
        try:
            resp = client.query(
                TableName=table,
                KeyConditionExpression="#d = :d",
                ExpressionAttributeNames={"#d": "dataset"},
                ExpressionAttributeValues={":d": {"S": name}},
                ScanIndexForward=False,
                Limit=1,
            )
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return {}
            raise translate(e, f"table {table}") from None
        if resp.get("Items"):
            out[name] = ItemCodec.decode(resp["Items"][0])
    return out


def ok_loads(
    client: Any, dataset: str, limit: int = 1000, table: str = LEDGER_TABLE
) -> list[dict[str, Any]]:
    """The dataset's successful loads, newest first."""
    out: list[dict[str, Any]] = []
    try:
        pages = client.get_paginator("query").paginate(
            TableName=table,
            KeyConditionExpression="#d = :d",
            FilterExpression="#s = :ok",
            ExpressionAttributeNames={"#d": "dataset", "#s": "status"},
            ExpressionAttributeValues={":d": {"S": dataset}, ":ok": {"S": "ok"}},
            ScanIndexForward=False,
        )
        for page in pages:
            out += [ItemCodec.decode(i) for i in page.get("Items", [])]
            if len(out) >= limit:
                break
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return []
        raise translate(e, f"table {table}") from None
    return out[:limit]
