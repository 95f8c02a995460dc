"""Sources in S3 (moto's server, an emulator): globs over a bucket, objects skipped by
their ETag without being read, read ahead while one is parsed, and S3's own errors
named by object."""

import gzip
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import pytest

from dataferry import stages
from dataferry.errors import InputError
from tests.conftest import PipelineFactory, unique
from tests.integration.conftest import ddb_client, pg_conn

HEADER = "order_id,customer,amount\n"


@pytest.fixture
def s3(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "dataferry-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "dataferry-test")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    return boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1")


def orders(schema: str, path: Any) -> dict[str, Any]:
    return {
        "orders": {
            "source": {"path": path},
            "target": {"store": "postgres", "schema": schema, "table": "orders"},
            "columns": {
                "order_id": {"type": "integer", "nullable": False},
                "customer": {"type": "text"},
                "amount": {"type": "numeric(10,2)"},
            },
            "primary_key": ["order_id"],
        }
    }


def table(spec: Any, schema: str) -> list[tuple[Any, ...]]:
    with pg_conn(spec) as conn:
        return conn.execute(f'SELECT * FROM "{schema}".orders ORDER BY 1').fetchall()


def test_a_glob_over_a_bucket_loads_each_object_once_and_skips_by_etag(
    pipeline: PipelineFactory, schema: str, s3: Any
) -> None:
    bucket = unique("landing").replace("_", "-")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="orders/2026/11/29.csv", Body=HEADER + "1,ana,1.00\n")
    s3.put_object(
        Bucket=bucket,
        Key="orders/2026/11/30.csv.gz",
        Body=gzip.compress((HEADER + "2,bo,2.00\n3,cy,3.00\n").encode()),
    )
    s3.put_object(Bucket=bucket, Key="orders/README.md", Body="not data")
    s3.put_object(Bucket=bucket, Key="other/1.csv", Body=HEADER + "9,x,9.00\n")
    spec = pipeline.spec(orders(schema, f"s3://{bucket}/orders/**/*.csv*"))
    (rec,) = stages.load_sql(spec)
    assert [f.source for f in rec.files] == [
        f"s3://{bucket}/orders/2026/11/29.csv",
        f"s3://{bucket}/orders/2026/11/30.csv.gz",
    ]
    assert rec.counts.inserted == 3
    assert all(f.file_sha256 and f.file_sha256.startswith("etag:") for f in rec.files)
    assert [r[0] for r in table(spec, schema)] == [1, 2, 3]

    # Unchanged objects are skipped without a GET: the ETag in the listing says so.
    (again,) = stages.load_sql(spec)
    assert again.status == "skipped"
    s3.put_object(Bucket=bucket, Key="orders/2026/12/01.csv", Body=HEADER + "4,di,4.00\n")
    (third,) = stages.load_sql(spec)
    assert [f.status for f in third.files] == ["skipped", "skipped", "loaded"]
    assert third.counts.inserted == 1


def test_a_missing_object_and_an_empty_pattern_name_the_url(
    pipeline: PipelineFactory, schema: str, s3: Any
) -> None:
    bucket = unique("landing").replace("_", "-")
    s3.create_bucket(Bucket=bucket)
    spec = pipeline.spec(orders(schema, f"s3://{bucket}/nothing/here.csv"))
    with pytest.raises(InputError, match=rf"s3://{bucket}/nothing/here\.csv: no such object"):
        stages.load_sql(spec)
    spec = pipeline.spec(orders(schema, f"s3://{bucket}/nothing/*.csv"))
    with pytest.raises(InputError, match="no object matches this pattern"):
        stages.load_sql(spec)
    spec = pipeline.spec(orders(schema, f"s3://{unique('nobucket').replace('_', '-')}/a/*.csv"))
    with pytest.raises(InputError, match="no such bucket"):
        stages.load_sql(spec)


def test_a_prefix_of_10000_objects_is_listed_in_pages_and_loaded(
    pipeline: PipelineFactory, schema: str, s3: Any
) -> None:
    bucket = unique("many").replace("_", "-")
    s3.create_bucket(Bucket=bucket)

    def put(n: int) -> None:
        key = f"daily/{n:05d}.csv" if n % 100 == 0 else f"daily/{n:05d}.txt"
        s3.put_object(Bucket=bucket, Key=key, Body=f"{HEADER}{n},c{n},1.00\n")

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, range(10_000)))
    spec = pipeline.spec(orders(schema, f"s3://{bucket}/daily/*.csv"))
    (rec,) = stages.load_sql(spec)
    assert len(rec.files) == 100
    assert rec.counts.inserted == 100
    assert table(spec, schema)[-1][0] == 9900


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def moto_with_iam(tmp_path: Any) -> Iterator[str]:
    """A moto server of its own that checks every request against IAM (its
    INITIAL_NO_AUTH_ACTION_COUNT lets the set-up requests through first)."""
    port = _free_port()
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "5"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_a_denied_bucket_is_named_with_the_permission_it_needs(
    pipeline: PipelineFactory, schema: str, moto_with_iam: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = {
        "endpoint_url": moto_with_iam,
        "region_name": "us-east-1",
        "aws_access_key_id": "a",
        "aws_secret_access_key": "b",
    }
    iam = boto3.client("iam", **admin)
    iam.create_user(UserName="reader")  # 1
    key = iam.create_access_key(UserName="reader")["AccessKey"]  # 2
    iam.put_user_policy(  # 3
        UserName="reader",
        PolicyName="only-other",
        PolicyDocument='{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", '
        '"Action": "s3:*", "Resource": ["arn:aws:s3:::other", "arn:aws:s3:::other/*"]}]}',
    )
    s3 = boto3.client("s3", **admin)
    s3.create_bucket(Bucket="secret")  # 4
    s3.put_object(Bucket="secret", Key="a.csv", Body=HEADER + "1,a,1.00\n")  # 5
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_with_iam)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    for path in ("s3://secret/*.csv", "s3://secret/a.csv"):
        spec = pipeline.spec(orders(schema, path))
        with pytest.raises(InputError, match="access denied"):
            stages.load_sql(spec)


