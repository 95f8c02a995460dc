"""Where each table's data comes from: files -> PostgreSQL / DynamoDB tables -> warehouse
raw tables -> models, read from the spec (and the models' SQL) alone."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from ..errors import SpecError
from ..spec import Spec
from ..warehouse.model_inputs import model_inputs

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
            planned = model_inputs(spec)
        except SpecError as e:
            planned, note = [], f"models left out: {e}"
        for name, schema, datasets, models in planned:
            me = node(f"model:{name}", "model", f"{schema}.{name}", name)
            edges += [[f"raw:{d}", me] for d in datasets]
            edges += [[f"model:{m}", me] for m in models]
    return {"nodes": list(nodes.values()), "edges": edges, "note": note}
