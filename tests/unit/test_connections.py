from pathlib import Path

import pytest

from dataferry.connections import (
    masked_conninfo,
    resolve_dynamodb,
    resolve_postgres,
    resolve_snowflake,
)
from dataferry.errors import SpecError
from dataferry.spec import Spec, load_spec
from tests.conftest import PipelineFactory

SENTINEL = "pw-SENTINEL-9f3"


@pytest.fixture
def spec(pipeline: PipelineFactory) -> Spec:
    return pipeline.spec(
        {
            "t": {
                "source": {"path": "t.csv"},
                "target": {"store": "postgres", "table": "t"},
                "columns": {"id": {"type": "integer"}},
                "primary_key": ["id"],
            }
        }
    )


def test_database_url_wins_and_password_is_masked(spec: Spec) -> None:
    env = {"DATABASE_URL": f"postgresql://bob:{SENTINEL}@db.example:5433/shop", "PGHOST": "x"}
    target = resolve_postgres(spec, env, start=False)
    assert target.source == "DATABASE_URL"
    assert not target.embedded
    assert target.display == "postgresql://bob:***@db.example:5433/shop"
    assert SENTINEL not in repr(target)


def test_rds_variables_of_the_original(spec: Spec) -> None:
    env = {
        "RDS_HOST": "rds.example",
        "RDS_PORT": "5432",
        "RDS_DB": "shop",
        "RDS_USER": "admin",
        "RDS_PASSWORD": SENTINEL,
    }
    target = resolve_postgres(spec, env, start=False)
    assert target.source == "RDS_* environment"
    assert SENTINEL in target.conninfo
    assert SENTINEL not in target.display
    assert target.display == "postgresql://admin:***@rds.example:5432/shop"


def test_pg_environment_is_left_to_libpq(spec: Spec) -> None:
    target = resolve_postgres(spec, {"PGHOST": "h"}, start=False)
    assert (target.source, target.conninfo) == ("PG* environment", "")


def test_nothing_given_means_embedded(spec: Spec) -> None:
    target = resolve_postgres(spec, {}, start=False)
    assert target.embedded


def test_spec_parts_with_sslmode(pipeline: PipelineFactory, spec: Spec) -> None:
    stores = {
        "postgres": {
            "host": "h",
            "port": 6543,
            "user": "u",
            "password": SENTINEL,
            "database": "d",
            "sslmode": "verify-full",
        }
    }
    s = pipeline.spec(spec.model_dump(mode="json", by_alias=True)["datasets"], stores=stores)
    target = resolve_postgres(s, {}, start=False)
    assert "sslmode=verify-full" in target.conninfo
    assert target.display == "postgresql://u:***@h:6543/d"


def test_dynamodb_resolution(spec: Spec, pipeline: PipelineFactory) -> None:
    t = resolve_dynamodb(
        spec,
        {
            "AWS_ENDPOINT_URL_DYNAMODB": "http://localhost:8000",
            "AWS_REGION": "eu-west-1",
            "AWS_DEFAULT_REGION": "x",
        },
        start=False,
    )
    assert (t.endpoint_url, t.region, t.embedded) == ("http://localhost:8000", "eu-west-1", False)
    t = resolve_dynamodb(spec, {"AWS_DEFAULT_REGION": "ap-south-1"}, start=False)
    assert (t.region, t.embedded) == ("ap-south-1", True)
    aws = pipeline.spec(
        spec.model_dump(mode="json", by_alias=True)["datasets"],
        stores={"dynamodb": {"endpoint": "aws", "region": "us-east-2"}},
    )
    t = resolve_dynamodb(aws, {"AWS_ENDPOINT_URL": "http://ignored"}, start=False)
    assert (t.endpoint_url, t.region, t.embedded) == (None, "us-east-2", False)
    assert "aws_access_key_id" not in t.client_kwargs()  # the AWS default chain decides


def test_masked_conninfo_handles_sockets() -> None:
    assert masked_conninfo("postgresql://postgres:@/postgres?host=/tmp/x") == (
        "postgresql://postgres@/postgres?host=/tmp/x"
    )


def test_example_spec_resolves_from_its_own_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATAFERRY_POSTGRES_URL", f"postgresql://a:{SENTINEL}@h/d")
    spec = load_spec(Path(__file__).parents[2] / "examples" / "retail" / "dataferry.yaml")
    assert resolve_postgres(spec, {}, start=False).source == "spec url"


def test_a_snowflake_key_given_as_pem_text_is_used_for_key_pair_auth(
    pipeline: PipelineFactory,
) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pass phrase"),
    ).decode()
    spec = pipeline.spec(
        {
            "t": {
                "source": {"path": "t.csv"},
                "target": {"store": "postgres", "table": "t"},
                "columns": {"id": {"type": "integer"}},
                "primary_key": ["id"],
            }
        },
        warehouse={"snowflake": {"database": "ANALYTICS"}},
    )
    env = {
        "SNOWFLAKE_ACCOUNT": "acme-x1",
        "SNOWFLAKE_USER": "svc",
        "SNOWFLAKE_PRIVATE_KEY": pem.replace("\n", "\\n"),  # as one line, as env files hold it
        "SNOWFLAKE_PRIVATE_KEY_PASSPHRASE": "pass phrase",
    }
    target = resolve_snowflake(spec, env)
    assert target.params["authenticator"] == "SNOWFLAKE_JWT"
    assert target.params["private_key"] == key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    assert "private_key_file_pwd" not in target.params
    with pytest.raises(SpecError, match="not a usable PEM private key") as caught:
        resolve_snowflake(spec, {**env, "SNOWFLAKE_PRIVATE_KEY_PASSPHRASE": "wrong"})
    assert "BEGIN" not in str(caught.value)
