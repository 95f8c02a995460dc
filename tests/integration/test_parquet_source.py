"""Parquet sources: typed values checked against the spec's types, per value where the
file's type is wider than the column's; rejects named by file, row group and row."""

import csv
import datetime as dt
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dataferry import stages
from dataferry.checks import validate
from dataferry.errors import InputError, RejectedRows
from tests.conftest import PipelineFactory
from tests.integration.conftest import pg_conn


def dataset(schema: str, path: str = "in/*.parquet", **extra: Any) -> dict[str, Any]:
    return {
        "sales": {
            "source": {"path": path},
            "target": {"store": "postgres", "schema": schema, "table": "sales"},
            "columns": {
                "sale_id": {"type": "integer", "nullable": False},
                "amount": {"type": "numeric(10,2)"},
                "sold_on": {"type": "date"},
                "sold_at": {"type": "timestamptz"},
                "note": {"type": "varchar(8)"},
            },
            "primary_key": ["sale_id"],
            **extra,
        }
    }


def write(pipeline: PipelineFactory, name: str, table: pa.Table, **kw: Any) -> None:
    path = pipeline.root / "in" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, **kw)


def rows(spec: Any, schema: str) -> list[tuple[Any, ...]]:
    with pg_conn(spec) as conn:
        return conn.execute(f'SELECT * FROM "{schema}".sales ORDER BY 1').fetchall()


UTC = dt.timezone.utc


def test_typed_columns_load_exactly_and_wider_types_are_checked_value_by_value(
    pipeline: PipelineFactory, schema: str
) -> None:
    table = pa.table(
        {
            "sale_id": pa.array([1, 2, 3, 2**40, 5], pa.int64()),  # 2**40: not an integer
            "amount": pa.array(
                [Decimal("1.000"), Decimal("2.500"), Decimal("1.005"), None, Decimal("7")],
                pa.decimal128(12, 3),
            ),
            "sold_on": pa.array([dt.date(2026, 11, d) for d in range(1, 6)], pa.date32()),
            "sold_at": pa.array(
                [dt.datetime(2026, 11, 30, 12, 0, s, tzinfo=UTC) for s in range(5)],
                pa.timestamp("ms", tz="UTC"),
            ),
            "note": pa.array(["ok", "fine", "x", "y", "far too long"]),
        }
    )
    write(pipeline, "a.parquet", table, row_group_size=2)
    spec = pipeline.spec(dataset(schema, max_rejects=3))
    (rec,) = stages.load_sql(spec)
    assert (rec.counts.read, rec.counts.inserted, rec.counts.rejected) == (5, 2, 3)
    got = rows(spec, schema)
    assert got[0] == (
        1,
        Decimal("1.00"),
        dt.date(2026, 11, 1),
        dt.datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC),
        "ok",
    )
    assert [r[0] for r in got] == [1, 2]
    with (pipeline.root / "rejects" / "sales.rejects.csv").open() as f:
        header, *body = list(csv.reader(f))
    assert header == ["source_file", "row_group", "row", "column", "value", "reason"]
    where = [(r[1], r[2], r[3]) for r in body]
    # row 2 (1.005: more scale than numeric(10,2)), row 3 (2**40), row 4 (a long note)
    assert where == [("1", "0", "amount"), ("1", "1", "sale_id"), ("2", "0", "note")]
    assert "out of range for integer" in body[1][5]


def test_floats_become_numerics_through_their_shortest_text(
    pipeline: PipelineFactory, schema: str
) -> None:
    table = pa.table(
        {
            "sale_id": pa.array([1, 2], pa.int32()),
            "amount": pa.array([0.1, 0.125], pa.float64()),
            "sold_on": pa.array([None, None], pa.date32()),
            "sold_at": pa.array([None, None], pa.timestamp("us", tz="UTC")),
            "note": pa.array([None, None], pa.string()),
        }
    )
    write(pipeline, "f.parquet", table)
    spec = pipeline.spec(dataset(schema, max_rejects=1))
    (rec,) = stages.load_sql(spec)
    assert rows(spec, schema) == [(1, Decimal("0.10"), None, None, None)]
    assert rec.counts.rejected == 1  # 0.125 has three decimals: never rounded


