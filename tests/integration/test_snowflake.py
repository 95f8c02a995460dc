"""The Snowflake warehouse, through the real connector against fakesnow (an emulator on
DuckDB). What passes here is evidence, not proof: see the README for what was verified
against a real account (nothing yet)."""

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import snowflake.connector

from dataferry import stages
from dataferry.errors import CheckFailed
from dataferry.stages import RunContext
from tests.conftest import PipelineFactory, unique
from tests.integration.conftest import pg_conn, retail_sql_datasets, write_retail_csv
from tests.integration.test_etl_models import CUSTOMERS, ORDER_LINES
from tests.integration.test_load_nosql import BOUGHT, dataset

# fakesnow 0.12 needs Python 3.11 (CI runs 3.11+); on 3.10 the emulated path is not tested.
fakesnow = pytest.importorskip("fakesnow", reason="fakesnow, the Snowflake emulator, needs 3.11+")

SNOWFLAKE = {
    "account": "dataferry-test",
    "user": "loader",
    "password": "sentinel-snowflake-password",
    "role": "DATAFERRY_LOADER",
    # fakesnow accepts USE WAREHOUSE for any name, so the CREATE WAREHOUSE that follows a
    # failed USE on a real account is not reached here (fakesnow cannot parse it).
    "warehouse": "DATAFERRY_WH",
    "database": "DATAFERRY_DB",
}


@pytest.fixture
def emulator() -> Iterator[None]:
    with fakesnow.patch():
        yield


def query(sql: str) -> list[tuple[Any, ...]]:
    conn = snowflake.connector.connect(database="DATAFERRY_DB", schema="PUBLIC")
    try:
        return list(conn.cursor().execute(sql).fetchall())
    finally:
        conn.close()


@pytest.fixture
def spec_and_table(pipeline: PipelineFactory, schema: str) -> tuple[Any, str]:
    write_retail_csv(pipeline)
    pipeline.write("bought.json", BOUGHT)
    pipeline.write("models/customers.sql", CUSTOMERS)
    pipeline.write("models/order_lines.sql", ORDER_LINES)
    table = unique("bought")
    spec = pipeline.spec(
        {**retail_sql_datasets(schema), "bought": dataset(table)},
        warehouse={"snowflake": SNOWFLAKE},
        models={
            "tables": {
                "customers": {"sql": "models/customers.sql", "primary_key": ["customer_id"]},
                "order_lines": {
                    "sql": "models/order_lines.sql",
                    "primary_key": ["order_id"],
                    "foreign_keys": [
                        {
                            "columns": ["customer_id"],
                            "references": {"model": "customers", "columns": ["customer_id"]},
                        }
                    ],
                },
            }
        },
    )
    stages.load_sql(spec)
    stages.load_nosql(spec)
    return spec, table


def test_raw_tables_exact_and_a_rerun_changes_nothing(
    emulator: None, spec_and_table: tuple[Any, str]
) -> None:
    spec, table = spec_and_table
    first = stages.etl(spec)
    assert [(r.dataset, r.counts.read, r.counts.inserted, r.status) for r in first] == [
        ("customer", 2, 2, "ok"),
        ("item", 2, 2, "ok"),
        ("orders", 3, 3, "ok"),
        ("bought", 3, 3, "ok"),
        ("customers", 2, 0, "ok"),
        ("order_lines", 3, 0, "ok"),
    ]
    assert query('SELECT SUM("price") FROM "raw_postgres"."orders"') == [(Decimal("392.50"),)]
    types = dict(
        query(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'raw_dynamodb' AND table_name = '" + table + "'"
        )
    )
    assert types["price"] == "NUMBER"
    assert types["_attributes"] == "VARIANT"
    rows = query(
        f'SELECT "item", "price", "_attributes":meta:tags[1]::VARCHAR '
        f'FROM "raw_dynamodb"."{table}" ORDER BY "item"'
    )
    assert rows[0][:2] == ("Monitor", Decimal("199.99"))
    assert rows[2] == ("USB", Decimal("10.20"), "b")  # nested values, parsed as VARIANT
    assert query('SELECT "item", "price" FROM "analytics"."order_lines" ORDER BY 1') == [
        ("Agua 1 L", Decimal("14.50")),
        ("Café 500 g", Decimal("189.00")),
        ("Café 500 g", Decimal("189.00")),
    ]
    second = stages.etl(spec)
    assert all(r.counts.written == 0 for r in second)
    assert [r.status for r in second[4:]] == ["skipped", "skipped"]


def test_changes_deletions_and_the_ledger(
    emulator: None, spec_and_table: tuple[Any, str], schema: str
) -> None:
    spec, _ = spec_and_table
    stages.etl(spec)
    with pg_conn(spec) as conn:
        conn.execute(f'UPDATE "{schema}".orders SET price = 1.99 WHERE order_id = 1')
        conn.execute(f'DELETE FROM "{schema}".orders WHERE order_id = 3')
    records = {r.dataset: r for r in stages.etl(spec, None, RunContext(run_id="run2"))}
    orders = records["orders"].counts
    assert (orders.read, orders.updated, orders.unchanged, orders.deleted) == (2, 1, 1, 1)
    assert records["order_lines"].counts.written == 2  # rebuilt without the deleted order
    assert query(
        'SELECT "order_id", "price", "_dataferry_deleted_at" IS NOT NULL '
        'FROM "raw_postgres"."orders" ORDER BY 1'
    ) == [(1, Decimal("1.99"), False), (2, Decimal("189.00"), False), (3, Decimal("189.00"), True)]
    ledger = query(
        'SELECT "dataset", "updated", "deleted", "status" FROM "dataferry"."loads" '
        "WHERE \"run_id\" = 'run2' AND \"dataset\" = 'orders'"
    )
    assert ledger == [("orders", 1, 1, "ok")]


