"""Benchmark: many files and one big gzip file -> PostgreSQL, dataferry against Sling,
dlt's filesystem source and psql, on the same files, in one run.

    python bench/sources.py                          # 1,000 files x 1,000 rows; 10M-row gzip
    python bench/sources.py --gzip-rows 90000000     # the 1 GB gzip CSV of issue 15
    python bench/sources.py --files 200 --gzip-rows 1000000 --no-peers

Cases, each into a fresh schema of one scratch PostgreSQL:

- many files: a psql \\copy per file (one psql session; the usual shell loop), Sling
  (`--src-stream file://<folder>/`, full-refresh), dlt (`filesystem(file_glob=...) |
  read_csv()`, its documented source), dataferry's first load of the glob (validation,
  staging, key checks, merge, one ledger entry per file), dataferry again with one new
  file (the other 1,000 skipped by their ledger entries), and unchanged;
- one gzip file: `psql \\copy ... FROM PROGRAM 'gzip -dc ...'`, Sling, dlt and
  dataferry (Arrow's gzip stream);
- the same files from the embedded stack's S3 (moto's server on loopback; `--no-s3`
  skips it): Sling (an s3 connection with the endpoint), dlt (`filesystem` on
  `s3://...` with the endpoint, s3fs underneath) and dataferry (`s3://` sources,
  fetched ahead).

Peers make tables of their own (no keys); dataferry's and psql's tables have a primary
key. Times are wall-clock seconds of the whole command, start-up included; peak RSS from
GNU time.
"""

from __future__ import annotations

import argparse
import atexit
import gzip
import json
import random
import sys
import textwrap
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import WORK, Result, peer_python, postgres_with_tcp, print_table, run_timed
from load_sql import drop_made_schemas, fresh_schema, psql

from dataferry.stack import EmbeddedStack

HEADER = "order_id,customer,amount,ordered_on\n"
DDL = (
    "CREATE TABLE {s}.orders (order_id bigint PRIMARY KEY, customer text NOT NULL, "
    "amount numeric(10,2) NOT NULL, ordered_on date NOT NULL);"
)
SPEC = """
version: 1
datasets:
  orders:
    source: {{path: "{path}"}}
    target: {{store: postgres, schema: {schema}, table: orders}}
    columns:
      order_id: {{type: bigint, nullable: false}}
      customer: {{type: text, nullable: false}}
      amount: {{type: "numeric(10,2)", nullable: false}}
      ordered_on: {{type: date, nullable: false}}
    primary_key: [order_id]
stack: {{dir: {stack}}}
rejects_dir: {rejects}
"""


def rows(start: int, n: int, rng: random.Random) -> str:
    return "".join(
        f"{i},customer_{rng.randrange(100_000)},{rng.randrange(100, 99_999) / 100:.2f},"
        f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}\n"
        for i in range(start, start + n)
    )


def make_many(folder: Path, files: int, per_file: int) -> None:
    if (folder / ".done").exists():
        return
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(15)
    for f in range(files):
        (folder / f"orders_{f:05d}.csv").write_text(HEADER + rows(f * per_file, per_file, rng))
    (folder / ".done").write_text("")


def make_gzip(path: Path, total: int) -> None:
    if path.exists():
        return
    rng = random.Random(16)
    tmp = path.with_suffix(".part")
    with gzip.open(tmp, "wt", compresslevel=6) as out:
        out.write(HEADER)
        for start in range(0, total, 100_000):
            out.write(rows(start, min(100_000, total - start), rng))
    tmp.rename(path)


def spec(schema: str, path: str, stack: Path) -> Path:
    out = WORK / f"sources-{schema}.yaml"
    text = SPEC.format(path=path, schema=schema, stack=stack, rejects=WORK / "rejects")
    out.write_text(text)
    return out


def dataferry(spec_path: Path, name: str, *args: str) -> Result:
    argv = [sys.executable, "-m", "dataferry", "load", "sql", "-q", "-c", str(spec_path), *args]
    return run_timed(argv, name)


def sling(py: Path, dsn: str, stream: str, schema: str, name: str) -> Result:
    binary = next((py.parent.parent / "lib").glob("python*/site-packages/sling_linux_amd64/bin/*"))
    return run_timed(
        [
            str(binary),
            "run",
            "--src-stream",
            stream,
            "--tgt-conn",
            "PG",
            "--tgt-object",
            f"{schema}.orders",
            "--mode",
            "full-refresh",
        ],
        name,
        env={"PG": dsn, "SLING_DISABLE_TELEMETRY": "true"},
    )


