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

from ..ledger import LoadRecord, outcome

__all__ = ["emit_json", "records_table", "status_tables"]

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
    return "" if r.seconds is None else f"{r.seconds:.2f}"


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
    split = [str(c.inserted), str(c.updated), str(c.unchanged)]
    if not r.tells_new_from_changed:
        split = ["-"] * 3
    return [str(c.read), str(c.written), *split, str(c.rejected)]


def _status(r: LoadRecord) -> str:
    return outcome(r.status, r.counts.deleted)


def _when(value: Any) -> str:
    """A ledger time (datetime or ISO text) as UTC, to the second; '' when absent."""
    if isinstance(value, str) and value:
        value = dt.datetime.fromisoformat(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    return ""


def _outcome(row: Mapping[str, Any]) -> str:
    """A ledger row's status, with why it failed or was skipped."""
    status = str(row.get("status") or "")
    why = row.get("error") if status in ("failed", "interrupted") else None
    why = why or (row.get("note") if status == "skipped" else None)
    if why:
        why = str(why).splitlines()[0]
        status += ": " + (why if len(why) <= 100 else why[:97] + "...")
    return status


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
        for col in ("dataset", "table", "rows", "last load", "status", "run", "last change"):
            t.add_column(col, justify="right" if col == "rows" else "left")
        for row in info["tables"]:
            last = row.get("last_load") or {}
            rows = row["rows"]
            t.add_row(
                row["dataset"],
                row["table"],
                unknown if rows is None else str(rows),
                _when(last.get("finished_at") or last.get("started_at")),
                _outcome(last),
                str(last.get("run_id", "")),
                _when(row.get("last_change")),
            )
        tables.append(t)
    return tables


def history_rows(status: Mapping[str, Mapping[str, Any]], limit: int) -> list[dict[str, Any]]:
    """Every target's ledger rows as one list, newest first, at most ``limit``."""
    rows = [
        {**r, "target": r.get("target") or target}
        for target, info in status.items()
        for r in info.get("history", [])
    ]
    rows.sort(key=lambda r: _when(r.get("started_at")), reverse=True)
    return rows[:limit]


def history_table(rows: Iterable[Mapping[str, Any]]) -> Table:
    t = Table(title="history (newest first)", title_justify="left")
    for col in ("started", "run", "target", "dataset", "read", "written", "rejected", "status"):
        t.add_column(col, justify="right" if col in ("read", "written", "rejected") else "left")
    for r in rows:
        t.add_row(
            _when(r.get("started_at")),
            str(r.get("run_id", "")),
            str(r.get("target", "")),
            str(r.get("dataset", "")),
            *(
                str(r.get(c) if r.get(c) is not None else "")
                for c in ("read", "written", "rejected")
            ),
            _outcome(r),
        )
    return t


def plan_table(items: Iterable[Any]) -> Table:
    t = Table(title="plan", title_justify="left")
    for col in ("stage", "dataset", "table", "action", "new", "changed", "unchanged", "rejected"):
        t.add_column(
            col, justify="right" if col in ("new", "changed", "unchanged", "rejected") else "left"
        )
    t.add_column("note")
    colour = {"create": "green", "update": "yellow", "fail": "red"}
    for i in items:
        action = f"[{colour[i.action]}]{i.action}[/]" if i.action in colour else i.action
        counts = ["-" if v is None else str(v) for v in (i.new, i.changed, i.unchanged, i.rejected)]
        t.add_row(i.stage, i.dataset, i.table, action, *counts, i.note)
    return t
