"""The run report's documents, built from load records: what they show and what they
must never do (run a script, fetch an asset, let a name break out of its markup)."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from pathlib import Path

import pytest

from dataferry.errors import DataferryError, InputError
from dataferry.ledger import LoadCounts, LoadRecord
from dataferry.reports import build_report, find_report, report_markdown, write_report
from dataferry.spec import Spec, load_spec

EXAMPLE = Path(__file__).parents[2] / "examples" / "retail"
HOSTILE = '<script>alert("x")</script> | ]] --> "q"'


@pytest.fixture
def spec(tmp_path: Path) -> Spec:
    shutil.copytree(EXAMPLE, tmp_path, ignore=shutil.ignore_patterns(".*"), dirs_exist_ok=True)
    return load_spec(tmp_path / "dataferry.yaml")


def _record(spec: Spec, dataset: str, target: str, **kw: object) -> LoadRecord:
    started = dt.datetime(2026, 11, 30, 8, 0, tzinfo=dt.timezone.utc)
    r = LoadRecord(
        run_id="abc123def456",
        dataset=dataset,
        target=target,
        table=dataset,
        source=str(spec.base_dir / "data" / "sql" / f"{dataset}.csv"),
        spec_sha256="0" * 64,
        started_at=started,
        finished_at=started + dt.timedelta(seconds=2),
        status="ok",
    )
    for k, v in kw.items():
        setattr(r, k, v)
    return r


def test_counts_checks_and_lineage(spec: Spec) -> None:
    orders = _record(
        spec, "orders", "postgres", counts=LoadCounts(read=40, written=40, inserted=40)
    )
    orders.steps = {"read, validate, write": 1.5}
    raw = _record(spec, "orders", "warehouse", source="postgres:public.orders")
    raw.counts = LoadCounts(read=40, written=40, inserted=40)
    raw.checks = ["rows: the source counted 40, 40 arrived, the raw table holds 40"]
    targets = {
        "postgres": {"endpoint": "x", "tables": [{"dataset": "orders", "table": "o", "rows": 39}]},
        "warehouse": {"endpoint": "y", "tables": [{"dataset": "orders", "table": "r", "rows": 41}]},
    }
    report = build_report(
        spec,
        run_id="abc123def456",
        command="run",
        records=[orders, raw],
        started_at=orders.started_at,
        seconds=4.0,
        targets=targets,
    )
    pg, wh = report["datasets"]
    assert pg["source"] == "data/sql/orders.csv"  # relative to the spec's folder
    assert pg["rows_per_second"] == 20
    # 40 rows loaded into a table that holds 39: said, not hidden
    assert pg["checks"] == ["table rows after the run: 39 (expected at least 40): DIFFERS"]
    assert wh["checks"][-1] == "table rows after the run: 41 (expected at least 40): ok"
    touched = {n["id"] for n in report["lineage"]["nodes"] if n["touched"]}
    assert touched == {"file:orders", "postgres:orders", "raw:orders"}
    assert ["raw:orders", "model:fact_orders"] in report["lineage"]["edges"]


def test_the_page_is_self_contained_and_escapes_every_name(spec: Spec, tmp_path: Path) -> None:
    bad = _record(spec, "item", "postgres", status="failed", error=HOSTILE, note=HOSTILE)
    rejects = tmp_path / "item.rejects.csv"
    rejects.write_text(f'line,reason\n3,"{HOSTILE.replace(chr(34), chr(34) * 2)}"\n')
    bad.rejects_file, bad.counts = str(rejects), LoadCounts(read=3, rejected=1)
    report = build_report(
        spec,
        run_id="abc123def456",
        command="load sql",
        records=[bad],
        started_at=bad.started_at,
        seconds=1.0,
        error=InputError("item.csv", HOSTILE),
        exit_code=4,
        verdict="failed: " + HOSTILE,
    )
    as_json, page = write_report(report, tmp_path / "reports")
    html = page.read_text(encoding="utf-8")
    assert "<script" not in html
    assert "&lt;script&gt;" in html
    # no asset from anywhere: the only URL is SVG's namespace, which is never fetched
    urls = set(re.findall(r"https?://[^\s\"'<>]+", html))
    assert urls == {"http://www.w3.org/2000/svg"}
    assert not re.search(r"""(src|href)\s*=""", html)
    saved = json.loads(as_json.read_text())
    assert saved["datasets"][0]["rejects"]["shown"][0]["reason"] == HOSTILE

    md = report_markdown(saved, page)
    mermaid = md.split("```mermaid", 1)[1].split("```", 1)[0]
    assert "-->" in mermaid
    assert all(line.count('"') in (0, 2) for line in mermaid.splitlines())
    row = next(line for line in md.splitlines() if line.startswith("| load sql | item"))
    assert row.count(" | ") == 10  # a | in a value cannot add a column


def test_find_report_by_prefix_latest_or_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataferryError, match="no run report yet"):
        find_report(tmp_path)
    for started, run_id in (("0102", "bbb333"), ("0101", "aaa111"), ("0100", "aab222")):
        (tmp_path / f"2026{started}T080000Z-{run_id}.json").write_text("{}")
    assert find_report(tmp_path, "bb").name == "20260102T080000Z-bbb333.json"
    assert find_report(tmp_path).name == "20260102T080000Z-bbb333.json"  # the latest start
    with pytest.raises(DataferryError, match="ambiguous"):
        find_report(tmp_path, "aa")
    with pytest.raises(DataferryError, match="no run report of run ccc"):
        find_report(tmp_path, "ccc")


def test_the_oldest_reports_go_past_the_number_kept(spec: Spec, tmp_path: Path) -> None:
    folder = tmp_path / "reports"
    folder.mkdir()
    (folder / "notes.txt").write_text("not a report: left alone")
    for minute in range(5):
        started = dt.datetime(2026, 11, 30, 8, minute, tzinfo=dt.timezone.utc)
        report = build_report(
            spec,
            run_id=f"{minute:012x}",
            command="run",
            records=[],
            started_at=started,
            seconds=1.0,
        )
        write_report(report, folder, keep=3)
    kept = sorted(p.name for p in folder.iterdir())
    assert kept == [
        *(f"20261130T08{m:02d}00Z-{m:012x}.{ext}" for m in (2, 3, 4) for ext in ("html", "json")),
        "notes.txt",
    ]


def test_an_estimated_item_count_is_not_reconciled_against(spec: Spec) -> None:
    """DynamoDB's ItemCount (AWS, or any endpoint but the embedded one) is hours old: a
    load just made would look short of items. No check is made on it."""
    items = _record(spec, "items_data", "dynamodb", counts=LoadCounts(read=24, written=24))
    targets = {
        "dynamodb": {
            "endpoint": "AWS DynamoDB (us-west-2)",
            "estimated": True,
            "tables": [{"dataset": "items_data", "table": "items_data", "rows": 0}],
        }
    }
    report = build_report(
        spec,
        run_id="abc123def456",
        command="load nosql",
        records=[items],
        started_at=items.started_at,
        seconds=1.0,
        targets=targets,
    )
    (entry,) = report["datasets"]
    assert entry["checks"] == []
    assert entry["table_rows_after"] is None


def test_the_lineage_of_models_is_kept_until_a_model_changes(spec: Spec) -> None:
    """Parsing the models' SQL costs every report a tenth of a second: it is kept in the
    stack folder, where a run keeps its state, under the digest of the files and names
    it came from."""
    from dataferry.reports.lineage import lineage

    lineage(spec)
    assert not spec.stack_dir.exists()  # never created for it (validate creates nothing)
    spec.stack_dir.mkdir()  # as a run does
    first = lineage(spec)
    cache = spec.stack_dir / "lineage.json"
    assert cache.exists()
    kept = json.loads(cache.read_text())
    assert lineage(spec) == first  # from the cache, the same answer
    # a model that reads one more dataset: the digest changes, the SQL is parsed again
    sql = spec.resolve(spec.models.tables["dim_item"].sql)
    original = sql.read_bytes()
    sql.write_text(sql.read_text().rstrip().rstrip(";") + "\n-- read again\n")
    lineage(spec)
    answers = json.loads(cache.read_text())["answers"]
    assert next(iter(answers)) == next(iter(kept["answers"]))  # the first one is kept too
    assert len(answers) == 2
    # the file as it was: its answer is read back, and the cache is not written
    sql.write_bytes(original)
    before = cache.read_bytes()
    assert lineage(spec) == first
    assert cache.read_bytes() == before
    # a cache that lies under the right key would show; a torn one is parsed again
    cache.write_text("{not json")
    assert lineage(spec) == first
