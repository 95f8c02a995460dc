"""The run report as one self-contained HTML page: inline CSS and SVG, no script and no
network asset, so it opens the same from a CI artifact, an e-mail or a laptop offline."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any

from .lineage import COLUMNS

__all__ = ["render_html"]

_CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px;
       color: #1f2328; background: #fff; }
h1 { font-size: 20px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 28px 0 8px; border-bottom: 1px solid #d0d7de; padding-bottom: 4px; }
.meta { color: #59636e; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; color: #fff;
         font-weight: 600; font-size: 13px; vertical-align: middle; }
.ok { background: #1a7f37; } .failed, .interrupted { background: #cf222e; }
.verdict { font-family: ui-monospace, monospace; background: #f6f8fa; padding: 8px;
           border-radius: 6px; white-space: pre-wrap; }
.error { color: #cf222e; white-space: pre-wrap; }
table { border-collapse: collapse; margin: 4px 0; font-size: 13px; }
td { white-space: nowrap; } td:last-child { white-space: normal; min-width: 12em; }
th, td { border: 1px solid #d0d7de; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
code, .mono { font-family: ui-monospace, monospace; font-size: 12px; }
svg text { font: 12px system-ui, sans-serif; fill: #1f2328; }
svg .head { font-weight: 600; }
.pass { color: #1a7f37; } .differs { color: #cf222e; font-weight: 600; }
"""


def _e(value: Any) -> str:
    return escape("" if value is None else str(value))


def _when(iso: str) -> str:
    return iso[:19].replace("T", " ") + " UTC"  # the report's times are UTC


def _n(value: Any) -> str:
    """A count, or '-' where it is unknown (DynamoDB puts, model rebuilds)."""
    return "-" if value is None else f"{value:,}" if isinstance(value, int) else _e(value)


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], numeric: set[int]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{cell}</td>' if i in numeric else f"<td>{cell}</td>"
            for i, cell in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _status_cell(d: Mapping[str, Any]) -> str:
    text = _e(d["status"])
    why = d.get("error") or d.get("note")
    return text + (f'<br><span class="meta">{_e(why)}</span>' if why else "")


def _datasets(entries: Sequence[Mapping[str, Any]]) -> str:
    counts = ["read", "written", "new", "changed", "unchanged", "rejected"]
    if any(d["rows"]["deleted"] for d in entries):
        counts.append("deleted")
    header = ["stage", "dataset", "table", "source", "SHA-256", *counts, "seconds", "rows/s"]
    rows = []
    for d in entries:
        sha = d.get("file_sha256")
        rows.append(
            [
                _e(d["stage"]),
                _e(d["dataset"]),
                _e(d["table"]),
                f'<span class="mono">{_e(d["source"])}</span>',
                f'<span class="mono" title="{_e(sha)}">{_e(sha[:12])}</span>' if sha else "",
                *(_n(d["rows"][k]) for k in counts),
                _n(d["seconds"]),
                _n(d["rows_per_second"]),
                _status_cell(d),
            ]
        )
    return _table([*header, "status"], rows, numeric=set(range(5, len(header))))


def _steps(entries: Sequence[Mapping[str, Any]]) -> str:
    rows = [
        [
            _e(d["stage"]),
            _e(d["dataset"]),
            " · ".join(f"{_e(step)} {seconds:.3f}" for step, seconds in d["steps"].items()),
        ]
        for d in entries
        if d["steps"]
    ]
    if not rows:
        return '<p class="meta">No step was timed (every load was skipped).</p>'
    return _table(["stage", "dataset", "seconds per step"], rows, numeric=set())


def _checks(entries: Sequence[Mapping[str, Any]]) -> str:
    rows = []
    for d in entries:
        if not d["checks"]:
            continue
        lines = [
            f'<span class="{"differs" if c.endswith("DIFFERS") else "pass"}">{_e(c)}</span>'
            for c in d["checks"]
        ]
        rows.append([_e(d["stage"]), _e(d["dataset"]), "<br>".join(lines)])
    if not rows:
        return (
            '<p class="meta">No reconciliation ran (nothing was written, or no target was '
            "counted).</p>"
        )
    return _table(["stage", "dataset", "checked before commit, and after the run"], rows, set())


