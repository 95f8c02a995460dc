import contextlib
from decimal import Decimal
from typing import Any

import duckdb
import pytest

from dataferry import stages
from dataferry.errors import CheckFailed, TargetError
from tests.conftest import PipelineFactory, unique
from tests.integration.conftest import pg_conn, retail_sql_datasets, write_retail_csv
from tests.integration.test_load_nosql import BOUGHT, dataset


@pytest.fixture
def spec_and_names(pipeline: PipelineFactory, schema: str) -> tuple[Any, str]:
    write_retail_csv(pipeline)
    pipeline.write("bought.json", BOUGHT)
    table = unique("bought")
    datasets = {**retail_sql_datasets(schema), "bought": dataset(table)}
    return pipeline.spec(datasets), table


def wh(spec: Any) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(spec.duckdb_path), read_only=True)


def test_both_sources_land_typed_and_rerun_changes_nothing(spec_and_names: tuple) -> None:
    spec, table = spec_and_names
    stages.load_sql(spec)
    stages.load_nosql(spec)
    first = stages.etl(spec)
    assert [(r.dataset, r.counts.read, r.counts.inserted) for r in first] == [
        ("customer", 2, 2),
        ("item", 2, 2),
        ("orders", 3, 3),
        ("bought", 3, 3),
    ]
    with wh(spec) as conn:
        types = dict(
            conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = 'raw_postgres' AND table_name = 'orders'"
            ).fetchall()
        )
        assert types["price"] == "DECIMAL(10,2)"
        assert types["order_date"] == "DATE"
        assert types["_dataferry_loaded_at"] == "TIMESTAMP WITH TIME ZONE"
        assert conn.execute("SELECT sum(price) FROM raw_postgres.orders").fetchone() == (
            Decimal("392.50"),
        )
        rows = conn.execute(
            f'SELECT item, price, _attributes FROM raw_dynamodb."{table}" ORDER BY item'
        ).fetchall()
    assert rows[0] == ("Monitor", Decimal("199.99"), '{"note":null}')
    assert rows[2][2] == '{"meta":{"tags":["a","b"],"n":1}}'  # undeclared attributes, exact
    second = stages.etl(spec)
    assert all(r.counts.unchanged == r.counts.read and r.counts.written == 0 for r in second)


def test_a_source_change_updates_only_that_row(spec_and_names: tuple, schema: str) -> None:
    spec, _ = spec_and_names
    stages.load_sql(spec)
    stages.etl(spec, ["item"])
    with pg_conn(spec) as conn:
        conn.execute(f'UPDATE "{schema}".item SET price = 1.99 WHERE item_id = 2')
    (rec,) = stages.etl(spec, ["item"])
    assert (rec.counts.inserted, rec.counts.updated, rec.counts.unchanged) == (0, 1, 1)
    with wh(spec) as conn:
        assert conn.execute("SELECT price FROM raw_postgres.item WHERE item_id = 2").fetchone() == (
            Decimal("1.99"),
        )


def test_etl_before_loading_says_what_to_run(spec_and_names: tuple) -> None:
    spec, _ = spec_and_names
    with pytest.raises(TargetError, match="run `dataferry load sql`"):
        stages.etl(spec, ["customer"])
    with pytest.raises(TargetError, match="run `dataferry load nosql`"):
        stages.etl(spec, ["bought"])


