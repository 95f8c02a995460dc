"""The dataferry command as a user runs it: a subprocess, exit codes, stdout and stderr."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.conftest import REPO

SENTINEL = "pw-SENTINEL-4b1d"


def dataferry(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None):
    full_env = dict(os.environ.items()) | (env or {})
    return subprocess.run(
        [sys.executable, "-m", "dataferry", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=300,
    )


def as_json(proc: subprocess.CompletedProcess[str]) -> Any:
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A copy of examples/retail with a stack of its own, stopped at the end."""
    root = tmp_path_factory.mktemp("retail")
    shutil.copytree(
        REPO / "examples" / "retail", root, ignore=shutil.ignore_patterns(".*"), dirs_exist_ok=True
    )
    yield root / "dataferry.yaml"
    dataferry("stack", "down", "-c", str(root / "dataferry.yaml"))


def counts(payload: dict[str, Any]) -> dict[str, list[tuple[str, int]]]:
    return {
        stage: [(r["dataset"], r["read"]) for r in records]
        for stage, records in payload["stages"].items()
    }


def test_run_twice_loads_everything_once(example: Path) -> None:
    first = as_json(dataferry("run", "-c", str(example), "--json"))
    second = as_json(dataferry("run", "-c", str(example), "--json"))
    assert counts(first)["load sql"] == [("customer", 30), ("item", 24), ("orders", 40)]
    assert {r["status"] for r in second["stages"]["load sql"]} == {"skipped"}  # same files
    assert counts(first)["etl"] == counts(second)["etl"]
    assert all(r["written"] == 0 for r in second["stages"]["etl"])
    forced = as_json(dataferry("run", "-c", str(example), "--json", "--force"))
    assert counts(forced)["load sql"] == counts(first)["load sql"]
    assert all(r["inserted"] == 0 and r["updated"] == 0 for r in forced["stages"]["load sql"])
    status = as_json(dataferry("status", "-c", str(example), "--json"))["targets"]
    rows = {t: {r["table"]: r["rows"] for r in v["tables"]} for t, v in status.items()}
    assert rows["postgres"] == {"public.customer": 30, "public.item": 24, "public.orders": 40}
    assert rows["dynamodb"] == {"customers_data": 30, "items_data": 24, "items_bought_data": 40}
    assert rows["warehouse"]["raw_postgres.orders"] == 40
    assert rows["warehouse"]["raw_dynamodb.items_bought_data"] == 40
    assert {r["last_load"]["status"] for v in status.values() for r in v["tables"]} == {"ok"}


def test_the_example_models(example: Path) -> None:
    # the stores as the example loads them (skipped when an earlier test loaded them)
    for stage in ("sql", "nosql"):
        loaded = dataferry("load", stage, "-c", str(example))
        assert loaded.returncode == 0, loaded.stderr
    payload = as_json(dataferry("etl", "-c", str(example), "--json"))
    built = {r["table"]: r["read"] for r in payload["stages"]["etl"] if r["target"] == "model"}
    assert built == {
        "analytics.dim_customer": 30,
        "analytics.dim_item": 24,
        "analytics.fact_orders": 40,
        "analytics.orders_all": 80,
    }
    wh = example.parent / ".dataferry" / "warehouse.duckdb"
    with duckdb.connect(str(wh), read_only=True) as conn:
        # every relational order, priced as in the source, with its customer and item
        assert conn.execute(
            "SELECT count(*), sum(f.price) = (SELECT sum(price) FROM raw_postgres.orders), "
            "count(customer_name), count(category) FROM analytics.fact_orders AS f"
        ).fetchone() == (40, True, 40, 40)
        # both stores' orders, each matched to the dimensions by name
        assert conn.execute(
            "SELECT source, count(*), count(customer_id), count(item_id), sum(amount) "
            "= sum(price * quantity) FROM analytics.orders_all GROUP BY 1 ORDER BY 1"
        ).fetchall() == [("dynamodb", 40, 40, 40, True), ("postgres", 40, 40, 40, True)]
        assert conn.execute(
            "SELECT count(email), count(city) FROM analytics.dim_customer"
        ).fetchone() == (30, 30)


