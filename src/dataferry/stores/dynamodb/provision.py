"""Tables from the spec: created when missing and waited for until ACTIVE; compared if present."""

from __future__ import annotations

import logging
import time
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ... import interrupt
from ...errors import TargetError, TargetUnavailable
from ...spec import Dataset, SecondaryIndex
from .connection import translate

__all__ = ["count", "create_table_args", "provision"]

ACTIVE_DEADLINE_S = 300.0
log = logging.getLogger("dataferry")


def create_table_args(ds: Dataset) -> dict[str, Any]:
    """CreateTable arguments derived from the dataset (also what Terraform export uses)."""
    assert ds.key is not None
    schema = [{"AttributeName": ds.key.hash, "KeyType": "HASH"}]
    if ds.key.range:
        schema.append({"AttributeName": ds.key.range, "KeyType": "RANGE"})
    keyed = list(dict.fromkeys(ds.key.attributes + [a for ix in ds.indexes for a in ix.attributes]))
    args: dict[str, Any] = {
        "TableName": ds.target.table,
        "KeySchema": schema,
        "AttributeDefinitions": [
            {"AttributeName": a, "AttributeType": ds.key_type(a).dynamodb()} for a in keyed
        ],
        "BillingMode": ds.billing_mode,
    }
    if ds.indexes:
        args["GlobalSecondaryIndexes"] = [_index_args(ix) for ix in ds.indexes]
    return args


def _index_args(ix: SecondaryIndex) -> dict[str, Any]:
    schema = [{"AttributeName": ix.hash, "KeyType": "HASH"}]
    if ix.range:
        schema.append({"AttributeName": ix.range, "KeyType": "RANGE"})
    if isinstance(ix.projection, list):
        projection = {"ProjectionType": "INCLUDE", "NonKeyAttributes": ix.projection}
    else:
        projection = {"ProjectionType": ix.projection}
    return {"IndexName": ix.name, "KeySchema": schema, "Projection": projection}


def _index_keys(indexes: list[dict[str, Any]]) -> dict[str, list[tuple[str, str]]]:
    return {
        ix["IndexName"]: [(k["AttributeName"], k["KeyType"]) for k in ix["KeySchema"]]
        for ix in indexes
    }


def _describe(client: Any, table: str) -> dict[str, Any] | None:
    try:
        return dict(client.describe_table(TableName=table)["Table"])
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return None
        raise translate(e, f"table {table}") from None
    except BotoCoreError as e:
        raise translate(e, f"table {table}") from None


def _wait_active(client: Any, table: str, deadline_s: float) -> dict[str, Any]:
    """DescribeTable until the table is ACTIVE: soon at first (the embedded endpoint makes
    a table ACTIVE in 20 ms; AWS in seconds), then less and less often, which botocore's
    waiter, at one fixed delay, cannot do. The pauses are interrupt.sleep, as every wait's."""
    deadline = time.monotonic() + deadline_s
    delay = 0.025
    while True:
        desc = _describe(client, table)
        if desc and desc.get("TableStatus") == "ACTIVE":
            return desc
        if time.monotonic() > deadline:
            status = desc.get("TableStatus") if desc else "missing"
            raise TargetUnavailable(
                f"DynamoDB table {table} not ACTIVE after {deadline_s:.0f}s (status {status})"
            )
        interrupt.sleep(delay)
        delay = min(delay * 2, 5.0)


