"""load nosql through DynamoDB's ImportTable (moto's server, an emulator: AWS's own
import has not been run): new tables only, counts reconciled against the validated
records; an existing table falls back to BatchWriteItem and says so."""

import gzip
from typing import Any

import boto3
import pytest

from dataferry import stages
from dataferry.errors import NotSupported
from tests.conftest import PipelineFactory, unique
from tests.integration.conftest import ddb_client


def spec_for(
    pipeline: PipelineFactory, stores: dict[str, Any], table: str, method: str, **ddb: Any
) -> Any:
    return pipeline.spec(
        {
            "bought": {
                "source": {"path": "in/*.jsonl.gz"},
                "target": {"store": "dynamodb", "table": table},
                "key": {"hash": "item", "range": "customer"},
                "columns": {
                    "item": {"type": "text"},
                    "customer": {"type": "text"},
                    "price": {"type": "numeric(10,2)"},
                },
                "indexes": [{"name": "by_customer", "hash": "customer"}],
                "load": {"method": method},
                "max_rejects": 1,
            }
        },
        stores={"dynamodb": {**stores.get("dynamodb", {}), **ddb}},
    )


def lines(*records: str) -> bytes:
    return gzip.compress("".join(r + "\n" for r in records).encode())


def test_a_new_table_is_imported_and_reconciled_then_later_files_are_batched(
    pipeline: PipelineFactory, moto_stores: dict[str, Any], moto_url: str
) -> None:
    bucket = unique("imports").replace("_", "-")
    boto3.client("s3", endpoint_url=moto_url, region_name="us-west-2").create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "us-west-2"}
    )
    body = [f'{{"item": "i{n}", "customer": "c{n % 7}", "price": {n}.25}}' for n in range(2999)]
    body.append('{"item": "José 🙂", "customer": "漢字", "price": 3.5}')  # UTF-8 in the parts
    body.append('{"item": "bad", "customer": "x", "price": 1.005}')  # rejected, not imported
    pipeline.write_bytes("in/1.jsonl.gz", lines(*body))
    table = unique("bought")
    spec = spec_for(pipeline, moto_stores, table, "import", import_bucket=bucket)
    (rec,) = stages.load_nosql(spec)
    assert rec.status == "ok"
    assert (rec.counts.written, rec.counts.rejected) == (3000, 1)
    assert any(c.startswith("ImportTable ") and "3,000 imported of 3,000" in c for c in rec.checks)
    client = ddb_client(spec)
    desc = client.describe_table(TableName=table)["Table"]
    assert desc["GlobalSecondaryIndexes"][0]["IndexName"] == "by_customer"
    got = client.get_item(TableName=table, Key={"item": {"S": "i42"}, "customer": {"S": "c0"}})
    assert got["Item"]["price"] == {"N": "42.25"}
    got = client.get_item(
        TableName=table, Key={"item": {"S": "José 🙂"}, "customer": {"S": "漢字"}}
    )
    assert got["Item"]["price"] == {"N": "3.5"}
    keys = boto3.client("s3", endpoint_url=moto_url, region_name="us-west-2").list_objects_v2(
        Bucket=bucket
    )["Contents"]
    assert all(k["Key"].startswith(f"dataferry/imports/{table}/{rec.run_id}/") for k in keys)

    pipeline.write_bytes("in/2.jsonl.gz", lines('{"item": "new", "customer": "c", "price": 1}'))
    (again,) = stages.load_nosql(spec)
    assert again.counts.written == 1
    assert "makes new tables only" in (again.note or "")


def test_auto_imports_large_new_tables_only_when_a_bucket_is_set(
    pipeline: PipelineFactory, moto_stores: dict[str, Any], moto_url: str
) -> None:
    bucket = unique("imports").replace("_", "-")
    boto3.client("s3", endpoint_url=moto_url, region_name="us-west-2").create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "us-west-2"}
    )
    pipeline.write_bytes("in/1.jsonl.gz", lines('{"item": "a", "customer": "b", "price": 2}'))
    small = spec_for(pipeline, moto_stores, unique("t"), "auto", import_bucket=bucket)
    (rec,) = stages.load_nosql(small)
    assert not any(c.startswith("ImportTable") for c in rec.checks)  # under 1 GiB: batch
    big = spec_for(
        pipeline, moto_stores, unique("t"), "auto", import_bucket=bucket, import_min_bytes=0
    )
    (rec,) = stages.load_nosql(big)
    assert any(c.startswith("ImportTable") for c in rec.checks)


def test_import_on_an_endpoint_without_importtable_is_not_supported(
    pipeline: PipelineFactory,
) -> None:
    """dynalite (the embedded default) has no ImportTable: an explicit import says so
    before anything is written (the embedded engine is known; no request is made)."""
    pipeline.write_bytes("in/1.jsonl.gz", lines('{"item": "a", "customer": "b", "price": 2}'))
    table = unique("t")
    spec = spec_for(pipeline, {}, table, "import", import_bucket="anything")
    with pytest.raises(NotSupported, match=r"embedded DynamoDB \(dynalite\) has no ImportTable"):
        stages.load_nosql(spec)
    assert ddb_client(spec).list_tables()["TableNames"].count(table) == 0
