"""Benchmark: the whole run on the embedded default stack, against the per-step floors.

    python bench/pipeline.py                          # 1M orders, 100k DynamoDB purchases
    python bench/pipeline.py --nosql-orders 1000000   # the full 1M DynamoDB items
    python bench/pipeline.py --orders 100000 --nosql-orders 10000   # a quick look

Data: `dataferry generate --orders N --items 2000 --customers 50000 --nosql-orders M`
(three CSV files for PostgreSQL, three JSON files for DynamoDB, the retail spec and models).

The run: `dataferry run` (load sql, load nosql, etl with the models) into a fresh embedded
stack (PostgreSQL, dynalite, a DuckDB file), started beforehand by `dataferry stack up`
(timed apart: the servers start once, not per run). Its peak RSS is the dataferry
process's; the servers' are shown apart.

The floors, each a plain program for its one step, on the same files and the same servers:
- `psql \\copy` of each CSV into a bare table (no key, no constraint);
- a plain 8-thread BatchWriteItem writer: json.load each file, boto3's TypeSerializer,
  25 items a request, unprocessed items sent again;
- DuckDB reading the three PostgreSQL tables through ADBC (fetch_arrow_table, then
  CREATE TABLE AS);
- a parallel Scan (8 segments, boto3's client, every page) of the three DynamoDB tables.
The run's time over their sum is the figure (aim: at most 2x), with the run's peak RSS
(aim: under 500 MB).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import WORK, Result, run_timed
from load_sql import psql

from dataferry.generate import GenerateCounts, generate

DATAFERRY = [sys.executable, "-m", "dataferry"]
ENV = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}
TABLES = {  # DynamoDB table: (file, hash key, range key)
    "customers_data": ("customer.json", "first_name", "last_name"),
    "items_data": ("item.json", "title", None),
    "items_bought_data": ("orders.json", "item", "customer"),
}
BARE_TABLES = """
DROP SCHEMA IF EXISTS floor CASCADE;
CREATE SCHEMA floor;
CREATE TABLE floor.customer (customer_id integer, first_name varchar(64),
  last_name varchar(64), phone_number varchar(15), curp varchar(18), rfc varchar(13),
  address text);
CREATE TABLE floor.item (item_id integer, name varchar(64), price numeric(10,2));
CREATE TABLE floor.orders (order_id integer, customer_id integer, item_id integer,
  order_date date, price numeric(10,2), comments text);
"""
WRITER = """
import json, queue, sys, threading
from decimal import Decimal
import boto3
from boto3.dynamodb.types import TypeSerializer

url, jobs = sys.argv[1], json.loads(sys.argv[2])
client = boto3.client("dynamodb", endpoint_url=url, region_name="us-west-2")
serialize = TypeSerializer().serialize
for path, table, hash_key, range_key in jobs:
    keys = [a for a in (hash_key, range_key) if a]
    client.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": a, "KeyType": t} for a, t in zip(keys, ("HASH", "RANGE"))],
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in keys],
        BillingMode="PAY_PER_REQUEST",
    )
    client.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 0.1})
    with open(path, encoding="utf-8") as f:
        records = json.load(f, parse_float=Decimal)
    batches = queue.Queue(maxsize=64)

    def work():
        while (batch := batches.get()) is not None:
            request = {table: batch}
            while request:
                request = client.batch_write_item(RequestItems=request)["UnprocessedItems"]

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    batch = []
    for record in records:
        item = {k: serialize(v) for k, v in record.items() if v is not None}
        batch.append({"PutRequest": {"Item": item}})
        if len(batch) == 25:
            batches.put(batch)
            batch = []
    if batch:
        batches.put(batch)
    for _ in threads:
        batches.put(None)
    for t in threads:
        t.join()
"""
ADBC_READ = """
import sys
import adbc_driver_postgresql.dbapi as pg
import duckdb

url, path = sys.argv[1], sys.argv[2]
wh = duckdb.connect(path)
with pg.connect(url) as conn:
    for table in ("customer", "item", "orders"):
        with conn.cursor() as cur:
            cur.execute(f"SELECT * FROM public.{table}")
            arrow = cur.fetch_arrow_table()
        wh.register("incoming", arrow)
        wh.execute(f"CREATE TABLE {table} AS SELECT * FROM incoming")
        wh.unregister("incoming")
wh.close()
"""
PARALLEL_SCAN = """
import json, sys, threading
import boto3

url, tables = sys.argv[1], json.loads(sys.argv[2])
client = boto3.client("dynamodb", endpoint_url=url, region_name="us-west-2")
counts = []

def segment(table, n, total):
    kwargs, seen = {"TableName": table, "Segment": n, "TotalSegments": total}, 0
    while True:
        page = client.scan(**kwargs)
        seen += len(page["Items"])
        if "LastEvaluatedKey" not in page:
            counts.append(seen)
            return
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

