"""etl.method export into Snowflake through a storage integration: the export's files are
copied from S3 by Snowflake itself (an external stage), typed in SQL, merged and
reconciled against the export's count.

Run against moto's server (the export and S3) and fakesnow (Snowflake, on DuckDB). A
real account reads S3 through the storage integration's IAM role; here the emulator's
DuckDB is given a filesystem that reads moto's S3 with boto3 (MotoS3 below), which stands
in for that role: the integration's name is accepted and otherwise unused. What the
emulator cannot run, the JavaScript UDF for json, set and _attributes columns, is tested
in Node.js (tests/unit/test_dynamodb_wire_js.py)."""

import contextlib
import datetime as dt
import io
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import boto3
import pytest
import snowflake.connector

from dataferry import stages
from dataferry.errors import TargetError
from dataferry.stores.dynamodb.wire_columns import column_array
from dataferry.types import parse_type
from dataferry.warehouse import snowflake_export as sfx
from tests.conftest import PipelineFactory, unique
from tests.integration.test_snowflake import SNOWFLAKE

fakesnow = pytest.importorskip("fakesnow", reason="fakesnow, the Snowflake emulator, needs 3.11+")
fsspec = pytest.importorskip("fsspec")

BUCKET = "dataferry-exports"


class MotoS3(fsspec.AbstractFileSystem):
    """s3:// for the emulator's DuckDB, read from moto's server with boto3: what the
    storage integration's role gives a real account."""

    protocol = ("s3",)

    def __init__(self, client: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.client = client

    def ls(self, path: str, detail: bool = True, **_: Any) -> list[Any]:
        bucket, _, prefix = self._strip_protocol(path).rstrip("/").partition("/")
        listed = self.client.list_objects_v2(
            Bucket=bucket, Prefix=f"{prefix}/" if prefix else "", Delimiter="/"
        )
        out = [
            {"name": f"{bucket}/{o['Key']}", "size": o["Size"], "type": "file"}
            for o in listed.get("Contents", [])
        ] + [
            {"name": f"{bucket}/{p['Prefix'].rstrip('/')}", "size": 0, "type": "directory"}
            for p in listed.get("CommonPrefixes", [])
        ]
        return out if detail else [o["name"] for o in out]

    def modified(self, path: str) -> dt.datetime:
        bucket, _, key = self._strip_protocol(path).partition("/")
        return self.client.head_object(Bucket=bucket, Key=key)["LastModified"]

    def _open(self, path: str, mode: str = "rb", **_: Any) -> io.BytesIO:
        bucket, _, key = self._strip_protocol(path).partition("/")
        return io.BytesIO(self.client.get_object(Bucket=bucket, Key=key)["Body"].read())


@pytest.fixture
def emulator(moto_stores: dict[str, Any], moto_url: str) -> Iterator[Any]:
    s3 = boto3.client("s3", endpoint_url=moto_url, region_name="us-west-2")
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "us-west-2"}
        )
    with fakesnow.patch():
        conn = snowflake.connector.connect(database="DATAFERRY_DB", schema="PUBLIC")
        conn._duck_conn.register_filesystem(MotoS3(s3))  # one DuckDB for every session
        yield conn
        conn.close()


# ---- the typing SQL against the Python reader, value by value

