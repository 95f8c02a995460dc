import csv
import json
import logging
from decimal import Decimal
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from dataferry import stages
from dataferry.errors import InputError, RejectedRows, TargetError
from dataferry.spec import Spec
from dataferry.stages import RunContext
from dataferry.stores.dynamodb import ItemCodec, wire_json
from dataferry.stores.dynamodb.write import write
from tests.conftest import PipelineFactory, unique
from tests.integration.conftest import ddb_client
from tests.integration.fault_proxy import fault_proxy


def dataset(table: str, path: str = "bought.json") -> dict[str, Any]:
    return {
        "source": {"path": path},
        "target": {"store": "dynamodb", "table": table},
        "key": {"hash": "item", "range": "customer"},
        "columns": {
            "item": {"type": "text", "nullable": False},
            "customer": {"type": "text", "nullable": False},
            "price": {"type": "numeric(10,2)"},
        },
    }


BOUGHT = """
[
  {"item": "USB", "customer": "Bob", "price": 10.20, "meta": {"tags": ["a", "b"], "n": 1}},
  {"item": "Mouse", "customer": "Amy", "price": 12.23, "gift": true},
  {"item": "Monitor", "customer": "Rob", "price": 199.99, "note": null}
]
"""


def scan(spec: Spec, table: str) -> list[dict[str, Any]]:
    client = ddb_client(spec)
    items = client.scan(TableName=table)["Items"]
    return sorted((ItemCodec.decode(i) for i in items), key=lambda d: d["item"])


def test_loads_exact_values_and_rerun_leaves_the_same_items(
    pipeline: PipelineFactory, dynamodb_stores: dict[str, Any]
) -> None:
    table = unique("bought")
    pipeline.write("bought.json", BOUGHT)
    spec = pipeline.spec({"bought": dataset(table)}, stores=dynamodb_stores)
    (rec,) = stages.load_nosql(spec)
    assert (rec.counts.read, rec.counts.written) == (3, 3)
    items = scan(spec, table)
    assert [i["price"] for i in items] == [Decimal("199.99"), Decimal("12.23"), Decimal("10.20")]
    assert items[2]["meta"] == {"tags": ["a", "b"], "n": Decimal("1")}
    assert items[1]["gift"] is True
    assert items[0]["note"] is None
    stages.load_nosql(spec)
    assert scan(spec, table) == items


def test_text_beyond_ascii_arrives_as_written(
    pipeline: PipelineFactory, dynamodb_stores: dict[str, Any]
) -> None:
    """Request bodies carry text as UTF-8: accents, CJK, characters beyond the BMP
    (surrogate pairs in UTF-16), in keys, values and map member names."""
    table = unique("bought")
    texts = ["José Ñandú", "漢字かな", "🙂 𝄞", "\u2028 line separator"]
    records = [
        {"item": t, "customer": f"{t}!", "note": t * 3, "meta": {t: [t, {"k": t}]}} for t in texts
    ]
    pipeline.write("bought.json", json.dumps(records, ensure_ascii=False))
    spec = pipeline.spec({"bought": dataset(table)}, stores=dynamodb_stores)
    (rec,) = stages.load_nosql(spec)
    assert rec.counts.written == len(texts)
    assert scan(spec, table) == sorted(records, key=lambda d: d["item"])


def test_a_bad_record_writes_nothing(
    pipeline: PipelineFactory, dynamodb_stores: dict[str, Any]
) -> None:
    table = unique("bought")
    pipeline.write(
        "bought.json",
        '[{"item": "USB", "customer": "Bob"}, {"item": "Mouse", "customer": ""}]',
    )
    spec = pipeline.spec({"bought": dataset(table)}, stores=dynamodb_stores)
    with pytest.raises(InputError) as e:
        stages.load_nosql(spec)
    assert "record 1: key attribute customer must be a non-empty string" in str(e.value)
    client = ddb_client(spec)
    with pytest.raises(ClientError, match="ResourceNotFound"):
        client.describe_table(TableName=table)  # validated before anything was created


def test_existing_table_with_another_key_schema_is_an_error(
    pipeline: PipelineFactory, dynamodb_stores: dict[str, Any]
) -> None:
    table = unique("bought")
    pipeline.write("bought.json", BOUGHT)
    spec = pipeline.spec({"bought": dataset(table)}, stores=dynamodb_stores)
    ddb_client(spec).create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "item", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "item", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    with pytest.raises(TargetError, match="has key schema"):
        stages.load_nosql(spec)


