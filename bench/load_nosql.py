"""Benchmark: JSON -> DynamoDB, dataferry against the usual ways, on the same file.

    python bench/load_nosql.py                  # 100,000 items; the put_item loop on 2,000
    python bench/load_nosql.py --items 20000 --rss 0

The server is dynalite (the embedded stack's own install), in memory, on loopback,
reached through bench/latency_proxy.py, which adds 10 ms to every request (a client
outside the table's region). Cases, each into a fresh table with the same key schema:

- the original project's way: json.load, then one Table.put_item per record;
- boto3's Table.batch_writer() (25 a request, unprocessed items re-sent at once);
- dataferry load nosql (validation pass, then BatchWriteItem from worker threads).

The put_item loop is timed on the first --loop-items records only (one request each
makes it very slow) and its rate is scaled to the full file; the table says so. Then the
client CPU seconds of batch_writer and dataferry without the added latency, and
dataferry's peak memory for --items and for --rss items (flat memory means streaming).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import WORK, Result, free_port, latency_proxy, print_table, run_timed, wait_port

from dataferry.generate import GenerateCounts, generate
from dataferry.stack.dynalite_install import Unavailable, ensure_dynalite

HERE = Path(__file__).resolve().parent
ENV = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-west-2",
}


@contextmanager
def dynalite_behind_proxy(delay_ms: float) -> Iterator[tuple[str, str]]:
    """dynalite in memory on a free loopback port, and latency_proxy.py in front of it
    adding ``delay_ms`` to each request; yield (direct URL, delayed URL)."""
    db_port = free_port()
    dynalite = ensure_dynalite()
    server = subprocess.Popen(
        [
            *dynalite.command(),
            "--host",
            "127.0.0.1",
            "--port",
            str(db_port),
            "--createTableMs",
            "20",
        ],
        stdout=subprocess.DEVNULL,
        env=dynalite.environment(),
    )
    try:
        wait_port(db_port)
        with latency_proxy(db_port, delay_ms) as proxy_port:
            yield f"http://127.0.0.1:{db_port}", f"http://127.0.0.1:{proxy_port}"
    finally:
        server.terminate()


def make_file(items: int) -> Path:
    """items_bought_data records (item, customer) of the retail example, as a JSON array."""
    customers = max(100, items // 50 + 1)
    out = WORK / f"nosql-{items}"
    path = out / "data" / "nosql" / "orders.json"
    if not path.exists():
        print(f"generating {items:,} items ...", file=sys.stderr)
        generate(out, GenerateCounts(customers=customers, items=50, orders=items), seed=1)
    return path


SCRIPT_HEAD = """
import json, decimal, boto3, sys
client_kwargs = dict(endpoint_url=sys.argv[1], region_name="us-west-2")
ddb = boto3.resource("dynamodb", **client_kwargs)
table = ddb.create_table(TableName=sys.argv[2], BillingMode="PAY_PER_REQUEST",
    KeySchema=[{"AttributeName": "item", "KeyType": "HASH"},
               {"AttributeName": "customer", "KeyType": "RANGE"}],
    AttributeDefinitions=[{"AttributeName": "item", "AttributeType": "S"},
                          {"AttributeName": "customer", "AttributeType": "S"}])
table.wait_until_exists()
records = json.load(open(sys.argv[3]), parse_float=decimal.Decimal)[: int(sys.argv[4])]
"""
PUT_LOOP = (
    SCRIPT_HEAD
    + """
for r in records:
    table.put_item(Item=r)
"""
)
BATCH_WRITER = (
    SCRIPT_HEAD
    + """
with table.batch_writer() as w:
    for r in records:
        w.put_item(Item=r)
