"""The modelled layer: SQL files run in the warehouse, checked, rebuilt only on change."""

from decimal import Decimal
from typing import Any

import duckdb
import pytest

from dataferry import stages
from dataferry.errors import CheckFailed, SpecError
from tests.conftest import PipelineFactory
from tests.integration.conftest import pg_conn, retail_sql_datasets, write_retail_csv

CUSTOMERS = "SELECT customer_id, first_name || ' ' || last_name AS name FROM customer"
ORDER_LINES = """
-- orders with their item's name
SELECT o.order_id, o.customer_id, i.name AS item, o.price
FROM orders AS o JOIN item AS i ON i.item_id = o.item_id
"""


def make_spec(
    pipeline: PipelineFactory, schema: str, lines_sql: str = ORDER_LINES, **top: Any
) -> Any:
    write_retail_csv(pipeline)
    pipeline.write("models/customers.sql", CUSTOMERS)
    pipeline.write("models/order_lines.sql", lines_sql)
    models = {
        "schema": "marts",
        "tables": {
            "customers": {"sql": "models/customers.sql", "primary_key": ["customer_id"]},
            "order_lines": {
                "sql": "models/order_lines.sql",
                "primary_key": ["order_id"],
                "not_null": ["item"],
                "foreign_keys": [
                    {
                        "columns": ["customer_id"],
                        "references": {"model": "customers", "columns": ["customer_id"]},
                    }
                ],
            },
        },
    }
    return pipeline.spec(retail_sql_datasets(schema), models=models, **top)


def built_spec(pipeline: PipelineFactory, schema: str) -> Any:
    """make_spec's pipeline, loaded into PostgreSQL and built once by the etl."""
    spec = make_spec(pipeline, schema)
    stages.load_sql(spec)
    stages.etl(spec)
    return spec


def query(spec: Any, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(spec.duckdb_path), read_only=True) as conn:
        return conn.execute(sql).fetchall()


def test_models_build_parents_first_and_skip_when_nothing_changed(
    pipeline: PipelineFactory, schema: str
) -> None:
    spec = make_spec(pipeline, schema)
    stages.load_sql(spec)
    first = stages.etl(spec)
    models = [(r.dataset, r.table, r.counts.written, r.status) for r in first[3:]]
    assert models == [
        ("customers", "marts.customers", 2, "ok"),
        ("order_lines", "marts.order_lines", 3, "ok"),
    ]
    assert query(spec, "SELECT * FROM marts.order_lines ORDER BY order_id") == [
        (1, 1, "Agua 1 L", Decimal("14.50")),
        (2, 2, "Café 500 g", Decimal("189.00")),
        (3, 1, "Café 500 g", Decimal("189.00")),
    ]
    second = stages.etl(spec)
    assert [r.status for r in second[3:]] == ["skipped", "skipped"]
    with pg_conn(spec) as conn:
        conn.execute(f"UPDATE \"{schema}\".item SET name = 'Agua 2 L' WHERE item_id = 2")
    third = stages.etl(spec)
    # customers' inputs did not change; order_lines reads item, which did
    assert [r.status for r in third[3:]] == ["skipped", "ok"]
    assert query(spec, "SELECT item FROM marts.order_lines WHERE order_id = 1") == [("Agua 2 L",)]


def test_an_unchanged_run_parses_no_sql_and_an_edited_model_is_rebuilt(
    pipeline: PipelineFactory, schema: str
) -> None:
    """Whether a model is rebuilt is decided from its file, the spec's names and its
    inputs' state, before any SQL is parsed: an unchanged re-run does not load sqlglot
    (60 ms a command). An edited file, or an edited check, rebuilds that model and the
    models that read it."""
    import subprocess
    import sys

    spec = built_spec(pipeline, schema)
    script = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('sqlglot' in sys.modules))\n"
        f"sys.argv = ['dataferry', 'etl', '-q', '-c', {str(spec.path)!r}]\n"
        "from dataferry.cli.entry import main\n"
        "main()\n"
    )
    again = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip().splitlines()[-1] == "False"

    pipeline.write("models/customers.sql", CUSTOMERS.replace("first_name", "upper(first_name)"))
    edited = stages.etl(spec)
    assert [(r.dataset, r.status) for r in edited[3:]] == [
        ("customers", "ok"),
        ("order_lines", "ok"),  # reads customers (its foreign key's parent)
    ]
    assert query(spec, "SELECT name FROM marts.customers WHERE customer_id = 1") == [
        ("JOSÉ García López",)
    ]
    assert [r.status for r in stages.etl(spec)[3:]] == ["skipped", "skipped"]