@pytest.mark.parametrize("existing", [False, True])
def test_a_source_without_a_key_constraint_is_checked_for_repeated_keys(
    spec_and_names: tuple, schema: str, existing: bool
) -> None:
    """A table whose primary key guarantees unique keys is not re-checked in the
    warehouse; one without it is, on the first load and on a merge alike."""
    from dataferry.connections import resolve_postgres
    from dataferry.stores import postgres as pg

    spec, _ = spec_and_names
    stages.load_sql(spec)
    if existing:
        stages.etl(spec, ["orders"])
    with pg.connect(resolve_postgres(spec)) as conn:
        assert pg.keys_unique(conn, spec.datasets["orders"])
        conn.execute(f'ALTER TABLE "{schema}".orders DROP CONSTRAINT orders_pkey')
        assert not pg.keys_unique(conn, spec.datasets["orders"])
        conn.execute(
            f"INSERT INTO \"{schema}\".orders VALUES (1, 1, 1, '2024-03-01', 9.99, 'again')"
        )
    with pytest.raises(TargetError, match=r"orders\"?: the source holds key \(1,\) 2 times"):
        stages.etl(spec, ["orders"])
    with wh(spec) as conn:
        rows = conn.execute("SELECT count(*) FROM raw_postgres.orders").fetchone()
    assert rows == ((3,) if existing else (0,))


def test_reconciliation_catches_a_lost_row_mocked_fault(
    spec_and_names: tuple, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Mocked fault: a reader that silently drops the last row (a real reader cannot be
    made to). The etl must fail, name the table and the numbers, and change nothing."""
    import pyarrow as pa

    from dataferry.stores import postgres as pg

    spec, _ = spec_and_names
    stages.load_sql(spec)
    stages.etl(spec, ["orders"])
    with wh(spec) as conn:
        before = conn.execute("SELECT * FROM raw_postgres.orders ORDER BY order_id").fetchall()
    real_read = pg.read

    def lossy(conn: Any, reader: Any, ds: Any, since: Any = None, rows: Any = None):
        batches = list(real_read(conn, reader, ds, since, rows))
        table = pa.Table.from_batches(batches)
        yield from table.slice(0, table.num_rows - 1).to_batches()

    monkeypatch.setattr(pg, "read", lossy)
    with pytest.raises(CheckFailed, match=r"orders.*reconciliation failed.*3 rows.*2 arrived"):
        stages.etl(spec, ["orders"])
    with wh(spec) as conn:
        assert (
            conn.execute("SELECT * FROM raw_postgres.orders ORDER BY order_id").fetchall() == before
        )


def test_the_original_projects_naming(pipeline: PipelineFactory, schema: str) -> None:
    """naming: original puts both sources in one schema, DynamoDB's as <table>_dynamodb."""
    write_retail_csv(pipeline)
    pipeline.write("bought.json", BOUGHT)
    table = unique("bought")
    datasets = {**retail_sql_datasets(schema), "bought": dataset(table)}
    warehouse = {
        "duckdb": {"path": str(pipeline.root / "orig.duckdb")},
        "naming": "original",
        "raw_schema": "analytics",
    }
    spec = pipeline.spec(datasets, warehouse=warehouse)
    stages.load_sql(spec)
    stages.load_nosql(spec)
    stages.etl(spec)
    with wh(spec) as conn:
        tables = {
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'analytics'"
            ).fetchall()
        }
    assert {"customer", "item", "orders", f"{table}_dynamodb"} <= tables
    from dataferry.status import status

    shown = {r["table"]: r["rows"] for r in status(spec)["warehouse"]["tables"]}
    assert shown["analytics.orders"] == 3
    assert shown[f"analytics.{table}_dynamodb"] == 3


@pytest.mark.parametrize("existing", [False, True])
def test_a_read_failing_midway_leaves_the_raw_table_as_it_was_mocked_dropped_connection(
    spec_and_names: tuple, monkeypatch: pytest.MonkeyPatch, existing: bool
) -> None:
    """Mocked fault: the source connection dropping after the first batch."""
    from dataferry.errors import TargetUnavailable
    from dataferry.stores import postgres as pg

    spec, _ = spec_and_names
    stages.load_sql(spec)
    if existing:
        stages.etl(spec, ["orders"])
    real_read = pg.read

    def dropping(conn: Any, reader: Any, ds: Any, since: Any = None, rows: Any = None):
        with contextlib.closing(real_read(conn, reader, ds, since, rows)) as batches:
            yield next(batches).slice(0, 1)
            raise TargetUnavailable("PostgreSQL: server closed the connection unexpectedly")

    monkeypatch.setattr(pg, "read", dropping)
    with pytest.raises(TargetUnavailable, match="server closed the connection"):
        stages.etl(spec, ["orders"], stages.RunContext(full_refresh=True))
    with wh(spec) as conn:
        rows = conn.execute("SELECT count(*) FROM raw_postgres.orders").fetchone()
        marked = conn.execute(
            "SELECT count(_dataferry_deleted_at) FROM raw_postgres.orders"
        ).fetchone()
    assert rows == ((3,) if existing else (0,))
    assert marked == (0,)


