"""Reading PostgreSQL into Arrow: every row once, all in one snapshot, types exact, and
faults at the source reported, not swallowed."""

import time
from typing import Any

import pyarrow as pa
import pytest

from dataferry import stages
from dataferry.connections import resolve_postgres
from dataferry.errors import TargetError, TargetUnavailable
from dataferry.spec import Spec
from dataferry.stores import postgres as pg
from tests.conftest import PipelineFactory
from tests.integration.conftest import pg_conn, retail_sql_datasets, write_retail_csv

ORDERS = "order_id,customer_id,item_id,order_date,price,comments\n" + "".join(
    f"{n},1,2,2024-01-{n % 28 + 1:02d},{n}.25,c{n}\n" for n in range(1, 1001)
)


@pytest.mark.parametrize("parts", [2, 3, 7])
def test_every_row_once_in_the_snapshot_the_count_was_taken_in(
    pipeline: PipelineFactory, schema: str, parts: int
) -> None:
    write_retail_csv(pipeline, **{"orders.csv": ORDERS})
    spec = pipeline.spec(retail_sql_datasets(schema))
    stages.load_sql(spec)
    ds = spec.datasets["orders"]
    target = resolve_postgres(spec)
    with pg.connect(target) as conn, pg.ArrowReader(target) as reader, conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        assert pg.count(conn, ds) == 1000
        with pg_conn(spec) as other:  # committed after the snapshot: not to be read
            other.execute(
                f"INSERT INTO \"{schema}\".orders VALUES (5000, 1, 2, '2024-05-01', 1, NULL)"
            )
        table = pa.Table.from_batches(list(pg.read(conn, reader, ds, parts=parts)))
    ids = sorted(table.column("order_id").to_pylist())
    assert ids == list(range(1, 1001))
    with pg_conn(spec) as conn, pg.ArrowReader(target) as reader:
        single = pa.Table.from_batches(list(pg.read(conn, reader, ds)))
    assert single.num_rows == 1001  # outside the snapshot, the new row is there
    assert table.sort_by("order_id").equals(
        single.filter(pa.compute.less(single.column("order_id"), 5000)).sort_by("order_id")
    )


def test_a_parallel_read_from_the_watermark(pipeline: PipelineFactory, schema: str) -> None:
    write_retail_csv(pipeline, **{"orders.csv": ORDERS})
    datasets = retail_sql_datasets(schema)
    datasets["orders"]["etl"] = {"cursor": "order_id"}
    spec = pipeline.spec(datasets)
    stages.load_sql(spec)
    ds = spec.datasets["orders"]
    target = resolve_postgres(spec)
    with pg.connect(target) as conn, pg.ArrowReader(target) as reader, conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        batches = list(pg.read(conn, reader, ds, since=990, parts=4))
    assert sorted(pa.Table.from_batches(batches).column("order_id").to_pylist()) == list(
        range(990, 1001)
    )