def dlt(py: Path, dsn: str, folder: Path, glob: str, schema: str, name: str) -> Result:
    script = textwrap.dedent(f"""
        import dlt
        from dlt.sources.filesystem import filesystem, read_csv
        files = filesystem(bucket_url={folder.as_uri()!r}, file_glob={glob!r})
        p = dlt.pipeline(pipeline_name="bench_sources", destination=dlt.destinations.postgres(
            credentials={dsn!r}), dataset_name={schema!r}, pipelines_dir={str(WORK / "dlt")!r})
        p.run((files | read_csv()).with_name("orders"))
    """)
    return run_timed([str(py), "-c", script], name, env={"RUNTIME__LOG_LEVEL": "WARNING"})


def count(url: str, table: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        return int(row[0]) if row else 0


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--files", type=int, default=1_000)
    ap.add_argument("--rows-per-file", type=int, default=1_000)
    ap.add_argument("--gzip-rows", type=int, default=10_000_000)
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--no-dlt", action="store_true", help="skip dlt (hours at 1 GB)")
    ap.add_argument("--no-s3", action="store_true", help="skip the cases from S3")
    args = ap.parse_args()

    WORK.mkdir(exist_ok=True)
    many = WORK / f"sources-many-{args.files}x{args.rows_per_file}"
    make_many(many, args.files, args.rows_per_file)
    big = WORK / f"sources-orders-{args.gzip_rows}.csv.gz"
    print(f"files ready in {WORK}; generating the gzip file if missing ...", file=sys.stderr)
    make_gzip(big, args.gzip_rows)
    stack_dir = WORK / "stack"
    stack = EmbeddedStack(stack_dir)
    stack.postgres_url()
    url, tcp_url = postgres_with_tcp(stack.postgres_dir)
    atexit.register(drop_made_schemas, url)  # the server stays up after this benchmark
    total = args.files * args.rows_per_file
    sling_py = None if args.no_peers else peer_python("sling", ["sling", "sling-linux-amd64"])
    dlt_py = (
        None if args.no_peers or args.no_dlt else peer_python("dlt-fs", ["dlt[postgres]", "pandas"])
    )

    # --- many files
    many_results: list[Result] = []
    fresh_schema(url, "many_psql")
    psql(url, DDL.format(s="many_psql"), "ddl")
    script = "".join(
        f"\\copy many_psql.orders FROM '{f}' CSV HEADER\n" for f in sorted(many.glob("*.csv"))
    )
    many_results.append(psql(url, script, "psql \\copy per file (keyed table)"))
    if sling_py:
        fresh_schema(url, "many_sling")
        many_results.append(
            sling(sling_py, tcp_url, f"file://{many}/", "many_sling", "Sling, the folder")
        )
    if dlt_py:
        fresh_schema(url, "many_dlt")
        many_results.append(
            dlt(dlt_py, tcp_url, many, "*.csv", "many_dlt", "dlt filesystem | read_csv")
        )
    fresh_schema(url, "many_df")
    many_spec = spec("many_df", f"{many}/*.csv", stack_dir)
    many_results.append(dataferry(many_spec, "dataferry, first load of the glob", "--force"))
    assert count(url, "many_df.orders") == total
    extra = many / "orders_zz_new.csv"
    extra.write_text(HEADER + rows(total, args.rows_per_file, random.Random(1)))
    try:
        many_results.append(dataferry(many_spec, "dataferry, one new file (the rest skipped)"))
        many_results.append(dataferry(many_spec, "dataferry, nothing new (all skipped)"))
    finally:
        extra.unlink()
    print_table(
        many_results,
        "psql \\copy per file (keyed table)",
        f"{args.files:,} files x {args.rows_per_file:,} rows",
    )

    # --- one gzip file
    big_results: list[Result] = []
    fresh_schema(url, "gz_psql")
    psql(url, DDL.format(s="gz_psql"), "ddl")
    big_results.append(
        psql(
            url,
            f"\\copy gz_psql.orders FROM PROGRAM 'gzip -dc {big}' CSV HEADER",
            "psql \\copy FROM PROGRAM gzip -dc (keyed table)",
        )
    )
    if sling_py:
        fresh_schema(url, "gz_sling")
        big_results.append(sling(sling_py, tcp_url, f"file://{big}", "gz_sling", "Sling"))
    if dlt_py:
        fresh_schema(url, "gz_dlt")
        big_results.append(
            dlt(dlt_py, tcp_url, big.parent, big.name, "gz_dlt", "dlt filesystem | read_csv")
        )
    fresh_schema(url, "gz_df")
    big_results.append(
        dataferry(spec("gz_df", str(big), stack_dir), "dataferry, first load", "--force")
    )
    assert count(url, "gz_df.orders") == args.gzip_rows
    print_table(
        big_results,
        "psql \\copy FROM PROGRAM gzip -dc (keyed table)",
        f"one gzip CSV: {args.gzip_rows:,} rows, {big.stat().st_size / 1e6:.0f} MB compressed",
    )
    if not args.no_s3:
        from_s3(stack, url, tcp_url, many, big, total, args, sling_py)
    stack.down()


def from_s3(
    stack: EmbeddedStack,
    url: str,
    tcp_url: str,
    many: Path,
    big: Path,
    total: int,
    args: argparse.Namespace,
    sling_py: Path | None,
) -> None:
    """The same loads with the files in the embedded stack's S3."""
    import boto3

    endpoint = stack.s3_url()
    creds = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench"}
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **creds)
    bucket = "bench-sources"
    if bucket not in [b["Name"] for b in s3.list_buckets().get("Buckets", [])]:
        s3.create_bucket(Bucket=bucket)
        print("uploading the files to the embedded S3 ...", file=sys.stderr)
        for f in sorted(many.glob("*.csv")):
            s3.upload_file(str(f), bucket, f"many/{f.name}")
        s3.upload_file(str(big), bucket, f"big/{big.name}")
    dlt_py = (
        None
        if args.no_peers or args.no_dlt
        else peer_python("dlt-s3", ["dlt[postgres,s3]", "pandas"])
    )
    conn = {
        "type": "s3",
        "bucket": bucket,
        "access_key_id": "bench",
        "secret_access_key": "bench",
        "endpoint": endpoint,
        "url_style": "path",
    }
    env = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}
    for label, key, glob in (("many files", "many/", "*.csv"), ("one gzip CSV", "big/", big.name)):
        results: list[Result] = []
        schema = "s3_" + key.strip("/")
        if sling_py:
            fresh_schema(url, f"{schema}_sling")
            binary = next(
                (sling_py.parent.parent / "lib").glob(
                    "python*/site-packages/sling_linux_amd64/bin/*"
                )
            )
            results.append(
                run_timed(
                    [
                        str(binary),
                        "run",
                        "--src-conn",
                        "S3BENCH",
                        "--src-stream",
                        f"s3://{bucket}/{key}",
                        "--tgt-conn",
                        "PG",
                        "--tgt-object",
                        f"{schema}_sling.orders",
                        "--mode",
                        "full-refresh",
                    ],
                    "Sling, s3 connection",
                    env={
                        "PG": tcp_url,
                        "S3BENCH": json.dumps(conn),
                        "SLING_DISABLE_TELEMETRY": "true",
                    },
                )
            )
        if dlt_py:
            fresh_schema(url, f"{schema}_dlt")
            script = textwrap.dedent(f"""
                import dlt
                from dlt.sources.filesystem import filesystem, read_csv
                files = filesystem(bucket_url={f"s3://{bucket}/{key}"!r}, file_glob={glob!r},
                    credentials={{"aws_access_key_id": "bench", "aws_secret_access_key": "bench",
                                  "endpoint_url": {endpoint!r}}})
                p = dlt.pipeline(pipeline_name="bench_s3", destination=dlt.destinations.postgres(
                    credentials={tcp_url!r}), dataset_name={schema + "_dlt"!r},
                    pipelines_dir={str(WORK / "dlt")!r})
                p.run((files | read_csv()).with_name("orders"))
            """)
            results.append(
                run_timed(
                    [str(dlt_py), "-c", script],
                    "dlt filesystem | read_csv",
                    env={"RUNTIME__LOG_LEVEL": "WARNING"},
                )
            )
        fresh_schema(url, f"{schema}_df")
        path = spec(f"{schema}_df", f"s3://{bucket}/{key}{glob}", WORK / "stack")
        results.append(
            run_timed(
                [
                    sys.executable,
                    "-m",
                    "dataferry",
                    "load",
                    "sql",
                    "-q",
                    "-c",
                    str(path),
                    "--force",
                ],
                "dataferry, first load",
                env=env,
            )
        )
        rows = total if key == "many/" else args.gzip_rows
        assert count(url, f"{schema}_df.orders") == rows
        print_table(results, results[0].name, f"from the embedded S3: {label} ({rows:,} rows)")


if __name__ == "__main__":
    main()
