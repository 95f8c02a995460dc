"""`dataferry init`: a pipeline project to start from.

Without ``--infer``: the retail example (its data, spec and models, as `generate` writes
them). With ``--infer DATA_DIR``: a spec inferred from every CSV and JSON file there
(infer.py), checked by reading the files as a load would: a CSV column that would reject
a value is set back to ``text``; a JSON file's declarations (its key aside) are dropped
when any record would be rejected, since a rejected record names no attribute (the
attributes are then stored as the file has them). Either way: a .gitignore and a GitHub
Actions workflow that validates and plans on pull requests and runs on demand.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from .errors import SpecError
from .infer import Inferred, infer_files

__all__ = ["init_project"]

GITIGNORE = "# dataferry: the embedded stack and the rejects of each load\n.dataferry/\nrejects/\n"
WORKFLOW = """\
# dataferry: validate and plan on pull requests, run on demand (on the embedded stack here;
# give it DATABASE_URL and AWS credentials to run against real targets).
name: dataferry
on:
  pull_request:
  workflow_dispatch:
permissions:
  contents: read
jobs:
  pipeline:
    runs-on: ubuntu-latest
    timeout-minutes: 30
    steps:
      - uses: actions/checkout@v5
      - uses: actions/setup-python@v6
        with:
          python-version: "3.12"
      - run: pip install 'dataferry[embedded]'
      - run: dataferry validate
      - run: dataferry plan || test $? -eq 2  # 2: changes to make
      - if: github.event_name == 'workflow_dispatch'
        run: dataferry run --progress plain --summary "$GITHUB_STEP_SUMMARY"
"""
MAX_ROUNDS = 5


def _q(text: str) -> str:
    """A YAML scalar that stays what it is (JSON strings are YAML)."""
    return json.dumps(text, ensure_ascii=False)


def render_spec(name: str, items: list[Inferred], source: Path) -> str:
    lines = [
        f"# dataferry pipeline spec, inferred by `dataferry init --infer {source}` on "
        f"{dt.date.today().isoformat()}.",
        "# Each inference says what it saw in the files; read them before the first load.",
        "version: 1",
        f"name: {_q(name)}",
        "",
        "datasets:",
    ]
    for item in items:
        if not item.key:
            lines.append(f"  # {item.name}: {item.path} left out: {item.key_why}")
            continue
        lines += [
            f"  {_q(item.name)}:",
            f"    source: {{path: {_q(item.path)}}}  # {item.rows} rows",
            f"    target: {{store: {item.store}, table: {_q(item.name)}}}",
            "    columns:",
        ]
        for col, (kind, why, nullable) in item.columns.items():
            null = "" if nullable and col not in item.key else ", nullable: false"
            lines.append(f"      {_q(col)}: {{type: {kind}{null}}}  # {why}")
        if item.store == "postgres":
            cols = ", ".join(_q(c) for c in item.key)
            lines.append(f"    primary_key: [{cols}]  # {item.key_why}")
            if item.foreign_keys:
                lines.append("    foreign_keys:")
            for col, parent, pk in item.foreign_keys:
                lines.append(
                    f"      - {{columns: [{_q(col)}], references: {{dataset: {_q(parent)}, "
                    f"columns: [{_q(pk)}]}}}}  # every value of {col} is a {parent}.{pk}"
                )
        else:
            key = f"hash: {_q(item.key[0])}"
            if len(item.key) > 1:
                key += f", range: {_q(item.key[1])}"
            lines.append(f"    key: {{{key}}}  # {item.key_why}")
        lines.append("")
    return "\n".join(lines) + "\n"


def _columns_that_reject(spec_path: Path) -> dict[str, set[str] | None]:
    """Per dataset, the columns whose values a load would reject (None: some rejects name
    no column), from `validate`, which reads each file as the loads do."""
    from .checks import validate
    from .spec import load_spec

    return {
        c.dataset: None if None in c.columns else {col for col in c.columns if col}
        for c in validate(load_spec(spec_path))
        if not c.ok
    }


def _relax(items: list[Inferred], rejecting: dict[str, set[str] | None]) -> bool:
    """Relax the declarations of the columns that rejected a value: a CSV column becomes
    text, a JSON attribute undeclared (stored as the file has it). A reject that names no
    column (a ragged row) relaxes every column of its file. Whether anything changed."""
    changed = False
    for item in items:
        if item.name not in rejecting:
            continue
        bad = rejecting[item.name]
        for col, (kind, why, nullable) in list(item.columns.items()):
            if col in item.key or (bad is not None and col not in bad):
                continue
            if item.store == "dynamodb":
                del item.columns[col]
                changed = True
            elif kind != "text":
                item.columns[col] = ("text", f"{why}; {kind} rejected a value", nullable)
                changed = True
    return changed


def init_project(dest: Path, infer_from: Path | None, force: bool = False) -> list[Path]:
    """Write the project under ``dest``; the paths written."""
    spec_path = dest / "dataferry.yaml"
    if dest.exists() and not dest.is_dir():
        raise SpecError(f"{dest}: not a folder; name a folder for the project")
    if spec_path.exists() and not force:
        raise SpecError(f"{spec_path} exists: nothing was written (--force replaces it)")
    items: list[Inferred] = []
    if infer_from is not None:  # a file it cannot read fails here, before anything is written
        if not infer_from.is_dir():
            raise SpecError(f"{infer_from}: no such folder to infer a spec from")
        items = infer_files(infer_from, dest)
        if not items:
            raise SpecError(f"{infer_from}: no .csv, .json or .jsonl file to infer a spec from")
    try:
        return _write_project(dest, infer_from, items, force)
    except OSError as e:  # a file where the folder would be, a read-only or full disk
        raise SpecError(
            f"{dest}: the project cannot be written there ({e.strerror or e})"
        ) from None


def _write_project(
    dest: Path, infer_from: Path | None, items: list[Inferred], force: bool
) -> list[Path]:
    spec_path = dest / "dataferry.yaml"
    dest.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    if infer_from is None:
        from .generate import generate

        written += generate(dest)
    else:
        for _ in range(MAX_ROUNDS):
            spec_path.write_text(
                render_spec(dest.resolve().name, items, infer_from), encoding="utf-8"
            )
            rejecting = _columns_that_reject(spec_path)
            if not rejecting or not _relax(items, rejecting):
                break
        written.append(spec_path)
    for rel, text in ((".gitignore", GITIGNORE), (".github/workflows/dataferry.yml", WORKFLOW)):
        path = dest / rel
        if path.exists() and not force:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
