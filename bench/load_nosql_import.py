"""Benchmark: a new DynamoDB table through ImportTable against BatchWriteItem, on the
embedded stack's moto server (the engine with ImportTable), on the same file.

    python bench/load_nosql_import.py                 # 1,000,000 items
    python bench/load_nosql_import.py --items 200000

Cases, each into a new table with the same key schema:

- boto3's Table.batch_writer() (the usual way; 25 a request, unprocessed items re-sent);
- dataferry load nosql, load.method batch (validation pass, then BatchWriteItem from
  worker threads);
- dataferry load nosql, load.method import (validation pass, gzipped DynamoDB JSON to
  the server's S3, ImportTable, counts reconciled).

Wall time of the whole command, and the client's CPU (user + system, GNU time): the
import moves the writing to the service, which is what it is for. The server's own time
is in the wall time (moto writes items one by one; AWS imports in parallel).
"""

from __future__ import annotations

import argparse
import sys
import textwrap
import time
from pathlib import Path

import boto3

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import WORK, Result, run_timed
from load_nosql import BATCH_WRITER, ENV, make_file

from dataferry.stack import EmbeddedStack


def spec(data: Path, endpoint: str, table: str, method: str, bucket: str) -> Path:
    out = WORK / f"import-{table}.yaml"
    out.write_text(
        textwrap.dedent(f"""
        version: 1
        stack: {{dir: {WORK / "import-stack"}}}
        rejects_dir: {WORK / "rejects"}
        stores:
          dynamodb: {{endpoint: "{endpoint}", region: us-west-2, import_bucket: {bucket}}}
        datasets:
          bought:
            source: {{path: {data}}}
            target: {{store: dynamodb, table: {table}}}
            key: {{hash: item, range: customer}}
            load: {{method: {method}}}
    """)
    )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--items", type=int, default=1_000_000)
    args = ap.parse_args()
    WORK.mkdir(exist_ok=True)
    data = make_file(args.items)
    stack = EmbeddedStack(WORK / "import-stack", dynamodb="moto")
    endpoint = stack.dynamodb_url()
    env = {**ENV, "AWS_ENDPOINT_URL_S3": endpoint}
    bucket = "bench-imports"
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-west-2",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
    )
    if bucket not in [b["Name"] for b in s3.list_buckets().get("Buckets", [])]:
        s3.create_bucket(
            Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "us-west-2"}
        )
    tag = int(time.time())
    results: list[Result] = [
        run_timed(
            [sys.executable, "-c", BATCH_WRITER, endpoint, f"bw_{tag}", str(data), str(args.items)],
            "boto3 batch_writer",
            env=env,
        )
    ]
    for method in ("batch", "import"):
        path = spec(data, endpoint, f"df_{method}_{tag}", method, bucket)
        argv = [sys.executable, "-m", "dataferry", "load", "nosql", "-q", "-c", str(path)]
        results.append(run_timed(argv, f"dataferry load nosql, load.method {method}", env=env))
    ddb = boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="us-west-2",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
    )
    for name in ddb.list_tables()["TableNames"]:  # not kept in the stack's snapshot
        ddb.delete_table(TableName=name)
    stack.down()
    base = results[0]
    print(f"\n{args.items:,} items into a new table on moto's server")
    print(f"{'method':<44} {'seconds':>8} {'client CPU s':>13} {'speed':>8} {'CPU':>8}")
    for r in results:
        cpu = r.cpu_seconds or float("nan")
        print(
            f"{r.name:<44} {r.seconds:>8.2f} {cpu:>13.2f} {base.seconds / r.seconds:>7.2f}x "
            f"{cpu / (base.cpu_seconds or float('nan')):>7.2f}x"
        )


if __name__ == "__main__":
    main()
