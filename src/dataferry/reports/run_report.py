"""The run report: what one command that writes did, as a JSON document kept beside the
stack (``<stack dir>/reports/<run id>.json``, with its HTML page), for `dataferry report`,
the CI job summary and anyone who looks back at a run."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import DataferryError
from ..ledger import LoadRecord
from ..spec import Spec
from .lineage import lineage

__all__ = [
    "REJECTS_SHOWN",
    "build_report",
    "find_report",
    "report_folder",
    "write_report",
]

FORMAT = 1  # the JSON's layout version: bumped when a key changes meaning
REJECTS_SHOWN = 20  # per dataset; the rejects file has them all
# The stage a load record belongs to, by its target.
STAGE_OF = {"postgres": "load sql", "dynamodb": "load nosql", "warehouse": "etl", "model": "etl"}


def report_folder(spec: Spec, override: Path | None = None) -> Path:
    return override if override is not None else spec.stack_dir / "reports"


def _sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _rejects(r: LoadRecord) -> dict[str, Any] | None:
    """The first REJECTS_SHOWN rows of the record's rejects file, with their reasons."""
    if not r.rejects_file or not r.counts.rejected:
        return None
    shown: list[dict[str, str]] = []
    note = None
    try:
        with Path(r.rejects_file).open(encoding="utf-8", newline="") as f:
            for i, row in enumerate(csv.DictReader(f)):
                if i == REJECTS_SHOWN:
                    break
                shown.append(row)
    except OSError as e:
        note = f"the rejects file could not be read ({e.strerror or e})"
    except csv.Error as e:  # a value past the csv module's field limit, say
        note = f"the rejects file could not be read ({e})"
    return {"file": r.rejects_file, "total": r.counts.rejected, "shown": shown, "note": note}


def _row_check(r: LoadRecord, mode: str | None, rows: int | None) -> str | None:
    """The target table's rows after the run against what this load put there."""
    if rows is None or r.status != "ok":
        return None
    c = r.counts
    if r.target == "model":
        expected, exact = c.written, True
    elif r.target == "warehouse":
        expected, exact = c.read, False  # rows gone from the source may stay, marked
    else:
        expected = c.read - c.rejected - c.superseded
        exact = mode == "replace" and r.target == "postgres"
    ok = rows == expected if exact else rows >= expected
    want = f"{expected:,}" if exact else f"at least {expected:,}"
    return f"table rows after the run: {rows:,} (expected {want}): {'ok' if ok else 'DIFFERS'}"


def _shown(spec: Spec, path: str) -> str:
    """A file under the spec's folder as a path relative to it: the report reads the same
    wherever the project is checked out (a CI runner's workspace, a laptop)."""
    try:
        return str(Path(path).resolve().relative_to(spec.base_dir.resolve()))
    except (ValueError, OSError):
        return path


def _dataset_entry(
    spec: Spec, r: LoadRecord, rows: Mapping[tuple[str, str], int | None]
) -> dict[str, Any]:
    c = r.counts
    seconds = None if r.seconds is None else round(r.seconds, 3)
    ds = spec.datasets.get(r.dataset)
    after = rows.get((r.store, r.dataset))
    checks = list(r.checks)
    if (row_check := _row_check(r, ds.mode if ds else None, after)) is not None:
        checks.append(row_check)
    unknown = not r.tells_new_from_changed
    return {
        "stage": STAGE_OF.get(r.target, r.target),
        "dataset": r.dataset,
        "target": r.target,
        "table": r.table,
        "source": r.source
        if r.target == "warehouse"
        else ", ".join(_shown(spec, p) for p in r.source.split(", ")),
        "file_size": r.file_size,
        "file_sha256": r.file_sha256,
        "files": [
            {
                "file": f.source,
                "status": f.status,
                "size": f.file_size,
                "sha256": f.file_sha256,
                "read": f.read if f.status == "loaded" else None,
                "rejected": f.rejected if f.status == "loaded" else None,
            }
            for f in r.files
        ],
        "status": r.status,
        "note": r.note,
        "error": r.error,
        "rows": {
            "read": c.read,
            "written": c.written,
            "new": None if unknown else c.inserted,
            "changed": None if unknown else c.updated,
            "unchanged": None if unknown else c.unchanged,
            "rejected": c.rejected,
            "deleted": c.deleted,
            "superseded": c.superseded,
        },
        "table_rows_after": after,
        "started_at": r.started_at,
        "seconds": seconds,
        "rows_per_second": round(c.read / seconds) if seconds and c.read else None,
        "steps": {k: round(v, 3) for k, v in r.steps.items()},
        "checks": checks,
        "rejects": _rejects(r),
    }


