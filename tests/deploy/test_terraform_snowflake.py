"""deploy/snowflake: what dataferry needs in Snowflake and nothing more, checked from the
parsed files. The snowflakedb/snowflake provider is not in the offline provider cache, so
`terraform validate` cannot run here: `terraform fmt -check` (test_terraform_aws) and these
assertions are what is verified; the README says so."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import hcl2
import pytest

from dataferry.warehouse.snowflake_warehouse import SESSION_SCHEMA
from tests.conftest import REPO
from tests.deploy.test_terraform_aws import AWS, _plugin_dir, _unquote

SNOWFLAKE = REPO / "deploy" / "snowflake"
# Privileges that would let the pipeline do more than load its own database.
TOO_MUCH = {
    "OWNERSHIP",
    "ALL",
    "ALL PRIVILEGES",
    "MANAGE GRANTS",
    "CREATE DATABASE",
    "CREATE ROLE",
    "CREATE USER",
    "CREATE WAREHOUSE",
}


def _load(name: str) -> dict[str, Any]:
    with (SNOWFLAKE / name).open() as f:
        return _unquote(hcl2.load(f))  # type: ignore[no-any-return]


def _resources() -> dict[str, dict[str, dict[str, Any]]]:
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for block in _load("main.tf")["resource"]:
        for kind, named in block.items():
            for name, body in named.items():
                out.setdefault(kind, {})[name] = body
    return out


def test_provider_is_pinned_and_takes_no_secret() -> None:
    versions = _load("versions.tf")
    provider = versions["terraform"][0]["required_providers"][0]["snowflake"]
    assert provider["source"] == "snowflakedb/snowflake"
    assert provider["version"] == ">= 2.0, < 3.0"
    configs = {b["snowflake"]["alias"]: b["snowflake"] for b in versions["provider"]}
    # account, user and key from SNOWFLAKE_* variables; a role per alias, nothing else
    assert {a: c["role"] for a, c in configs.items()} == {
        "sysadmin": "SYSADMIN",
        "securityadmin": "SECURITYADMIN",
        "accountadmin": "ACCOUNTADMIN",
    }
    assert all(set(c) == {"alias", "role"} for c in configs.values())


def test_each_object_is_made_by_its_system_role_and_accountadmin_only_for_the_monitor() -> None:
    by_provider: dict[str, set[str]] = {}
    for kind, named in _resources().items():
        for name, body in named.items():
            by_provider.setdefault(body["provider"], set()).add(f"{kind}.{name}")
    # the two things only ACCOUNTADMIN may create
    assert by_provider["${snowflake.accountadmin}"] == {
        "snowflake_resource_monitor.dataferry",
        "snowflake_grant_privileges_to_account_role.monitor_to_sysadmin",
        "snowflake_storage_integration.exports",
    }
    assert by_provider["${snowflake.sysadmin}"] == {
        "snowflake_warehouse.dataferry",
        "snowflake_database.dataferry",
    }
    assert set(by_provider) == {
        "${snowflake.accountadmin}",
        "${snowflake.sysadmin}",
        "${snowflake.securityadmin}",
    }
    monitor = _resources()["snowflake_resource_monitor"]["dataferry"]
    assert monitor["credit_quota"] == "${var.monthly_credit_quota}"
    assert (monitor["suspend_trigger"], monitor["suspend_immediate_trigger"]) == (100, 110)
    wh = _resources()["snowflake_warehouse"]["dataferry"]
    assert wh["resource_monitor"] == "${snowflake_resource_monitor.dataferry.name}"


def test_the_reader_only_reads_now_and_later() -> None:
    grants = _resources()["snowflake_grant_privileges_to_account_role"]
    reader = {n: g for n, g in grants.items() if "reader" in g["account_role_name"]}
    assert {p for g in reader.values() for p in g["privileges"]} == {"USAGE", "SELECT"}
    futures = [g for g in reader.values() if "future" in str(g)]
    assert len(futures) == 2  # future schemas, and future tables and views


def test_the_service_user_has_a_key_and_no_password() -> None:
    user = _resources()["snowflake_service_user"]["pipeline"]
    assert user["rsa_public_key"] == "${var.service_user_rsa_public_key}"
    assert "password" not in user
    variables = {k: v for b in _load("variables.tf")["variable"] for k, v in b.items()}
    key = variables["service_user_rsa_public_key"]
    assert "PRIVATE" in key["validation"][0]["condition"]


def test_the_warehouse_suspends_and_resumes_by_itself() -> None:
    wh = _resources()["snowflake_warehouse"]["dataferry"]
    assert wh["auto_resume"] == "true"
    assert wh["initially_suspended"] is True
    assert wh["auto_suspend"] == "${var.auto_suspend_seconds}"


def test_the_role_gets_only_what_dataferry_uses() -> None:
    grants = {
        n: g
        for n, g in _resources()["snowflake_grant_privileges_to_account_role"].items()
        if g["account_role_name"] == "${snowflake_account_role.loader.name}"
    }
    granted = {p for g in grants.values() for p in g["privileges"]}
    assert granted == {"USAGE", "CREATE SCHEMA", "CREATE TABLE", "CREATE STAGE", "CREATE FUNCTION"}
    # the export path's privileges exist only with the storage integration
    for name in ("integration", "export_functions"):
        assert grants[name]["count"] == "${var.exports == null ? 0 : 1}"
    assert not granted & TOO_MUCH
    assert not any(g.get("on_account") or g.get("all_privileges") for g in grants.values())
    schema = grants["session_schema"]["on_schema"][0]["schema_name"]
    assert schema.endswith(f'.\\"{SESSION_SCHEMA}\\"')  # where dataferry keeps its stage


def test_state_is_in_s3_with_a_lock_file() -> None:
    assert "s3" in _load("backend.tf")["terraform"][0]["backend"][0]
    for env in SNOWFLAKE.glob("environments/*.s3.tfbackend"):
        assert "use_lockfile = true" in env.read_text()


@pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not installed")
def test_terraform_cloud_can_replace_the_s3_backend(tmp_path: Path) -> None:
    plugins = _plugin_dir()
    if plugins is None:
        pytest.skip("no local provider cache (registry.terraform.io) to validate offline")
    work = tmp_path / "aws"
    shutil.copytree(AWS, work, ignore=shutil.ignore_patterns(".terraform*"))
    shutil.copy(REPO / "deploy" / "backends" / "cloud_override.tf", work)
    env = {**os.environ, "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1"}
    for argv in (
        ["terraform", "init", "-backend=false", f"-plugin-dir={plugins}", "-input=false"],
        ["terraform", "validate", "-no-color"],
    ):
        proc = subprocess.run(argv, cwd=work, capture_output=True, text=True, env=env)
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_storage_integration_reads_only_the_exports_prefix() -> None:
    integration = _resources()["snowflake_storage_integration"]["exports"]
    assert integration["count"] == "${var.exports == null ? 0 : 1}"
    assert integration["storage_allowed_locations"] == [
        "s3://${var.exports.bucket}/${var.exports.prefix}"
    ]
    assert integration["storage_aws_role_arn"] == "${var.exports.role_arn}"
    grant = _resources()["snowflake_grant_privileges_to_account_role"]["integration"]
    assert grant["privileges"] == ["USAGE"]
    outputs = {k for b in _load("outputs.tf")["output"] for k in b}
    assert {"storage_integration", "storage_aws_iam_user_arn", "storage_aws_external_id"} <= outputs
