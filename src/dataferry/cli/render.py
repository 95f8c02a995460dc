"""Human output (rich tables on stdout) and machine output (--json on stdout)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from ..ledger import LoadRecord

__all__ = ["emit_json", "records_markdown", "records_table", "status_tables"]

stdout = Console(highlight=False, emoji=False)  # names like ":x:" are text, not emoji
if not stdout.is_terminal:
    # Piped or captured output has no width to honour; 80 columns would cut table names.
    stdout.width = 160


def _default(o: Any) -> Any:
    if isinstance(o, (dt.datetime, dt.date)):
        return o.isoformat()
    if isinstance(o, Decimal):
        return str(o)
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def emit_json(payload: Any) -> None:
    print(json.dumps(payload, default=_default, indent=2, ensure_ascii=False))


def _seconds(r: LoadRecord) -> str:
    if r.finished_at is None:
        return ""
    return f"{(r.finished_at - r.started_at).total_seconds():.2f}"


def records_table(stage: str, records: Iterable[LoadRecord]) -> Table:
    t = Table(title=stage, title_justify="left")
    columns = ("dataset", "table", "read", "written", "new", "changed", "unchanged", "rejected")
    for col in (*columns, "seconds", "status"):
        t.add_column(col, justify="left" if col in ("dataset", "table", "status") else "right")
    for r in records:
        t.add_row(r.dataset, r.table, *_count_cells(r), _seconds(r), _status(r))
    return t


def _count_cells(r: LoadRecord) -> list[str]:
    """read, written, new, changed, unchanged, rejected: ``-`` where it is unknown
    (DynamoDB puts do not tell new from changed; a model is rebuilt whole)."""
    c = r.counts
    unknown = r.target in ("dynamodb", "model")
    split = ["-"] * 3 if unknown else [str(c.inserted), str(c.updated), str(c.unchanged)]
    return [str(c.read), str(c.written), *split, str(c.rejected)]


def _status(r: LoadRecord) -> str:
    if r.status == "skipped":
        return "skipped: unchanged"
    if r.counts.deleted:
        return f"ok, {r.counts.deleted} deleted"
    return r.status


def records_markdown(run_id: str, results: Mapping[str, Iterable[LoadRecord]]) -> str:
    """The run as Markdown, for a CI job summary ($GITHUB_STEP_SUMMARY)."""
    lines = [f"### dataferry run `{run_id}`", ""]
    columns = (
        "stage",
        "dataset",
        "table",
        "read",
        "written",
        "new",
        "changed",
        "unchanged",
        "rejected",
        "seconds",
        "status",
    )
    lines += ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    rejects = []
    for stage, records in results.items():
        for r in records:
            c = r.counts
            cells = [stage, r.dataset, r.table, *_count_cells(r), _seconds(r), _status(r)]
            lines.append("| " + " | ".join(cells) + " |")
            if r.rejects_file:
                rejects.append(
                    f"- {r.dataset}: {c.rejected} rejected, listed in `{r.rejects_file}`"
                )
    if rejects:
        lines += ["", *rejects]
    return "\n".join([*lines, ""])


def status_tables(status: Mapping[str, Mapping[str, Any]]) -> list[Table]:
    tables = []
    for target, info in status.items():
        t = Table(
            title=f"{target}: {info['endpoint']}",
            title_justify="left",
            caption=info.get("note"),
            caption_justify="left",
        )
        unknown = "-" if info.get("down") else "missing"
        for col in ("dataset", "table", "rows", "last load", "status", "run"):
            t.add_column(col, justify="right" if col == "rows" else "left")
        for row in info["tables"]:
            last = row.get("last_load") or {}
            when = last.get("finished_at") or last.get("started_at") or ""
            if isinstance(when, str) and when:
                when = dt.datetime.fromisoformat(when)
            if isinstance(when, dt.datetime):
                when = when.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
            rows = row["rows"]
            t.add_row(
                row["dataset"],
                row["table"],
                unknown if rows is None else str(rows),
                str(when),
                str(last.get("status", "")),
                str(last.get("run_id", "")),
            )
        tables.append(t)
    return tables
