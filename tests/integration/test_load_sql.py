import csv
from decimal import Decimal

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from dataferry import stages
from dataferry.connections import resolve_postgres
from dataferry.errors import RejectedRows, TargetError
from dataferry.stages import RunContext
from tests.conftest import PipelineFactory, unique
from tests.integration.conftest import pg_conn, retail_sql_datasets, write_retail_csv


def read_rejects(pipeline: PipelineFactory, dataset: str) -> list[list[str]]:
    with (pipeline.root / "rejects" / f"{dataset}.rejects.csv").open(encoding="utf-8") as f:
        header, *body = list(csv.reader(f))
    assert header == ["source_file", "line", "column", "value", "reason"]
    return body


def rows(spec, schema: str, table: str, versions: bool = False) -> list[tuple]:
    """The table's rows in key order; with ``versions``, each led by its xmin (a row
    written again gets a new one)."""
    shown = "xmin::text, *" if versions else "*"
    with pg_conn(spec) as conn:
        return conn.execute(
            f'SELECT {shown} FROM "{schema}"."{table}" ORDER BY {2 if versions else 1}'
        ).fetchall()


def test_loads_parents_first_and_rerun_changes_nothing(
    pipeline: PipelineFactory, schema: str
) -> None:
    write_retail_csv(pipeline)
    spec = pipeline.spec(retail_sql_datasets(schema))
    first = stages.load_sql(spec)
    assert [r.dataset for r in first] == ["customer", "item", "orders"]
    assert [(r.counts.read, r.counts.inserted) for r in first] == [(2, 2), (2, 2), (3, 3)]
    orders = rows(spec, schema, "orders")
    assert orders[0][4] == Decimal("14.50")  # money stays exact
    assert orders[0][5] == "sin bolsa, por favor"
    assert orders[2][5] == 'dijo "gracias"'
    assert orders[1][5] is None
    assert rows(spec, schema, "customer")[0][3] == "5512345678"  # 10 digits, as text

    skipped = stages.load_sql(spec)
    assert {r.status for r in skipped} == {"skipped"}
    assert "unchanged since run" in (skipped[0].note or "")
    second = stages.load_sql(spec, ctx=RunContext(force=True))
    assert [(r.counts.inserted, r.counts.updated, r.counts.unchanged) for r in second] == [
        (0, 0, 2),
        (0, 0, 2),
        (0, 0, 3),
    ]
    assert len(rows(spec, schema, "orders")) == 3


def test_a_changed_row_is_updated_and_only_it(pipeline: PipelineFactory, schema: str) -> None:
    write_retail_csv(pipeline)
    spec = pipeline.spec(retail_sql_datasets(schema))
    stages.load_sql(spec)
    pipeline.write(
        "item.csv", "item_id,name,price\n1,Café 500 g,199.00\n2,Agua 1 L,14.50\n3,Té,20\n"
    )
    (item,) = stages.load_sql(spec, ["item"])
    assert (item.counts.inserted, item.counts.updated, item.counts.unchanged) == (1, 1, 1)
    assert rows(spec, schema, "item")[0][2] == Decimal("199.00")


def test_a_bad_row_leaves_the_table_exactly_as_it_was(
    pipeline: PipelineFactory, schema: str
) -> None:
    write_retail_csv(pipeline)
    spec = pipeline.spec(retail_sql_datasets(schema))
    stages.load_sql(spec)
    before = rows(spec, schema, "item")
    pipeline.write("item.csv", "item_id,name,price\n1,Café,1.00\n5,Nuevo,2.00\n6,Malo,abc\n")
    with pytest.raises(RejectedRows) as e:
        stages.load_sql(spec, ["item"])
    assert "1 row(s) rejected, more than the 0 allowed" in str(e.value)
    assert "item.csv:4: column price: not a valid numeric(10,2) (value 'abc')" in str(e.value)
    assert rows(spec, schema, "item") == before
    assert read_rejects(pipeline, "item") == [
        [
            str(pipeline.root / "item.csv"),
            "4",
            "price",
            "abc",
            "column price: not a valid numeric(10,2)",
        ]
    ]
    with pg_conn(spec) as conn:
        status, error = conn.execute(
            "SELECT status, error FROM dataferry.loads WHERE dataset = 'item' "
            "ORDER BY started_at DESC LIMIT 1"
        ).fetchone()
    assert status == "failed"
    assert "abc" in error


