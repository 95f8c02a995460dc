"""Cursor watermarks and rows deleted at the source (etl.cursor, etl.deletes)."""

from decimal import Decimal
from typing import Any

import duckdb

from dataferry import stages
from dataferry.stages import RunContext
from tests.conftest import PipelineFactory, unique
from tests.integration.conftest import ddb_client, pg_conn, retail_sql_datasets, write_retail_csv
from tests.integration.test_load_nosql import BOUGHT, dataset


def make_spec(pipeline: PipelineFactory, schema: str, **etl: Any) -> Any:
    write_retail_csv(pipeline)
    datasets = retail_sql_datasets(schema)
    datasets["orders"]["etl"] = etl
    return pipeline.spec(datasets)


def raw(spec: Any, query: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(spec.duckdb_path), read_only=True) as conn:
        return conn.execute(query).fetchall()


def test_a_cursor_reads_only_rows_from_the_watermark_on(
    pipeline: PipelineFactory, schema: str
) -> None:
    spec = make_spec(pipeline, schema, cursor="order_id")
    stages.load_sql(spec)
    (first,) = stages.etl(spec, ["orders"])
    assert (first.counts.read, first.counts.inserted, first.note) == (3, 3, None)
    with pg_conn(spec) as conn:
        conn.execute(
            f'INSERT INTO "{schema}".orders (order_id, customer_id, item_id, order_date, price) '
            "VALUES (4, 2, 2, '2024-03-01', 14.50), (5, 1, 2, '2024-03-02', 14.50)"
        )
    (second,) = stages.etl(spec, ["orders"])
    # order 3 (at the watermark) is read again and found unchanged; 4 and 5 are new
    assert (second.counts.read, second.counts.inserted, second.counts.unchanged) == (3, 2, 1)
    assert second.note == "incremental: order_id >= 3"
    (third,) = stages.etl(spec, ["orders"])
    assert (third.counts.read, third.counts.written) == (1, 0)
    assert raw(spec, "SELECT count(*), sum(price) FROM raw_postgres.orders") == [
        (5, Decimal("421.50"))
    ]


def test_deleted_rows_are_marked_on_a_full_read_and_come_back(
    pipeline: PipelineFactory, schema: str
) -> None:
    spec = make_spec(pipeline, schema)  # deletes: soft, the default
    stages.load_sql(spec)
    stages.etl(spec, ["orders"])
    with pg_conn(spec) as conn:
        conn.execute(f'DELETE FROM "{schema}".orders WHERE order_id = 2')
    (rec,) = stages.etl(spec, ["orders"])
    assert (rec.counts.read, rec.counts.deleted) == (2, 1)
    rows = raw(
        spec,
        "SELECT order_id, _dataferry_deleted_at IS NOT NULL FROM raw_postgres.orders "
        "ORDER BY order_id",
    )
    assert rows == [(1, False), (2, True), (3, False)]
    (again,) = stages.etl(spec, ["orders"])
    assert (again.counts.deleted, again.counts.written) == (0, 0)  # marked once
    with pg_conn(spec) as conn:
        conn.execute(
            f'INSERT INTO "{schema}".orders (order_id, customer_id, item_id, order_date, price) '
            "VALUES (2, 2, 1, '2024-02-01', 189.00)"
        )
    (back,) = stages.etl(spec, ["orders"])
    assert back.counts.updated == 1
    assert raw(spec, "SELECT count(_dataferry_deleted_at) FROM raw_postgres.orders") == [(0,)]


def test_deletes_apply_removes_the_rows_and_an_incremental_read_finds_no_deletions(
    pipeline: PipelineFactory, schema: str
) -> None:
    spec = make_spec(pipeline, schema, cursor="order_id", deletes="apply")
    stages.load_sql(spec)
    stages.etl(spec, ["orders"])
    with pg_conn(spec) as conn:
        conn.execute(f'DELETE FROM "{schema}".orders WHERE order_id IN (1, 2)')
    (incremental,) = stages.etl(spec, ["orders"])
    assert incremental.counts.deleted == 0  # only rows from the watermark on were read
    (full,) = stages.etl(spec, ["orders"], RunContext(full_refresh=True))
    assert (full.counts.read, full.counts.deleted, full.note) == (1, 2, None)
    assert raw(spec, "SELECT order_id FROM raw_postgres.orders") == [(3,)]


def test_an_emptied_source_table_is_emptied_in_the_warehouse_too(
    pipeline: PipelineFactory, schema: str
) -> None:
    spec = make_spec(pipeline, schema, deletes="apply")
    stages.load_sql(spec)
    stages.etl(spec, ["orders"])
    with pg_conn(spec) as conn:
        conn.execute(f'DELETE FROM "{schema}".orders')
    (rec,) = stages.etl(spec, ["orders"])
    assert (rec.counts.read, rec.counts.deleted) == (0, 3)
    assert raw(spec, "SELECT count(*) FROM raw_postgres.orders") == [(0,)]


def test_an_item_deleted_from_dynamodb_is_marked_deleted(pipeline: PipelineFactory) -> None:
    table = unique("bought")
    pipeline.write("bought.json", BOUGHT)
    spec = pipeline.spec({"bought": dataset(table)})
    stages.load_nosql(spec)
    stages.etl(spec)
    ddb_client(spec).delete_item(
        TableName=table, Key={"item": {"S": "USB"}, "customer": {"S": "Bob"}}
    )
    (rec,) = stages.etl(spec)
    assert (rec.counts.read, rec.counts.deleted) == (2, 1)
    assert raw(
        spec, f'SELECT item FROM raw_dynamodb."{table}" WHERE _dataferry_deleted_at IS NOT NULL'
    ) == [("USB",)]


def test_a_tampered_warehouse_row_is_found_and_restored(
    pipeline: PipelineFactory, schema: str
) -> None:
    spec = make_spec(pipeline, schema)
    stages.load_sql(spec)
    stages.etl(spec, ["orders"])
    with duckdb.connect(str(spec.duckdb_path)) as conn:
        conn.execute("UPDATE raw_postgres.orders SET price = 0 WHERE order_id = 2")
        conn.execute("DELETE FROM raw_postgres.orders WHERE order_id = 3")
        conn.execute(
            "INSERT INTO raw_postgres.orders (order_id, customer_id, item_id, "
            "order_date, price) VALUES (99, 1, 1, '2024-01-01', 1)"
        )
    (rec,) = stages.etl(spec, ["orders"])
    assert (rec.counts.updated, rec.counts.inserted, rec.counts.deleted) == (1, 1, 1)
    assert raw(
        spec,
        "SELECT order_id, price FROM raw_postgres.orders WHERE _dataferry_deleted_at IS NULL "
        "ORDER BY 1",
    ) == [(1, Decimal("14.50")), (2, Decimal("189.00")), (3, Decimal("189.00"))]