def _rejects(entries: Sequence[Mapping[str, Any]]) -> str:
    parts = []
    for d in entries:
        rej = d.get("rejects")
        if not rej:
            continue
        parts.append(
            f"<h3>{_e(d['dataset'])}: {rej['total']:,} rejected, all listed in "
            f'<span class="mono">{_e(rej["file"])}</span></h3>'
        )
        if rej.get("note"):
            parts.append(f'<p class="meta">{_e(rej["note"])}</p>')
        shown = rej["shown"]
        if shown:
            header = list(shown[0])
            parts.append(_table(header, ([_e(s.get(h)) for h in header] for s in shown), set()))
        if rej["total"] > len(shown):
            parts.append(
                f'<p class="meta">... and {rej["total"] - len(shown):,} more in the file.</p>'
            )
    return "".join(parts) or '<p class="meta">No row or record was rejected.</p>'


def _chart(entries: Sequence[Mapping[str, Any]]) -> str:
    """Two bar panels, one row per table: rows written, and seconds taken."""
    rows = [d for d in entries if d["seconds"] is not None]
    label_w, panel_w, gap, row_h, top = 260, 320, 40, 24, 28
    width = label_w + 2 * panel_w + gap + 60
    height = top + row_h * max(len(rows), 1) + 8
    most_rows = max((d["rows"]["written"] for d in rows), default=0) or 1
    most_s = max((d["seconds"] for d in rows), default=0) or 1
    x_rows, x_secs = label_w, label_w + panel_w + gap
    out = [
        f'<svg id="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" '
        'aria-label="rows written and seconds per table">',
        f'<text class="head" x="{x_rows}" y="16">rows written</text>',
        f'<text class="head" x="{x_secs}" y="16">seconds</text>',
    ]
    for i, d in enumerate(rows):
        y = top + i * row_h
        written, secs = d["rows"]["written"], d["seconds"]
        w_rows = max(1.0, (panel_w - 70) * written / most_rows) if written else 0
        w_secs = max(1.0, (panel_w - 70) * secs / most_s)
        colour = {"ok": "#0969da", "skipped": "#8c959f"}.get(d["status"], "#cf222e")
        label = f"{d['stage']} · {d['dataset']}"
        out += [
            f'<text x="{label_w - 8}" y="{y + 13}" text-anchor="end">{_e(label)}</text>',
            f'<rect x="{x_rows}" y="{y + 2}" width="{w_rows:.1f}" height="14" fill="{colour}">'
            f"<title>{_e(label)}: {written:,} rows</title></rect>",
            f'<text x="{x_rows + w_rows + 4:.1f}" y="{y + 13}">{written:,}</text>',
            f'<rect x="{x_secs}" y="{y + 2}" width="{w_secs:.1f}" height="14" fill="#bf8700">'
            f"<title>{_e(label)}: {secs:.3f} s</title></rect>",
            f'<text x="{x_secs + w_secs + 4:.1f}" y="{y + 13}">{secs:.2f} s</text>',
        ]
    if not rows:
        out.append(f'<text x="{label_w}" y="{top + 13}">no table was loaded</text>')
    out.append("</svg>")
    return "".join(out)


def _columns(graph: Mapping[str, Any]) -> dict[str, int]:
    """Each node's column: files 0, stores 1, raw tables 2, models 3 and on by depth."""
    kinds = list(COLUMNS)
    column = {n["id"]: kinds.index(n["kind"]) for n in graph["nodes"]}
    parents: dict[str, list[str]] = {}
    for a, b in graph["edges"]:
        if a.startswith("model:") and b.startswith("model:"):
            parents.setdefault(b, []).append(a)

    def depth(node: str, seen: frozenset[str] = frozenset()) -> int:
        ups = [p for p in parents.get(node, []) if p not in seen]
        return 0 if not ups else 1 + max(depth(p, seen | {node}) for p in ups)

    for n in graph["nodes"]:
        if n["kind"] == "model":
            column[n["id"]] += depth(n["id"])
    return column


