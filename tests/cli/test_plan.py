"""`dataferry plan` on the retail example with a stack of its own: exit 2 on a fresh stack,
0 right after a run, and exact counts for an edited file, with nothing changed."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO


def dataferry(spec: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dataferry", *args, "-c", str(spec)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def plan(spec: Path) -> tuple[int, dict[tuple[str, str], dict[str, Any]]]:
    proc = dataferry(spec, "plan", "--json")
    assert "Traceback" not in proc.stderr, proc.stderr[-1500:]
    items = json.loads(proc.stdout)["items"]
    return proc.returncode, {(i["stage"], i["dataset"]): i for i in items}


def rows(spec: Path) -> dict[str, int]:
    found = json.loads(dataferry(spec, "status", "--json").stdout)["targets"]
    return {t["dataset"]: t["rows"] for v in found.values() for t in v["tables"]}


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("plan")
    shutil.copytree(
        REPO / "examples" / "retail", root, ignore=shutil.ignore_patterns(".*"), dirs_exist_ok=True
    )
    path = root / "dataferry.yaml"
    assert dataferry(path, "stack", "up").returncode == 0
    yield path
    dataferry(path, "stack", "down")


def test_a_fresh_stack_plans_to_create_everything_then_a_run_leaves_no_changes(
    spec: Path,
) -> None:
    code, items = plan(spec)
    assert code == 2
    assert {i["action"] for i in items.values()} == {"create"}
    assert items[("load sql", "orders")]["new"] == 40
    assert items[("load sql", "orders")]["ddl"][0].startswith('CREATE TABLE "public"."orders"')
    assert items[("load nosql", "items_bought_data")]["new"] == 40
    assert ("model", "fact_orders") in items
    assert rows(spec)["orders"] is None  # nothing was created

    assert dataferry(spec, "run").returncode == 0
    code, items = plan(spec)
    assert code == 0
    assert {i["action"] for i in items.values()} <= {"skip", "no change"}
    assert "No changes" in dataferry(spec, "plan").stdout


def test_an_edited_file_is_counted_exactly_and_nothing_changes(spec: Path) -> None:
    if dataferry(spec, "plan").returncode == 2:
        assert dataferry(spec, "run").returncode == 0
    before = rows(spec)
    data = spec.parent / "data"
    orders = data / "sql" / "orders.csv"
    lines = orders.read_text(encoding="utf-8").splitlines()
    first = lines[1].split(",")
    first[4] = f"{float(first[4]) + 1:.2f}"  # price of order 1 changes
    lines[1] = ",".join(first)
    lines.append("41,1,1,2024-01-01,1.00,")  # one new order
    orders.write_text("\n".join(lines) + "\n", encoding="utf-8")
    bought = data / "nosql" / "orders.json"
    records = json.loads(bought.read_text(encoding="utf-8"))
    records[0]["quantity"] += 1
    bought.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")

    code, items = plan(spec)
    assert code == 2
    sql = items[("load sql", "orders")]
    assert (sql["action"], sql["new"], sql["changed"], sql["unchanged"]) == ("update", 1, 1, 39)
    nosql = items[("load nosql", "items_bought_data")]
    assert (nosql["action"], nosql["new"], nosql["changed"], nosql["unchanged"]) == (
        "update",
        0,
        1,
        39,
    )
    assert items[("etl", "orders")]["action"] == "update"
    assert items[("model", "fact_orders")]["action"] == "update"
    assert items[("load sql", "customer")]["action"] == "skip"
    assert rows(spec) == before  # planned, not applied

    lines.append("42,1,1,notadate,1.00,")
    orders.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, items = plan(spec)
    assert code == 2
    assert (items[("load sql", "orders")]["action"], items[("load sql", "orders")]["rejected"]) == (
        "fail",
        1,
    )
