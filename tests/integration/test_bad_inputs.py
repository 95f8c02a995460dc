"""The bad-input corpus (tests/data/bad/): one defect per file, each with the outcome
tests/data/bad/expected.yaml states, and the target table checked afterwards. CSV files
load into PostgreSQL; JSON files into DynamoDB, on moto and on dynalite alike, so that
no outcome depends on what one local server happens to accept."""

from __future__ import annotations

import csv
import shutil
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from dataferry import stages
from dataferry.errors import InputError
from dataferry.stages import RunContext
from tests.conftest import REPO, PipelineFactory, unique
from tests.integration.conftest import ddb_client, pg_conn

BAD = REPO / "tests" / "data" / "bad"
EXPECTED: dict[str, Any] = yaml.safe_load((BAD / "expected.yaml").read_text(encoding="utf-8"))
GENERATED: dict[str, Any] = EXPECTED.pop("generated")
MB = 1_000_000
HEADER = "id,name,price,day,note\n"


def _generate(name: str, dest: Path) -> None:
    """The large cases: written when a test needs them, never kept in the repository."""
    row = "2,Bob,2.00,2024-01-02,ok\n"
    makers: dict[str, Callable[[], str]] = {
        "csv_field_1mb.csv": lambda: HEADER + f"1,Ana,1.00,2024-01-01,{'x' * MB}\n" + row,
        "csv_field_2mb.csv": lambda: HEADER + f"1,Ana,1.00,2024-01-01,{'x' * 2 * MB}\n" + row,
        "csv_field_8mb.csv": lambda: HEADER + f"1,Ana,1.00,2024-01-01,{'x' * 8 * MB}\n" + row,
        # past two of the reader's 1 MiB blocks: read again in larger ones
        "csv_field_16mib_quoted_lines.csv": lambda: (
            HEADER + '1,Ana,1.00,2024-01-01,"' + ("x" * 999 + "\n") * 16_000 + '"\n' + row
        ),
        "csv_line_over_16mib.csv": lambda: HEADER + f"1,Ana,1.00,2024-01-01,{'x' * 17 * MB}\n",
        "csv_header_over_16mib.csv": lambda: "x" * 17 * MB,
        "csv_header_300k_columns.csv": lambda: (
            HEADER.strip() + "," + ",".join(f"c{i}" for i in range(300_000)) + "\n"
        ),
        "json_item_over_400kb.jsonl": lambda: (
            '{"id": "a"}\n' + f'{{"id": "b", "note": "{"x" * 410_000}"}}\n'
        ),
        "json_line_over_16mib.jsonl": lambda: (
            '{"id": "a"}\n' + f'{{"id": "b", "note": "{"x" * 17 * MB}"}}\n' + '{"id": "c"}\n'
        ),
        # ijson's memory grows with the square of the depth: 24 GB for this 200 KB file
        "json_nesting_100000_levels.json": lambda: (
            '[{"id": "a"}, {"id": "b", "m": ' + "[" * 100_000 + "]" * 100_000 + '}, {"id": "c"}]\n'
        ),
        "json_record_over_16mib.json": lambda: (
            '[{"id": "a"}, ' + f'{{"id": "b", "note": "{"x" * 20 * MB}"}}, {{"id": "c"}}]\n'
        ),
    }
    dest.write_text(makers[name](), encoding="utf-8")


def _csv_dataset(path: str, schema: str) -> dict[str, Any]:
    return {
        "source": {"path": path},
        "target": {"store": "postgres", "table": "t", "schema": schema},
        "columns": {
            "id": {"type": "integer", "nullable": False},
            "name": {"type": "varchar(10)", "nullable": False},
            "price": {"type": "numeric(10,2)"},
            "day": {"type": "date"},
            "note": {"type": "text"},
        },
        "primary_key": ["id"],
    }


def _json_dataset(path: str, table: str) -> dict[str, Any]:
    return {
        "source": {"path": path},
        "target": {"store": "dynamodb", "table": table},
        "key": {"hash": "id"},
        "columns": {
            "id": {"type": "text", "nullable": False},
            "price": {"type": "numeric(10,2)"},
            "n": {"type": "integer"},
        },
    }


def _place(pipeline: PipelineFactory, name: str) -> str:
    dest = pipeline.root / name
    if name in GENERATED:
        _generate(name, dest)
    else:
        shutil.copyfile(BAD / name, dest)
    return name