def test_human_output_shows_rows_per_table(example: Path) -> None:
    proc = dataferry("run", "-c", str(example))
    assert proc.returncode == 0, proc.stderr
    for text in ("load sql", "load nosql", "etl", "raw_postgres.orders", "raw_dynamodb.items_data"):
        assert text in proc.stdout
    proc = dataferry("stack", "status", "-c", str(example))
    assert "postgres" in proc.stdout
    assert "up" in proc.stdout


def test_dataset_filter(example: Path) -> None:
    payload = as_json(
        dataferry("load", "sql", "-c", str(example), "--dataset", "item", "--json", "--force")
    )
    assert counts(payload) == {"load sql": [("item", 24)]}
    proc = dataferry("load", "sql", "-c", str(example), "--dataset", "nope")
    assert proc.returncode == 3
    assert "no dataset named nope" in proc.stderr


def test_validate_finds_the_bad_line_and_loads_nothing(example: Path, tmp_path: Path) -> None:
    shutil.copytree(example.parent / "data", tmp_path / "data")
    shutil.copytree(example.parent / "models", tmp_path / "models")
    shutil.copy(example, tmp_path / "dataferry.yaml")
    ok = as_json(dataferry("validate", "-c", str(tmp_path / "dataferry.yaml"), "--json"))
    assert ok["ok"]
    assert len(ok["files"]) == 6
    orders = tmp_path / "data" / "sql" / "orders.csv"
    lines = orders.read_text(encoding="utf-8").splitlines()
    lines[2] = "2,1,1,2024-13-01,10.00,"
    orders.write_text("\n".join(lines) + "\n", encoding="utf-8")
    lines[5] = "5,1,1,2024-01-01,10.00"
    orders.write_text("\n".join(lines) + "\n", encoding="utf-8")
    proc = dataferry("validate", "-c", str(tmp_path / "dataferry.yaml"))
    assert proc.returncode == 4
    assert f"{orders}:3: column order_date: not a valid date (value '2024-13-01')" in proc.stderr
    assert f"{orders}:6: expected 6 fields, found 5" in proc.stderr
    assert "2 bad orders" in proc.stdout
    assert not (tmp_path / ".dataferry").exists()  # nothing was started, nothing loaded

    proc = dataferry("load", "sql", "-c", str(tmp_path / "dataferry.yaml"), "--json")
    assert proc.returncode == 4
    assert "2 row(s) rejected, more than the 0 allowed" in json.loads(proc.stdout)["error"]
    payload = as_json(
        dataferry("run", "-c", str(tmp_path / "dataferry.yaml"), "--max-rejects", "2", "--json")
    )
    (orders_rec,) = [r for r in payload["stages"]["load sql"] if r["dataset"] == "orders"]
    assert (orders_rec["read"], orders_rec["inserted"], orders_rec["rejected"]) == (40, 38, 2)
    assert orders_rec["rejects_file"] == str(tmp_path / "rejects" / "orders.rejects.csv")
    dataferry("stack", "down", "-c", str(tmp_path / "dataferry.yaml"))


def test_spec_error_exit_code_and_key_path(tmp_path: Path) -> None:
    text = (REPO / "examples" / "retail" / "dataferry.yaml").read_text(encoding="utf-8")
    spec = tmp_path / "dataferry.yaml"
    spec.write_text(text.replace('type: "numeric(10,2)", nullable: false}', "type: flaot}", 1))
    proc = dataferry("validate", "-c", str(spec))
    assert proc.returncode == 3
    assert f"{spec}: datasets.item.columns.price.type: unknown type 'flaot'" in proc.stderr
    proc = dataferry("run", "-c", str(tmp_path / "missing.yaml"), "--json")
    assert proc.returncode == 3
    assert json.loads(proc.stdout)["kind"] == "SpecError"


