"""Read a table through ExportTableToPointInTime: the table is written to S3 by DynamoDB
itself (no read capacity used, a consistent point in time), and the export's gzipped
JSON Lines files are read back into typed Arrow batches.

DynamoDB writes the data files under ``<prefix>/AWSDynamoDB/<export id>/data/`` next to
manifest files; each export gets a prefix of its own here, so listing ``data/`` under it
finds exactly its files (moto, the local stand-in, writes no manifests). The export's
ItemCount is the count reconciliation checks the rows read against.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
from botocore.exceptions import BotoCoreError, ClientError, WaiterError

from ...errors import TargetError, TargetUnavailable
from ...spec import Dataset
from .connection import translate
from .scan import BATCH_ITEMS, _to_batch, columns

__all__ = ["ExportedTable", "export_table"]

POLL_S = 2.0  # DescribeExport between waits (botocore's export_completed waiter)


class ExportedTable:
    """A finished export: how many items DynamoDB wrote, and where."""

    def __init__(self, s3: Any, ds: Dataset, bucket: str, prefix: str, keys: list[str], items: int):
        self.s3 = s3
        self.ds = ds
        self.bucket = bucket
        self.prefix = prefix
        self.keys = keys
        self.item_count = items

    def location(self) -> tuple[str, list[str]]:
        """The export as a stage would read it: ``s3://bucket/prefix/`` and the folders
        under it that hold data files (AWS writes one, AWSDynamoDB/<export id>/data/)."""
        start = len(self.prefix) + 1
        folders = sorted({k[start:].rsplit("/", 1)[0] + "/" for k in self.keys})
        return f"s3://{self.bucket}/{self.prefix}/", folders

    def batches(self) -> Iterator[pa.RecordBatch]:
        cols = columns(self.ds)
        items: list[dict[str, Any]] = []
        for key in self.keys:
            try:
                body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"]
            except (BotoCoreError, ClientError) as e:
                raise TargetUnavailable(f"S3 s3://{self.bucket}/{key}: {e}") from None
            with gzip.GzipFile(fileobj=body) as lines:
                for line in lines:
                    if line.strip():
                        items.append(json.loads(line)["Item"])
                    if len(items) >= BATCH_ITEMS:
                        yield _to_batch(self.ds, cols, items)
                        items = []
        if items:
            yield _to_batch(self.ds, cols, items)


def export_table(
    client: Any, s3: Any, ds: Dataset, bucket: str, prefix: str, deadline_s: float
) -> ExportedTable:
    """Export the dataset's table to ``s3://bucket/prefix`` and wait for it to finish."""
    table = ds.target.table
    try:
        arn = client.describe_table(TableName=table)["Table"]["TableArn"]
        backups = client.describe_continuous_backups(TableName=table)
        pitr = backups["ContinuousBackupsDescription"].get("PointInTimeRecoveryDescription", {})
        if pitr.get("PointInTimeRecoveryStatus") != "ENABLED":
            raise TargetError(
                f"DynamoDB table {table}: etl.method export needs point-in-time recovery "
                "(set point_in_time_recovery: true on the dataset, or use etl.method: scan)"
            )
        started = client.export_table_to_point_in_time(
            TableArn=arn, S3Bucket=bucket, S3Prefix=prefix, ExportFormat="DYNAMODB_JSON"
        )["ExportDescription"]
        export_arn = started["ExportArn"]
        if started["ExportStatus"] == "IN_PROGRESS":
            try:
                client.get_waiter("export_completed").wait(
                    ExportArn=export_arn,
                    WaiterConfig={"Delay": POLL_S, "MaxAttempts": max(1, int(deadline_s / POLL_S))},
                )
            except WaiterError as e:
                failed = (e.last_response or {}).get("ExportDescription", {})
                if failed.get("ExportStatus") in ("IN_PROGRESS", None):
                    raise TargetUnavailable(
                        f"DynamoDB table {table}: the export to s3://{bucket}/{prefix} had not "
                        f"finished after {deadline_s:.0f}s ({export_arn})"
                    ) from None
        desc = client.describe_export(ExportArn=export_arn)["ExportDescription"]
        if desc["ExportStatus"] != "COMPLETED":
            raise TargetError(
                f"DynamoDB table {table}: the export failed: "
                f"{desc.get('FailureCode', '')} {desc.get('FailureMessage', '')}".rstrip()
            )
        keys = []
        # DynamoDB writes under <S3Prefix>/AWSDynamoDB/<export id>/data/
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/")
        for page in pages:
            keys += [
                o["Key"]
                for o in page.get("Contents", [])
                if "/AWSDynamoDB/" in o["Key"] and "/data/" in o["Key"] and o["Key"].endswith(".gz")
            ]
    except (BotoCoreError, ClientError) as e:
        raise translate(e, f"table {table} export") from None
    return ExportedTable(s3, ds, bucket, prefix, sorted(keys), int(desc.get("ItemCount", 0)))
