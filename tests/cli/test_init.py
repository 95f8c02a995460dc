"""`dataferry init`: the example project, and specs inferred from data files that then
load those files with zero rejects (on a stack of the test's own)."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO


def dataferry(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dataferry", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )


def run_clean(spec: Path) -> dict[str, Any]:
    """Run the spec's three stages; the --json payload. The stack is stopped after."""
    try:
        proc = dataferry("run", "-c", str(spec), "--json")
        assert proc.returncode == 0, proc.stderr
        return dict(json.loads(proc.stdout))
    finally:
        dataferry("stack", "down", "-c", str(spec), "-q")


def test_init_writes_the_example_project_and_refuses_to_overwrite(tmp_path: Path) -> None:
    proc = dataferry("init", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    for rel in ("dataferry.yaml", ".gitignore", ".github/workflows/dataferry.yml"):
        assert (tmp_path / rel).is_file()
    assert ".dataferry/" in (tmp_path / ".gitignore").read_text()
    workflow = yaml.safe_load((tmp_path / ".github/workflows/dataferry.yml").read_text())
    assert workflow["permissions"] == {"contents": "read"}
    # every dataferry command the workflow runs takes the options it is given (a wrong one
    # would exit 64, not pass for plan's "changes", 2)
    commands = [
        shlex.split(step["run"].split("||")[0].split("#")[0])
        for step in workflow["jobs"]["pipeline"]["steps"]
        if step.get("run", "").startswith("dataferry ")
    ]
    assert len(commands) >= 3
    for command in commands:
        proc = dataferry(*command[1:], "--help")
        assert proc.returncode == 0, (command, proc.stderr)
    assert dataferry("validate", "-c", str(tmp_path / "dataferry.yaml")).returncode == 0
    again = dataferry("init", str(tmp_path))
    assert again.returncode == 3
    assert "--force" in again.stderr


def test_a_spec_inferred_from_the_example_data_loads_it_with_zero_rejects(tmp_path: Path) -> None:
    shutil.copytree(REPO / "examples" / "retail" / "data", tmp_path / "data")
    proc = dataferry("init", str(tmp_path), "--infer", str(tmp_path / "data"))
    assert proc.returncode == 0, proc.stderr
    spec = yaml.safe_load((tmp_path / "dataferry.yaml").read_text())
    orders = spec["datasets"]["orders"]
    assert orders["primary_key"] == ["order_id"]
    assert orders["columns"]["order_date"]["type"] == "date"
    assert orders["columns"]["price"]["type"] == "numeric(6,2)"
    assert orders["columns"]["comments"].get("nullable", True) is True  # some are empty
    assert {fk["references"]["dataset"] for fk in orders["foreign_keys"]} == {"customer", "item"}
    assert spec["datasets"]["orders_nosql"]["key"] == {"hash": "item", "range": "customer"}
    text = (tmp_path / "dataferry.yaml").read_text()
    assert "# 40 dates (YYYY-MM-DD)" in text  # each inference says what it saw
    payload = run_clean(tmp_path / "dataferry.yaml")
    assert payload["rows_rejected"] == 0
    loaded = {r["dataset"]: r["written"] for s in payload["stages"].values() for r in s}
    assert loaded["orders"] == 40
    assert loaded["orders_nosql"] == 40


@pytest.mark.parametrize("seed", [5])
def test_a_spec_inferred_from_generated_data_loads_it_with_zero_rejects(
    tmp_path: Path, seed: int
) -> None:
    gen = tmp_path / "gen"
    made = dataferry(
        "generate", str(gen), "--orders", "3000", "--customers", "400", "--items", "50",
        "--seed", str(seed),
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    proj = tmp_path / "proj"
    proc = dataferry("init", str(proj), "--infer", str(gen / "data"))
    assert proc.returncode == 0, proc.stderr
    payload = run_clean(proj / "dataferry.yaml")
    assert payload["rows_rejected"] == 0
    loaded = {r["dataset"]: r["written"] for s in payload["stages"].values() for r in s}
    assert (loaded["orders"], loaded["customer"]) == (3000, 400)


def test_values_a_number_would_change_stay_text_and_the_spec_still_loads(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "stock.csv").write_text("sku,code,qty\n1,007,5\n2,010,\n", encoding="utf-8")
    (data / "things.json").write_text(
        '[{"id": "a", "n": 1.5e3, "name": "x", "qty": 3}, {"id": "b", "n": 2, "qty": 4}]',
        encoding="utf-8",
    )
    proc = dataferry("init", str(tmp_path), "--infer", str(data))
    assert proc.returncode == 0, proc.stderr
    spec = yaml.safe_load((tmp_path / "dataferry.yaml").read_text())
    stock = spec["datasets"]["stock"]["columns"]
    assert stock["code"]["type"] == "varchar(3)"  # 007 is not 7
    assert stock["qty"].get("nullable", True) is True
    assert spec["datasets"]["things"]["key"] == {"hash": "id"}
    # only the attribute that rejected a value is left undeclared; the others keep theirs
    assert set(spec["datasets"]["things"]["columns"]) == {"id", "name", "qty"}
    assert spec["datasets"]["things"]["columns"]["qty"]["type"] == "integer"
    payload = run_clean(tmp_path / "dataferry.yaml")
    assert payload["rows_rejected"] == 0


def test_csv_files_are_read_for_inference_as_a_load_reads_them(tmp_path: Path) -> None:
    """A BOM is not part of the first column's name, a 300 KB value is a value (the csv
    module's own limit is 128 KB), and bytes that are not UTF-8 fail the command at their
    line, before anything is written; each of them once ended in exit 70 or a bad spec."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "notes.csv").write_bytes(b"\xef\xbb\xbfid,note\n1," + b"x" * 300_000 + b"\n2,short\n")
    proc = dataferry("init", str(tmp_path / "ok"), "--infer", str(data))
    assert proc.returncode == 0, proc.stderr
    spec = yaml.safe_load((tmp_path / "ok" / "dataferry.yaml").read_text(encoding="utf-8"))
    assert list(spec["datasets"]["notes"]["columns"]) == ["id", "note"]
    assert spec["datasets"]["notes"]["primary_key"] == ["id"]
    assert spec["datasets"]["notes"]["columns"]["note"]["type"] == "text"

    (data / "notes.csv").write_bytes(b"id,note\n1,caf\xe9\n2,short\n")
    proc = dataferry("init", str(tmp_path / "bad"), "--infer", str(data))
    assert proc.returncode == 4, proc.stderr
    assert "notes.csv:2: not valid utf-8" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "bad").exists()


def test_a_project_where_no_folder_can_be_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    file = tmp_path / "a_file"
    file.write_text("x")
    for dest, reason in ((file, "not a folder"), (file / "sub", "cannot be written there")):
        proc = dataferry("init", str(dest))
        assert proc.returncode == 3, proc.stderr
        assert f"{dest}: " in proc.stderr
        assert reason in proc.stderr
        assert "Traceback" not in proc.stderr
