"""stores.postgres.password_secret: the RDS-managed password read from Secrets Manager
(moto's server stands in for AWS), used to connect and never shown."""

import json
from typing import Any

import boto3
import pytest

from dataferry.connections import resolve_dynamodb, resolve_postgres
from dataferry.errors import TargetUnavailable
from tests.conftest import PipelineFactory


def test_the_password_comes_from_the_secret_and_is_never_shown(
    pipeline: PipelineFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline.write("b.json", "[]")
    bought = {
        "source": {"path": "b.json"},
        "target": {"store": "dynamodb", "table": "bought"},
        "key": {"hash": "item"},
    }
    moto = resolve_dynamodb(pipeline.spec({"bought": bought})).endpoint_url
    assert moto is not None
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", moto)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "dataferry-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "dataferry-test")
    client: Any = boto3.client("secretsmanager", region_name="us-west-2", endpoint_url=moto)
    arn = client.create_secret(
        Name="rds-master-test",
        SecretString=json.dumps({"username": "master", "password": "sentinel-rds-pw"}),
    )["ARN"]
    spec = pipeline.spec(
        {"bought": bought},
        stores={"postgres": {"host": "db.internal", "database": "shop", "password_secret": arn}},
    )
    target = resolve_postgres(spec)
    assert "password=sentinel-rds-pw" in target.conninfo
    assert "user=master" in target.conninfo
    assert "sentinel" not in target.display + repr(target)

    missing = pipeline.spec(
        {"bought": bought},
        stores={"postgres": {"host": "db.internal", "password_secret": "no-such-secret"}},
    )
    with pytest.raises(TargetUnavailable, match="no-such-secret") as err:
        resolve_postgres(missing)
    assert "sentinel" not in str(err.value)
