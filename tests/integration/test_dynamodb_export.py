"""etl.method export: ExportTableToPointInTime to S3, the files read back. moto's server
serves both the export and S3; dynalite has no exports, so these run on moto only."""

import contextlib
from decimal import Decimal
from typing import Any

import boto3
import duckdb
import pytest

from dataferry import stages
from dataferry.connections import resolve_dynamodb
from dataferry.errors import NotSupported, SpecError, TargetError
from dataferry.progress import Display, StageProgress, describe
from tests.conftest import PipelineFactory, unique
from tests.integration.test_load_nosql import BOUGHT, dataset


def make_spec(
    pipeline: PipelineFactory, moto: dict[str, Any], table: str, pitr: bool = True, **etl: Any
) -> Any:
    pipeline.write("bought.json", BOUGHT)
    ds = dataset(table) | {"point_in_time_recovery": pitr, "etl": {"method": "export", **etl}}
    dynamodb = {**moto["dynamodb"], "export_bucket": "dataferry-exports"}
    return pipeline.spec({"bought": ds}, stores={"dynamodb": dynamodb})


def s3(spec: Any) -> Any:
    target = resolve_dynamodb(spec)
    client = boto3.client("s3", **target.client_kwargs())
    with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
        client.create_bucket(
            Bucket="dataferry-exports",
            CreateBucketConfiguration={"LocationConstraint": target.region},
        )
    return client


def test_an_exported_table_lands_like_a_scanned_one(
    pipeline: PipelineFactory, moto_stores: dict[str, Any]
) -> None:
    table = unique("bought")
    spec = make_spec(pipeline, moto_stores, table)
    bucket = s3(spec)
    stages.load_nosql(spec)
    display = Display()
    ctx = stages.for_stage(stages.RunContext(progress=StageProgress(display)), "etl")
    (rec,) = stages.etl(spec, None, ctx)
    assert (rec.counts.read, rec.counts.inserted) == (3, 3)
    # the export's own item count is the progress's total
    assert describe(display._lines[("etl", "bought")]).startswith("[etl] bought: 3 / 3 rows (100%)")
    assert rec.note is not None
    assert rec.note.startswith(f"export: s3://dataferry-exports/dataferry/exports/{table}/")
    listed = bucket.list_objects_v2(
        Bucket="dataferry-exports", Prefix=f"dataferry/exports/{table}/"
    )
    assert any("/data/" in o["Key"] for o in listed["Contents"])
    with duckdb.connect(str(spec.duckdb_path), read_only=True) as conn:
        rows = conn.execute(
            f'SELECT item, price, _attributes FROM raw_dynamodb."{table}" ORDER BY item'
        ).fetchall()
    assert [r[:2] for r in rows] == [
        ("Monitor", Decimal("199.99")),
        ("Mouse", Decimal("12.23")),
        ("USB", Decimal("10.20")),
    ]
    assert rows[2][2] == '{"meta":{"tags":["a","b"],"n":1}}'
    (again,) = stages.etl(spec)
    assert (again.counts.read, again.counts.written) == (3, 0)


def test_export_needs_point_in_time_recovery_and_a_bucket(
    pipeline: PipelineFactory, moto_stores: dict[str, Any]
) -> None:
    table = unique("bought")
    spec = make_spec(pipeline, moto_stores, table, pitr=False)
    s3(spec)
    stages.load_nosql(spec)
    with pytest.raises(TargetError, match="needs point-in-time recovery"):
        stages.etl(spec)
    no_bucket = pipeline.spec(
        {"bought": dataset(table) | {"etl": {"method": "export"}}}, stores=moto_stores
    )
    with pytest.raises(SpecError, match=r"export needs stores\.dynamodb\.export_bucket"):
        stages.etl(no_bucket)


def test_the_embedded_dynalite_says_it_has_no_exports(pipeline: PipelineFactory) -> None:
    table = unique("bought")
    pipeline.write("bought.json", BOUGHT)
    ds = dataset(table) | {"etl": {"method": "export"}}
    spec = pipeline.spec({"bought": ds}, stores={"dynamodb": {"export_bucket": "b"}})
    stages.load_nosql(spec)
    with pytest.raises(NotSupported, match=r"dynalite\) has no table exports"):
        stages.etl(spec)
    auto = pipeline.spec(
        {"bought": dataset(table) | {"etl": {"method": "auto"}}},
        stores={"dynamodb": {"export_bucket": "b", "export_min_bytes": 0}},
    )
    (rec,) = stages.etl(auto)  # auto scans where there are no exports
    assert (rec.counts.read, rec.note) == (3, None)
