"""The run report as Markdown, for a CI job summary (``--summary "$GITHUB_STEP_SUMMARY"``):
the table, rejects, reconciliation and lineage of the HTML page, and where the page is."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..ledger import outcome

__all__ = ["report_markdown"]

_COLUMNS = (
    "stage", "dataset", "table", "read", "written", "new", "changed", "unchanged",
    "rejected", "seconds", "status",
)  # fmt: skip


def _cell(value: Any) -> str:
    text = "-" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def _mermaid(graph: Mapping[str, Any]) -> list[str]:
    ids = {n["id"]: f"n{i}" for i, n in enumerate(graph["nodes"])}

    def label(text: str) -> str:
        return re.sub(r'["\[\]{}()<>|]', " ", text)

    lines = ["```mermaid", "flowchart LR"]
    lines += [f'  {ids[n["id"]]}["{label(n["label"])}"]' for n in graph["nodes"]]
    lines += [f"  {ids[a]} --> {ids[b]}" for a, b in graph["edges"] if a in ids and b in ids]
    touched = [ids[n["id"]] for n in graph["nodes"] if n["touched"]]
    if touched:
        lines += ["  classDef run fill:#ddf4ff,stroke:#0969da", f"  class {','.join(touched)} run"]
    return [*lines, "```"]


def report_markdown(report: Mapping[str, Any], page: Path | None = None) -> str:
    lines = [f"### dataferry run `{report['run_id']}`: {report['status']}", ""]
    if report.get("verdict"):
        lines += [f"`{report['verdict']}`", ""]
    lines += ["| " + " | ".join(_COLUMNS) + " |", "|" + " --- |" * len(_COLUMNS)]
    rejects, checks = [], []
    for d in report["datasets"]:
        r = d["rows"]
        cells = [
            d["stage"], d["dataset"], d["table"], r["read"], r["written"], r["new"],
            r["changed"], r["unchanged"], r["rejected"],
            "" if d["seconds"] is None else f"{d['seconds']:.2f}",
            outcome(d["status"], d["rows"]["deleted"]),
        ]  # fmt: skip
        lines.append("| " + " | ".join(map(_cell, cells)) + " |")
        if d.get("rejects"):
            rej = d["rejects"]
            first = rej["shown"][0] if rej["shown"] else {}
            why = f"; first: {first.get('reason')}" if first.get("reason") else ""
            rejects.append(
                f"- {d['dataset']}: {rej['total']} rejected, listed in `{rej['file']}`{why}"
            )
        checks += [f"- {d['dataset']} ({d['stage']}): {c}" for c in d["checks"]]
    if rejects:
        lines += ["", *rejects]
    if report.get("error"):
        lines += ["", f"**Error:** {_cell(report['error'])}"]
    if checks:
        lines += ["", "<details><summary>Reconciliation</summary>", "", *checks, "", "</details>"]
    lines += ["", "<details><summary>Lineage</summary>", "", *_mermaid(report["lineage"])]
    lines += ["", "</details>"]
    if page is not None:
        lines += ["", f"Report: `{page}` (and `{page.with_suffix('.json')}`)"]
    return "\n".join([*lines, ""])