def _decode(item: dict[str, Any]) -> dict[str, Any]:
    """Top-level attributes, numbers as exact Decimals. (boto3's deserializer rounds to
    38 digits and raises on dynalite's expanded form of 9.99E+125.)"""
    out: dict[str, Any] = {}
    for name, value in item.items():
        ((kind, raw),) = value.items()
        out[name] = Decimal(raw) if kind == "N" else raw if kind == "S" else value
    return out


def _same(actual: Any, expected: Any) -> bool:
    if expected is None or actual is None:
        return actual is expected
    if isinstance(actual, Decimal):
        return actual == Decimal(str(expected))
    return str(actual) == str(expected)


def _check(
    name: str,
    want: dict[str, Any],
    run: Callable[[], Any],
    rows: Callable[[], dict[Any, dict[str, Any]] | None],
    rejects_file: Path,
) -> None:
    jsonl_or_csv = not name.endswith(".json")
    if want["outcome"] == "failed":
        with pytest.raises(InputError) as e:
            run()
        message = str(e.value)
        assert name in message
        assert want["message"] in message
        if "line" in want:
            assert f"{name}:{want['line']}:" in message
        if "record" in want:
            assert f"record {want['record']}:" in message
        assert not rows(), "nothing may be loaded from a file that failed"
        return
    (record,) = run()
    got = rows() or {}
    assert len(got) == want["rows"] == record.counts.written, got.keys()
    for key, values in (want.get("values") or {}).items():
        for column, value in values.items():
            assert _same(got[key].get(column), value), (key, column, got[key].get(column))
    if want["outcome"] == "loaded":
        assert record.counts.rejected == 0
        assert not rejects_file.exists()
        return
    with rejects_file.open(encoding="utf-8") as f:
        header, *found = list(csv.reader(f))
    position = header.index("line" if jsonl_or_csv else "record")
    assert len(found) == len(want["rejects"]) == record.counts.rejected, found
    for row, (where, reason) in zip(found, want["rejects"], strict=True):
        assert row[position] == str(where), row
        assert reason in row[-1], row


def test_every_file_has_an_expected_outcome_and_there_are_enough() -> None:
    files = {p.name for p in BAD.iterdir() if p.suffix in (".csv", ".json", ".jsonl")}
    assert files == set(EXPECTED)
    assert len(files) + len(GENERATED) >= 40
    assert {w["outcome"] for w in EXPECTED.values()} == {"loaded", "quarantined", "failed"}


CSV_CASES = sorted(n for n in [*EXPECTED, *GENERATED] if n.endswith(".csv"))
JSON_CASES = sorted(n for n in [*EXPECTED, *GENERATED] if not n.endswith(".csv"))


@pytest.mark.parametrize("name", CSV_CASES)
def test_csv_into_postgres(pipeline: PipelineFactory, name: str) -> None:
    want = EXPECTED.get(name) or GENERATED[name]
    schema = unique("bad")
    spec = pipeline.spec({"d": _csv_dataset(_place(pipeline, name), schema)})

    def rows() -> dict[Any, dict[str, Any]] | None:
        with pg_conn(spec) as conn:
            if conn.execute("SELECT to_regclass(%s)", (f'"{schema}".t',)).fetchone() == (None,):
                return None
            cur = conn.execute(f'SELECT * FROM "{schema}".t')  # schema: ours, made just above
            names = [c.name for c in cur.description or []]
            return {r[0]: dict(zip(names, r, strict=True)) for r in cur.fetchall()}

    _check(
        name,
        want,
        lambda: stages.load_sql(spec, ctx=RunContext(max_rejects=10)),
        rows,
        spec.rejects_path("d"),
    )


@pytest.mark.parametrize("name", JSON_CASES)
def test_json_into_dynamodb(
    pipeline: PipelineFactory, dynamodb_stores: dict[str, Any], name: str
) -> None:
    want = EXPECTED.get(name) or GENERATED[name]
    table = unique("bad")
    spec = pipeline.spec(
        {"d": _json_dataset(_place(pipeline, name), table)}, stores=dynamodb_stores
    )

    def rows() -> dict[Any, dict[str, Any]] | None:
        client = ddb_client(spec)
        if table not in client.list_tables()["TableNames"]:
            return None
        items = [
            _decode(i)
            for page in client.get_paginator("scan").paginate(TableName=table)
            for i in page["Items"]
        ]
        return {i["id"]: i for i in items}

    _check(
        name,
        want,
        lambda: stages.load_nosql(spec, ctx=RunContext(max_rejects=10)),
        rows,
        spec.rejects_path("d"),
    )