def test_secrets_never_printed(example: Path) -> None:
    url = f"postgresql://loader:{SENTINEL}@127.0.0.1:1/shop"
    proc = dataferry("load", "sql", "-c", str(example), "--wait", "0", env={"DATABASE_URL": url})
    assert proc.returncode == 6  # unreachable: TargetUnavailable
    assert "127.0.0.1" in proc.stderr
    shown = dataferry("config", "show", "-c", str(example), env={"DATABASE_URL": url})
    assert shown.returncode == 0
    assert "postgresql://loader:***@127.0.0.1:1/shop" in shown.stdout
    verbose = dataferry(
        "load", "sql", "-c", str(example), "--wait", "0", "-vv", "--json", env={"DATABASE_URL": url}
    )
    for p in (proc, shown, verbose):
        assert SENTINEL not in p.stdout + p.stderr


def test_stack_commands(tmp_path: Path) -> None:
    spec = tmp_path / "dataferry.yaml"
    shutil.copy(REPO / "examples" / "retail" / "dataferry.yaml", spec)
    try:
        up = as_json(dataferry("stack", "up", "-c", str(spec), "--json"))
        services = {s["service"]: s for s in up["services"]}
        assert services["postgres"]["running"]
        assert services["dynamodb"]["running"]
        assert services["dynamodb"]["url"].startswith("http://127.0.0.1:")
        assert services["s3"]["url"].startswith("http://127.0.0.1:")  # the embedded S3
        assert services["postgres"]["data_dir"] == str(tmp_path / ".dataferry" / "postgres")
    finally:
        down = as_json(dataferry("stack", "down", "-c", str(spec), "--json"))
    assert sorted(down["stopped"]) == ["dynamodb", "postgres", "s3"]
    status = as_json(dataferry("stack", "status", "-c", str(spec), "--json"))
    assert not any(s["running"] for s in status["services"] if s["service"] != "duckdb")


def test_generate_then_run(tmp_path: Path) -> None:
    out = tmp_path / "big"
    proc = dataferry("generate", str(out), "--customers", "200", "--items", "30", "--orders", "500")
    assert proc.returncode == 0, proc.stderr
    try:
        summary = tmp_path / "summary.md"
        payload = as_json(
            dataferry(
                "run", "-c", str(out / "dataferry.yaml"), "--json", "-q", "--summary", str(summary)
            )
        )
        assert counts(payload)["load sql"] == [("customer", 200), ("item", 30), ("orders", 500)]
        assert counts(payload)["load nosql"][2] == ("items_bought_data", 500)
        text = summary.read_text()
        assert text.startswith(f"### dataferry run `{payload['run_id']}`")
        assert "| load sql | orders | orders | 500 | 500 | 500 | 0 | 0 | 0 |" in text
        assert "| etl | items_bought_data |" in text
        # the console's '-' (DynamoDB does not tell new from changed), not a made-up 0
        assert (
            "| load nosql | items_bought_data | items_bought_data | 500 | 500 | - | - | - |" in text
        )
    finally:
        dataferry("stack", "down", "-c", str(out / "dataferry.yaml"))


def test_help_lists_every_command() -> None:
    proc = dataferry("--help")
    for command in (
        "run",
        "load",
        "etl",
        "validate",
        "status",
        "stack",
        "config",
        "generate",
        "tf",
        "plan",
        "doctor",
        "history",
        "report",
        "init",
    ):
        assert re.search(rf"^  {command}\b", proc.stdout, re.MULTILINE), command