def test_a_warehouse_refusing_a_batch_midway_stops_the_read_mocked_bad_batch(
    spec_and_names: tuple, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Mocked fault: a batch DuckDB cannot take, while the source COPY is still open."""
    import pyarrow as pa

    from dataferry.stores import postgres as pg

    spec, _ = spec_and_names
    stages.load_sql(spec)
    real_read = pg.read

    def bad_second(conn: Any, reader: Any, ds: Any, since: Any = None, rows: Any = None):
        batches = real_read(conn, reader, ds, since, rows)
        first = next(batches)
        yield first.slice(0, 1)
        yield pa.record_batch([pa.array(["not a number"])], names=["order_id"])
        yield from batches

    monkeypatch.setattr(pg, "read", bad_second)
    with pytest.raises(TargetError, match=r"warehouse: .*(1 columns|1 children)"):
        stages.etl(spec, ["orders"])
    with wh(spec) as conn:
        assert conn.execute("SELECT count(*) FROM raw_postgres.orders").fetchone() == (0,)


def test_dynamodb_values_round_trip_exactly(
    pipeline: PipelineFactory, dynamodb_stores: dict[str, Any]
) -> None:
    big = "12345678901234567890123456789012345678"  # 38 digits, DynamoDB's most
    pipeline.write(
        "things.jsonl",
        '{"id": "ü-1", "n": ' + big + ', "price": 0.10, "day": "2024-02-29", '
        '"at": "2024-03-01T12:30:00+02:00", "tags": ["b", "a"], "sizes": [10, 2.5], '
        '"blob": "AAEC/w==", "ok": false, "deep": {"x": [1, {"y": -' + big + '}], "z": null}}\n'
        '{"id": "ü-2", "n": -1, "price": null}\n',
    )
    table = unique("things")
    spec = pipeline.spec(
        {
            "things": {
                "source": {"path": "things.jsonl"},
                "target": {"store": "dynamodb", "table": table},
                "key": {"hash": "id"},
                "columns": {
                    "id": {"type": "text", "nullable": False},
                    "n": {"type": "numeric(38,0)"},
                    "price": {"type": "numeric(10,2)"},
                    "day": {"type": "date"},
                    "at": {"type": "timestamptz"},
                    "tags": {"type": "string_set"},
                    "sizes": {"type": "number_set"},
                    "blob": {"type": "binary"},
                    "ok": {"type": "boolean"},
                },
            }
        },
        stores=dynamodb_stores,
    )
    stages.load_nosql(spec)
    stages.etl(spec)
    with wh(spec) as conn:
        rows = conn.execute(
            f'SELECT id, n, price, day, "at", tags, sizes, blob, ok, _attributes '
            f'FROM raw_dynamodb."{table}" ORDER BY id'
        ).fetchall()
    import datetime as dt

    assert rows[0] == (
        "ü-1",
        Decimal(big),
        Decimal("0.10"),
        dt.date(2024, 2, 29),
        dt.datetime(2024, 3, 1, 10, 30, tzinfo=dt.timezone.utc),
        '["a","b"]',
        "[10,2.5]",
        b"\x00\x01\x02\xff",
        False,
        '{"deep":{"x":[1,{"y":-' + big + '}],"z":null}}',
    )
    assert rows[1] == ("ü-2", Decimal(-1), None, None, None, None, None, None, None, None)