for table in tables:
    threads = [threading.Thread(target=segment, args=(table, n, 8)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
print(sum(counts))
"""


def data_set(orders: int, nosql_orders: int) -> Path:
    out = WORK / f"pipeline-{orders}-{nosql_orders}"
    if not (out / "dataferry.yaml").exists():
        print(f"generating {out} ...", file=sys.stderr)
        generate(out, GenerateCounts(50_000, 2_000, orders, nosql_orders), seed=1)
    return out


def dataferry(*args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([*DATAFERRY, *args], capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"dataferry {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return proc


def fresh_stack(data: Path, engine: str) -> tuple[Path, dict[str, dict[str, object]]]:
    """The generated spec on a new stack folder, started; (spec, services by name)."""
    spec = data / "dataferry.yaml"
    stack = WORK / "pipeline-stack"
    if stack.exists():
        dataferry("stack", "down", "-c", str(spec), "-q")
        shutil.rmtree(stack)
    text = (data / "dataferry.yaml").read_text(encoding="utf-8")
    text = text.replace("path: .dataferry/warehouse.duckdb", f"path: {stack / 'warehouse.duckdb'}")
    text += f"\nstack: {{dir: {stack}, dynamodb: {engine}}}\n"
    text += f"rejects_dir: {WORK / 'pipeline-rejects'}\n"
    bench_spec = data / "bench.yaml"
    bench_spec.write_text(text, encoding="utf-8")
    up = run_timed([*DATAFERRY, "stack", "up", "-c", str(bench_spec), "--json"], "stack up")
    print(f"stack up (not counted): {up.seconds:.1f} s", file=sys.stderr)
    status = json.loads(dataferry("stack", "status", "-c", str(bench_spec), "--json").stdout)
    return bench_spec, {s["service"]: s for s in status["services"]}


def server_rss_mb(services: dict[str, dict[str, object]]) -> str:
    import psutil

    shown = []
    for name in ("postgres", "dynamodb"):
        pid = services[name]["pid"]
        if isinstance(pid, int) and psutil.pid_exists(pid):
            proc = psutil.Process(pid)
            rss = proc.memory_info().rss + sum(
                c.memory_info().rss for c in proc.children(recursive=True)
            )
            shown.append(f"{name} {rss / 2**20:.0f} MB")
    return ", ".join(shown)


def floors(data: Path, services: dict[str, dict[str, object]]) -> list[Result]:
    pg_url, ddb_url = str(services["postgres"]["url"]), str(services["dynamodb"]["url"])
    sql, nosql = data / "data" / "sql", data / "data" / "nosql"
    copy = BARE_TABLES + "".join(
        f"\\copy floor.{t} FROM '{sql / (t + '.csv')}' CSV HEADER\n"
        for t in ("customer", "item", "orders")
    )
    jobs = [(str(nosql / f), f"floor_{t}", h, r) for t, (f, h, r) in TABLES.items()]
    duck = WORK / "pipeline-floor.duckdb"
    duck.unlink(missing_ok=True)
    return [
        psql(pg_url, copy, "psql \\copy into bare tables (3 CSV files)"),
        run_timed(
            [sys.executable, "-c", WRITER, ddb_url, json.dumps(jobs)],
            "8-thread BatchWriteItem writer (3 JSON files)",
            env=ENV,
        ),
        run_timed(
            [sys.executable, "-c", ADBC_READ, pg_url, str(duck)],
            "DuckDB reads PostgreSQL through ADBC (3 tables)",
        ),
        run_timed(
            [sys.executable, "-c", PARALLEL_SCAN, ddb_url, json.dumps(list(TABLES))],
            "parallel Scan, 8 segments (3 DynamoDB tables)",
            env=ENV,
        ),
    ]


def check_floors(services: dict[str, dict[str, object]], orders: int) -> None:
    """The floors did the whole work: every row and item is where they put it."""
    import psycopg

    with psycopg.connect(str(services["postgres"]["url"])) as conn:
        row = conn.execute("SELECT count(*) FROM floor.orders").fetchone()
    if row is None or row[0] != orders:
        sys.exit(f"psql \\copy left {row} rows in floor.orders, not {orders}")


def main() -> None:
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")  # platformdirs, in CI
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--orders", type=int, default=1_000_000, help="CSV orders (PostgreSQL)")
    ap.add_argument("--nosql-orders", type=int, default=100_000, help="purchase items (DynamoDB)")
    ap.add_argument(
        "--engine",
        choices=["dynalite", "moto"],
        default="dynalite",
        help="the embedded DynamoDB endpoint (moto: the fallback, for comparison)",
    )
    ap.add_argument("--keep", action="store_true", help="leave the stack running")
    args = ap.parse_args()
    WORK.mkdir(exist_ok=True)
    data = data_set(args.orders, args.nosql_orders)
    spec, services = fresh_stack(data, args.engine)
    try:
        run = run_timed([*DATAFERRY, "run", "-c", str(spec), "-q"], "dataferry run", env=ENV)
        servers = server_rss_mb(services)
        steps = floors(data, services)
        check_floors(services, args.orders)
    finally:
        if not args.keep:
            dataferry("stack", "down", "-c", str(spec), "-q")
    floor = sum(r.seconds for r in steps)
    print(
        textwrap.dedent(
            f"""
            whole run: {args.orders:,} orders (+50,000 customers, 2,000 items) into
            PostgreSQL, {args.nosql_orders:,} purchases (+50,000 customers, 2,000 items)
            into DynamoDB, all of it into DuckDB, then the models; embedded stack
            (embedded PostgreSQL, {args.engine}), {os.cpu_count()} cores
            """
        ).strip()
    )
    print(f"\n{'step':<58} {'seconds':>8} {'peak RSS MB':>12}")
    for r in [*steps, Result("sum of the floors", floor), run]:
        rss = f"{r.peak_rss_mb:.0f}" if r.peak_rss_mb is not None else "-"
        print(f"{r.name:<58} {r.seconds:>8.2f} {rss:>12}")
    print(f"\ndataferry run / sum of the floors: {run.seconds / floor:.2f}x (aim: at most 2x)")
    print(f"servers after the run: {servers}")


if __name__ == "__main__":
    main()