def provision(
    client: Any, ds: Dataset, deadline_s: float = ACTIVE_DEADLINE_S, made_by_load: bool = False
) -> bool:
    """Create the table if missing (return True) and wait until it is ACTIVE;
    ``made_by_load``: the load made it already (ImportTable), so what follows creation
    (point-in-time recovery) is done too."""
    args = create_table_args(ds)
    table = ds.target.table
    desc = _describe(client, table)
    created = False
    if desc is None:
        try:
            client.create_table(**args)
            created = True
        except ClientError as e:
            # Another process may have created it in between: that is fine, we compare below.
            if e.response.get("Error", {}).get("Code") != "ResourceInUseException":
                raise translate(e, f"table {table}") from None
        except BotoCoreError as e:  # the endpoint gone (after --wait's retries)
            raise translate(e, f"table {table}") from None
    desc = _wait_active(client, table, deadline_s)
    want_keys = {(k["AttributeName"], k["KeyType"]) for k in args["KeySchema"]}
    have_keys = {(k["AttributeName"], k["KeyType"]) for k in desc["KeySchema"]}
    want_types = {(a["AttributeName"], a["AttributeType"]) for a in args["AttributeDefinitions"]}
    have_types = {
        (a["AttributeName"], a["AttributeType"]) for a in desc.get("AttributeDefinitions", [])
    }
    want_ix = _index_keys(args.get("GlobalSecondaryIndexes", []))
    have_ix = _index_keys(desc.get("GlobalSecondaryIndexes", []))
    if want_ix != have_ix:
        raise TargetError(
            f"DynamoDB table {table} has global secondary indexes {have_ix or 'none'}; the spec "
            f"says {want_ix or 'none'} (nothing was changed)"
        )
    if want_keys != have_keys or want_types != have_types:
        raise TargetError(
            f"DynamoDB table {table} has key schema {sorted(have_keys)} "
            f"{sorted(have_types)}; the spec says {sorted(want_keys)} {sorted(want_types)} "
            f"(nothing was changed)"
        )
    if ds.ttl_attribute:
        _time_to_live(client, table, ds.ttl_attribute)
    if (created or made_by_load) and ds.point_in_time_recovery:
        try:
            client.update_continuous_backups(
                TableName=table,
                PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
            )
        except (BotoCoreError, ClientError) as e:
            raise translate(e, f"table {table}: turning on point-in-time recovery") from None
    return created


def _time_to_live(client: Any, table: str, attribute: str) -> None:
    """Turn on time to live by ``attribute`` unless it is on already. An endpoint without
    the operation (dynalite: it never expires items) is told once, and the load goes on;
    another attribute already in use is an error (DynamoDB allows one, changed only after
    turning it off)."""
    try:
        current = client.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    except (BotoCoreError, ClientError) as e:
        raise translate(e, f"table {table}: reading its time to live") from None
    status, have = current.get("TimeToLiveStatus"), current.get("AttributeName")
    if have == attribute and status in ("ENABLED", "ENABLING"):
        return
    if have and have != attribute and status in ("ENABLED", "ENABLING"):
        raise TargetError(
            f"DynamoDB table {table} expires items by {have}; the spec says {attribute} "
            "(turn the old one off first; nothing was changed)"
        )
    try:
        client.update_time_to_live(
            TableName=table,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": attribute},
        )
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") == "UnknownOperationException":
            _say_once(
                f"the DynamoDB endpoint has no time to live: {table} items by "
                f"{attribute} will not expire there (they do on AWS)"
            )
            return
        raise translate(e, f"table {table}: turning on time to live by {attribute}") from None
    except BotoCoreError as e:
        raise translate(e, f"table {table}: turning on time to live by {attribute}") from None
    log.info("%s: time to live by %s turned on", table, attribute)


_said: set[str] = set()


def _say_once(message: str) -> None:
    if message not in _said:
        _said.add(message)
        log.warning("%s", message)


def size_bytes(client: Any, ds: Dataset) -> int | None:
    """The table's size (DescribeTable's TableSizeBytes, refreshed about every 6 h)."""
    desc = _describe(client, ds.target.table)
    return None if desc is None else int(desc.get("TableSizeBytes", 0))


def count(client: Any, ds: Dataset) -> int | None:
    """Items in the table (DescribeTable's ItemCount, which AWS refreshes about every 6 h)."""
    desc = _describe(client, ds.target.table)
    return None if desc is None else int(desc.get("ItemCount", 0))


def count_exactly(client: Any, ds: Dataset) -> int | None:
    """Items in the table, counted by a Scan that returns counts only: exact, and free on
    a local endpoint (dynalite never updates ItemCount); on AWS it reads the whole table."""
    table = ds.target.table
    if _describe(client, table) is None:
        return None
    kwargs: dict[str, Any] = {"TableName": table, "Select": "COUNT"}
    total = 0
    try:
        while True:
            page = client.scan(**kwargs)
            total += int(page["Count"])
            if "LastEvaluatedKey" not in page:
                return total
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    except (BotoCoreError, ClientError) as e:
        raise translate(e, f"table {table}: counting items") from None