def test_foreign_key_violation_names_line_value_and_parent(
    pipeline: PipelineFactory, schema: str
) -> None:
    orders = (
        "order_id,customer_id,item_id,order_date,price,comments\n"
        "1,1,1,2024-01-01,1.00,\n"
        "2,99,1,2024-01-01,1.00,\n"
    )
    write_retail_csv(pipeline, **{"orders.csv": orders})
    spec = pipeline.spec(retail_sql_datasets(schema))
    with pytest.raises(RejectedRows) as e:
        stages.load_sql(spec)
    assert "orders.csv:3: customer_id=99 has no matching row in customer (customer_id)" in str(
        e.value
    )
    with pg_conn(spec) as conn:  # even the CREATE TABLE was rolled back with the load
        assert conn.execute("SELECT to_regclass(%s)", (f"{schema}.orders",)).fetchone() == (None,)


def test_duplicate_key_in_one_file_names_both_lines(pipeline: PipelineFactory, schema: str) -> None:
    write_retail_csv(pipeline, **{"item.csv": "item_id,name,price\n1,a,1\n2,b,2\n1,c,3\n"})
    spec = pipeline.spec(retail_sql_datasets(schema))
    with pytest.raises(RejectedRows, match="2 row"):
        stages.load_sql(spec, ["item"])
    reasons = {(r[1], r[4]) for r in read_rejects(pipeline, "item")}
    assert reasons == {
        ("2", "primary key (item_id)=(1) repeats on lines 2, 4"),
        ("4", "primary key (item_id)=(1) repeats on lines 2, 4"),
    }


def test_existing_table_that_differs_is_reported_not_altered(
    pipeline: PipelineFactory, schema: str
) -> None:
    write_retail_csv(pipeline)
    spec = pipeline.spec(retail_sql_datasets(schema))
    with pg_conn(spec) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        conn.execute(f'CREATE TABLE "{schema}".item (item_id integer PRIMARY KEY, name text)')
    with pytest.raises(TargetError) as e:
        stages.load_sql(spec, ["item"])
    msg = str(e.value)
    assert "column name is text in the table, varchar(64) in the spec" in msg
    assert "column price is in the spec but not in the table (and NOT NULL" in msg
    assert rows(spec, schema, "item") == []


def test_identity_sequence_moves_past_loaded_ids(pipeline: PipelineFactory, schema: str) -> None:
    write_retail_csv(pipeline)
    spec = pipeline.spec(retail_sql_datasets(schema))
    stages.load_sql(spec)
    with pg_conn(spec) as conn:
        new_id = conn.execute(
            f'INSERT INTO "{schema}".item (name, price) VALUES (%s, %s) RETURNING item_id',
            ("Nuevo", Decimal("1.00")),
        ).fetchone()[0]
    assert new_id == 3


def test_ledger_records_file_checksum_and_counts(pipeline: PipelineFactory, schema: str) -> None:
    import hashlib

    write_retail_csv(pipeline)
    spec = pipeline.spec(retail_sql_datasets(schema))
    (rec,) = stages.load_sql(spec, ["customer"])
    digest = hashlib.sha256((pipeline.root / "customer.csv").read_bytes()).hexdigest()
    with pg_conn(spec) as conn:
        row = conn.execute(
            "SELECT file_sha256, read, inserted, status, spec_sha256 FROM dataferry.loads "
            "WHERE run_id = %s",
            (rec.run_id,),
        ).fetchone()
    assert row == (digest, 2, 2, "ok", spec.dataset_hash("customer"))


def test_a_ledger_made_by_an_older_dataferry_gains_what_it_lacks(
    pipeline: PipelineFactory, schema: str
) -> None:
    """The ledger is checked in one catalogue query; what it lacks is still made: the
    columns added since an older version (kept rows stay), and the files table."""
    write_retail_csv(pipeline)
    base = pipeline.spec(retail_sql_datasets(schema))
    database = unique("db")
    with pg_conn(base) as su:
        su.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    params = conninfo_to_dict(resolve_postgres(base).conninfo)
    url = make_conninfo(**{**params, "dbname": database})
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA dataferry")
        conn.execute(
            "CREATE TABLE dataferry.loads (run_id text NOT NULL, dataset text NOT NULL, "
            'target text NOT NULL, "table" text NOT NULL, source text NOT NULL, '
            "spec_sha256 text NOT NULL, started_at timestamptz NOT NULL, status text NOT NULL)"
        )
        conn.execute(
            "INSERT INTO dataferry.loads VALUES "
            "('old', 'customer', 'postgres', 't', 's', 'x', now() - interval '1 day', 'failed')"
        )
    spec = pipeline.spec(retail_sql_datasets(schema), stores={"postgres": {"url": url}})
    (rec,) = stages.load_sql(spec, ["customer"])
    assert rec.status == "ok"
    with psycopg.connect(url, autocommit=True) as conn:
        rows_now = conn.execute(
            "SELECT run_id, status, inserted, note FROM dataferry.loads ORDER BY started_at"
        ).fetchall()
        files = conn.execute("SELECT count(*) FROM dataferry.load_files").fetchone()
    assert rows_now == [("old", "failed", None, None), (rec.run_id, "ok", 2, None)]
    assert files == (1,)
    (again,) = stages.load_sql(spec, ["customer"])  # complete now: nothing made twice
    assert again.status == "skipped"


