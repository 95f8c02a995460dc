"""The original take-home project's six files load into the original's objects."""

import os
from pathlib import Path

import duckdb
import pytest

from dataferry import stages
from dataferry.spec import load_spec
from dataferry.stack import EmbeddedStack
from tests.conftest import REPO, SEED_DATA
from tests.integration.conftest import ddb_client, pg_conn

pytestmark = pytest.mark.skipif(
    not (SEED_DATA / "sql" / "customer.csv").exists(),
    reason=f"the original's sample files are not at {SEED_DATA} (set DATAFERRY_SEED_DATA)",
)


def test_original_files_into_original_shapes(
    tmp_path: Path, stack_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATAFERRY_SEED_DATA", str(SEED_DATA))
    text = (REPO / "examples" / "original" / "dataferry.yaml").read_text()
    # Same spec, but on the session's stack and a warehouse of this test's own.
    text += f"stack: {{dir: {stack_dir}}}\nwarehouse: {{duckdb: {{path: {tmp_path}/wh.duckdb}}}}\n"
    (tmp_path / "dataferry.yaml").write_text(text)
    spec = load_spec(tmp_path / "dataferry.yaml")
    with pg_conn(spec) as conn:  # the original's table names live in public: start clean
        conn.execute("DROP TABLE IF EXISTS orders, item, customer")
    client = ddb_client(spec)
    for t in ("customers_data", "items_data", "items_bought_data"):
        if t in client.list_tables()["TableNames"]:
            client.delete_table(TableName=t)

    result = stages.run(spec)
    assert all(r.counts.read == 3 for recs in result.values() for r in recs)
    with pg_conn(spec) as conn:
        types = dict(
            conn.execute(
                "SELECT table_name || '.' || column_name, data_type "
                "FROM information_schema.columns WHERE table_schema = 'public' "
                "AND table_name IN ('customer', 'item', 'orders')"
            ).fetchall()
        )
        assert types["customer.phone_number"] == "integer"
        assert types["item.price"] == "double precision"
        assert types["orders.order_date"] == "date"
        assert conn.execute("SELECT name, price FROM item ORDER BY item_id").fetchall() == [
            ("coffee", 18.99),
            ("water", 9.99),
            ("soda", 24.99),
        ]
    keys = {
        t: [k["AttributeName"] for k in client.describe_table(TableName=t)["Table"]["KeySchema"]]
        for t in ("customers_data", "items_data", "items_bought_data")
    }
    assert keys == {
        "customers_data": ["first_name", "last_name"],
        "items_data": ["title"],
        "items_bought_data": ["item", "customer"],
    }
    with duckdb.connect(str(spec.duckdb_path), read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM raw_dynamodb.items_data").fetchone() == (3,)
        assert conn.execute(
            "SELECT _attributes FROM raw_dynamodb.items_data WHERE title = 'USB'"
        ).fetchone() == ('{"price":10.2}',)
    second = stages.run(spec)
    # The same six files: both loads are skipped by the ledgers; the etl finds no change.
    assert {r.status for r in second["load sql"] + second["load nosql"]} == {"skipped"}
    assert all((r.counts.read, r.counts.written) == (3, 0) for r in second["etl"])
    assert os.environ["DATAFERRY_SEED_DATA"]
    assert EmbeddedStack(stack_dir).status()[0].running