def test_dictionary_columns_and_nanosecond_timestamps(
    pipeline: PipelineFactory, schema: str
) -> None:
    """A dictionary-encoded column (pandas' categoricals) is its values, not refused as
    a type; a nanosecond the timestamp cannot keep is a reject naming the value (its
    value once ended the run in a traceback: Python's datetime has no nanoseconds)."""
    ns = 1_764_504_000 * 10**9  # 2025-11-30 12:00:00 UTC
    table = pa.table(
        {
            "sale_id": pa.array([1, 2, 3], pa.int32()),
            "amount": pa.array([None, None, None], pa.decimal128(10, 2)),
            "sold_on": pa.array([None, None, None], pa.date32()),
            "sold_at": pa.array([ns, ns + 1, ns + 1000], pa.timestamp("ns", tz="UTC")),
            "note": pa.array(["a", "b", "a"]).dictionary_encode(),
        }
    )
    write(pipeline, "d.parquet", table)
    spec = pipeline.spec(dataset(schema, max_rejects=1))
    (rec,) = stages.load_sql(spec)
    assert (rec.counts.inserted, rec.counts.rejected) == (2, 1)
    noon = dt.datetime(2025, 11, 30, 12, 0, tzinfo=UTC)
    assert rows(spec, schema) == [
        (1, None, None, noon, "a"),
        (3, None, None, noon + dt.timedelta(microseconds=1), "a"),
    ]
    with (pipeline.root / "rejects" / "sales.rejects.csv").open() as f:
        (_, reject) = list(csv.reader(f))
    assert reject[3:] == [
        "sold_at",
        "2025-11-30 12:00:00.000000001Z",
        "column sold_at: finer than the microsecond timestamptz keeps (it would be truncated)",
    ]


def test_a_page_whose_bytes_changed_fails_its_file_when_the_page_has_a_checksum(
    pipeline: PipelineFactory, schema: str
) -> None:
    """Changed bytes in a data page decode to other values without an error (tried: 27 of
    60 random corruptions did); a page's CRC, which Spark writes by default, is checked."""
    n = 20_000
    table = pa.table(
        {
            "sale_id": pa.array(range(n), pa.int32()),
            "amount": pa.nulls(n, pa.decimal128(10, 2)),
            "sold_on": pa.nulls(n, pa.date32()),
            "sold_at": pa.nulls(n, pa.timestamp("us", tz="UTC")),
            "note": pa.array([str(i % 1000) for i in range(n)]),
        }
    )
    write(pipeline, "c.parquet", table, write_page_checksum=True, compression="none")
    path = pipeline.root / "in" / "c.parquet"
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(64)  # zeroes over a page's values
    path.write_bytes(bytes(data))
    spec = pipeline.spec(dataset(schema))
    with pytest.raises(InputError, match=r"c\.parquet: .*CRC checksum verification failed"):
        stages.load_sql(spec)
    with pg_conn(spec) as conn:
        assert conn.execute("SELECT to_regclass(%s)", (f'"{schema}".sales',)).fetchone() == (None,)


def test_a_column_whose_type_cannot_hold_the_declared_one_fails_before_any_row(
    pipeline: PipelineFactory, schema: str
) -> None:
    table = pa.table(
        {
            "sale_id": pa.array([dt.date(2026, 1, 1)], pa.date32()),
            "amount": pa.array([1], pa.int8()),
            "sold_on": pa.array([1], pa.int8()),
            "sold_at": pa.array([None], pa.timestamp("us")),
            "extra": pa.array([1]),
        }
    )
    write(pipeline, "bad.parquet", table)
    spec = pipeline.spec(dataset(schema))
    with pytest.raises(InputError) as e:
        stages.load_sql(spec)
    text = str(e.value)
    assert "bad.parquet: columns: missing column(s) note" in text
    assert "column(s) not in the spec: extra" in text
    assert "column sale_id is date32[day] in the file, which cannot hold integer" in text
    assert "column sold_on is int8 in the file, which cannot hold date" in text


def test_a_repeated_key_is_named_by_row_group_and_row_and_bad_files_by_name(
    pipeline: PipelineFactory, schema: str
) -> None:
    table = pa.table(
        {
            "sale_id": pa.array([1, 2, 1], pa.int32()),
            "amount": pa.array(["1.00", "2.00", "3.00"]),  # strings: parsed as CSV text is
            "sold_on": pa.array(["2026-11-30", "2026-11-30", "2026-11-30"]),
            "sold_at": pa.array([None, None, None], pa.string()),
            "note": pa.array(["a", "b", "c"]),
        }
    )
    write(pipeline, "dup.parquet", table, row_group_size=2)
    spec = pipeline.spec(dataset(schema))
    with pytest.raises(RejectedRows, match=r"dup\.parquet: row group 0, row 0: primary key"):
        stages.load_sql(spec)
    checks = validate(spec)
    assert [(c.rows, c.rejected) for c in checks] == [(3, 0)]  # repeats are found at load
    (pipeline.root / "in" / "dup.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(InputError, match=r"dup\.parquet: not a readable Parquet file"):
        stages.load_sql(spec)