def test_max_rejects_loads_the_good_rows_and_lists_every_bad_one(
    pipeline: PipelineFactory, schema: str
) -> None:
    orders = (
        "order_id,customer_id,item_id,order_date,price,comments\n"
        "1,1,1,2024-01-01,1.00,ok\n"
        "2,1,1,2024-02-30,1.00,bad date\n"
        '3,1,1,2024-01-01,1.00,"two\nlines"\n'
        "4,1,1\n"
        "5,99,1,2024-01-01,1.00,orphan\n"
        "6,1,1,2024-01-01,,missing price\n"
        "7,1,1,2024-01-01,1.00,ok\n"
    )
    write_retail_csv(pipeline, **{"orders.csv": orders})
    spec = pipeline.spec(retail_sql_datasets(schema))
    with pytest.raises(RejectedRows, match="4 row"):
        stages.load_sql(spec, ctx=RunContext(max_rejects=3))
    stages.load_sql(spec, ["customer", "item"])
    (rec,) = stages.load_sql(spec, ["orders"], RunContext(max_rejects=4))
    assert (rec.counts.read, rec.counts.inserted, rec.counts.rejected) == (7, 3, 4)
    assert [r[0] for r in rows(spec, schema, "orders")] == [1, 3, 7]
    got = [(r[1], r[2], r[4]) for r in read_rejects(pipeline, "orders")]
    assert got == [
        ("3", "order_date", "column order_date: not a valid date"),
        ("6", "", "expected 6 fields, found 3"),
        ("7", "customer_id", "customer_id=99 has no matching row in customer (customer_id)"),
        ("8", "price", "column price: missing required value"),
    ]
    with pg_conn(spec) as conn:
        assert conn.execute(
            "SELECT rejected, rejects_file FROM dataferry.loads WHERE run_id = %s",
            (rec.run_id,),
        ).fetchone() == (4, str(pipeline.root / "rejects" / "orders.rejects.csv"))
    pipeline.write("orders.csv", "order_id,customer_id,item_id,order_date,price,comments\n")
    stages.load_sql(spec, ["orders"])
    assert not (pipeline.root / "rejects" / "orders.rejects.csv").exists()  # no stale file


def with_mode(schema: str, dataset: str, mode: str) -> dict:
    datasets = retail_sql_datasets(schema)
    datasets[dataset]["mode"] = mode
    return datasets


def test_replace_mode_makes_the_table_the_file(pipeline: PipelineFactory, schema: str) -> None:
    write_retail_csv(pipeline, **{"item.csv": "item_id,name,price\n1,a,1\n2,b,2\n3,c,3\n"})
    spec = pipeline.spec(with_mode(schema, "item", "replace"))
    stages.load_sql(spec, ["item"])
    pipeline.write("item.csv", "item_id,name,price\n1,a,1\n3,c,3.50\n")
    (rec,) = stages.load_sql(spec, ["item"])
    c = rec.counts
    assert (c.inserted, c.updated, c.unchanged, c.deleted) == (0, 1, 1, 1)
    assert [r[:2] for r in rows(spec, schema, "item")] == [(1, "a"), (3, "c")]


def test_replace_mode_cannot_delete_rows_children_use(
    pipeline: PipelineFactory, schema: str
) -> None:
    write_retail_csv(pipeline)
    spec = pipeline.spec(with_mode(schema, "item", "replace"))
    stages.load_sql(spec)
    before = rows(spec, schema, "item")
    pipeline.write("item.csv", "item_id,name,price\n1,Café 500 g,189.00\n")  # orders use 2
    with pytest.raises(TargetError, match="foreign key"):
        stages.load_sql(spec, ["item"])
    assert rows(spec, schema, "item") == before