def test_tf_export_writes_what_deploy_reads(tmp_path: Path) -> None:
    spec = REPO / "examples" / "retail" / "dataferry.yaml"
    out = tmp_path / "tables.auto.tfvars.json"
    proc = dataferry("tf", "export", "-c", str(spec), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    committed = REPO / "deploy" / "aws" / "dynamodb_tables.auto.tfvars.json"
    assert out.read_text() == committed.read_text()
    assert json.loads(dataferry("tf", "export", "-c", str(spec)).stdout) == json.loads(
        committed.read_text()
    )


def test_config_show_from_terraform_outputs(tmp_path: Path) -> None:
    from tests.unit.test_terraform_outputs import OUTPUTS

    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps(OUTPUTS))
    spec = REPO / "examples" / "retail" / "dataferry.yaml"
    shown = as_json(
        dataferry("config", "show", "-c", str(spec), "--from-terraform", str(outputs), "--json")
    )
    assert shown["resolved"]["dynamodb"]["endpoint"] == "AWS DynamoDB (eu-west-1)"
    assert shown["resolved"]["postgres"]["chosen_by"] == "spec host"
    assert "shop.abc123.eu-west-1.rds.amazonaws.com" in shown["resolved"]["postgres"]["connection"]
    tables = {n: d["target"]["table"] for n, d in shown["datasets"].items()}
    assert tables["items_bought_data"] == "prod-items_bought_data"
    missing = dataferry("config", "show", "-c", str(spec), "--from-terraform", str(tmp_path / "no"))
    assert missing.returncode == 64  # the command line: the path does not exist


