from decimal import Decimal
from typing import Any

import pytest

from dataferry.errors import InputError
from dataferry.readers import read_json_records
from dataferry.stages import dynamodb_items
from dataferry.stores.dynamodb.codec import ItemCodec, to_json
from tests.conftest import PipelineFactory

DATASET = {
    "source": {"path": "d.json"},
    "target": {"store": "dynamodb", "table": "things"},
    "key": {"hash": "name", "range": "n"},
    "columns": {
        "name": {"type": "text", "nullable": False},
        "n": {"type": "integer", "nullable": False},
        "price": {"type": "numeric(10,2)"},
    },
}


def items(pipeline: PipelineFactory, text: str, name: str = "d.json") -> list[dict[str, Any]]:
    pipeline.write(name, text)
    spec = pipeline.spec({"d": {**DATASET, "source": {"path": name}}})
    ds = spec.datasets["d"]
    return [item for _, item in dynamodb_items(spec.resolve(ds.source.path), ds, ItemCodec(ds))]


def test_numbers_stay_exact_decimals(pipeline: PipelineFactory) -> None:
    (item,) = items(
        pipeline, '[{"name": "a", "n": 1, "price": 10.20, "big": 12345678901234567890.123456789}]'
    )
    assert item["price"] == {"N": "10.20"}
    assert item["big"] == {"N": "12345678901234567890.123456789"}
    assert item["n"] == {"N": "1"}


def test_nested_values_and_jsonl(pipeline: PipelineFactory) -> None:
    text = (
        '{"name": "a", "n": 2, "tags": ["x", {"y": null}], "ok": true}\n\n{"name": "b", "n": 3}\n'
    )
    got = items(pipeline, text, "d.jsonl")
    assert got[0]["tags"] == {"L": [{"S": "x"}, {"M": {"y": {"NULL": True}}}]}
    assert got[0]["ok"] == {"BOOL": True}
    assert len(got) == 2


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ('{"n": 1}', "key attribute name is missing"),
        ('{"name": "", "n": 1}', "key attribute name must be a non-empty string"),
        ('{"name": "a", "n": "1"}', "key attribute n must be a number"),
        ('{"name": "a", "n": 1.5}', "attribute n: 1.5 is not a integer"),
        ('{"name": "a", "n": 1, "price": 1.234}', "does not fit numeric(10,2)"),
        (
            '{"name": "a", "n": 1, "x": 1234567890123456789012345678901234567890}',
            "more than DynamoDB's 38",
        ),
        ('{"name": "a", "n": 1, "x": NaN}', "not valid JSON"),
        ('{"name": "a", "n": 1, "name": "b"}', "appears twice"),
        # DynamoDB's documented limits, checked before anything is sent
        (
            '{"name": "' + "é" * 1025 + '", "n": 1}',
            "key attribute name is 2050 bytes, over DynamoDB's 2048 for a partition key",
        ),
        ('{"name": "a", "n": 1, "": 1}', "an attribute name of 0 bytes"),
    ],
)
def test_bad_records_name_the_record_and_reason(
    pipeline: PipelineFactory, record: str, reason: str
) -> None:
    with pytest.raises(InputError) as e:
        items(pipeline, f'[{{"name": "ok", "n": 0}}, {record}]')
    assert reason in str(e.value)
    assert "record 1" in str(e.value)


def test_jsonl_errors_name_the_line(pipeline: PipelineFactory) -> None:
    with pytest.raises(InputError) as e:
        items(pipeline, '{"name": "a", "n": 1}\n{"name": "b"}\n', "d.jsonl")
    assert e.value.line == 2


def test_not_an_array(pipeline: PipelineFactory) -> None:
    pipeline.write("d.json", '{"name": "a"}')
    with pytest.raises(InputError, match="expected a JSON array"):
        list(read_json_records(pipeline.root / "d.json", "json"))


def test_oversized_item_is_rejected(pipeline: PipelineFactory) -> None:
    big = "x" * (401 * 1024)
    with pytest.raises(InputError, match="400 KB"):
        items(pipeline, f'[{{"name": "a", "n": 1, "blob": "{big}"}}]')