def _table_rows(targets: Mapping[str, Mapping[str, Any]]) -> dict[tuple[str, str], int | None]:
    """Each table's rows, where they were counted: DynamoDB's ItemCount away from the
    embedded endpoint is an estimate hours old, and reconciling against it would cry
    wolf, so those tables have none."""
    return {
        (target, row["dataset"]): row["rows"]
        for target, info in targets.items()
        if not info.get("estimated")
        for row in info.get("tables", [])
    }


def build_report(
    spec: Spec,
    *,
    run_id: str,
    command: str,
    records: Sequence[LoadRecord],
    started_at: dt.datetime,
    seconds: float,
    error: BaseException | None = None,
    exit_code: int = 0,
    verdict: str = "",
    targets: Mapping[str, Mapping[str, Any]] | None = None,
    targets_note: str | None = None,
) -> dict[str, Any]:
    """The report of one run. ``targets``: what status() read after the run (rows per
    table), or None with ``targets_note`` saying why they were not counted."""
    rows = _table_rows(targets or {})
    entries = [_dataset_entry(spec, r, rows) for r in records]
    state = "ok" if error is None else ("interrupted" if exit_code >= 128 else "failed")
    return {
        "format": FORMAT,
        "dataferry": __version__,
        "run_id": run_id,
        "command": command,
        "status": state,
        "ok": error is None,
        "exit_code": exit_code,
        "error": None if error is None else str(error),
        "verdict": verdict,
        "started_at": started_at,
        "finished_at": started_at + dt.timedelta(seconds=seconds),
        "seconds": round(seconds, 3),
        "spec": {"name": spec.name, "path": str(spec.path), "sha256": _sha256(spec.path)},
        "rows_written": sum(r.counts.written for r in records),
        "rows_rejected": sum(r.counts.rejected for r in records),
        "datasets": entries,
        "targets": {
            target: {
                "endpoint": info.get("endpoint"),
                "note": info.get("note"),
                "tables": [
                    {"dataset": t["dataset"], "table": t["table"], "rows": t["rows"]}
                    for t in info.get("tables", [])
                ],
            }
            for target, info in (targets or {}).items()
        },
        "targets_note": targets_note,
        "lineage": lineage(spec, {r.dataset for r in records if r.status == "ok"}),
    }


def _default(o: Any) -> Any:
    if isinstance(o, (dt.datetime, dt.date)):
        return o.isoformat()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _write_atomic(path: Path, text: str) -> None:
    """Whole or not at all: a reader never sees half a report."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def write_report(
    report: Mapping[str, Any], folder: Path, keep: int | None = None
) -> tuple[Path, Path]:
    """Write ``<start>-<run id>.json`` and ``.html`` into ``folder`` (the start in UTC,
    ``20261130T081502Z``: the folder lists the runs in order); their paths. With
    ``keep``, the oldest reports beyond that many are removed."""
    from .html_page import render_html

    folder.mkdir(parents=True, exist_ok=True)
    text = json.dumps(report, default=_default, indent=2, ensure_ascii=False)
    started = report["started_at"]
    if isinstance(started, str):
        started = dt.datetime.fromisoformat(started)
    stem = f"{started.astimezone(dt.timezone.utc):%Y%m%dT%H%M%SZ}-{report['run_id']}"
    as_json, page = folder / f"{stem}.json", folder / f"{stem}.html"
    # Read back from the JSON text, so the page shows exactly what the JSON holds.
    _write_atomic(page, render_html(json.loads(text)))
    _write_atomic(as_json, text + "\n")
    if keep is not None:
        _prune(folder, keep)
    return as_json, page


_REPORT_NAME = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]+\.(json|html)$")


def _prune(folder: Path, keep: int) -> None:
    """Remove the oldest runs' reports past ``keep``: only files named as reports are
    touched, whatever else the folder holds."""
    runs = sorted({p.stem for p in folder.iterdir() if _REPORT_NAME.match(p.name)})
    for stem in runs[:-keep]:
        for suffix in (".json", ".html"):
            (folder / f"{stem}{suffix}").unlink(missing_ok=True)


def _reports(folder: Path) -> Iterable[Path]:
    return folder.glob("*.json") if folder.is_dir() else ()


def _run_id(report: Path) -> str:
    return report.stem.partition("-")[2]


def find_report(folder: Path, run_id: str | None = None) -> Path:
    """The JSON report of ``run_id`` (a unique prefix will do), or of the latest run."""
    found = sorted(p for p in _reports(folder) if _run_id(p))  # by start time, in the name
    if run_id is not None:
        found = [p for p in found if _run_id(p).startswith(run_id)]
        if len(found) > 1:
            ids = ", ".join(_run_id(p) for p in found)
            raise DataferryError(f"{folder}: run id {run_id!r} is ambiguous ({ids})")
    if not found:
        which = f"of run {run_id}" if run_id else "yet"
        raise DataferryError(
            f"{folder}: no run report {which} (every command that writes leaves one; "
            "--report-dir names another folder)"
        )
    return found[-1]
