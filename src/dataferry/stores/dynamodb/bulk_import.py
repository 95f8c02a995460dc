"""DynamoDB's own bulk path for a new table: the validated items, written to S3 as
gzipped DynamoDB JSON, become the table through ImportTable.

ImportTable creates the table itself (it cannot load into one that exists) and consumes
no write capacity. Items are written as parts of PART_ITEMS lines (``{"Item": {...}}``,
the wire form the codec made) to a temporary file each, then uploaded
with one PUT each (a part is tens of MB, far under S3's 5 GB), so memory does not grow
with the file. DynamoDB's counts of the import (items
processed, imported, and errors) are reconciled against the validated items: any
difference fails the load, naming the import.
"""

from __future__ import annotations

import gzip
import logging
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, WaiterError

from ... import interrupt
from ...errors import CheckFailed, NotSupported, TargetError, TargetUnavailable
from ...spec import Dataset
from .connection import translate
from .provision import create_table_args

__all__ = ["ImportResult", "import_new_table"]

PART_ITEMS = 200_000
POLL_S = 2.0  # DescribeImport between waits: cheap, and imports end in minutes
log = logging.getLogger("dataferry")


@dataclass
class ImportResult:
    arn: str
    items: int  # ImportedItemCount
    processed: int
    errors: int
    parts: int


def _upload_parts(
    s3: Any,
    bucket: str,
    prefix: str,
    items: Iterable[tuple[Any, int, bytes]],
    on_progress: Callable[[int], None] | None,
) -> tuple[int, int]:
    """Write the items as gzipped DynamoDB JSON parts under ``prefix``; (parts, items)."""
    parts = written = 0
    it = iter(items)
    while True:
        with tempfile.TemporaryFile(prefix="dataferry-import-") as tmp:
            n = 0
            with gzip.GzipFile(fileobj=tmp, mode="wb", compresslevel=1) as out:
                for _, _, item in it:  # (position, key hash, wire_json text)
                    out.write(b'{"Item":' + item + b"}\n")
                    n += 1
                    if n == PART_ITEMS:
                        break
            if n == 0:
                return parts, written
            interrupt.check()
            tmp.seek(0)
            key = f"{prefix}part-{parts:05d}.json.gz"
            try:
                s3.put_object(Bucket=bucket, Key=key, Body=tmp)  # a part: tens of MB
            except (BotoCoreError, ClientError) as e:
                raise TargetError(f"S3 s3://{bucket}/{key}: the import's part: {e}") from None
            parts += 1
            written += n
            if on_progress is not None:
                on_progress(n)
            if n < PART_ITEMS:
                return parts, written


def import_new_table(
    client: Any,
    s3: Any,
    ds: Dataset,
    bucket: str,
    prefix: str,
    items: Iterable[tuple[Any, int, bytes]],
    expected: int,
    deadline_s: float,
    on_progress: Callable[[int], None] | None = None,
) -> ImportResult:
    """Upload ``items`` to ``s3://bucket/prefix`` and create the dataset's table from
    them with ImportTable; wait for it (at most ``deadline_s``) and reconcile its counts
    against ``expected``, the validated items."""
    table = ds.target.table
    parts, uploaded = _upload_parts(s3, bucket, prefix, items, on_progress)
    if uploaded != expected:
        raise CheckFailed(
            f"DynamoDB table {table}: {uploaded} items uploaded, {expected} validated"
        )
    args = create_table_args(ds)
    args.pop("TableName")
    creation: dict[str, Any] = {"TableName": table, **args}
    try:
        started = client.import_table(
            S3BucketSource={"S3Bucket": bucket, "S3KeyPrefix": prefix},
            InputFormat="DYNAMODB_JSON",
            InputCompressionType="GZIP",
            TableCreationParameters=creation,
        )["ImportTableDescription"]
        arn = started["ImportArn"]
        log.info("%s: ImportTable %s from s3://%s/%s (%d parts)", table, arn, bucket, prefix, parts)
        try:
            client.get_waiter("import_completed").wait(
                ImportArn=arn,
                WaiterConfig={"Delay": POLL_S, "MaxAttempts": max(1, int(deadline_s / POLL_S))},
            )
        except WaiterError as e:
            desc = (e.last_response or {}).get("ImportTableDescription", {})
            status = desc.get("ImportStatus")
            if status == "IN_PROGRESS" or not status:
                raise TargetUnavailable(
                    f"DynamoDB table {table}: the import {arn} had not finished after "
                    f"{deadline_s:.0f}s; it goes on in AWS (describe-import shows it)"
                ) from None
            raise TargetError(
                f"DynamoDB table {table}: the import {arn} ended {status}: "
                f"{desc.get('FailureCode', '')} {desc.get('FailureMessage', '')}".rstrip()
            ) from None
        desc = client.describe_import(ImportArn=arn)["ImportTableDescription"]
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") == "UnknownOperationException":
            raise NotSupported(
                f"DynamoDB table {table}: this endpoint has no ImportTable; use "
                "load.method batch (the parts uploaded stay under "
                f"s3://{bucket}/{prefix})"
            ) from None
        raise translate(e, f"table {table} import") from None
    except BotoCoreError as e:
        raise translate(e, f"table {table} import") from None
    result = ImportResult(
        arn=arn,
        items=int(desc.get("ImportedItemCount", 0)),
        processed=int(desc.get("ProcessedItemCount", 0)),
        errors=int(desc.get("ErrorCount", 0)),
        parts=parts,
    )
    if result.errors or result.items != expected:
        raise CheckFailed(
            f"DynamoDB table {table}: the import {arn} imported {result.items} of "
            f"{expected} validated items ({result.errors} errors, {result.processed} "
            "processed); the table holds what it imported: delete it and load again"
        )
    return result