def test_a_repeated_key_rejects_every_record_that_holds_it(
    pipeline: PipelineFactory, dynamodb_stores: dict[str, Any]
) -> None:
    """Which copy of a repeated key is right is unknowable: all of them are rejected, with
    every position named, however far apart they are (the same rule as load sql)."""
    table = unique("bought")
    records = [{"item": f"i{n}", "customer": "c", "price": f"{n}.00"} for n in range(100)]
    records[60] = {"item": "i3", "customer": "c", "price": "60.00"}  # far from record 3
    records[61] = {"item": "i9", "customer": "c", "price": "61.00"}
    records[62] = {"item": "i9", "customer": "c", "price": "62.00"}
    body = ",".join(
        f'{{"item": "{r["item"]}", "customer": "c", "price": {r["price"]}}}' for r in records
    )
    pipeline.write("bought.json", f"[{body}]")
    spec = pipeline.spec({"bought": dataset(table)}, stores=dynamodb_stores)
    with pytest.raises(RejectedRows, match="5 row"):
        stages.load_nosql(spec)
    (rec,) = stages.load_nosql(spec, ctx=RunContext(max_rejects=5))
    assert (rec.counts.read, rec.counts.written, rec.counts.rejected) == (100, 95, 5)
    stored = {i["item"] for i in scan(spec, table)}
    assert stored == {f"i{n}" for n in range(100) if n not in (3, 9, 60, 61, 62)}
    with (pipeline.root / "rejects" / "bought.rejects.csv").open(encoding="utf-8") as f:
        rows = [r[2:] for r in csv.reader(f)][1:]
    assert [r[0] for r in rows] == ["3", "9", "60", "61", "62"]
    assert rows[0][1:] == [
        "item=i3, customer=c",
        "key (item=i3, customer=c) repeats in this file (records 3, 60): which one is "
        "right is unknowable, so none of them is loaded",
    ]
    assert "(records 9, 61, 62)" in rows[1][2]


def test_numbers_that_differ_only_in_form_are_one_key(pipeline: PipelineFactory) -> None:
    """1 and 1.0 are the same number, so the same DynamoDB key."""
    table = unique("numkey")
    pipeline.write("n.jsonl", '{"k": 1, "v": "a"}\n{"k": 1.0, "v": "b"}\n{"k": 2, "v": "c"}\n')
    ds = {
        "source": {"path": "n.jsonl"},
        "target": {"store": "dynamodb", "table": table},
        "key": {"hash": "k"},
        "columns": {"k": {"type": "numeric(10,1)", "nullable": False}},
    }
    spec = pipeline.spec({"n": ds})
    with pytest.raises(RejectedRows, match=r"repeats in this file \(lines 1, 2\)"):
        stages.load_nosql(spec)


