"""The pipeline spec as Terraform input: one source of truth for the DynamoDB tables.

`dataferry tf export` writes these variables as a JSON tfvars file that deploy/aws reads
with for_each, so a key changed in the spec changes the Terraform plan, and nobody
describes a table twice.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .spec import Spec

__all__ = ["dynamodb_tables", "tfvars_json"]


def dynamodb_tables(spec: Spec) -> dict[str, dict[str, Any]]:
    """Each DynamoDB dataset's table: keys, attribute types, indexes, backups, billing."""
    tables: dict[str, dict[str, Any]] = {}
    for ds in spec.datasets_for("dynamodb").values():
        assert ds.key is not None
        keyed = list(
            dict.fromkeys(ds.key.attributes + [a for ix in ds.indexes for a in ix.attributes])
        )
        tables[ds.target.table] = {
            "hash_key": ds.key.hash,
            "range_key": ds.key.range,
            "attributes": [{"name": a, "type": ds.key_type(a).dynamodb()} for a in keyed],
            "billing_mode": ds.billing_mode,
            "point_in_time_recovery": ds.point_in_time_recovery,
            "ttl_attribute": ds.ttl_attribute,
            "global_secondary_indexes": [
                {
                    "name": ix.name,
                    "hash_key": ix.hash,
                    "range_key": ix.range,
                    "projection_type": "INCLUDE"
                    if isinstance(ix.projection, list)
                    else ix.projection,
                    "non_key_attributes": ix.projection
                    if isinstance(ix.projection, list)
                    else None,
                }
                for ix in ds.indexes
            ],
        }
    return tables


def tfvars_json(spec: Spec) -> str:
    """The JSON tfvars text (stable: sorted keys, a trailing newline)."""
    body = {"dynamodb_tables": dynamodb_tables(spec)}
    return json.dumps(body, indent=2, sort_keys=True) + "\n"


def write_tfvars(spec: Spec, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(tfvars_json(spec), encoding="utf-8")
