"""Parallel key-range reads of PostgreSQL: every row once, all in one snapshot."""

import pyarrow as pa
import pytest

from dataferry import stages
from dataferry.connections import resolve_postgres
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
    with pg.connect(target) as conn, conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        assert pg.count(conn, ds) == 1000
        with pg_conn(spec) as other:  # committed after the snapshot: not to be read
            other.execute(
                f"INSERT INTO \"{schema}\".orders VALUES (5000, 1, 2, '2024-05-01', 1, NULL)"
            )
        table = pa.Table.from_batches(list(pg.read_parallel(conn, target, ds, parts=parts)))
    ids = sorted(table.column("order_id").to_pylist())
    assert ids == list(range(1, 1001))
    with pg_conn(spec) as conn:
        single = pa.Table.from_batches(list(pg.read(conn, ds)))
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
    with pg.connect(target) as conn, conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        batches = list(pg.read_parallel(conn, target, ds, since=990, parts=4))
    assert sorted(pa.Table.from_batches(batches).column("order_id").to_pylist()) == list(
        range(990, 1001)
    )


def test_copy_out_stopped_early_leaves_a_usable_connection(
    pipeline: PipelineFactory, schema: str
) -> None:
    import psycopg

    from dataferry.stores.postgres.copy_out import copy_out

    write_retail_csv(pipeline)
    spec = pipeline.spec(retail_sql_datasets(schema))
    target = resolve_postgres(spec)
    with pg.connect(target) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        conn.execute(
            f"CREATE TABLE \"{schema}\".big AS SELECT n, repeat('x', 100) AS pad "
            "FROM generate_series(1, 50000) AS n"
        )
        with pytest.raises(psycopg.errors.UndefinedTable), conn.transaction():
            list(copy_out(conn, f'COPY "{schema}".nope TO STDOUT'.encode()))
        with conn.transaction(force_rollback=True):
            blocks = copy_out(conn, f'COPY "{schema}".big TO STDOUT (FORMAT csv)'.encode())
            first = next(blocks)
            assert len(first) >= 1 << 20
            blocks.close()  # the consumer stops: the copy is cancelled and drained
        assert conn.execute(f'SELECT count(*) FROM "{schema}".big').fetchone() == (50000,)
        every = b"".join(copy_out(conn, f'COPY "{schema}".big TO STDOUT (FORMAT csv)'.encode()))
        assert every.count(b"\n") == 50000
