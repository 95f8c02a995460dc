"""Table, schema and column names an attacker (or an unlucky data modeller) could choose:
quotes, semicolons, spaces, reserved words, mixed case. Every statement dataferry sends
quotes them with the driver's own tools, so each stage loads and reads the data and
nothing else happens."""

from __future__ import annotations

from typing import Any

from psycopg import sql

from dataferry import stages
from dataferry.status import status
from tests.conftest import PipelineFactory, unique
from tests.integration.conftest import pg_conn

HOSTILE_TABLE = 'Order "Lines"; DROP TABLE victim; --'
HOSTILE_SCHEMA = "Sales 'Q1' \"EU\""


def quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def test_hostile_names_through_load_etl_models_and_status(pipeline: PipelineFactory) -> None:
    schema = f"{HOSTILE_SCHEMA} {unique('s')}"
    pipeline.write(
        "lines.csv",
        'select,from,Order,user\n1,2,"a ""b""",x\n2,3,c,y\n',
    )
    datasets: dict[str, Any] = {
        "lines": {
            "source": {"path": "lines.csv"},
            "target": {"store": "postgres", "table": HOSTILE_TABLE, "schema": schema},
            "columns": {
                "select": {"type": "integer", "nullable": False},
                "from": {"type": "integer"},
                "Order": {"type": "text"},
                "user": {"type": "text"},
            },
            "primary_key": ["select"],
        }
    }
    spec = pipeline.spec(datasets)
    with pg_conn(spec) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS public.victim (id int)")
    (loaded,) = stages.load_sql(spec)
    assert loaded.counts.written == 2
    (again,) = stages.load_sql(spec, ctx=stages.RunContext(force=True))
    assert again.counts.unchanged == 2
    etl = stages.etl(spec)
    assert [r.counts.read for r in etl] == [2]
    with pg_conn(spec) as conn:
        assert conn.execute("SELECT to_regclass('public.victim')").fetchone() != (None,)
        rows = conn.execute(
            sql.SQL('SELECT "select", "from", "Order", "user" FROM {} ORDER BY 1').format(
                sql.Identifier(schema, HOSTILE_TABLE)
            )
        ).fetchall()
    assert rows == [(1, 2, 'a "b"', "x"), (2, 3, "c", "y")]
    import duckdb

    raw_schema, raw_table = spec.raw_table("lines")
    with duckdb.connect(str(spec.duckdb_path)) as wh:
        got = wh.execute(
            f'SELECT "select", "Order" FROM {quoted(raw_schema)}.{quoted(raw_table)} ORDER BY 1'
        ).fetchall()
    assert got == [(1, 'a "b"'), (2, "c")]
    report = status(spec)
    assert report["postgres"]["tables"][0]["rows"] == 2