def test_append_mode_never_appends_a_file_twice(pipeline: PipelineFactory, schema: str) -> None:
    write_retail_csv(pipeline, **{"item.csv": "item_id,name,price\n1,a,1\n2,b,2\n"})
    spec = pipeline.spec(with_mode(schema, "item", "append"))
    assert stages.load_sql(spec, ["item"])[0].counts.inserted == 2
    (again,) = stages.load_sql(spec, ["item"])
    assert again.status == "skipped"
    with pytest.raises(
        RejectedRows, match=r"primary key \(item_id\)=\(1\) is already in the table"
    ):
        stages.load_sql(spec, ["item"], RunContext(force=True))
    pipeline.write("item.csv", "item_id,name,price\n3,c,3\n4,d,4\n")
    assert stages.load_sql(spec, ["item"])[0].counts.inserted == 2
    assert [r[0] for r in rows(spec, schema, "item")] == [1, 2, 3, 4]


def test_a_changed_spec_loads_the_same_file_again(pipeline: PipelineFactory, schema: str) -> None:
    write_retail_csv(pipeline)
    stages.load_sql(pipeline.spec(retail_sql_datasets(schema)), ["item"])
    datasets = retail_sql_datasets(schema)
    datasets["item"]["max_rejects"] = 5  # any change to the dataset's spec
    (rec,) = stages.load_sql(pipeline.spec(datasets), ["item"])
    assert (rec.status, rec.counts.unchanged) == ("ok", 2)


def test_each_dataset_commits_on_its_own(pipeline: PipelineFactory, schema: str) -> None:
    orders = "order_id,customer_id,item_id,order_date,price,comments\n1,1,1,bad,1.00,\n"
    write_retail_csv(pipeline, **{"orders.csv": orders})
    spec = pipeline.spec(retail_sql_datasets(schema))
    with pytest.raises(RejectedRows):
        stages.load_sql(spec)
    assert len(rows(spec, schema, "customer")) == 2  # parents loaded before the failure stay
    with pg_conn(spec) as conn:
        assert conn.execute(
            "SELECT dataset, status FROM dataferry.loads WHERE dataset IN "
            "('customer', 'item', 'orders') AND target = 'postgres' "
            "AND spec_sha256 = ANY(%s) ORDER BY started_at",
            ([spec.dataset_hash(n) for n in ("customer", "item", "orders")],),
        ).fetchall()[-3:] == [("customer", "ok"), ("item", "ok"), ("orders", "failed")]


def test_migrate_adds_nullable_columns_and_widens_types_only(
    pipeline: PipelineFactory, schema: str
) -> None:
    write_retail_csv(pipeline)
    spec = pipeline.spec(retail_sql_datasets(schema))
    stages.load_sql(spec)
    wider = retail_sql_datasets(schema)
    wider["item"]["columns"]["name"]["type"] = "varchar(128)"
    wider["item"]["columns"]["price"]["type"] = "numeric(12,3)"
    wider["item"]["columns"]["stock"] = {"type": "integer"}
    pipeline.write("item.csv", "item_id,name,price,stock\n1,Café 500 g,189.00,5\n2,Agua,14.5,\n")
    spec = pipeline.spec(wider)
    with pytest.raises(TargetError) as e:
        stages.load_sql(spec, ["item"])
    assert "widen column name from varchar(64) to varchar(128) (--migrate would)" in str(e.value)
    assert "add column stock integer (--migrate would)" in str(e.value)
    (rec,) = stages.load_sql(spec, ["item"], RunContext(migrate=True))
    assert rec.note
    assert rec.note.startswith("migrated: ")
    assert rows(spec, schema, "item") == [
        (1, "Café 500 g", Decimal("189.000"), 5),
        (2, "Agua", Decimal("14.500"), None),
    ]
    narrower = retail_sql_datasets(schema)  # back to varchar(64), numeric(10,2): narrowing
    narrower["item"]["columns"]["stock"] = {"type": "integer"}
    pipeline.write("item.csv", "item_id,name,price,stock\n1,x,1,1\n")
    with pytest.raises(TargetError, match="numeric\\(12,3\\) in the table, numeric\\(10,2\\)"):
        stages.load_sql(pipeline.spec(narrower), ["item"], RunContext(migrate=True))


def test_a_dropped_table_is_loaded_again_though_the_ledger_has_the_file(
    pipeline: PipelineFactory, schema: str
) -> None:
    write_retail_csv(pipeline)
    spec = pipeline.spec(retail_sql_datasets(schema))
    stages.load_sql(spec, ["item"])
    with pg_conn(spec) as conn:
        conn.execute(f'DROP TABLE "{schema}".item')
    (rec,) = stages.load_sql(spec, ["item"])
    assert (rec.status, rec.counts.inserted) == ("ok", 2)


