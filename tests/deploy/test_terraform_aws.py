"""deploy/aws: the DynamoDB tables come from the spec, and Terraform accepts the module.

`terraform validate` runs offline against the provider cache these machines have (the
folder holding registry.terraform.io; DATAFERRY_TF_PLUGIN_DIR names another); without
terraform or the cache that test is skipped, saying so.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import hcl2
import pytest

from dataferry.spec import load_spec
from dataferry.terraform import dynamodb_tables, tfvars_json
from tests.conftest import REPO

AWS = REPO / "deploy" / "aws"
EXAMPLE = REPO / "examples" / "retail" / "dataferry.yaml"
TFVARS = AWS / "dynamodb_tables.auto.tfvars.json"


def _plugin_dir() -> Path | None:
    for candidate in (os.environ.get("DATAFERRY_TF_PLUGIN_DIR"), "/opt/tf-plugins"):
        if candidate and (Path(candidate) / "registry.terraform.io").is_dir():
            return Path(candidate)
    return None


def _unquote(node: Any) -> Any:
    """python-hcl2 keeps the quotes of labels and string literals; drop them."""
    if isinstance(node, dict):
        return {k.strip('"'): _unquote(v) for k, v in node.items() if k != "__is_block__"}
    if isinstance(node, list):
        return [_unquote(v) for v in node]
    if isinstance(node, str) and len(node) >= 2 and node[0] == node[-1] == '"':
        return node[1:-1]
    return node


def _table_resource() -> dict[str, Any]:
    with (AWS / "dynamodb.tf").open() as f:
        parsed = _unquote(hcl2.load(f))
    return parsed["resource"][0]["aws_dynamodb_table"]["dataset"]


def test_the_tfvars_file_is_exactly_the_example_spec_exported() -> None:
    """One source of truth: the committed file is `dataferry tf export` of the example."""
    assert TFVARS.read_text(encoding="utf-8") == tfvars_json(load_spec(EXAMPLE))


def test_the_export_follows_the_spec(tmp_path: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8").replace(
        "key: {hash: title}",
        "key: {hash: title, range: category}\n"
        "    indexes: [{name: by_category, hash: category, projection: [price]}]\n"
        "    point_in_time_recovery: true",
    )
    spec_path = tmp_path / "dataferry.yaml"
    spec_path.write_text(text, encoding="utf-8")
    items = dynamodb_tables(load_spec(spec_path))["items_data"]
    assert items["range_key"] == "category"
    assert items["point_in_time_recovery"] is True
    assert items["global_secondary_indexes"] == [
        {
            "name": "by_category",
            "hash_key": "category",
            "range_key": None,
            "projection_type": "INCLUDE",
            "non_key_attributes": ["price"],
        }
    ]
    assert {"name": "category", "type": "S"} in items["attributes"]


def test_tables_are_encrypted_backed_up_and_protected() -> None:
    table = _table_resource()
    assert table["for_each"] == "${var.dynamodb_tables}"
    assert table["server_side_encryption"][0]["enabled"] is True
    assert "var.point_in_time_recovery" in table["point_in_time_recovery"][0]["enabled"]
    assert table["deletion_protection_enabled"] == "${var.deletion_protection}"
    with (AWS / "variables.tf").open() as f:
        variables = {
            name: body for v in _unquote(hcl2.load(f))["variable"] for name, body in v.items()
        }
    assert variables["point_in_time_recovery"]["default"] is True
    assert variables["deletion_protection"]["default"] is True


def test_providers_are_pinned_where_they_validate_offline() -> None:
    with (AWS / "versions.tf").open() as f:
        terraform = _unquote(hcl2.load(f))["terraform"][0]
    aws = terraform["required_providers"][0]["aws"]
    assert aws["source"] == "hashicorp/aws"
    assert aws["version"] == ">= 5.92, < 6.0"
    assert terraform["required_version"] == ">= 1.10"  # the S3 backend's use_lockfile


def _initialised(module: Path, tmp_path: Path, plugins: Path) -> tuple[Path, dict[str, str]]:
    """A copy of ``module`` after `terraform init` against the offline provider cache."""
    work = tmp_path / module.name
    shutil.copytree(module, work, ignore=shutil.ignore_patterns(".terraform*"))
    env = {**os.environ, "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1"}
    init = subprocess.run(
        ["terraform", "init", "-backend=false", f"-plugin-dir={plugins}", "-input=false"],
        cwd=work,
        capture_output=True,
        text=True,
        env=env,
    )
    assert init.returncode == 0, init.stdout + init.stderr
    return work, env


@pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not installed")
def test_terraform_fmt_and_validate(tmp_path: Path) -> None:
    fmt = subprocess.run(
        ["terraform", "fmt", "-check", "-recursive", str(REPO / "deploy")],
        capture_output=True,
        text=True,
    )
    assert fmt.returncode == 0, f"not terraform fmt-clean: {fmt.stdout}"
    plugins = _plugin_dir()
    if plugins is None:
        pytest.skip("no local provider cache (registry.terraform.io) to validate offline")
    for module in (AWS, AWS.parent / "bootstrap"):  # the ones whose provider is cached
        work, env = _initialised(module, tmp_path, plugins)
        validate = subprocess.run(
            ["terraform", "validate", "-no-color"],
            cwd=work,
            capture_output=True,
            text=True,
            env=env,
        )
        assert validate.returncode == 0, module.name + validate.stdout + validate.stderr


@pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not installed")
@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_terraform_test_with_a_mocked_provider(tmp_path: Path, environment: str) -> None:
    """deploy/aws/tests: the variable validations refuse what they must (0.0.0.0/1, a /8,
    a ceiling under the storage), and the environment's settings apply, against a mocked
    AWS provider, into what they promise (private database reached from the task, no
    secret in the pipeline's policy, expiring exports, alarms, the schedule)."""
    plugins = _plugin_dir()
    if plugins is None:
        pytest.skip("no local provider cache (registry.terraform.io) to run offline")
    work, env = _initialised(AWS, tmp_path, plugins)
    test = subprocess.run(
        ["terraform", "test", "-no-color", f"-var-file=environments/{environment}.tfvars"],
        cwd=work,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert test.returncode == 0, test.stdout + test.stderr
    assert "0 failed" in test.stdout


def _resources(tf_file: str) -> dict[str, dict[str, Any]]:
    with (AWS / tf_file).open() as f:
        parsed = _unquote(hcl2.load(f))
    out: dict[str, dict[str, Any]] = {}
    for block in parsed.get("resource", []):
        for kind, named in block.items():
            for name, body in named.items():
                out[f"{kind}.{name}"] = body
    return out


def test_rds_is_private_encrypted_tls_only_with_a_managed_password() -> None:
    rds = _resources("rds.tf")
    db = rds["aws_db_instance.postgres"]
    assert db["engine"] == "postgres"
    assert db["engine_version"] == "16"
    assert db["publicly_accessible"] is False
    assert db["storage_encrypted"] is True
    assert db["manage_master_user_password"] is True
    assert db["iam_database_authentication_enabled"] is True
    assert "password" not in db  # no password in Terraform: Secrets Manager holds it
    assert db["deletion_protection"] == "${var.deletion_protection}"
    assert db["backup_retention_period"] == "${var.db_backup_retention_days}"
    params = {p["name"]: p["value"] for p in rds["aws_db_parameter_group.postgres"]["parameter"]}
    assert params["rds.force_ssl"] == "1"
    assert "cidr_ipv4" in rds["aws_vpc_security_group_ingress_rule.postgres_cidr"]
    with (AWS / "variables.tf").open() as f:
        variables = {
            name: body for v in _unquote(hcl2.load(f))["variable"] for name, body in v.items()
        }
    # what the validations refuse is run by `terraform test` (deploy/aws/tests)
    assert len(variables["allowed_cidr_blocks"]["validation"]) == 2
    for tfvars in AWS.glob("environments/*.tfvars"):
        text = tfvars.read_text()
        assert "password" not in text.lower(), tfvars
        assert "0.0.0.0/0" not in text, tfvars


def test_pipeline_policy_names_its_tables_and_github_needs_the_environment() -> None:
    with (AWS / "iam.tf").open() as f:
        parsed = _unquote(hcl2.load(f))
    docs = {
        name: body
        for block in parsed["data"]
        for kind, named in block.items()
        if kind == "aws_iam_policy_document"
        for name, body in named.items()
    }
    statements = {s["sid"]: s for s in docs["pipeline"]["statement"] if "sid" in s}
    dynamo = statements["DynamoDBTablesOfThePipelineOnly"]
    assert all(a.startswith("dynamodb:") and "*" not in a for a in dynamo["actions"])
    assert "*" not in str(dynamo["resources"]).replace("/index/*", "")
    # readiness is a DescribeTable of the ledger: nothing is granted on every table
    assert "ListTablesForReadiness" not in statements
    assert not [s for s in statements.values() if s.get("resources") == ["*"]]
    assert statements["PostgresAsThePipelineUserThroughIAM"]["actions"] == ["rds-db:connect"]
    conditions = {
        c["variable"]: c["values"] for c in docs["github_assume"]["statement"][0]["condition"]
    }
    assert conditions["token.actions.githubusercontent.com:aud"] == ["sts.amazonaws.com"]
    assert (
        "environment:${var.github_environment}"
        in conditions["token.actions.githubusercontent.com:sub"][0]
    )


def test_state_is_in_s3_with_a_lock_file() -> None:
    with (AWS / "backend.tf").open() as f:
        backend = _unquote(hcl2.load(f))["terraform"][0]["backend"][0]
    assert "s3" in backend
    for env in AWS.glob("environments/*.s3.tfbackend"):
        text = env.read_text()
        assert "use_lockfile = true" in text
        assert "encrypt      = true" in text


def test_every_output_dataferry_reads_is_there() -> None:
    from dataferry.terraform_outputs import OUTPUTS_READ

    with (AWS / "outputs.tf").open() as f:
        outputs = {name for block in _unquote(hcl2.load(f))["output"] for name in block}
    assert set(OUTPUTS_READ) <= outputs


def test_snowflake_may_only_read_the_exports_with_its_external_id() -> None:
    with (AWS / "exports.tf").open() as f:
        parsed = _unquote(hcl2.load(f))
    docs = {
        name: body
        for block in parsed["data"]
        for named in block.values()
        for name, body in named.items()
    }
    trust = docs["snowflake_trust"]["statement"][0]
    assert trust["actions"] == ["sts:AssumeRole"]
    assert trust["condition"][0]["variable"] == "sts:ExternalId"
    assert trust["principals"][0]["identifiers"] == [
        "${var.snowflake_storage_integration.iam_user_arn}"
    ]
    reads = docs["snowflake_reads_exports"]["statement"]
    actions = {a for st in reads for a in st["actions"]}
    assert actions == {
        "s3:GetObject",
        "s3:GetObjectVersion",
        "s3:ListBucket",
        "s3:GetBucketLocation",
    }
    assert reads[0]["resources"] == [
        "${aws_s3_bucket.exports.arn}/${var.snowflake_storage_integration.prefix}*"
    ]
    assert reads[1]["condition"][0]["variable"] == "s3:prefix"
