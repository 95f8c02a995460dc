import json
from pathlib import Path

import pytest
from pydantic import SecretStr

from dataferry.connections import resolve_dynamodb, resolve_postgres
from dataferry.errors import SpecError
from dataferry.spec import load_spec
from dataferry.terraform_outputs import apply_outputs, read_outputs
from tests.conftest import REPO

EXAMPLE = REPO / "examples" / "retail" / "dataferry.yaml"
OUTPUTS = {
    "aws_region": {"value": "eu-west-1", "type": "string", "sensitive": False},
    "rds_endpoint": {"value": "shop.abc123.eu-west-1.rds.amazonaws.com", "type": "string"},
    "rds_port": {"value": 5432, "type": "number"},
    "rds_database": {"value": "shop", "type": "string"},
    "rds_username": {"value": "dataferry_admin", "type": "string"},
    "rds_master_secret_arn": {
        "value": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-1",
        "type": "string",
    },
    "dynamodb_table_names": {
        "value": {
            "customers_data": "prod-customers_data",
            "items_data": "prod-items_data",
            "items_bought_data": "prod-items_bought_data",
        },
        "type": ["map", "string"],
    },
    "dynamodb_ledger_table": {"value": "prod-dataferry_loads", "type": "string"},
    "rds_pipeline_user": {"value": "dataferry", "type": "string"},
    "dynamodb_export_bucket": {"value": "dataferry-exports-prod-abc", "type": "string"},
}


def saved(tmp_path: Path) -> Path:
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(OUTPUTS))
    return path


def test_outputs_fill_endpoints_and_the_prefixed_table_names(tmp_path: Path) -> None:
    spec = apply_outputs(load_spec(EXAMPLE, env={}), read_outputs(saved(tmp_path)))
    tables = {n: d.target.table for n, d in spec.datasets.items()}
    assert tables["items_bought_data"] == "prod-items_bought_data"
    assert tables["orders"] == "orders"  # PostgreSQL tables keep their names
    assert spec.stores.dynamodb.ledger_table == "prod-dataferry_loads"
    assert spec.stores.dynamodb.export_bucket == "dataferry-exports-prod-abc"
    ddb = resolve_dynamodb(spec, env={})
    assert (ddb.endpoint_url, ddb.region, ddb.embedded) == (None, "eu-west-1", False)
    pg = spec.stores.postgres
    # the pipeline's least-privilege role, with IAM tokens over verified TLS; the master's
    # secret is not used (it is for `db bootstrap` only)
    assert (pg.host, pg.port, pg.database, pg.user, pg.sslmode, pg.iam_auth) == (
        "shop.abc123.eu-west-1.rds.amazonaws.com",
        5432,
        "shop",
        "dataferry",
        "verify-full",
        True,
    )
    assert pg.password_secret is None
    target = resolve_postgres(spec, env={})
    assert (target.iam_region, target.password_secret) == ("eu-west-1", None)
    assert "sslmode=verify-full" in target.conninfo


def test_a_password_in_the_spec_keeps_the_master_login(tmp_path: Path) -> None:
    spec = load_spec(EXAMPLE, env={})
    pg = spec.stores.postgres.model_copy(update={"password": SecretStr("s3cret")})
    spec = spec.model_copy(update={"stores": spec.stores.model_copy(update={"postgres": pg})})
    pg = apply_outputs(spec, read_outputs(saved(tmp_path))).stores.postgres
    assert (pg.user, pg.iam_auth, pg.sslmode) == ("dataferry_admin", False, "require")


def test_an_explicit_database_url_still_wins(tmp_path: Path) -> None:
    spec = apply_outputs(load_spec(EXAMPLE, env={}), read_outputs(saved(tmp_path)))
    target = resolve_postgres(spec, env={"DATABASE_URL": "postgresql://me@elsewhere/db"})
    assert target.source == "DATABASE_URL"


def test_the_spec_can_name_the_outputs_itself(tmp_path: Path) -> None:
    text = EXAMPLE.read_text().replace(
        "version: 1", f"version: 1\nfrom_terraform: {saved(tmp_path)}"
    )
    (tmp_path / "dataferry.yaml").write_text(text)
    spec = load_spec(tmp_path / "dataferry.yaml", env={})
    assert spec.datasets["items_data"].target.table == "prod-items_data"


@pytest.mark.parametrize(
    ("content", "error"),
    [("not json", "not `terraform output -json`"), ("[1, 2]", "not `terraform output -json`")],
)
def test_bad_outputs_are_a_spec_error(tmp_path: Path, content: str, error: str) -> None:
    path = tmp_path / "outputs.json"
    path.write_text(content)
    with pytest.raises(SpecError, match=error):
        read_outputs(path)