def test_the_whole_run_is_the_same_on_moto_as_on_dynalite(
    example: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The three stages end to end on the fallback endpoint (moto's server) and on the
    default (dynalite): the same counts, the same models."""
    root = tmp_path_factory.mktemp("retail-moto")
    shutil.copytree(example.parent, root, ignore=shutil.ignore_patterns(".*"), dirs_exist_ok=True)
    spec = root / "dataferry.yaml"
    spec.write_text(spec.read_text(encoding="utf-8") + "\nstack: {dynamodb: moto}\n", "utf-8")
    try:
        on_moto = as_json(dataferry("run", "-c", str(spec), "--json", "--force"))
        services = as_json(dataferry("stack", "status", "-c", str(spec), "--json"))["services"]
        assert {s["service"]: s["detail"] for s in services}["dynamodb"] == "moto"
    finally:
        dataferry("stack", "down", "-c", str(spec))
    on_dynalite = as_json(dataferry("run", "-c", str(example), "--json", "--force"))
    assert counts(on_moto) == counts(on_dynalite)
    assert counts(on_moto)["load nosql"] == [
        ("customers_data", 30),
        ("items_data", 24),
        ("items_bought_data", 40),
    ]


PROGRESS_LINE = re.compile(r"^\[(?P<stage>[a-z ]+)\] (?P<dataset>\w+): (?P<rows>[\d,]+) ")


def _done_rows(payload: dict[str, Any]) -> dict[tuple[str, str], int]:
    """What each (stage, dataset) did, as the progress counts it: rows read from the file
    or source table, items written to DynamoDB."""
    out = {}
    for stage, records in payload["stages"].items():
        for r in records:
            if r["status"] == "ok" and r["target"] != "model":
                out[(stage, r["dataset"])] = r["written"] if stage == "load nosql" else r["read"]
    return out


@pytest.mark.parametrize("mode", ["plain", "bar"])
def test_progress_counts_each_dataset_once_whatever_the_threads(example: Path, mode: str) -> None:
    proc = dataferry("run", "-c", str(example), "--json", "--force", "--progress", mode)
    payload = as_json(proc)
    done = _done_rows(payload)
    assert done[("load nosql", "items_bought_data")] == 40
    if mode == "plain":  # stderr is a pipe: a line per dataset at its end
        shown = {}
        for line in proc.stderr.splitlines():
            if (m := PROGRESS_LINE.match(line)) and "done in" in line:
                key = (m["stage"], m["dataset"])
                assert key not in shown, f"{key} ended twice"
                shown[key] = int(m["rows"].replace(",", ""))
        assert shown == done
    else:  # the bars' last frame: one line per (stage, dataset), its rows of its rows
        for (stage, dataset), rows in done.items():
            pattern = rf"{stage} {dataset} .* {rows:,} / {rows:,} rows"
            assert len(re.findall(pattern, proc.stderr)) == 1, (pattern, proc.stderr)


def test_without_a_terminal_progress_is_plain_lines_and_quiet_has_none(example: Path) -> None:
    proc = dataferry("load", "sql", "-c", str(example), "--force")
    assert proc.returncode == 0, proc.stderr
    assert "[load sql] orders: 40 / 40 rows (100%)" in proc.stderr
    quiet = dataferry("load", "sql", "-c", str(example), "--force", "-q")
    assert "[load sql]" not in quiet.stderr


def test_every_writing_command_ends_with_a_verdict(
    example: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    ok = dataferry("load", "sql", "-c", str(example), "--force")
    assert ok.returncode == 0, ok.stderr
    verdict, report = ok.stdout.strip().splitlines()[-2:]
    assert re.fullmatch(r"ok: run [0-9a-f]{12} in [\d.]+s: \d+ rows written, 0 rejected", verdict)
    assert report.startswith("report: ")
    assert report.endswith("(`dataferry report --open` shows it)")
    payload = as_json(dataferry("load", "sql", "-c", str(example), "--json"))
    assert {"run_id", "seconds", "rows_written", "rows_rejected"} <= set(payload)
    assert dataferry("load", "sql", "-c", str(example), "-q").stdout == ""  # -q: nothing

    root = tmp_path_factory.mktemp("verdict")
    shutil.copytree(example.parent, root, ignore=shutil.ignore_patterns(".*"), dirs_exist_ok=True)
    bad = root / "data" / "sql" / "orders.csv"
    bad.write_text(bad.read_text(encoding="utf-8") + "41,1,1,notadate,1.00,\n", "utf-8")
    spec = root / "dataferry.yaml"
    try:
        failed = dataferry("load", "sql", "-c", str(spec))
    finally:
        dataferry("stack", "down", "-c", str(spec))
    assert failed.returncode == 4
    verdict = failed.stderr.strip().splitlines()[-2]
    assert verdict.startswith("failed: run ")
    assert re.search(r"1 rejected \(listed in \S*rejects/orders\.rejects\.csv\)", verdict)
    assert "done: customer, item; not done: orders. Next: fix the file" in verdict


def test_options_are_accepted_only_where_they_do_something(example: Path) -> None:
    for args in (
        ["validate", "--wait", "5"],
        ["validate", "--summary", "x.md"],
        ["report", "--from-terraform", "."],  # reads files only: no endpoint to take
    ):
        proc = dataferry(*args, "-c", str(example))
        assert proc.returncode == 64, (args, proc.stderr)  # the command line: no such option
        assert "No such option" in proc.stderr


def test_history_and_status_tell_what_changed_when_and_why_a_load_failed(
    example: Path,
) -> None:
    first = as_json(dataferry("load", "sql", "-c", str(example), "--json", "--force"))
    as_json(dataferry("load", "sql", "-c", str(example), "--json"))  # skipped: unchanged
    tables = as_json(dataferry("status", "-c", str(example), "--json"))["targets"]["postgres"]
    orders = next(t for t in tables["tables"] if t["dataset"] == "orders")
    assert orders["last_load"]["status"] == "skipped"
    assert orders["last_change"] is not None  # the skipped run changed nothing
    assert orders["last_change"] >= first["stages"]["load sql"][2]["started_at"]

    loads = as_json(dataferry("history", "-c", str(example), "--json", "-n", "5"))["loads"]
    assert len(loads) == 5
    started = [r["started_at"] for r in loads]
    assert started == sorted(started, reverse=True)
    mine = as_json(dataferry("history", "-c", str(example), "--json", "--dataset", "orders"))
    assert {r["dataset"] for r in mine["loads"]} == {"orders"}
    assert {r["target"] for r in mine["loads"]} >= {"postgres", "warehouse"}
    unknown = dataferry("history", "-c", str(example), "--dataset", "nope")
    assert unknown.returncode == 3


def test_json_logs_are_one_object_per_line_naming_run_stage_and_dataset(example: Path) -> None:
    proc = dataferry("run", "-c", str(example), "--force", "--log-format", "json", "-v")
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in proc.stderr.splitlines()]  # every line is JSON
    progress = [r for r in records if r["logger"] == "dataferry.progress"]
    assert {(r["stage"], r["dataset"]) for r in progress} >= {
        ("load sql", "orders"),
        ("load nosql", "items_bought_data"),
        ("etl", "orders"),
    }
    said = [r["message"] for r in records]
    assert any(m.startswith("PostgreSQL: embedded") and "(chosen by embedded)" in m for m in said)
    from dataferry.stores.dynamodb.write import DEFAULT_WORKERS

    # -v: the batch sizes chosen
    assert any(f"{DEFAULT_WORKERS} writer threads" in m for m in said)
    run_ids = {r["run_id"] for r in records if "run_id" in r}
    assert len(run_ids) == 1
    verdict = records[-1]
    assert (verdict["logger"], verdict["exit_code"], verdict["run_id"]) == (
        "dataferry.verdict",
        0,
        run_ids.pop(),
    )
    assert verdict["message"].startswith("ok: run ")


def test_quiet_stack_commands_print_nothing(tmp_path: Path) -> None:
    shutil.copytree(
        REPO / "examples" / "retail",
        tmp_path,
        ignore=shutil.ignore_patterns(".*"),
        dirs_exist_ok=True,
    )
    spec = str(tmp_path / "dataferry.yaml")
    try:
        up = dataferry("stack", "up", "-c", spec, "-q")
        assert (up.returncode, up.stdout, up.stderr) == (0, "", "")
    finally:
        down = dataferry("stack", "down", "-c", spec, "-q")
    assert (down.returncode, down.stdout, down.stderr) == (0, "", "")


def _stack_urls(spec: Path) -> dict[str, str]:
    status = as_json(dataferry("stack", "status", "-c", str(spec), "--json"))
    return {s["service"]: s["url"] for s in status["services"] if s["url"]}


def _rows_in_targets(spec: Path) -> dict[tuple[str, str], int]:
    """Every table's rows, read with the targets' own clients, not with dataferry."""
    import boto3
    import psycopg

    urls = _stack_urls(spec)
    found: dict[tuple[str, str], int] = {}
    with psycopg.connect(urls["postgres"]) as conn:
        for table in ("customer", "item", "orders"):
            found[("postgres", table)] = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    ddb = boto3.client(
        "dynamodb",
        endpoint_url=urls["dynamodb"],
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    for table in ("customers_data", "items_data", "items_bought_data"):
        found[("dynamodb", table)] = ddb.scan(TableName=table, Select="COUNT")["Count"]
    with duckdb.connect(str(spec.parent / ".dataferry" / "warehouse.duckdb"), read_only=True) as db:
        for schema, table in db.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_schema IN ('raw_postgres', 'raw_dynamodb', 'analytics')"
        ).fetchall():
            found[("warehouse", f"{schema}.{table}")] = db.execute(
                f'SELECT count(*) FROM "{schema}"."{table}"'
            ).fetchone()[0]
    return found


def test_a_run_leaves_a_report_that_matches_the_targets(example: Path, tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    payload = as_json(
        dataferry(
            "run",
            "-c",
            str(example),
            "--force",
            "--full-refresh",
            "--json",
            "--summary",
            str(summary),
        )
    )
    page = Path(payload["report"])
    if not page.is_absolute():
        page = Path.cwd() / page
    assert page.parent == example.parent / ".dataferry" / "reports"
    report = json.loads(page.with_suffix(".json").read_text(encoding="utf-8"))
    assert (report["run_id"], report["status"], report["exit_code"]) == (payload["run_id"], "ok", 0)
    assert report["spec"]["sha256"] == hashlib.sha256(example.read_bytes()).hexdigest()
    assert report["rows_written"] == payload["rows_written"]

    actual = _rows_in_targets(example)
    entries = report["datasets"]
    assert len(entries) == 16  # 3 + 3 loads, 6 raw tables, 4 models
    for d in entries:
        target = {"load sql": d["target"], "load nosql": d["target"]}.get(d["stage"], "warehouse")
        name = d["table"] if target != "warehouse" or "." in d["table"] else None
        if name is None:  # a raw table: its schema is the source's store
            name = f"raw_{d['source'].split(':')[0]}.{d['table']}"
        assert d["table_rows_after"] == actual[(target, name)], d
        assert d["rows"]["read"] == actual[(target, name)], d  # --force: every row read again
        assert (d["status"], d["seconds"] > 0, bool(d["steps"])) == ("ok", True, True), d
        assert d["checks"], d
        assert not [c for c in d["checks"] if c.endswith("DIFFERS")], d
        if d["target"] in ("postgres", "dynamodb"):
            source = example.parent / d["source"]  # shown relative to the spec's folder
            assert d["file_sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
    orders = next(d for d in entries if d["stage"] == "etl" and d["dataset"] == "orders")
    # the warehouse's own reconciliation: rows (and, merging into rows already there, values)
    assert any(
        c.startswith(("rows: the source counted 40", "rows and values")) for c in orders["checks"]
    )
    nodes = {n["id"] for n in report["lineage"]["nodes"]}
    assert ["raw:orders", "model:fact_orders"] in report["lineage"]["edges"]
    assert {"file:orders", "postgres:orders", "dynamodb:items_bought_data"} <= nodes

    html = page.read_text(encoding="utf-8")
    assert '<svg id="chart"' in html
    assert '<svg id="lineage"' in html
    assert "<script" not in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    text = summary.read_text(encoding="utf-8")
    assert text.startswith(f"### dataferry run `{payload['run_id']}`: ok")
    assert "```mermaid" in text
    assert f"Report: `{payload['report']}`" in text

    shown = as_json(dataferry("report", "-c", str(example), "--json"))
    assert shown["report"] == report  # the latest run's
    assert (
        as_json(dataferry("report", payload["run_id"][:6], "-c", str(example), "--json"))["report"][
            "run_id"
        ]
        == payload["run_id"]
    )
    missing = dataferry("report", "0000000", "-c", str(example))
    assert missing.returncode == 1
    assert "no run report of run 0000000" in missing.stderr


def test_a_failed_run_reports_what_it_did_and_its_rejects(example: Path, tmp_path: Path) -> None:
    root = tmp_path / "failing"
    shutil.copytree(example.parent, root, ignore=shutil.ignore_patterns(".*"), dirs_exist_ok=True)
    spec = root / "dataferry.yaml"
    bad = root / "data" / "sql" / "item.csv"
    bad.write_text(bad.read_text(encoding="utf-8") + "x,broken,not a price\n", "utf-8")
    reports, summary = tmp_path / "reports", tmp_path / "summary.md"
    try:
        failed = dataferry(
            "load", "sql", "-c", str(spec), "--report-dir", str(reports), "--summary", str(summary)
        )
    finally:
        dataferry("stack", "down", "-c", str(spec))
    assert failed.returncode == 4, failed.stderr
    assert f"report: {reports}" in failed.stderr
    report = json.loads(next(reports.glob("*.json")).read_text(encoding="utf-8"))
    assert (report["status"], report["exit_code"], report["command"]) == ("failed", 4, "load sql")
    assert "not a valid integer" in report["error"]
    by_name = {d["dataset"]: d for d in report["datasets"]}
    assert by_name["customer"]["status"] == "ok"
    assert by_name["item"]["status"] == "failed"
    assert "orders" not in by_name  # never started: its parent failed
    rejects = by_name["item"]["rejects"]
    assert rejects["total"] == 1
    assert rejects["shown"][0]["reason"] == "column item_id: not a valid integer"
    assert by_name["customer"]["table_rows_after"] == 30  # counted by its load, as it committed
    text = summary.read_text(encoding="utf-8")
    assert ": failed" in text.splitlines()[0]
    assert "**Error:**" in text
    assert "first: column item_id: not a valid integer" in text


def _chromium() -> str:
    """Debian's chromium (.ci/run installs it) and Playwright to drive it; without them the
    test is skipped on a workstation and fails in CI."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    missing = []
    if path is None:
        missing.append("chromium (apt-get install chromium)")
    if importlib.util.find_spec("playwright") is None:
        missing.append("playwright (the dev extra)")
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"CI must have {' and '.join(missing)}")
        pytest.skip(f"needs {' and '.join(missing)}")
    assert path is not None
    return path


def test_the_report_page_renders_in_a_real_browser(example: Path, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    chromium = _chromium()
    # every table written, models included: the page shows all of it (and docs/images too)
    payload = as_json(dataferry("run", "-c", str(example), "--force", "--full-refresh", "--json"))
    page_file = Path(payload["report"]).resolve()
    report = json.loads(page_file.with_suffix(".json").read_text(encoding="utf-8"))
    problems: list[str] = []
    with sync_playwright() as pw:
        # The flags keep Chromium off the network it would otherwise call home on.
        browser = pw.chromium.launch(
            executable_path=chromium,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on(
                "console",
                lambda m: (
                    problems.append(f"console {m.type}: {m.text}")
                    if m.type in ("error", "warning")
                    else None
                ),
            )
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on(
                "request",
                lambda r: None if r.url.startswith("file:") else problems.append(r.url),
            )
            page.goto(page_file.as_uri())
            page.wait_for_load_state("load")
            chart = page.locator("#chart").bounding_box()
            lineage = page.locator("#lineage").bounding_box()
            assert chart is not None
            assert lineage is not None
            assert chart["width"] > 500
            assert chart["height"] > 100
            assert lineage["width"] > 500
            # two bars (rows, seconds) per table; one box per lineage node
            assert page.locator("#chart rect").count() == 2 * len(report["datasets"])
            assert page.locator("#lineage rect").count() == len(report["lineage"]["nodes"])
            assert page.get_by_text("fact_orders").first.is_visible()
            shots = Path(os.environ.get("SCREENSHOT_DIR", tmp_path))
            page.screenshot(path=str(shots / "run-report.png"))
            page.locator("#lineage").screenshot(path=str(shots / "run-report-lineage.png"))
            assert (shots / "run-report.png").stat().st_size > 20_000
        finally:
            browser.close()
    assert not problems, problems


def test_a_report_that_cannot_be_written_is_a_warning_not_a_failure(
    example: Path, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    proc = dataferry(
        "load", "sql", "-c", str(example), "--force", "--report-dir", str(blocker / "reports")
    )
    assert proc.returncode == 0, proc.stderr
    assert "the run report could not be written to" in proc.stderr
    assert proc.stdout.strip().splitlines()[-1].startswith("ok: run ")  # no report line


def test_db_bootstrap_makes_the_pipeline_role_and_is_idempotent(example: Path) -> None:
    first = as_json(dataferry("db", "bootstrap", "-c", str(example), "--json", "--role", "etl"))
    assert first["role"] == "etl"
    assert "etl: usage and create on schema public" in first["done"]
    second = as_json(dataferry("db", "bootstrap", "-c", str(example), "--json", "--role", "etl"))
    assert "role etl exists" in second["done"]
    assert not [line for line in second["done"] if "created" in line]


def test_a_dot_env_file_fills_in_what_the_environment_lacks(example: Path, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "# as the original's dev container had it\n"
        "DATAFERRY_DYNAMODB_ENDPOINT=http://127.0.0.1:9\n"
        'AWS_REGION="eu-central-1"\n'
    )
    shown = as_json(dataferry("config", "show", "-c", str(example), "--json", cwd=tmp_path))
    assert "http://127.0.0.1:9" in json.dumps(shown)
    assert "eu-central-1" in json.dumps(shown)
    # the environment wins over the file
    env = {"AWS_REGION": "ap-south-1"}
    shown = as_json(
        dataferry("config", "show", "-c", str(example), "--json", cwd=tmp_path, env=env)
    )
    assert "ap-south-1" in json.dumps(shown)
    assert "eu-central-1" not in json.dumps(shown)
    missing = dataferry(
        "config", "show", "-c", str(example), env={"DATAFERRY_ENV_FILE": str(tmp_path / "no")}
    )
    assert missing.returncode == 3
    assert "DATAFERRY_ENV_FILE" in missing.stderr