CASES: dict[str, list[dict[str, Any] | None]] = {
    "numeric(10,2)": [
        {"N": "12.5"},
        {"N": "12.50"},
        {"N": "-0.01"},
        {"N": "12.345"},  # a third decimal: refused, never rounded
        {"N": "12345678.9"},
        {"N": "123456789"},  # 9 integer digits in numeric(10,2): refused
        {"N": "007.10"},
        {"S": "12.5"},  # text where a number is declared
        {"NULL": True},
        None,
    ],
    "bigint": [
        {"N": "9223372036854775807"},
        {"N": "9223372036854775808"},
        {"N": "-42"},
        {"N": "1.5"},
        {"BOOL": True},
    ],
    "smallint": [{"N": "32767"}, {"N": "32768"}, {"N": "-32768"}],
    "double": [{"N": "0.1"}, {"N": "-1234567.125"}, {"S": "x"}],
    "boolean": [{"BOOL": True}, {"BOOL": False}, {"S": "true"}, {"NULL": True}],
    "text": [{"S": 'héllo "quoted"'}, {"S": ""}, {"N": "1"}],
    "varchar(3)": [{"S": "abc"}],
    "date": [{"S": "2024-02-29"}, {"S": "2023-02-29"}, {"S": "2024-2-9"}, {"S": "20240101"}],
    "timestamp": [
        {"S": "2024-01-02 03:04:05"},
        {"S": "2024-01-02T03:04:05.123456"},
        {"S": "2024-01-02T03:04:05.1234567"},
        {"S": "2024-01-02T03:04:05Z"},
        {"S": "2024-01-02"},
    ],
    "timestamptz": [
        {"S": "2024-01-02T03:04:05Z"},
        {"S": "2024-01-02T03:04:05+02:00"},
        {"S": "2024-01-02T03:04:05.5-05:30"},
        {"S": "2024-01-02T03:04:05"},
        {"S": "2023-02-29T00:00:00Z"},
    ],
    "binary": [{"B": "aGVsbG8="}, {"S": "x"}],
}


def reader(t: str, value: dict[str, Any] | None) -> tuple[bool, Any]:
    """(refused, value) as the scan path's Python reader types one attribute."""
    item = {} if value is None else {"a": value}
    try:
        return False, column_array("a", parse_type(t), [item]).to_pylist()[0]
    except ValueError:
        return True, None


@pytest.mark.parametrize("type_text", list(CASES))
def test_the_sql_refuses_and_types_as_the_python_reader_does(emulator: Any, type_text: str) -> None:
    t = parse_type(type_text)
    typed = sfx.typed_attribute("a", t)
    assert typed.bad is not None
    cur = emulator.cursor()
    landing = unique("landing")
    cur.execute(f"CREATE TABLE {landing} (n INTEGER, item VARIANT)")
    for i, value in enumerate(CASES[type_text]):
        item = {"Item": {} if value is None else {"a": value}}
        cur.execute(f"INSERT INTO {landing} SELECT %s, PARSE_JSON(%s)", (i, json.dumps(item)))
    bad = cur.execute(
        f"SELECT n, {typed.bad.sql} FROM {landing} ORDER BY n", typed.bad.params
    ).fetchall()
    for (i, refused), value in zip(bad, CASES[type_text], strict=True):
        want_refused, want = reader(type_text, value)
        assert bool(refused) == want_refused, (type_text, value)
        if want_refused:
            continue
        (got,) = cur.execute(
            f"SELECT {typed.value.sql} FROM {landing} WHERE n = %s", [*typed.value.params, i]
        ).fetchone()
        if isinstance(want, dt.datetime) and want.tzinfo is not None:
            got = got.astimezone(dt.timezone.utc)
        assert got == want, (type_text, value, got, want)


# ---- the whole path

ITEMS = [
    {"sku": "A-1", "price": 12.5, "qty": 3, "active": True, "day": "2024-02-29"},
    {"sku": "B-2", "price": 0.01, "qty": -7, "active": False, "day": "2023-12-31"},
    {"sku": "C-3", "price": 99999999.99, "qty": 0, "active": None, "day": None},
]


