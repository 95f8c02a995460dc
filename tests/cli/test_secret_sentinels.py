"""Sentinel secrets in every place a secret can come from, then every command on its
success and failure paths: no sentinel may appear in stdout, stderr, a rejects file, a
job summary or any ledger. (The embedded PostgreSQL trusts local connections and
dynalite takes any credentials, so real commands succeed with the sentinels in use.)"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from psycopg.conninfo import make_conninfo

from dataferry.connections import resolve_postgres
from tests.generated_pipeline import GeneratedPipeline

SENTINELS = {
    "url password": "pw-url-SENTINEL-51c7",
    "PGPASSWORD": "pw-env-SENTINEL-0b2e",
    "AWS secret key": "aws-SENTINEL-77aa",
    "Snowflake password": "sf-pw-SENTINEL-9d41",
    "Snowflake key passphrase": "sf-pass-SENTINEL-3f08",
}


@pytest.fixture(scope="module")
def gen(tmp_path_factory: pytest.TempPathFactory, dynalite_url: str) -> Iterator[GeneratedPipeline]:
    pipeline = GeneratedPipeline(tmp_path_factory.mktemp("sentinels"), dynalite_url, 300)
    conninfo = resolve_postgres(pipeline.spec).conninfo
    pipeline.env.update(
        {
            "DATABASE_URL": make_conninfo(conninfo, password=SENTINELS["url password"]),
            "PGPASSWORD": SENTINELS["PGPASSWORD"],
            "AWS_SECRET_ACCESS_KEY": SENTINELS["AWS secret key"],
            "SNOWFLAKE_PASSWORD": SENTINELS["Snowflake password"],
            "SNOWFLAKE_PRIVATE_KEY_PASSPHRASE": SENTINELS["Snowflake key passphrase"],
        }
    )
    yield pipeline
    pipeline.stop_stack()


def leaks(text: str) -> list[str]:
    return [where for where, value in SENTINELS.items() if value in text]


def everything_written(gen: GeneratedPipeline) -> str:
    """Rejects files, job summaries, run reports, and every ledger's rows, as text."""
    parts = [
        p.read_text(encoding="utf-8", errors="replace")
        for p in gen.root.rglob("*")
        if p.is_file() and p.suffix in (".csv", ".md", ".json", ".html") and "data" not in p.parts
    ]
    with gen.pg() as conn:
        if conn.execute("SELECT to_regclass('dataferry.loads')").fetchone() != (None,):
            parts += [str(r) for r in conn.execute("SELECT * FROM dataferry.loads").fetchall()]
    client = gen.ddb()
    table = gen.spec.stores.dynamodb.ledger_table
    if table in client.list_tables()["TableNames"]:
        parts += [json.dumps(i) for i in client.scan(TableName=table)["Items"]]
    if gen.spec.duckdb_path.exists():
        with (
            duckdb.connect(str(gen.spec.duckdb_path), read_only=True) as wh,
            contextlib.suppress(duckdb.CatalogException),
        ):
            parts += [str(r) for r in wh.execute("SELECT * FROM dataferry.loads").fetchall()]
    return "\n".join(parts)


def test_no_sentinel_in_any_output_or_record(gen: GeneratedPipeline, tmp_path: Path) -> None:
    config = str(gen.config)
    outputs: list[tuple[str, str]] = []

    def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        saved = dict(gen.env)
        gen.env.update(env or {})
        try:
            proc = gen.dataferry(*args)
        finally:
            gen.env = saved
        outputs.append((" ".join(args), proc.stdout + proc.stderr))
        return proc

    summary = tmp_path / "summary.md"
    # success paths, quiet and as loud as it gets
    assert run("run", "-c", config, "--summary", str(summary)).returncode == 0
    assert run("run", "-c", config, "-vv", "--force").returncode == 0
    assert run("run", "-c", config, "--json", "--full-refresh").returncode == 0
    for command in (["status"], ["config", "show"], ["validate"], ["stack", "status"]):
        assert run(*command, "-c", config, "-vv").returncode == 0
        assert run(*command, "-c", config, "--json").returncode == 0
    # failure paths: an unreachable server (its URL holds the password), rejected rows,
    # a bug-free interruption, a busy lock
    unreachable = make_conninfo(
        "postgresql://loader@127.0.0.1:1/shop", password=SENTINELS["url password"]
    )
    for flags in (["-vv"], ["--json"]):
        proc = run(
            "load", "sql", "-c", config, "--wait", "1", *flags, env={"DATABASE_URL": unreachable}
        )
        assert proc.returncode == 6
    bad = gen.root / "data" / "sql" / "item.csv"
    original = bad.read_text()
    bad.write_text(original + "x,broken,not a price\n")
    try:
        assert run("load", "sql", "-c", config, "-vv", "--dataset", "item").returncode == 4
        assert run("validate", "-c", config, "--json").returncode == 4
    finally:
        bad.write_text(original)
    gen.reset("load nosql")
    proc = gen.start("load nosql", "-vv")
    gen.wait_until_working("load nosql", proc)
    proc.send_signal(signal.SIGSTOP)
    busy = run("load", "nosql", "-c", config, "--wait", "1", "-vv")
    assert busy.returncode == 10
    proc.send_signal(signal.SIGCONT)
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    outputs.append(("load nosql (interrupted)", out + err))
    assert proc.returncode in (0, 130)

    shown = next(text for name, text in outputs if name.startswith("config show"))
    assert "password=***" in shown or ":***@" in shown, "the secret was there to be masked"
    found = {name: leaks(text) for name, text in outputs if leaks(text)}
    assert not found, found
    written = everything_written(gen)
    assert summary.read_text().strip()
    assert not leaks(written), leaks(written)
