"""Where each table's data comes from: files -> PostgreSQL / DynamoDB tables -> warehouse
raw tables -> models, read from the spec (and the models' SQL) alone."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Collection
from typing import Any

from ..errors import SpecError
from ..spec import Spec

__all__ = ["COLUMNS", "lineage"]

# The diagram's columns, left to right, and what each node kind is called there.
COLUMNS = {
    "file": "files",
    "store": "PostgreSQL / DynamoDB",
    "raw": "warehouse raw tables",
    "model": "models",
}


def lineage(spec: Spec, touched: Collection[str] = ()) -> dict[str, Any]:
    """{"nodes": [{id, kind, label, datasets, touched}], "edges": [[from, to]], "note"}.

    ``touched``: the datasets and models this run loaded or built; their nodes are marked.
    A model whose SQL cannot be read leaves the models out, saying why in ``note``.
    """
    nodes: dict[str, dict[str, Any]] = {}
    edges: list[list[str]] = []

    def node(node_id: str, kind: str, label: str, name: str) -> str:
        n = nodes.setdefault(
            node_id, {"id": node_id, "kind": kind, "label": label, "touched": False}
        )
        n["touched"] = n["touched"] or name in touched
        return node_id

    for name, ds in spec.datasets.items():
        store = ds.target.store
        file = node(f"file:{name}", "file", ", ".join(ds.source.paths), name)
        if store == "postgres":
            label = f"postgres {ds.target.schema_}.{ds.target.table}"
        else:
            label = f"dynamodb {ds.target.table}"
        target = node(f"{store}:{name}", "store", label, name)
        schema, table = spec.raw_table(name)
        raw = node(f"raw:{name}", "raw", f"{schema}.{table}", name)
        edges += [[file, target], [target, raw]]
    note = None
    if spec.models.tables:
        try:
            planned = _model_inputs(spec)
        except SpecError as e:
            planned, note = [], f"models left out: {e}"
        for name, schema, datasets, models in planned:
            me = node(f"model:{name}", "model", f"{schema}.{name}", name)
            edges += [[f"raw:{d}", me] for d in datasets]
            edges += [[f"model:{m}", me] for m in models]
    return {"nodes": list(nodes.values()), "edges": edges, "note": note}


_CACHE = "lineage.json"


def _model_inputs(spec: Spec) -> list[tuple[str, str, list[str], list[str]]]:
    """Each model's (name, schema, datasets read, models read), parents first.

    Finding them parses every model's SQL with sqlglot, a tenth of a second that every
    run's report would pay, most of them runs that build no model. The answer depends
    only on the models' files and the spec's names, so it is kept in the stack folder
    under their digest and parsed again only when one of them changes.
    """
    digest = hashlib.sha256()
    digest.update(json.dumps([sorted(spec.datasets), spec.models.model_dump(mode="json")]).encode())
    for model in spec.models.tables.values():
        try:
            digest.update(spec.resolve(model.sql).read_bytes())
        except OSError:
            digest.update(b"\0unreadable")
    key = digest.hexdigest()
    cache = spec.stack_dir / _CACHE
    try:
        kept = json.loads(cache.read_text(encoding="utf-8"))
        if kept.get("key") == key:
            return [(str(n), str(s), list(d), list(m)) for n, s, d, m in kept["models"]]
    except (OSError, ValueError, KeyError, TypeError):
        pass  # absent or unreadable: parse
    from ..warehouse.models import plan_models

    found = [
        (m.name, m.schema, sorted(m.datasets), sorted(m.models))
        for m in plan_models(spec, "duckdb", "")
    ]
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        part = cache.with_name(f"{cache.name}.{os.getpid()}")
        part.write_text(json.dumps({"key": key, "models": found}), encoding="utf-8")
        part.replace(cache)  # whole or not at all, for runs side by side
    except OSError:
        pass  # a read-only folder: parse again next time
    return found