def test_to_json_writes_numbers_exactly() -> None:
    value = {"a": Decimal("10.20"), "b": [Decimal("1"), True, None], "c": {"d": "é"}}
    assert to_json(value) == '{"a":10.20,"b":[1,true,null],"c":{"d":"é"}}'


def test_the_wire_form_is_boto3s_without_importing_boto3() -> None:
    """wire_value and plain_value stand in for boto3's TypeSerializer and
    TypeDeserializer (boto3 cost every command a tenth of a second): the same wire form
    and back, for every type dataferry writes."""
    from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer

    from dataferry.stores.dynamodb.codec import plain_value, wire_value

    values = [
        "héllo",
        "",
        0,
        -42,
        Decimal("3.14"),
        Decimal("1E+2"),
        12345678901234567890123456789012345678,
        True,
        False,
        None,
        b"\x00\xff",
        {"a": [1, "b", {"c": None}], "d": {"e": Decimal("0.5")}},
        [],
        {},
        {"x", "y"},
        {Decimal("1.5"), 2},
        {b"a", b"b"},
    ]
    for value in values:
        ours, theirs = wire_value(value), TypeSerializer().serialize(value)
        if isinstance(value, set):  # set order is arbitrary
            ((kind, items),) = ours.items()
            assert sorted(items) == sorted(theirs[kind]), value
        else:
            assert ours == theirs, value
        back = TypeDeserializer().deserialize(theirs)
        back = bytes(back) if isinstance(back, Binary) else back
        if isinstance(back, set) and back and isinstance(next(iter(back)), Binary):
            back = {bytes(b) for b in back}
        assert plain_value(ours) == back, value
    with pytest.raises(TypeError, match="unsupported type float"):
        wire_value(1.5)
    with pytest.raises(TypeError, match="unsupported type set"):
        wire_value(set())


def test_the_spooled_json_is_the_wire_form_botocore_sends_and_reads_back() -> None:
    """load nosql spools each item as its wire JSON and sends that text as it is: it must
    be the JSON botocore's serializer would write for the same item, and read back to the
    same wire form (binary values as bytes, however deep)."""
    import json

    import botocore.session
    from botocore.serialize import create_serializer

    from dataferry.stores.dynamodb.codec import wire_from_json, wire_json, wire_value

    item = {
        "k": wire_value("clé 🙂"),
        "n": wire_value(Decimal("-1.50E+3")),
        "b": wire_value(b"\x00\xff\x10"),
        "bs": wire_value({b"a", b"\x80"}),
        "m": wire_value({"deep": [b"\x01", {"x": None, "t": True}], "ns": {1, Decimal("2.5")}}),
        "ss": wire_value({"a", "b"}),
        "e": wire_value(""),
    }
    text = wire_json(item)
    assert "clé 🙂".encode() in text  # UTF-8, not six or twelve bytes of escapes
    assert wire_from_json(text) == item
    model = botocore.session.get_session().get_service_model("dynamodb")
    request = create_serializer("json").serialize_to_request(
        {"RequestItems": {"t": [{"PutRequest": {"Item": item}}]}},
        model.operation_model("BatchWriteItem"),
    )
    sent = json.loads(request["body"])["RequestItems"]["t"][0]["PutRequest"]["Item"]
    assert json.loads(text) == sent


TYPED = {
    **DATASET,
    "columns": {
        **DATASET["columns"],
        "d": {"type": "date"},
        "ts": {"type": "timestamp"},
        "tz": {"type": "timestamptz"},
        "r": {"type": "real"},
        "t": {"type": "text"},
    },
}
ISO_SAMPLES = [
    "2024-01-01",
    "20240101",
    "2024-W01-1",
    "2024-01-01T10",
    "2024-01-01 10:00",
    "2024-01-01T10:00:00",
    "2024-01-01T10:00:00.123456",
    "2024-01-01T10:00:00.1234567",
    "2024-01-01T10:00:00Z",
    "2024-01-01T10:00:00+02:00",
    "2024-01-01T10:00:00+0200",
    "2024-01-01T10:00:00+02",
    "2024-01-01T10Z",
    "2024-01-01 10:00:00.5-11:00",
    "2024-02-30",
    "0000-01-01",
    "0001-01-01",
    "9999-12-31T23:59:59.999999Z",
    "2024-01-01T24:00:00",
    "2024-01-01T10:60:00",
    "2024-01-01T10:00:60",
    "2024-01-01T10:00:00+24:00",
]


