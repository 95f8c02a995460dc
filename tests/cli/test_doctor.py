"""`dataferry doctor` against real targets: all well, a stopped stack it must not start, a
server that cannot be reached, and a role that may not create tables."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import REPO


def doctor(spec: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "dataferry", "doctor", "-c", str(spec), "--json", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )
    assert "Traceback" not in proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def checks(payload: Any) -> dict[tuple[str, str], bool | None]:
    return {(f["target"], f["check"]): f["ok"] for f in payload["findings"]}


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("doctor")
    shutil.copytree(
        REPO / "examples" / "retail", root, ignore=shutil.ignore_patterns(".*"), dirs_exist_ok=True
    )
    path = root / "dataferry.yaml"
    subprocess.run([sys.executable, "-m", "dataferry", "stack", "up", "-c", str(path)], check=True)
    yield path
    subprocess.run([sys.executable, "-m", "dataferry", "stack", "down", "-c", str(path)])


def stack_services(spec: Path) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "dataferry", "stack", "status", "-c", str(spec), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    return {s["service"]: s for s in json.loads(proc.stdout)["services"]}


def test_all_well_on_the_embedded_stack(spec: Path) -> None:
    code, payload = doctor(spec)
    assert code == 0, payload
    found = checks(payload)
    for target in ("postgres", "dynamodb"):
        assert found[(target, "reachable")] is True
        assert found[(target, "credentials")] is True
        assert found[(target, "TLS")] is None  # local: a socket, plain http
    assert found[("postgres", "schema public")] is True
    assert found[("dynamodb", "table dataferry_loads")] in (True, None)
    assert found[("warehouse", "write")] is True


def test_a_role_that_may_not_create_is_named_with_the_fix(spec: Path) -> None:
    url = stack_services(spec)["postgres"]["url"]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS doctor_reader")
        conn.execute("CREATE ROLE doctor_reader LOGIN")  # PostgreSQL 15+: no CREATE on public
    limited = url.replace("postgres@", "doctor_reader@")
    code, payload = doctor(spec, env={"DATABASE_URL": limited})
    assert code == 5
    (schema,) = [f for f in payload["findings"] if f["check"] == "schema public"]
    assert schema["ok"] is False
    assert "permission denied" in schema["detail"]
    assert "grant doctor_reader CREATE on schema public" in schema["fix"]


def test_a_server_that_cannot_be_reached_ends_within_wait(spec: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    started = time.monotonic()
    code, payload = doctor(
        spec, "--wait", "2", env={"DATABASE_URL": f"postgresql://x@127.0.0.1:{port}/x"}
    )
    assert time.monotonic() - started < 30
    assert code == 6
    assert checks(payload)[("postgres", "reachable")] is False


def test_a_stopped_stack_is_reported_and_not_started(spec: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "dataferry", "stack", "down", "-c", str(spec)], check=True
    )
    try:
        code, payload = doctor(spec)
        assert code == 0
        assert checks(payload)[("postgres", "reachable")] is None
        assert checks(payload)[("dynamodb", "reachable")] is None
        assert not any(s["running"] for s in stack_services(spec).values())
    finally:
        subprocess.run(
            [sys.executable, "-m", "dataferry", "stack", "up", "-c", str(spec)], check=True
        )