"""
)


def dataferry_spec(data_file: Path, endpoint: str, table: str) -> Path:
    spec = WORK / f"{table}.yaml"
    spec.write_text(
        textwrap.dedent(f"""
        version: 1
        stack: {{dir: {WORK / "nosql-stack"}}}
        rejects_dir: {WORK / "rejects"}
        stores:
          dynamodb: {{endpoint: "{endpoint}", region: us-west-2}}
        datasets:
          bought:
            source: {{path: {data_file}}}
            target: {{store: dynamodb, table: {table}}}
            key: {{hash: item, range: customer}}
    """)
    )
    return spec


def run_case(kind: str, endpoint: str, data: Path, n: int, name: str, tag: str) -> Result:
    table = f"{kind}_{tag}_{int(time.time() * 1000)}"
    if kind == "dataferry":
        spec = dataferry_spec(data, endpoint, table)
        return run_timed(
            [sys.executable, "-m", "dataferry", "load", "nosql", "-q", "-c", str(spec), "--force"],
            name,
            env=ENV,
        )
    script = PUT_LOOP if kind == "put_item" else BATCH_WRITER
    return run_timed(
        [sys.executable, "-c", script, endpoint, table, str(data), str(n)], name, env=ENV
    )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--loop-items", type=int, default=2_000)
    ap.add_argument(
        "--rss", type=int, default=1_000_000, help="items for the memory check (0: skip)"
    )
    ap.add_argument("--delay-ms", type=float, default=10)
    ap.add_argument("--cpu-repeats", type=int, default=3, help="runs of each CPU case")
    args = ap.parse_args()
    try:
        ensure_dynalite()
    except Unavailable as e:
        sys.exit(f"dynalite cannot be had here: {e}")
    WORK.mkdir(exist_ok=True)
    data = make_file(args.items)
    n_file = len(json.loads(data.read_text()))
    with dynalite_behind_proxy(args.delay_ms) as (fast, slow):
        loop = run_case(
            "put_item",
            slow,
            data,
            args.loop_items,
            f"original: put_item per record ({args.loop_items:,} of them)",
            "loop",
        )
        scaled = Result(
            f"original: put_item per record (scaled to {n_file:,})",
            loop.seconds * n_file / args.loop_items,
            loop.peak_rss_mb,
            "estimated from the measured rate above",
        )
        batch = run_case("batch_writer", slow, data, n_file, "boto3 Table.batch_writer()", "bw")
        ours = run_case("dataferry", slow, data, n_file, "dataferry load nosql", "df")
        print_table(
            [scaled, batch, ours],
            "boto3 Table.batch_writer()",
            f"{n_file:,} items through {args.delay_ms:g} ms of added latency per request",
        )
        print(f"    measured: {loop.name}: {loop.seconds:.2f} s")

        # CPU time on a 2-core machine shared with the server is noisy: alternate the two
        # cases and compare medians.
        runs: dict[str, list[Result]] = {"batch_writer": [], "dataferry": []}
        for n in range(args.cpu_repeats):
            for kind, tag in (("batch_writer", "bwf"), ("dataferry", "dff")):
                runs[kind].append(run_case(kind, fast, data, n_file, kind, f"{tag}{n}"))
        print(
            f"\nclient CPU seconds for {n_file:,} items (no added latency), median of "
            f"{args.cpu_repeats}:"
        )
        medians = {}
        for kind, results in runs.items():
            results.sort(key=lambda r: r.cpu_seconds)
            med = results[len(results) // 2]
            medians[kind] = med
            spread = ", ".join(f"{r.cpu_seconds:.2f}" for r in results)
            print(
                f"  {kind:<14} {med.cpu_seconds:>6.2f} s CPU ({spread})  {med.seconds:>6.2f} s wall"
                f"  {med.peak_rss_mb:>4.0f} MB peak RSS"
            )
        ours_cpu = medians["dataferry"]
        ratio = ours_cpu.cpu_seconds / medians["batch_writer"].cpu_seconds
        print(f"  dataferry / batch_writer CPU: {ratio:.2f}")

        if args.rss:
            big = make_file(args.rss)
            r = run_case("dataferry", fast, big, args.rss, f"dataferry, {args.rss:,} items", "rss")
            print(
                f"\npeak RSS: {n_file:,} items {ours_cpu.peak_rss_mb:.0f} MB, "
                f"{args.rss:,} items {r.peak_rss_mb:.0f} MB ({r.seconds:.1f} s)"
            )


if __name__ == "__main__":
    main()