def test_load_nosql_reads_json_lines_from_s3(
    pipeline: PipelineFactory, s3: Any, moto_stores: dict[str, Any]
) -> None:
    bucket = unique("json").replace("_", "-")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="a/1.jsonl", Body=b'{"item": "a", "n": 1}\n')
    s3.put_object(Bucket=bucket, Key="a/2.jsonl.gz", Body=gzip.compress(b'{"item": "b", "n": 2}\n'))
    name = unique("items")
    spec = pipeline.spec(
        {
            "items": {
                "source": {"path": f"s3://{bucket}/a/*.jsonl*"},
                "target": {"store": "dynamodb", "table": name},
                "key": {"hash": "item"},
            }
        },
        stores=moto_stores,
    )
    (rec,) = stages.load_nosql(spec)
    assert rec.counts.written == 2
    items = ddb_client(spec).scan(TableName=name)["Items"]
    assert sorted(i["item"]["S"] for i in items) == ["a", "b"]


def test_the_embedded_s3_serves_the_landing_example_and_keeps_its_objects(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No S3 endpoint anywhere: the example's bucket is on the embedded stack's S3,
    uploaded by its upload.py; `stack down` and up keep the objects, so the next run
    skips every file by its ETag."""
    import shutil

    from dataferry.spec import load_spec
    from dataferry.stack import EmbeddedStack
    from tests.integration.conftest import pg_conn as connect

    root = tmp_path / "landing"
    shutil.copytree(Path(__file__).resolve().parents[2] / "examples" / "landing", root)
    monkeypatch.syspath_prepend(str(root))
    from upload import upload  # the example's own helper

    stack = EmbeddedStack(root / ".dataferry")
    try:
        assert upload(root / "dataferry.yaml")[0] == "events/2026-11-30.jsonl.gz"
        spec = load_spec(root / "dataferry.yaml")
        result = stages.run(spec)
        orders, events = result["load sql"][0], result["load nosql"][0]
        assert [f.source for f in orders.files] == [
            f"s3://landing/orders/2026/11/{d}.csv.gz" for d in (28, 29, 30)
        ]
        assert (orders.counts.inserted, events.counts.written) == (150, 120)
        with connect(spec) as conn:
            assert conn.execute("SELECT count(*) FROM landing_orders").fetchone() == (150,)
        s3_status = next(s for s in stack.status() if s.service == "s3")
        assert s3_status.running
        assert s3_status.url
        stack.down()
        assert not next(s for s in stack.status() if s.service == "s3").running
        again = stages.load_sql(load_spec(root / "dataferry.yaml"))
        assert again[0].status == "skipped"  # the objects came back, with their ETags
    finally:
        stack.down()


def test_plan_does_not_start_the_embedded_s3(
    pipeline: PipelineFactory, schema: str, tmp_path: Any
) -> None:
    from dataferry.plan import plan
    from dataferry.stack import EmbeddedStack
    from dataferry.stages import RunContext

    stack_dir = tmp_path / "own-stack"  # PostgreSQL given; S3 would be this stack's
    assert pipeline.stack_dir is not None
    url = EmbeddedStack(pipeline.stack_dir).postgres_url()
    spec = pipeline.spec(
        orders(schema, "s3://landing/orders/*.csv"),
        stack={"dir": str(stack_dir)},
        stores={"postgres": {"url": url}},
    )
    items = plan(spec, None, RunContext())
    assert items[0].action == "fail"
    assert "the embedded S3 is not running" in items[0].note
    assert not next(s for s in EmbeddedStack(stack_dir).status() if s.service == "s3").running


def test_doctor_lists_each_s3_source_with_the_pipeline_s_credentials(
    pipeline: PipelineFactory, schema: str, s3: Any
) -> None:
    from dataferry.doctor import doctor

    bucket = unique("doc").replace("_", "-")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="in/a.csv", Body=HEADER + "1,a,1.00\n")
    missing = unique("gone").replace("_", "-")
    spec = pipeline.spec(
        {
            **orders(schema, [f"s3://{bucket}/in/*.csv", f"s3://{missing}/x/*.csv"]),
        }
    )
    found = {f.check: f for f in doctor(spec, 5.0) if f.target == "s3"}
    assert found[f"s3://{bucket}/in/*.csv"].ok is True
    assert "1 object(s)" in found[f"s3://{bucket}/in/*.csv"].detail
    gone = found[f"s3://{missing}/x/*.csv"]
    assert gone.ok is False
    assert "no such bucket" in gone.detail
    assert "s3:ListBucket" in gone.fix
