"""Datasets read from many files: globs and lists, compressed files, one ledger entry per
file, one transaction per dataset, and a later file's row over an earlier one's."""

import bz2
import csv
import gzip
import os
from typing import Any

import pytest

from dataferry import stages
from dataferry.checks import validate
from dataferry.errors import InputError, RejectedRows
from dataferry.plan import plan
from dataferry.stages import RunContext
from tests.conftest import PipelineFactory, unique
from tests.integration.conftest import ddb_client, pg_conn

HEADER = "order_id,customer,amount\n"


def orders(schema: str, path: Any = "landing/**/*.csv", **source: Any) -> dict[str, Any]:
    extra = source.pop("dataset", {})
    return {
        "orders": {
            "source": {"path": path, **source},
            "target": {"store": "postgres", "schema": schema, "table": "orders"},
            "columns": {
                "order_id": {"type": "integer", "nullable": False},
                "customer": {"type": "text"},
                "amount": {"type": "numeric(10,2)"},
            },
            "primary_key": ["order_id"],
            **extra,
        }
    }


def table(spec: Any, schema: str) -> list[tuple[Any, ...]]:
    with pg_conn(spec) as conn:
        return conn.execute(f'SELECT * FROM "{schema}".orders ORDER BY 1').fetchall()


def ledger_files(spec: Any, run_id: str) -> list[str]:
    with pg_conn(spec) as conn:
        rows = conn.execute(
            "SELECT source FROM dataferry.load_files WHERE run_id = %s ORDER BY source", (run_id,)
        ).fetchall()
    return [r[0] for r in rows]


def day(pipeline: PipelineFactory, path: str, *rows: str) -> None:
    pipeline.write(path, HEADER + "".join(r + "\n" for r in rows))


def test_a_nested_glob_loads_every_file_once_and_then_only_what_is_new_or_changed(
    pipeline: PipelineFactory, schema: str
) -> None:
    day(pipeline, "landing/2026/11/28/orders.csv", "1,ana,10.00", "2,bo,20.00")
    day(pipeline, "landing/2026/11/29/orders.csv", "3,cy,30.00")
    day(pipeline, "landing/2026/11/29/late/orders.csv", "4,di,40.00")
    pipeline.write("landing/README.txt", "not a csv file: the glob leaves it out\n")
    spec = pipeline.spec(orders(schema))

    (first,) = stages.load_sql(spec)
    assert first.status == "ok"
    assert first.counts.read == 4
    assert first.counts.inserted == 4
    assert [f.source for f in first.files] == [
        "landing/2026/11/28/orders.csv",
        "landing/2026/11/29/late/orders.csv",
        "landing/2026/11/29/orders.csv",
    ]
    assert [(f.read, f.status) for f in first.files] == [
        (2, "loaded"),
        (1, "loaded"),
        (1, "loaded"),
    ]
    assert all(f.file_sha256 and len(f.file_sha256) == 64 for f in first.files)
    assert ledger_files(spec, first.run_id) == [f.source for f in first.files]

    (again,) = stages.load_sql(spec)
    assert again.status == "skipped"
    assert "all 3 files unchanged" in (again.note or "")

    day(pipeline, "landing/2026/11/30/orders.csv", "5,ed,50.00")  # a new file
    day(pipeline, "landing/2026/11/28/orders.csv", "1,ana,11.00", "2,bo,20.00")  # changed
    (third,) = stages.load_sql(spec)
    loaded = [f.source for f in third.files if f.status == "loaded"]
    assert loaded == ["landing/2026/11/28/orders.csv", "landing/2026/11/30/orders.csv"]
    assert (third.counts.read, third.counts.inserted, third.counts.updated) == (3, 1, 1)
    assert third.counts.unchanged == 1
    assert "2 of 4 files unchanged since earlier runs, skipped" in (third.note or "")
    assert ledger_files(spec, third.run_id) == loaded
    assert [r[2] for r in table(spec, schema)] == [11, 20, 30, 40, 50]