def test_a_failed_reconciliation_rolls_back_mocked_lossy_reader(
    emulator: None, spec_and_table: tuple[Any, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Mocked fault: a reader that loses a row, which no real source does on demand."""
    import pyarrow as pa

    from dataferry.stores import postgres as pg

    spec, _ = spec_and_table
    real_read = pg.read

    def lossy(conn: Any, reader: Any, ds: Any, since: Any = None, rows: Any = None) -> Any:
        t = pa.Table.from_batches(list(real_read(conn, reader, ds, since, rows)))
        yield from t.slice(0, t.num_rows - 1).to_batches()

    monkeypatch.setattr(pg, "read", lossy)
    with pytest.raises(CheckFailed, match=r"reconciliation failed.*3 rows.*2 arrived"):
        stages.etl(spec, ["orders"])
    assert query(
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'raw_postgres' "
        "AND table_name = 'orders'"
    ) == [(1,)]
    assert query('SELECT COUNT(*) FROM "raw_postgres"."orders"') == [(0,)]


def test_the_password_never_shows(emulator: None, spec_and_table: tuple[Any, str]) -> None:
    from dataferry.connections import resolve_snowflake

    spec, _ = spec_and_table
    target = resolve_snowflake(spec)
    assert "sentinel" not in repr(target) + target.display
    records = stages.etl(spec)
    assert "sentinel" not in repr(records)


def test_settings_come_from_snowflake_variables(pipeline: PipelineFactory) -> None:
    from dataferry.connections import resolve_snowflake

    pipeline.write("bought.json", BOUGHT)
    spec = pipeline.spec(
        {"bought": dataset("bought")},
        warehouse={"snowflake": {"database": "FROM_SPEC", "private_key_path": "key.p8"}},
    )
    env = {
        "SNOWFLAKE_ACCOUNT": "acme-xy12345",
        "SNOWFLAKE_USER": "svc_dataferry",
        "SNOWFLAKE_DATABASE": "FROM_ENV",
        "SNOWFLAKE_PRIVATE_KEY_PASSPHRASE": "sentinel-passphrase",
        "SNOWFLAKE_DEFAULT_CONNECTION_NAME": "prod",
    }
    target = resolve_snowflake(spec, env)
    assert target.params["account"] == "acme-xy12345"
    assert target.params["database"] == "FROM_SPEC"  # the spec wins over the environment
    assert target.params["private_key_file"] == str(pipeline.root / "key.p8")
    assert target.params["authenticator"] == "SNOWFLAKE_JWT"
    assert target.params["connection_name"] == "prod"
    assert "sentinel" not in repr(target) + target.display


def test_the_ledger_answers_status_history_and_doctor(
    emulator: None, spec_and_table: tuple[Any, str]
) -> None:
    """What `status`, `history` and `doctor` ask of the warehouse, on the emulator."""
    spec, _ = spec_and_table
    stages.etl(spec, None, RunContext(run_id="first"))
    stages.etl(spec, None, RunContext(run_id="again"))
    with stages.open_warehouse(spec) as wh:
        last = wh.last_loads()
        changed = wh.last_loads(status="ok")
        history = wh.history(20)
        orders_only = wh.history(5, "orders")
        assert wh.self_test() is True
    assert last["orders"]["run_id"] == "again"
    assert changed["orders"]["status"] == "ok"
    started = [r["started_at"] for r in history]
    assert started == sorted(started, reverse=True)
    assert {r["dataset"] for r in orders_only} == {"orders"}
    assert len(orders_only) == 2


def test_the_originals_objects_and_names(
    emulator: None, pipeline: PipelineFactory, schema: str
) -> None:
    """examples/original/snowflake.yaml's settings: SYSADMIN, TEST_WAREHOUSE, BANKAYA_DB,
    TEST_SCHEMA (the original named them unquoted: Snowflake folds them to upper case),
    and the raw tables named <table> and <table>_dynamodb there."""
    write_retail_csv(pipeline)
    pipeline.write("bought.json", BOUGHT)
    table = unique("bought")
    spec = pipeline.spec(
        {**retail_sql_datasets(schema), "bought": dataset(table)},
        warehouse={
            "naming": "original",
            "raw_schema": "TEST_SCHEMA",
            "snowflake": {
                **SNOWFLAKE,
                "role": "SYSADMIN",
                "warehouse": "TEST_WAREHOUSE",
                "database": "BANKAYA_DB",
                "schema": "TEST_SCHEMA",
            },
        },
    )
    stages.load_sql(spec)
    stages.load_nosql(spec)
    assert [r.status for r in stages.etl(spec)] == ["ok"] * 4
    conn = snowflake.connector.connect(database="BANKAYA_DB", schema="TEST_SCHEMA")
    try:
        cur = conn.cursor()
        assert cur.execute('SELECT count(*) FROM TEST_SCHEMA."orders"').fetchone() == (3,)
        got = cur.execute(f'SELECT count(*) FROM TEST_SCHEMA."{table}_dynamodb"').fetchone()
        assert got == (3,)
    finally:
        conn.close()