def test_rows_deleted_at_the_source_leave_the_models(
    pipeline: PipelineFactory, schema: str
) -> None:
    spec = built_spec(pipeline, schema)
    with pg_conn(spec) as conn:
        conn.execute(f'DELETE FROM "{schema}".orders WHERE order_id = 3')
    stages.etl(spec)
    assert query(spec, "SELECT count(*) FROM raw_postgres.orders") == [(3,)]  # soft
    assert query(spec, "SELECT order_id FROM marts.order_lines ORDER BY 1") == [(1,), (2,)]


def test_a_failed_check_names_it_and_keeps_the_previous_build(
    pipeline: PipelineFactory, schema: str
) -> None:
    spec = built_spec(pipeline, schema)
    # a join that repeats every order once per item, and loses the customer of order 2
    bad = (
        "SELECT o.order_id, CASE WHEN o.order_id = 2 THEN 42 ELSE o.customer_id END "
        "AS customer_id, i.name AS item, o.price FROM orders AS o CROSS JOIN item AS i"
    )
    pipeline.write("models/order_lines.sql", bad)
    with pytest.raises(CheckFailed) as err:
        stages.etl(spec)
    message = str(err.value)
    assert "model order_lines" in message
    assert "primary key (order_id) repeats (3 rows)" in message
    assert "(customer_id) has no match in customers(customer_id) (2 rows)" in message
    assert query(spec, "SELECT count(*) FROM marts.order_lines") == [(3,)]
    assert query(
        spec,
        "SELECT count(*) FROM information_schema.tables WHERE table_name LIKE '%dataferry_build'",
    ) == [(0,)]


@pytest.mark.parametrize(
    ("sql", "error"),
    [
        ("SELECT * FROM nowhere", r"order_lines.sql: model order_lines reads nowhere; name a"),
        ("SELECT * FROM raw_postgres.orders", r"reads raw_postgres.orders; name a dataset"),
        ("SELECT FROM WHERE (", r"order_lines.sql(:\d+)?: not valid SQL"),
        ("DROP TABLE customer", r"order_lines.sql: a model file holds exactly one SELECT"),
        ("SELECT * FROM order_lines", r"model order_lines reads itself"),
    ],
)
def test_model_sql_errors_name_the_file(
    pipeline: PipelineFactory, schema: str, sql: str, error: str
) -> None:
    spec = make_spec(pipeline, schema, lines_sql=sql)
    from dataferry.warehouse.models import plan_models

    with pytest.raises(SpecError, match=error):
        plan_models(spec, "duckdb", "__b")


def test_models_reading_each_other_in_a_cycle_are_refused(
    pipeline: PipelineFactory, schema: str
) -> None:
    spec = make_spec(pipeline, schema)
    pipeline.write("models/customers.sql", "SELECT customer_id FROM order_lines")
    from dataferry.warehouse.models import plan_models

    with pytest.raises(SpecError, match="models read each other in a cycle: "):
        plan_models(spec, "duckdb", "__b")


def test_models_follow_the_original_naming(pipeline: PipelineFactory, schema: str) -> None:
    spec = make_spec(
        pipeline,
        schema,
        warehouse={
            "duckdb": {"path": str(pipeline.root / "wh.duckdb")},
            "naming": "original",
        },
    )
    stages.load_sql(spec)
    stages.etl(spec)
    assert query(spec, "SELECT count(*) FROM marts.order_lines") == [(3,)]


def test_the_same_model_sql_is_written_for_snowflake(
    pipeline: PipelineFactory, schema: str
) -> None:
    spec = make_spec(pipeline, schema)
    from dataferry.warehouse.models import plan_models

    planned = {m.name: m for m in plan_models(spec, "snowflake", "__b")}
    sql = planned["order_lines"].sql
    assert '"raw_postgres"."orders"' in sql
    assert '"_dataferry_deleted_at" IS NULL' in sql
    assert planned["customers"].sql.count("||") == 2