def test_a_batch_the_server_refuses_ends_the_load_naming_its_records(
    pipeline: PipelineFactory, dynamodb_stores: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real HTTP fault: the proxy answers the third BatchWriteItem with DynamoDB's
    ValidationException. The load must end (it used to hang), say which records the
    refused batch held, and record the failure in the ledger."""
    table = unique("bought")
    body = ",".join(f'{{"item": "i{n}", "customer": "c", "price": {n}.00}}' for n in range(200))
    pipeline.write("bought.json", f"[{body}]")
    spec = pipeline.spec({"bought": dataset(table)}, stores=dynamodb_stores)
    real = ddb_client(spec)
    with fault_proxy(real.meta.endpoint_url, refuse_batch=3) as (url, stats):
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "dataferry-test")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "dataferry-test")
        proxied = pipeline.spec({"bought": dataset(table)}, stores={"dynamodb": {"endpoint": url}})
        with pytest.raises(TargetError, match="DynamoDB refused the batch holding records") as e:
            stages.load_nosql(proxied, ctx=RunContext(wait_s=5))
    assert stats["refused"] == 1
    message = str(e.value)
    assert "ValidationException" in message
    assert "injected fault" in message
    held = [int(n) for n in message.split("holding records ")[1].split(":")[0].split(", ")]
    assert 1 <= len(held) == len(set(held)) <= 25  # a batch: 25 items, or a last partial one
    stored = {i["item"] for i in scan(spec, table)}
    assert not stored & {f"i{n}" for n in held}  # nothing of the refused batch
    (rec,) = stages.load_nosql(spec)  # straight to the server: the re-run completes
    assert rec.counts.written == 200
    assert len(scan(spec, table)) == 200


def test_unprocessed_items_are_resent_fault_injecting_endpoint(
    pipeline: PipelineFactory, dynamodb_stores: dict[str, Any]
) -> None:
    """DynamoDB under throttling answers part of a batch as UnprocessedItems, which the
    local servers never do: a fault-injecting proxy in front of them does it instead."""
    table = unique("bought")
    pipeline.write("bought.json", "[]")
    spec = pipeline.spec({"bought": dataset(table)}, stores=dynamodb_stores)
    ds = spec.datasets["bought"]
    from dataferry.stores import dynamodb as ddb

    real = ddb_client(spec)
    ddb.provision(real, ds)
    codec = ItemCodec(ds)
    encoded = [codec.encode({"item": f"i{n}", "customer": "c", "n": n}) for n in range(120)]
    items = [(n, hash(codec.key_of(i)), wire_json(i)) for n, i in enumerate(encoded)]
    with fault_proxy(real.meta.endpoint_url, unprocessed=True) as (url, stats):
        via_proxy = boto3.client(
            "dynamodb",
            endpoint_url=url,
            region_name=real.meta.region_name,
            aws_access_key_id="dataferry-test",
            aws_secret_access_key="dataferry-test",
        )
        result = write(via_proxy, table, items, workers=2)
    assert result.written == 120
    assert stats["withheld"] > 0
    assert stats["batch_calls"] > 120 // 25  # resends happened
    stored = scan(spec, table)
    assert sorted(i["n"] for i in stored) == list(range(120))  # each item exactly once


def test_bad_records_go_to_the_rejects_file_and_max_rejects_lets_the_rest_load(
    pipeline: PipelineFactory, dynamodb_stores: dict[str, Any]
) -> None:
    table = unique("bought")
    pipeline.write(
        "bought.jsonl",
        '{"item": "USB", "customer": "Bob", "price": 10.20}\n'
        '{"item": "Mouse", "customer": ""}\n'
        "not json at all\n"
        '{"item": "Pad", "customer": "Amy", "price": 1.234}\n'
        '{"item": "Cable", "customer": "Amy"}\n',
    )
    spec = pipeline.spec({"bought": dataset(table, "bought.jsonl")}, stores=dynamodb_stores)
    with pytest.raises(RejectedRows, match="3 row"):
        stages.load_nosql(spec)
    client = ddb_client(spec)
    with pytest.raises(ClientError, match="ResourceNotFound"):
        client.describe_table(TableName=table)  # nothing written, not even the table
    with (pipeline.root / "rejects" / "bought.rejects.csv").open(encoding="utf-8") as f:
        header, *rows = [r[1:] for r in csv.reader(f)]
    assert header == ["line", "record", "key", "reason"]
    assert rows[0] == [
        "2",
        "",
        "item=Mouse, customer=",
        "key attribute customer must be a non-empty string",
    ]
    assert rows[1][:3] == ["3", "", ""]
    assert rows[1][3].startswith("not valid JSON")
    assert rows[2] == [
        "4",
        "",
        "item=Pad, customer=Amy",
        "attribute price: 1.234 does not fit numeric(10,2)",
    ]
    (rec,) = stages.load_nosql(spec, ctx=RunContext(max_rejects=3))
    assert (rec.counts.read, rec.counts.written, rec.counts.rejected) == (5, 2, 3)
    assert sorted(i["item"] for i in scan(spec, table)) == ["Cable", "USB"]


def test_an_unchanged_file_is_skipped_unless_forced(
    pipeline: PipelineFactory, dynamodb_stores: dict[str, Any]
) -> None:
    table = unique("bought")
    pipeline.write("bought.json", BOUGHT)
    spec = pipeline.spec({"bought": dataset(table)}, stores=dynamodb_stores)
    stages.load_nosql(spec)
    (again,) = stages.load_nosql(spec)
    assert again.status == "skipped"
    assert "use --force" in (again.note or "")
    (forced,) = stages.load_nosql(spec, ctx=RunContext(force=True))
    assert (forced.status, forced.counts.written) == ("ok", 3)


def test_dynalite_is_strict_where_moto_is_lenient(
    pipeline: PipelineFactory, dynalite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Why the tests run on dynalite too: it refuses a batch that repeats a key, as
    DynamoDB does, where moto keeps the last one."""
    import boto3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    client = boto3.client("dynamodb", endpoint_url=dynalite_url, region_name="us-west-2")
    table = unique("strict")
    client.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    client.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 0.1})
    put = {"PutRequest": {"Item": {"k": {"S": "same"}}}}
    with pytest.raises(ClientError, match="duplicates"):
        client.batch_write_item(RequestItems={table: [put, put]})


