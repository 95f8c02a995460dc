"""Put this example's data/ folder into the landing bucket, on the S3 the spec reads
from: the embedded stack's (started if it is not running) unless stores.s3 or
AWS_ENDPOINT_URL_S3 names another.

    python examples/landing/upload.py

On AWS, the usual tool does the same: ``aws s3 cp --recursive examples/landing/data
s3://landing/``.
"""

from __future__ import annotations

from pathlib import Path

import boto3

from dataferry.connections import resolve_s3
from dataferry.spec import load_spec

HERE = Path(__file__).resolve().parent
BUCKET = "landing"


def upload(spec_path: Path = HERE / "dataferry.yaml") -> list[str]:
    """Upload data/ to s3://landing/ where the spec reads it; the keys put."""
    target = resolve_s3(load_spec(spec_path))
    s3 = boto3.client("s3", **target.client_kwargs())
    if BUCKET not in [b["Name"] for b in s3.list_buckets().get("Buckets", [])]:
        # S3 takes no location constraint for its first region
        where = {"LocationConstraint": target.region}
        extra = {} if target.region == "us-east-1" else {"CreateBucketConfiguration": where}
        s3.create_bucket(Bucket=BUCKET, **extra)
    keys = []
    data = spec_path.parent / "data"
    for path in sorted(p for p in data.rglob("*") if p.is_file()):
        key = path.relative_to(data).as_posix()
        s3.upload_file(str(path), BUCKET, key)
        keys.append(key)
    return keys


if __name__ == "__main__":
    for key in upload():
        print(f"s3://{BUCKET}/{key}")