def test_a_server_behind_a_slow_link_on_this_machine_is_read_in_parallel(
    pipeline: PipelineFactory,
) -> None:
    """A server on this machine is read in one stream (the streams would share its
    cores), unless the round trip measured on the connection says it is across a network
    whatever its host name (a tunnel or a proxy on a loopback port)."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    from dataferry.connections import PostgresTarget
    from dataferry.stores.postgres.reading import DEFAULT_PARTS, streams
    from tests.integration.slow_link import slow_link

    spec = pipeline.spec(retail_sql_datasets("public"))
    direct = resolve_postgres(spec)
    params = conninfo_to_dict(direct.conninfo)
    socket_path = f"{params['host']}/.s.PGSQL.{params.get('port') or 5432}"
    with pg.connect(direct) as conn:
        assert streams(conn, direct) == 1
    with slow_link(socket_path, 0.002) as port:
        tunnel = PostgresTarget(
            make_conninfo(direct.conninfo, host="127.0.0.1", port=port), "test", False
        )
        assert tunnel.local  # by its host name
        with pg.connect(tunnel) as conn:
            assert streams(conn, tunnel) == DEFAULT_PARTS >= 2


def _big_orders(pipeline: PipelineFactory, schema: str, rows: int) -> Spec:
    """The retail tables, with ``rows`` more orders (about 220 bytes each) made by the
    server: more than a socket holds, so a read of them is still running when stopped."""
    write_retail_csv(pipeline)
    spec = pipeline.spec(retail_sql_datasets(schema))
    stages.load_sql(spec)
    with pg_conn(spec) as conn:
        conn.execute(
            f"INSERT INTO \"{schema}\".orders SELECT n, 1, 2, '2024-01-01', 1.5, repeat('x', 200) "
            f"FROM generate_series(1000, {999 + rows}) AS n"
        )
    return spec


def _readers(conn: Any) -> int:
    """Other backends running a COPY: the reads still open."""
    row = conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'COPY%%' "
        "AND pid <> pg_backend_pid()"
    ).fetchone()
    return int(row[0])


def test_a_read_stopped_early_ends_its_copy(pipeline: PipelineFactory, schema: str) -> None:
    spec = _big_orders(pipeline, schema, 100_000)
    target = resolve_postgres(spec)
    ds = spec.datasets["orders"]
    with pg.connect(target) as conn, pg.ArrowReader(target) as reader, conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        batches = pg.read(conn, reader, ds)
        assert next(batches).num_rows > 0
        with pg_conn(spec) as other:
            assert _readers(other) == 1
            batches.close()  # the consumer stops: the reader's connection goes with it
            deadline = time.monotonic() + 10
            while _readers(other) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert _readers(other) == 0
        # the caller's own connection and snapshot are untouched
        assert pg.count(conn, ds) == 100_003


def test_the_source_backend_ending_midway_is_an_error_naming_the_table(
    pipeline: PipelineFactory, schema: str
) -> None:
    """A real fault: the server ends the reading backend mid-COPY (as a failover or an
    administrator would). The read must fail, not end early as if the table were shorter."""
    spec = _big_orders(pipeline, schema, 100_000)
    target = resolve_postgres(spec)
    with pg.connect(target) as conn, pg.ArrowReader(target) as reader, conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        batches = pg.read(conn, reader, spec.datasets["orders"])
        next(batches)
        with pg_conn(spec) as other:
            other.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE query LIKE 'COPY%%' AND pid <> pg_backend_pid()"
            )
        lost = rf"reading {schema}\.orders: the PostgreSQL connection was lost .*(closed|terminat)"
        with pytest.raises(TargetUnavailable, match=lost):
            list(batches)


def _read_refused(spec: Spec, match: str) -> None:
    """Reading the orders table fails with a TargetError matching ``match``."""
    target = resolve_postgres(spec)
    refused = pytest.raises(TargetError, match=match)
    with pg.connect(target) as conn, pg.ArrowReader(target) as reader, refused:
        list(pg.read(conn, reader, spec.datasets["orders"]))


@pytest.mark.parametrize("kind", ["date", "timestamptz"])
def test_an_infinite_date_or_timestamp_is_refused_naming_the_row(
    pipeline: PipelineFactory, schema: str, kind: str
) -> None:
    """PostgreSQL's 'infinity' has no equivalent in Arrow or the warehouses; the driver
    hands over a wrapped-around number, so the read must stop on it."""
    write_retail_csv(pipeline)
    datasets = retail_sql_datasets(schema)
    stages.load_sql(pipeline.spec(datasets))
    datasets["orders"]["columns"]["order_date"]["type"] = kind
    spec = pipeline.spec(datasets)
    with pg_conn(spec) as conn:
        conn.execute(f'ALTER TABLE "{schema}".orders ALTER COLUMN order_date TYPE {kind}')
        conn.execute(f"UPDATE \"{schema}\".orders SET order_date = 'infinity' WHERE order_id = 2")
    _read_refused(spec, r"row order_id=2: column order_date is infinite")


def test_a_numeric_wider_than_the_spec_is_refused_not_rounded(
    pipeline: PipelineFactory, schema: str
) -> None:
    """The table holds more decimal places than the spec's numeric: Arrow refuses the
    value rather than dropping digits."""
    write_retail_csv(pipeline)
    spec = pipeline.spec(retail_sql_datasets(schema))
    stages.load_sql(spec)
    with pg_conn(spec) as conn:
        conn.execute(f'ALTER TABLE "{schema}".orders ALTER COLUMN price TYPE numeric(12,4)')
        conn.execute(f'UPDATE "{schema}".orders SET price = 10.1234 WHERE order_id = 1')
    _read_refused(spec, r"column price does not fit the spec's numeric\(10,2\).*data loss")


def test_a_numeric_nan_another_writer_stored_is_refused_naming_the_column(
    pipeline: PipelineFactory, schema: str
) -> None:
    """A NumPy-minded application stores 'NaN' in a numeric column; the scaled read's
    cast to bigint fails on it at the server. The error names the column, not the cast."""
    write_retail_csv(pipeline)
    spec = pipeline.spec(retail_sql_datasets(schema))
    stages.load_sql(spec)
    with pg_conn(spec) as conn:
        conn.execute(f"UPDATE \"{schema}\".orders SET price = 'NaN' WHERE order_id = 2")
    _read_refused(spec, r"a value of price is NaN, which the spec's numeric type cannot hold")


def test_an_unreachable_server_is_unavailable_and_its_password_never_shown() -> None:
    from dataferry.connections import PostgresTarget
    from dataferry.errors import TargetUnavailable

    target = PostgresTarget(
        "host=127.0.0.1 port=1 user=u password=hunter2-secret dbname=d", "test", False
    )
    unavailable = pytest.raises(TargetUnavailable, match=r"PostgreSQL at .*127\.0\.0\.1:1")
    with pg.ArrowReader(target) as reader, unavailable as e, reader.connection(None):
        pass
    assert "hunter2" not in str(e.value)