def _lineage(graph: Mapping[str, Any]) -> str:
    column = _columns(graph)
    box_w, box_h, col_w, row_h, top = 196, 26, 236, 36, 34
    placed: dict[str, tuple[float, float]] = {}
    per_column: dict[int, int] = {}
    for n in graph["nodes"]:
        c = column[n["id"]]
        i = per_column.get(c, 0)
        per_column[c] = i + 1
        placed[n["id"]] = (10 + c * col_w, top + i * row_h)
    ncols = max(per_column, default=0) + 1
    width = 20 + ncols * col_w
    height = top + row_h * max(per_column.values(), default=1) + 8
    out = [
        f'<svg id="lineage" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="lineage">',
        '<defs><marker id="arrow" viewBox="0 0 8 8" refX="8" refY="4" markerWidth="7" '
        'markerHeight="7" orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="#59636e"/>'
        "</marker></defs>",
    ]
    headings = list(COLUMNS.values())
    for c in range(ncols):
        title = headings[c] if c < len(headings) else "models on models"
        out.append(f'<text class="head" x="{10 + c * col_w}" y="18">{_e(title)}</text>')
    for a, b in graph["edges"]:
        if a not in placed or b not in placed:
            continue
        (x1, y1), (x2, y2) = placed[a], placed[b]
        x1, y1, y2 = x1 + box_w, y1 + box_h / 2, y2 + box_h / 2
        bend = max(30.0, (x2 - x1) / 2)
        out.append(
            f'<path d="M{x1},{y1} C{x1 + bend},{y1} {x2 - bend},{y2} {x2},{y2}" fill="none" '
            'stroke="#8c959f" stroke-width="1.4" marker-end="url(#arrow)"/>'
        )
    for n in graph["nodes"]:
        x, y = placed[n["id"]]
        fill, stroke = ("#ddf4ff", "#0969da") if n["touched"] else ("#f6f8fa", "#d0d7de")
        label = n["label"] if len(n["label"]) <= 28 else "..." + n["label"][-25:]
        out.append(
            f'<g><title>{_e(n["label"])}</title><rect x="{x}" y="{y}" width="{box_w}" '
            f'height="{box_h}" rx="5" fill="{fill}" stroke="{stroke}"/>'
            f'<text x="{x + 8}" y="{y + 17}">{_e(label)}</text></g>'
        )
    out.append("</svg>")
    return "".join(out)


def _targets(report: Mapping[str, Any]) -> str:
    parts = []
    for target, info in report["targets"].items():
        rows = [[_e(t["dataset"]), _e(t["table"]), _n(t["rows"])] for t in info["tables"]]
        parts.append(f"<h3>{_e(target)}: {_e(info['endpoint'])}</h3>")
        parts.append(_table(["dataset", "table", "rows"], rows, numeric={2}))
        if info.get("note"):
            parts.append(f'<p class="meta">{_e(info["note"])}</p>')
    if report.get("targets_note"):
        parts.append(f'<p class="meta">{_e(report["targets_note"])}</p>')
    return "".join(parts)


def render_html(report: Mapping[str, Any]) -> str:
    entries = report["datasets"]
    spec = report["spec"]
    sha = spec.get("sha256") or ""
    status = report["status"]
    error = f'<p class="error">{_e(report["error"])}</p>' if report.get("error") else ""
    lineage_note = report["lineage"].get("note")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>dataferry run {_e(report["run_id"])}: {_e(status)}</title>
<style>{_CSS}</style></head>
<body>
<h1>dataferry run <span class="mono">{_e(report["run_id"])}</span>
<span class="badge {_e(status)}">{_e(status)}</span></h1>
<p class="meta">{_e(report["command"])} · started {_e(_when(report["started_at"]))} ·
{report["seconds"]:.1f} s · spec {_e(spec["name"])}
(<span class="mono">{_e(spec["path"])}</span>, SHA-256
<span class="mono" title="{_e(sha)}">{_e(sha[:12])}</span>) ·
dataferry {_e(report["dataferry"])}</p>
<p class="verdict">{_e(report["verdict"])}</p>
{error}
<h2>Rows and time per table</h2>
{_chart(entries)}
<h2>Datasets</h2>
{_datasets(entries)}
<h2>Timings per step</h2>
{_steps(entries)}
<h2>Reconciliation</h2>
{_checks(entries)}
<h2>Rejects</h2>
{_rejects(entries)}
<h2>Lineage</h2>
<p class="meta">Files, the PostgreSQL and DynamoDB tables they load, the warehouse raw tables
and the models built from them; this run's are in blue.</p>
{_lineage(report["lineage"])}
{f'<p class="meta">{_e(lineage_note)}</p>' if lineage_note else ""}
<h2>Targets after the run</h2>
{_targets(report)}
</body></html>
"""