def export_spec(
    pipeline: PipelineFactory, moto: dict[str, Any], table: str, items: list[Any], **snow: Any
) -> Any:
    pipeline.write("stock.json", json.dumps(items))
    ds = {
        "source": {"path": "stock.json"},
        "target": {"store": "dynamodb", "table": table},
        "key": {"hash": "sku"},
        "point_in_time_recovery": True,
        "columns": {
            "sku": {"type": "text", "nullable": False},
            "price": {"type": "numeric(10,2)"},
            "qty": {"type": "integer"},
            "active": {"type": "boolean"},
            "day": {"type": "date"},
        },
        "etl": {"method": "export"},
    }
    dynamodb = {**moto["dynamodb"], "export_bucket": BUCKET}
    return pipeline.spec(
        {"stock": ds},
        stores={"dynamodb": dynamodb},
        warehouse={"snowflake": {**SNOWFLAKE, **snow}},
    )


def raw_rows(emulator: Any, table: str) -> list[tuple[Any, ...]]:
    return list(
        emulator.cursor()
        .execute(
            f'SELECT sku, price, qty, active, day, _attributes FROM raw_dynamodb."{table}" '
            "ORDER BY sku"
        )
        .fetchall()
    )


def test_an_export_is_copied_from_s3_and_equals_the_scan(
    pipeline: PipelineFactory, moto_stores: dict[str, Any], emulator: Any
) -> None:
    table = unique("stock")
    spec = export_spec(pipeline, moto_stores, table, ITEMS, storage_integration="DATAFERRY_EXPORTS")
    stages.load_nosql(spec)
    (rec,) = stages.etl(spec)
    assert rec.status == "ok"
    assert (rec.counts.read, rec.counts.inserted) == (3, 3)
    assert rec.note is not None
    assert rec.note.endswith("copied into Snowflake by storage integration DATAFERRY_EXPORTS")
    assert any("the source counted 3" in c for c in rec.checks)
    assert raw_rows(emulator, table) == [
        ("A-1", Decimal("12.50"), 3, True, dt.date(2024, 2, 29), None),
        ("B-2", Decimal("0.01"), -7, False, dt.date(2023, 12, 31), None),
        ("C-3", Decimal("99999999.99"), 0, None, None, None),
    ]
    # The same table read by the scan path into the same raw table: every value equal,
    # so nothing is written.
    scan = export_spec(pipeline, moto_stores, table, ITEMS)
    (again,) = stages.etl(scan)
    assert again.note is not None
    assert "storage integration" not in again.note
    assert (again.counts.read, again.counts.written, again.counts.unchanged) == (3, 0, 3)


def test_a_value_the_reader_refuses_stops_the_copy_and_changes_nothing(
    pipeline: PipelineFactory, moto_stores: dict[str, Any], emulator: Any
) -> None:
    table = unique("stock")
    spec = export_spec(pipeline, moto_stores, table, ITEMS, storage_integration="DATAFERRY_EXPORTS")
    stages.load_nosql(spec)
    stages.etl(spec)
    ddb = boto3.client(
        "dynamodb", endpoint_url=moto_stores["dynamodb"]["endpoint"], region_name="us-west-2"
    )
    # written behind dataferry's back: a price with a third decimal
    ddb.put_item(TableName=table, Item={"sku": {"S": "D-4"}, "price": {"N": "1.005"}})
    with pytest.raises(
        TargetError, match=r"attribute price holds \{\"N\":\"1.005\"\}, not numeric\(10,2\)"
    ):
        stages.etl(spec)
    assert [r[0] for r in raw_rows(emulator, table)] == ["A-1", "B-2", "C-3"]


def test_a_real_column_reads_through_this_machine_and_says_why(
    pipeline: PipelineFactory, moto_stores: dict[str, Any], emulator: Any
) -> None:
    table = unique("stock")
    spec = export_spec(pipeline, moto_stores, table, ITEMS, storage_integration="DATAFERRY_EXPORTS")
    raw = spec.model_dump(by_alias=True)
    raw["datasets"]["stock"]["columns"]["qty"] = {"type": "real"}
    spec = type(spec).model_validate(raw | {"path": spec.path})
    stages.load_nosql(spec)
    (rec,) = stages.etl(spec)
    assert rec.note is not None
    assert "read through this machine: column qty is real" in rec.note