def test_sets_binary_indexes_and_point_in_time_recovery(
    pipeline: PipelineFactory, dynamodb_stores: dict[str, Any]
) -> None:
    table = unique("typed")
    pipeline.write(
        "typed.json",
        '[{"id": "a", "tags": ["x", "y"], "sizes": [1, 2.5], "blob": "aGk=", "owner": "Bob"},'
        ' {"id": "b", "tags": ["x", "x"], "owner": "Amy"}]',
    )
    ds = {
        "source": {"path": "typed.json"},
        "target": {"store": "dynamodb", "table": table},
        "key": {"hash": "id"},
        "columns": {
            "id": {"type": "text", "nullable": False},
            "tags": {"type": "string_set"},
            "sizes": {"type": "number_set"},
            "blob": {"type": "binary"},
            "owner": {"type": "text"},
        },
        "indexes": [{"name": "by_owner", "hash": "owner", "projection": "KEYS_ONLY"}],
        "point_in_time_recovery": bool(dynamodb_stores),  # moto's; dynalite has no backups
    }
    spec = pipeline.spec({"typed": ds}, stores=dynamodb_stores)
    (rec,) = stages.load_nosql(spec, ctx=RunContext(max_rejects=1))
    assert (rec.counts.written, rec.counts.rejected) == (1, 1)
    client = ddb_client(spec)
    item = client.get_item(TableName=table, Key={"id": {"S": "a"}})["Item"]
    assert sorted(item["tags"]["SS"]) == ["x", "y"]
    assert sorted(item["sizes"]["NS"]) == ["1", "2.5"]
    assert item["blob"] == {"B": b"hi"}
    desc = client.describe_table(TableName=table)["Table"]
    assert [ix["IndexName"] for ix in desc["GlobalSecondaryIndexes"]] == ["by_owner"]
    if dynamodb_stores:  # moto
        backups = client.describe_continuous_backups(TableName=table)[
            "ContinuousBackupsDescription"
        ]
        assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"
    import duckdb

    stages.etl(spec)
    with duckdb.connect(str(spec.duckdb_path), read_only=True) as conn:
        row = conn.execute(f'SELECT tags, sizes, blob FROM raw_dynamodb."{table}"').fetchone()
    assert row == ('["x","y"]', "[1,2.5]", b"hi")
    changed = {**ds, "indexes": []}
    with pytest.raises(TargetError, match="global secondary indexes"):
        stages.load_nosql(
            pipeline.spec({"typed": changed}, stores=dynamodb_stores),
            ctx=RunContext(max_rejects=1, force=True),
        )


def test_parallel_scan_reads_every_item_once(
    pipeline: PipelineFactory, dynamodb_stores: dict[str, Any]
) -> None:
    from dataferry.stores import dynamodb as ddb

    table = unique("scan")
    records = ",".join(
        f'{{"item": "i{n}", "customer": "c{n % 13}", "price": {n}.25}}' for n in range(700)
    )
    pipeline.write("bought.json", f"[{records}]")
    spec = pipeline.spec({"bought": dataset(table)}, stores=dynamodb_stores)
    stages.load_nosql(spec)
    client = ddb_client(spec)
    ds = spec.datasets["bought"]
    for segments in (1, 4, 7):
        keys = [
            (row["item"], row["customer"])
            for batch in ddb.read(client, ds, segments=segments)
            for row in batch.to_pylist()
        ]
        assert len(keys) == 700, segments
        assert len(set(keys)) == 700, segments


def test_a_deleted_table_is_loaded_again_though_the_ledger_has_the_file(
    pipeline: PipelineFactory, dynamodb_stores: dict[str, Any]
) -> None:
    table = unique("bought")
    pipeline.write("bought.json", BOUGHT)
    spec = pipeline.spec({"bought": dataset(table)}, stores=dynamodb_stores)
    stages.load_nosql(spec)
    client = ddb_client(spec)
    client.delete_table(TableName=table)
    client.get_waiter("table_not_exists").wait(TableName=table, WaiterConfig={"Delay": 0.2})
    (rec,) = stages.load_nosql(spec)
    assert (rec.status, rec.counts.written) == ("ok", 3)


def test_time_to_live_is_turned_on_where_the_endpoint_has_it(
    pipeline: PipelineFactory, dynamodb_stores: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """moto's server has UpdateTimeToLive (as AWS): it is turned on, once. dynalite has no
    such operation and never expires items: the load goes on, saying so."""
    pipeline.write("bought.json", BOUGHT)
    table = unique("bought")
    ds = dataset(table) | {"ttl_attribute": "expires_at"}
    spec = pipeline.spec({"bought": ds}, stores=dynamodb_stores)
    with caplog.at_level(logging.INFO, logger="dataferry"):
        (first,) = stages.load_nosql(spec)
        (again,) = stages.load_nosql(spec, ctx=stages.RunContext(force=True))
    assert (first.status, again.status) == ("ok", "ok")
    said = [r.getMessage() for r in caplog.records]
    if dynamodb_stores:  # moto
        ttl = ddb_client(spec).describe_time_to_live(TableName=table)["TimeToLiveDescription"]
        assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "expires_at")
        assert said.count(f"{table}: time to live by expires_at turned on") == 1
        other = pipeline.spec(
            {"bought": dataset(table) | {"ttl_attribute": "gone_at"}}, stores=dynamodb_stores
        )
        with pytest.raises(TargetError, match="expires items by expires_at; the spec says gone_at"):
            stages.load_nosql(other, ctx=stages.RunContext(force=True))
    else:
        assert any("has no time to live" in m and table in m for m in said)
