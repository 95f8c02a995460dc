"""Which datasets and models each model reads, without sqlglot when nothing changed.

Finding them parses every model's SQL with sqlglot: a tenth of a second that every run's
report (its lineage) and every validate would pay, most of them touching no model. The
answer depends only on the models' files and the spec's names, so it is kept in the
stack folder under their digest and parsed again only when one of them changes. A file
that parsed there once with these exact inputs parses again, so a kept answer is also
the check that the models resolve (etl.check_models).
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from ..spec import Spec

__all__ = ["model_digests", "model_inputs"]


_CACHE = "lineage.json"
KEPT = 16  # answers kept: a stack folder may serve several specs, each its own key


def model_inputs(spec: Spec) -> list[tuple[str, str, list[str], list[str]]]:
    """Each model's (name, schema, datasets read, models read), parents first; a
    SpecError when a model cannot be read or resolved."""
    if not spec.models.tables:
        return []
    digest = hashlib.sha256(_names(spec))
    for name in spec.models.tables:
        digest.update(_file(spec, name))
    key = digest.hexdigest()
    cache = spec.stack_dir / _CACHE
    kept: dict[str, Any] = {}
    try:
        data = json.loads(cache.read_text(encoding="utf-8"))
        kept = {str(k): list(v) for k, v in dict(data["answers"]).items()}
        if key in kept:
            return [(str(n), str(s), list(d), list(m)) for n, s, d, m in kept[key]]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        kept = {}  # absent, unreadable or of an older layout: parse
    from .models import plan_models

    found = [
        (m.name, m.schema, sorted(m.datasets), sorted(m.models))
        for m in plan_models(spec, "duckdb", "")
    ]
    if not cache.parent.is_dir():
        return found  # kept only where runs keep their state: validate creates nothing
    kept.pop(key, None)
    answers = [*list(kept.items())[-(KEPT - 1) :], (key, found)]  # the newest last
    try:
        part = cache.with_name(f"{cache.name}.{os.getpid()}")
        part.write_text(json.dumps({"answers": dict(answers)}), encoding="utf-8")
        part.replace(cache)  # whole or not at all, for runs side by side
    except OSError:
        pass  # a read-only folder: parse again next time
    return found


def model_digests(spec: Spec, dialect: str) -> dict[str, str]:
    """What each model's SQL in ``dialect`` is made of: its file, the spec's names and
    the dialect. Equal digests, equal SQL: a build can be skipped without parsing it."""
    names = _names(spec)
    digests = {}
    for name in spec.models.tables:
        digest = hashlib.sha256(names)
        digest.update(f"\0{dialect}\0{name}\0".encode())
        digest.update(_file(spec, name))
        digests[name] = digest.hexdigest()
    return digests


def _file(spec: Spec, name: str) -> bytes:
    try:
        return spec.resolve(spec.models.tables[name].sql).read_bytes()
    except OSError:
        return b"\0unreadable"  # plan_models names the file and the reason


def _names(spec: Spec) -> bytes:
    # the datasets (names and tables), the warehouse's naming and the models (their
    # checks too): all that resolving a model's references reads besides its file
    names = spec.model_dump(mode="json", include={"datasets", "models", "warehouse"})
    return json.dumps(names, sort_keys=True, default=str).encode()