def test_a_later_file_wins_a_repeated_key_and_a_repeat_within_one_file_is_rejected(
    pipeline: PipelineFactory, schema: str
) -> None:
    day(pipeline, "landing/a.csv", "1,ana,10.00", "2,bo,20.00")
    day(pipeline, "landing/b.csv", "1,ana,12.00", "3,cy,30.00", "3,cy,31.00")
    spec = pipeline.spec(orders(schema, "landing/*.csv", dataset={"max_rejects": 5}))
    (rec,) = stages.load_sql(spec)
    assert table(spec, schema) == [(1, "ana", 12), (2, "bo", 20)]
    assert (rec.counts.read, rec.counts.superseded, rec.counts.rejected) == (5, 1, 2)
    with (pipeline.root / "rejects" / "orders.rejects.csv").open() as f:
        rejects = list(csv.reader(f))[1:]
    b = str(pipeline.root / "landing" / "b.csv")
    assert [(r[0], r[1]) for r in rejects] == [(b, "3"), (b, "4")]
    assert "repeats" in rejects[0][4]


def test_mode_append_keeps_the_first_file_s_row_and_rejects_the_later_one(
    pipeline: PipelineFactory, schema: str
) -> None:
    # The ledger is the database's, by dataset name: contents unique to this test.
    day(pipeline, "landing/a.csv", f"1,{schema},10.00")
    day(pipeline, "landing/b.csv", f"1,{schema},12.00", "2,bo,20.00")
    spec = pipeline.spec(
        orders(schema, "landing/*.csv", dataset={"mode": "append", "max_rejects": 1})
    )
    (rec,) = stages.load_sql(spec)
    assert table(spec, schema) == [(1, schema, 10), (2, "bo", 20)]
    assert rec.counts.rejected == 1
    day(pipeline, "landing/c.csv", f"3,{schema},30.00")
    (rec,) = stages.load_sql(spec)
    assert [f.status for f in rec.files] == ["skipped", "skipped", "loaded"]
    assert rec.counts.inserted == 1


def test_replace_is_the_union_of_the_files_and_a_removed_file_s_rows_go(
    pipeline: PipelineFactory, schema: str
) -> None:
    day(pipeline, "landing/a.csv", "1,ana,10.00")
    day(pipeline, "landing/b.csv", "2,bo,20.00")
    spec = pipeline.spec(orders(schema, "landing/*.csv", dataset={"mode": "replace"}))
    stages.load_sql(spec)
    (same,) = stages.load_sql(spec)
    assert same.status == "skipped"
    (pipeline.root / "landing" / "b.csv").unlink()
    (rec,) = stages.load_sql(spec)
    assert rec.status == "ok"
    assert rec.counts.deleted == 1
    assert [f.status for f in rec.files] == ["loaded"]  # replace reads every file
    assert table(spec, schema) == [(1, "ana", 10)]


def test_a_list_of_paths_and_the_order_by_date_in_the_names(
    pipeline: PipelineFactory, schema: str
) -> None:
    # by name, 2026-1-9 would come after 2026-1-10; the date order puts it first
    day(pipeline, "in/orders_2026-1-10.csv", "1,new,2.00")
    day(pipeline, "in/orders_2026-1-9.csv", "1,old,1.00")
    day(pipeline, "extra.csv", "7,x,7.00")
    spec = pipeline.spec(
        orders(
            schema,
            ["in/orders_*.csv", "extra.csv"],
            order={"date": r"(\d{4})-(\d{1,2})-(\d{1,2})"},
        )
    )
    with pytest.raises(InputError, match=r"extra\.csv: its name holds no date matching"):
        stages.load_sql(spec)
    spec = pipeline.spec(
        orders(schema, ["in/orders_*.csv"], order={"date": r"(\d{4})-(\d+)-(\d+)"})
    )
    (rec,) = stages.load_sql(spec)
    assert [f.source for f in rec.files] == ["in/orders_2026-1-9.csv", "in/orders_2026-1-10.csv"]
    assert table(spec, schema) == [(1, "new", 2)]


