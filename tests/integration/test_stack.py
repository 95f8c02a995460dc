"""The embedded stack keeps data across commands and across `stack down` / `stack up`."""

from pathlib import Path

import psycopg

from dataferry.stack import EmbeddedStack


def test_data_survives_down_and_up(tmp_path: Path) -> None:
    import boto3

    stack = EmbeddedStack(tmp_path / "stack")
    try:
        stack.up()
        with psycopg.connect(stack.postgres_url(), autocommit=True) as conn:
            conn.execute("CREATE TABLE kept (n int)")
            conn.execute("INSERT INTO kept VALUES (42)")
        kwargs = {
            "region_name": "us-west-2",
            "aws_access_key_id": "x",
            "aws_secret_access_key": "x",
        }
        ddb = boto3.client("dynamodb", endpoint_url=stack.dynamodb_url(), **kwargs)
        ddb.create_table(
            TableName="kept",
            KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        ddb.put_item(TableName="kept", Item={"k": {"S": "a"}, "n": {"N": "1.50"}})
        assert sorted(stack.down()) == ["dynamodb", "postgres"]
        assert not any(s.running for s in stack.status())

        services = {s.service: s for s in stack.up()}
        assert services["postgres"].running
        assert services["dynamodb"].running
        assert services["dynamodb"].url != ""
        with psycopg.connect(stack.postgres_url()) as conn:
            assert conn.execute("SELECT n FROM kept").fetchone() == (42,)
        ddb = boto3.client("dynamodb", endpoint_url=stack.dynamodb_url(), **kwargs)
        item = ddb.get_item(TableName="kept", Key={"k": {"S": "a"}})["Item"]
        assert item["n"] == {"N": "1.50"}
    finally:
        stack.down()


def test_up_twice_reuses_the_running_services(tmp_path: Path) -> None:
    stack = EmbeddedStack(tmp_path / "stack")
    try:
        first = {s.service: s.pid for s in stack.up()}
        second = {s.service: s.pid for s in stack.up()}
        assert first == second
    finally:
        stack.down()
    assert stack.down() == []