@pytest.mark.parametrize("kind", ["date", "timestamp", "timestamptz"])
def test_dates_and_timestamps_are_checked_as_the_warehouse_reads_them(
    pipeline: PipelineFactory, kind: str
) -> None:
    """The etl casts a DynamoDB date or timestamp string with Arrow; what the load takes
    must be what that cast takes. Python's fromisoformat took 20240101, week dates and a
    seventh fractional digit (3.11; 3.10 refused the Z), and the etl then failed."""
    import pyarrow as pa

    arrow_type = {
        "date": pa.date32(),
        "timestamp": pa.timestamp("us"),
        "timestamptz": pa.timestamp("us", tz="UTC"),
    }[kind]
    attribute = {"date": "d", "timestamp": "ts", "timestamptz": "tz"}[kind]
    pipeline.write("d.json", "[]")
    spec = pipeline.spec({"d": {**TYPED, "source": {"path": "d.json"}}})
    codec = ItemCodec(spec.datasets["d"])
    for text in ISO_SAMPLES:
        try:
            pa.array([text]).cast(arrow_type)
            arrow_takes = True
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            arrow_takes = False
        try:
            codec.encode({"name": "a", "n": 1, attribute: text})
            we_take = True
        except ValueError:
            we_take = False
        # and the year 0, which Arrow takes and PostgreSQL has not (as the CSV reader)
        assert we_take == (arrow_takes and not text.startswith("0000")), text


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ('{"r": 1e39}', "attribute r: 1E+39 is out of range for real"),
        ('{"r": 3.4028236e38}', "is out of range for real"),
        ('{"r": 1e-50}', "attribute r: 1E-50 is too close to zero for real"),
        ('{"t": 123}', "attribute t: expected a string, got a number"),
        ('{"r": "1.5"}', "attribute r: expected a number, got a string"),
        ('{"ts": "2024-01-01T10:00:00Z"}', "has a time zone offset; a timestamp holds none"),
    ],
)
def test_values_the_warehouse_would_change_or_refuse_are_rejects(
    pipeline: PipelineFactory, record: str, reason: str
) -> None:
    pipeline.write(
        "d.jsonl",
        '{"name": "a", "n": 1, "r": 3.4028234e38}\n'
        + record[:1]
        + '"name": "b", "n": 2, '
        + record[1:]
        + "\n",
    )
    spec = pipeline.spec({"d": {**TYPED, "source": {"path": "d.jsonl"}}})
    ds = spec.datasets["d"]
    with pytest.raises(InputError) as e:
        list(dynamodb_items(spec.resolve(ds.source.path), ds, ItemCodec(ds)))
    assert e.value.line == 2
    assert reason in str(e.value)


def test_an_index_key_is_held_to_its_limit_too(pipeline: PipelineFactory) -> None:
    """A global secondary index's sort key value may hold 1024 bytes at most: an item
    past it would fail its write midway through a load, after others were written."""
    pipeline.write("d.json", '[{"name": "a", "n": 1, "tag": "' + "t" * 1025 + '"}]')
    ds = {
        **DATASET,
        "columns": {**DATASET["columns"], "tag": {"type": "text"}},
        "indexes": [{"name": "by_n", "hash": "n", "range": "tag"}],
    }
    spec = pipeline.spec({"d": ds})
    d = spec.datasets["d"]
    with pytest.raises(InputError, match="key attribute tag is 1025 bytes, over DynamoDB's 1024"):
        list(dynamodb_items(spec.resolve(d.source.path), d, ItemCodec(d)))
    pipeline.write("d.json", '[{"name": "a", "n": 1, "tag": "' + "t" * 1024 + '"}]')
    assert len(list(dynamodb_items(spec.resolve(d.source.path), d, ItemCodec(d)))) == 1
