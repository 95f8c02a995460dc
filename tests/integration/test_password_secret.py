"""stores.postgres.password_secret: the RDS-managed password read from Secrets Manager
(moto's server stands in for AWS), used to connect and never shown."""

import json
from typing import Any

import boto3
import pytest
from psycopg.conninfo import conninfo_to_dict

from dataferry.connections import resolve_postgres
from dataferry.errors import TargetUnavailable
from dataferry.stores import postgres as pg
from dataferry.stores.postgres.connection import connect_kwargs
from tests.conftest import PipelineFactory


def test_the_password_comes_from_the_secret_and_is_never_shown(
    pipeline: PipelineFactory, moto_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline.write("b.json", "[]")
    bought = {
        "source": {"path": "b.json"},
        "target": {"store": "dynamodb", "table": "bought"},
        "key": {"hash": "item"},
    }
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", moto_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "dataferry-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "dataferry-test")
    client: Any = boto3.client("secretsmanager", region_name="us-west-2", endpoint_url=moto_url)
    arn = client.create_secret(
        Name="rds-master-test",
        SecretString=json.dumps({"username": "postgres", "password": "sentinel-rds-pw"}),
    )["ARN"]
    embedded = conninfo_to_dict(resolve_postgres(pipeline.spec({"bought": bought})).conninfo)
    spec = pipeline.spec(
        {"bought": bought},
        stores={
            "postgres": {
                "host": embedded["host"],
                "port": int(embedded.get("port") or 5432),
                "database": "postgres",
                "password_secret": arn,
            }
        },
    )
    target = resolve_postgres(spec)
    # Resolving (config show, validate) needs no AWS: the secret is read when connecting.
    assert "sentinel" not in target.conninfo + target.display + repr(target)
    assert connect_kwargs(target) == {"password": "sentinel-rds-pw", "user": "postgres"}
    with pg.connect(target) as conn:  # the embedded server trusts local connections
        assert conn.execute("SELECT current_user").fetchone() == ("postgres",)

    missing = pipeline.spec(
        {"bought": bought},
        stores={"postgres": {"host": "db.internal", "password_secret": "no-such-secret"}},
    )
    with pytest.raises(TargetUnavailable, match="no-such-secret") as err:
        pg.connect(resolve_postgres(missing))
    assert "sentinel" not in str(err.value)