def test_order_by_mtime(pipeline: PipelineFactory, schema: str) -> None:
    day(pipeline, "in/b.csv", "1,first,1.00")
    day(pipeline, "in/a.csv", "1,second,2.00")
    os.utime(pipeline.root / "in" / "b.csv", (1_000_000, 1_000_000))
    os.utime(pipeline.root / "in" / "a.csv", (2_000_000, 2_000_000))
    spec = pipeline.spec(orders(schema, "in/*.csv", order="mtime"))
    stages.load_sql(spec)
    assert table(spec, schema) == [(1, "second", 2)]


def test_compressed_files_load_as_the_plain_ones_do(pipeline: PipelineFactory, schema: str) -> None:
    import pyarrow as pa

    lines = [f"{n},c{n},{n}.25\n" for n in range(1, 3001)]
    part = [(HEADER + "".join(lines[i : i + 1000])).encode() for i in (0, 1000, 2000)]
    pipeline.write_bytes("in/a.csv.gz", gzip.compress(part[0]))
    pipeline.write_bytes("in/b.csv.bz2", bz2.compress(part[1]))
    with pa.CompressedOutputStream(str(pipeline.root / "in" / "c.csv.zst"), "zstd") as out:
        out.write(part[2])
    pipeline.write("plain/all.csv", HEADER + "".join(lines))
    compressed = pipeline.spec(orders(schema, "in/*.csv*"))
    (rec,) = stages.load_sql(compressed)
    assert rec.counts.inserted == 3000
    assert len(rec.files) == 3
    loaded = table(compressed, schema)
    other = unique("s")
    plain = pipeline.spec(orders(other, "plain/all.csv"))
    stages.load_sql(plain)
    assert table(plain, other) == loaded
    # the checksum is of the bytes as stored
    import hashlib

    stored = (pipeline.root / "in" / "a.csv.gz").read_bytes()
    assert rec.files[0].file_sha256 == hashlib.sha256(stored).hexdigest()