def keys(spec, schema: str) -> list[tuple]:
    with pg_conn(spec) as conn:
        return conn.execute(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
            "FROM pg_constraint WHERE connamespace = %s::regnamespace "
            "AND contype IN ('p', 'u', 'f') ORDER BY 1, 2",
            (schema,),
        ).fetchall()


def test_a_first_load_builds_the_keys_after_the_rows_and_gives_them_back(
    pipeline: PipelineFactory, schema: str
) -> None:
    """Into empty tables the keys come off for the COPY and back on after it. Every
    key the tables had is there afterwards, as it was; a parent that another table's
    foreign key references keeps its primary key throughout (dropping it would drop
    theirs, and PostgreSQL refuses)."""
    from dataferry.connections import resolve_postgres
    from dataferry.stores import postgres as pg

    write_retail_csv(pipeline)
    spec = pipeline.spec(retail_sql_datasets(schema))
    with pg.connect(resolve_postgres(spec)) as conn, conn.transaction():
        for ds in spec.datasets.values():
            pg.provision(conn, spec, ds)  # every table, empty, orders referencing both
    before = keys(spec, schema)
    assert [k[1] for k in before] == [
        "customer_pkey",
        "item_pkey",
        "orders_customer_id_fkey",
        "orders_item_id_fkey",
        "orders_pkey",
    ]
    loaded = stages.load_sql(spec)
    assert [r.counts.inserted for r in loaded] == [2, 2, 3]
    assert keys(spec, schema) == before
    # the keys are real again: a repeated key and an orphan are refused by PostgreSQL
    with pg_conn(spec) as conn:
        with pytest.raises(Exception, match="duplicate key"):
            conn.execute(f'INSERT INTO "{schema}".item SELECT * FROM "{schema}".item LIMIT 1')
        with pytest.raises(Exception, match="foreign key"):
            conn.execute(f'UPDATE "{schema}".orders SET customer_id = 99')


def test_a_first_load_whose_keys_fail_to_build_is_staged_and_keeps_its_keys(
    pipeline: PipelineFactory, schema: str
) -> None:
    """The repeated key makes adding the primary key back fail; the savepoint undoes the
    COPY and the staging path names both lines (see the test above) and loads the rest,
    into a table that has its key."""
    write_retail_csv(pipeline)
    pipeline.write("item.csv", "item_id,name,price\n1,Café,1.00\n2,Agua,2.00\n1,Otra,3.00\n")
    datasets = retail_sql_datasets(schema)
    datasets["item"]["max_rejects"] = 5
    spec = pipeline.spec(datasets)
    (item,) = stages.load_sql(spec, ["item"])
    assert (item.counts.inserted, item.counts.rejected) == (1, 2)
    assert [k[1] for k in keys(spec, schema)] == ["item_pkey"]
    assert [r[0] for r in rows(spec, schema, "item")] == [2]


def test_an_unchanged_rerun_writes_no_row_and_a_changed_orphan_is_still_refused(
    pipeline: PipelineFactory, schema: str
) -> None:
    """One join of the staged rows with the table finds what is new or changed: none,
    and nothing is written (no row gets a new version) and no orphan check is needed;
    some, and those are checked against their parents as on any load."""
    write_retail_csv(pipeline)
    spec = pipeline.spec(retail_sql_datasets(schema))
    stages.load_sql(spec)
    before = rows(spec, schema, "orders", versions=True)
    (again,) = stages.load_sql(spec, ["orders"], ctx=RunContext(force=True))
    assert (again.counts.inserted, again.counts.updated, again.counts.unchanged) == (0, 0, 3)
    assert rows(spec, schema, "orders", versions=True) == before
    pipeline.write(
        "orders.csv",
        "order_id,customer_id,item_id,order_date,price,comments\n"
        '1,1,2,2024-01-31,14.50,"sin bolsa, por favor"\n'
        "2,77,1,2024-02-01,189.00,\n"  # now an orphan
        '3,1,1,2024-02-02,189.00,"dijo ""gracias"""\n'
        "4,2,2,2024-02-03,14.50,\n",  # new
    )
    with pytest.raises(RejectedRows, match=r"orders\.csv:3: customer_id=77 has no matching row"):
        stages.load_sql(spec, ["orders"])
    assert rows(spec, schema, "orders", versions=True) == before
