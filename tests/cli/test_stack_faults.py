"""An embedded server killed by its pid in the middle of a command: the command ends in
bounded time with the documented exit code and no traceback, and the next command starts
the server again and finishes the work exactly.

Real servers of a stack of the test's own (the embedded PostgreSQL, dynalite), real
SIGKILLs, the `dataferry` command in a subprocess.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import psutil
import psycopg
import pytest

from dataferry.generate import GenerateCounts, generate

ORDERS = 200_000  # load sql about 1 s: time to be caught mid-COPY
ITEMS = 60_000  # load nosql about 5 s: time to be caught mid-write
WAIT_S = "5"  # the command's --wait: how long it retries a target that went away
BOUND_S = 60.0


def dataferry(spec: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dataferry", *args, "-c", str(spec)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("stack-faults")
    generate(root, GenerateCounts(2_000, 100, ORDERS, nosql_orders=ITEMS), seed=3)
    path = root / "dataferry.yaml"
    up = dataferry(path, "stack", "up")
    assert up.returncode == 0, up.stderr
    yield path
    dataferry(path, "stack", "down")


def services(spec: Path) -> dict[str, Any]:
    proc = dataferry(spec, "stack", "status", "--json", timeout=30)
    assert proc.returncode == 0, proc.stderr
    return {s["service"]: s for s in json.loads(proc.stdout)["services"]}


def wait_for(condition: Callable[[], bool], proc: subprocess.Popen[str], what: str) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        assert proc.poll() is None, f"the command ended before {what}: {proc.communicate()}"
        assert time.monotonic() < deadline, f"never saw {what}"
        time.sleep(0.02)


def copying(url: str) -> Callable[[], bool]:
    def check() -> bool:
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE application_name LIKE 'dataferry%' AND query ILIKE 'copy%'"
            ).fetchone()
        return bool(row and row[0])

    return check


def writing(url: str, table: str) -> Callable[[], bool]:
    client = boto3.client(
        "dynamodb",
        endpoint_url=url,
        region_name="us-west-2",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )

    def check() -> bool:
        try:
            return bool(client.scan(TableName=table, Limit=1, Select="COUNT")["Count"])
        except client.exceptions.ResourceNotFoundException:
            return False  # not created yet, or still being created

    return check


@pytest.mark.parametrize(
    ("service", "stage", "dataset"),
    [("postgres", "sql", "orders"), ("dynamodb", "nosql", "items_bought_data")],
)
def test_a_server_killed_mid_load_ends_the_command_and_the_next_one_finishes(
    spec: Path, service: str, stage: str, dataset: str
) -> None:
    before = services(spec)
    url, pid = before[service]["url"], before[service]["pid"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "dataferry", "load", stage, "-c", str(spec), "--wait", WAIT_S],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(copying(url) if service == "postgres" else writing(url, dataset), proc, "writes")
        psutil.Process(pid).kill()
        killed = time.monotonic()
        out, err = proc.communicate(timeout=BOUND_S)
    finally:
        proc.kill()
    assert time.monotonic() - killed < BOUND_S
    assert proc.returncode == 6, err
    assert "Traceback" not in out + err
    assert services(spec)[service]["running"] is False  # seen down, not trusted by its pid

    again = dataferry(spec, "load", stage, "--json")  # starts the server again
    assert again.returncode == 0, again.stderr
    (record,) = [
        r for r in json.loads(again.stdout)["stages"][f"load {stage}"] if r["dataset"] == dataset
    ]
    assert record["status"] == "ok"
    status = json.loads(dataferry(spec, "status", "--json").stdout)["targets"][service]
    rows = {t["dataset"]: t["rows"] for t in status["tables"]}
    assert rows[dataset] == (ORDERS if service == "postgres" else ITEMS)
