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
    config = versions["provider"][0]["snowflake"]
    assert set(config) == {"role"}  # account, user and key from SNOWFLAKE_* variables


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
    grants = _resources()["snowflake_grant_privileges_to_account_role"]
    granted = {p for g in grants.values() for p in g["privileges"]}
    assert granted == {"USAGE", "CREATE SCHEMA", "CREATE TABLE", "CREATE STAGE"}
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