def test_a_corrupt_gzip_names_the_file_and_nothing_of_the_dataset_is_loaded(
    pipeline: PipelineFactory, schema: str
) -> None:
    day(pipeline, "in/a.csv", "1,ana,10.00")
    good = gzip.compress((HEADER + "".join(f"{n},x,1.00\n" for n in range(2, 5000))).encode())
    pipeline.write_bytes("in/b.csv.gz", good[: len(good) // 2])  # truncated
    spec = pipeline.spec(orders(schema, "in/*.csv*"))
    with pytest.raises(InputError) as e:
        stages.load_sql(spec)
    assert str(pipeline.root / "in" / "b.csv.gz") in str(e.value)
    assert "gzip" in str(e.value)
    with pg_conn(spec) as conn:
        exists = conn.execute("SELECT to_regclass(%s)", (f'"{schema}".orders',)).fetchone()
        assert exists is not None
        assert exists[0] is None
    pipeline.write_bytes("in/b.csv.gz", b"this is not gzip at all")
    with pytest.raises(InputError, match=r"b\.csv\.gz.*gzip stream cannot be read"):
        stages.load_sql(spec)


def test_a_bad_row_in_the_second_file_names_that_file_and_its_line(
    pipeline: PipelineFactory, schema: str
) -> None:
    day(pipeline, "in/a.csv", "1,ana,10.00", "2,bo,20.00")
    day(pipeline, "in/b.csv", "3,cy,30.00", "4,di,abc")
    spec = pipeline.spec(orders(schema, "in/*.csv"))
    with pytest.raises(RejectedRows) as e:
        stages.load_sql(spec)
    assert f"{pipeline.root / 'in' / 'b.csv'}:3: column amount" in str(e.value)


def test_an_unclosed_quote_in_a_compressed_file_names_its_line(
    pipeline: PipelineFactory, schema: str
) -> None:
    text = HEADER + "".join(f"{n},c{n},1.00\n" for n in range(1, 100)) + '100,"open,1.00\n101,x,1\n'
    pipeline.write_bytes("in/a.csv.gz", gzip.compress(text.encode()))
    spec = pipeline.spec(orders(schema, "in/*.csv.gz"))
    with pytest.raises(InputError, match=r"a\.csv\.gz:101: a quoted field opens here"):
        stages.load_sql(spec)


def test_a_pattern_that_matches_nothing_is_an_error_not_an_empty_table(
    pipeline: PipelineFactory, schema: str
) -> None:
    spec = pipeline.spec(orders(schema, "nowhere/*.csv", dataset={"mode": "replace"}))
    with pytest.raises(InputError, match="no file matches this pattern"):
        stages.load_sql(spec)


def test_validate_lists_each_file_and_plan_says_which_would_be_read(
    pipeline: PipelineFactory, schema: str
) -> None:
    day(pipeline, "in/a.csv", "1,ana,10.00")
    day(pipeline, "in/b.csv", "2,bo,oops")
    spec = pipeline.spec(orders(schema, "in/*.csv", dataset={"max_rejects": 1}))
    checks = validate(spec)
    assert [(c.path.rsplit("/", 1)[1], c.rows, c.rejected) for c in checks] == [
        ("a.csv", 1, 0),
        ("b.csv", 0, 1),
    ]
    stages.load_sql(spec)
    day(pipeline, "in/c.csv", "3,cy,30.00")
    items = [i for i in plan(spec, None, RunContext()) if i.stage == "load sql"]
    assert items[0].files == [
        {"file": "in/a.csv", "action": "skip"},
        {"file": "in/b.csv", "action": "skip"},
        {"file": "in/c.csv", "action": "load"},
    ]
    assert items[0].new == 1
    assert items[0].action == "update"


def nosql(table: str, path: str) -> dict[str, Any]:
    return {
        "bought": {
            "source": {"path": path},
            "target": {"store": "dynamodb", "table": table},
            "key": {"hash": "item"},
            "columns": {"item": {"type": "text"}, "price": {"type": "numeric(10,2)"}},
        }
    }


def test_load_nosql_reads_many_compressed_files_newest_wins_and_skips_what_it_has(
    pipeline: PipelineFactory, dynamodb_stores: dict[str, Any]
) -> None:
    name = unique("bought")
    pipeline.write_bytes(
        "in/2026-11-29.jsonl.gz",
        gzip.compress(b'{"item": "a", "price": 1}\n{"item": "b", "price": 2}\n'),
    )
    pipeline.write_bytes("in/2026-11-30.jsonl.gz", gzip.compress(b'{"item": "a", "price": 3}\n'))
    spec = pipeline.spec(nosql(name, "in/*.jsonl.gz"), stores=dynamodb_stores)
    (rec,) = stages.load_nosql(spec)
    assert (rec.counts.read, rec.counts.written, rec.counts.superseded) == (3, 2, 1)
    items = ddb_client(spec).scan(TableName=name)["Items"]
    assert sorted((i["item"]["S"], i["price"]["N"]) for i in items) == [("a", "3"), ("b", "2")]
    (again,) = stages.load_nosql(spec)
    assert again.status == "skipped"
    pipeline.write_bytes("in/2026-12-01.jsonl.gz", gzip.compress(b'{"item": "c", "price": 4}\n'))
    (third,) = stages.load_nosql(spec)
    assert [f.status for f in third.files] == ["skipped", "skipped", "loaded"]
    assert third.counts.written == 1


def test_a_header_only_file_adds_nothing_and_an_empty_one_is_named(
    pipeline: PipelineFactory, schema: str
) -> None:
    day(pipeline, "in/a.csv", "1,ana,10.00")
    day(pipeline, "in/b.csv")  # a day without orders: the header alone
    day(pipeline, "in/c.csv", "3,cy,oops", "4,di,40.00")
    spec = pipeline.spec(orders(schema, "in/*.csv", dataset={"max_rejects": 1}))
    (rec,) = stages.load_sql(spec)
    assert [(f.read, f.rejected) for f in rec.files] == [(1, 0), (0, 0), (2, 1)]
    with (pipeline.root / "rejects" / "orders.rejects.csv").open() as f:
        (reject,) = list(csv.reader(f))[1:]
    assert reject[:2] == [str(pipeline.root / "in" / "c.csv"), "2"]
    pipeline.write_bytes("in/d.csv", b"")
    with pytest.raises(InputError, match=r"d\.csv:1: empty file: no header row"):
        stages.load_sql(spec)
