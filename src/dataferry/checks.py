"""``dataferry validate``: read every file as a load would, and load nothing.

Foreign keys are checked against the database at load time; everything a file can be
wrong about on its own (header, field counts, types, nulls, lengths, keys, encoding, JSON
syntax) is found here without touching a target.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import DataferryError
from .readers import read_csv
from .spec import Spec
from .stages import dynamodb_items

__all__ = ["FileCheck", "validate"]


@dataclass
class FileCheck:
    dataset: str
    path: str
    rows: int
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def validate(spec: Spec, datasets: list[str] | None = None) -> list[FileCheck]:
    """One check per dataset file; a file's first problem is reported, with its line."""
    from .stores.dynamodb.codec import ItemCodec

    names = datasets or list(spec.datasets)
    spec.datasets_for("postgres", names)  # unknown names fail here
    spec.load_order()  # a foreign-key cycle fails here
    checks = []
    for name in names:
        ds = spec.datasets[name]
        path = spec.resolve(ds.source.path)
        rows = 0
        try:
            if ds.target.store == "postgres":
                for batch in read_csv(path, ds):
                    rows += batch.num_rows
            else:
                rows = sum(1 for _ in dynamodb_items(path, ds, ItemCodec(ds)))
        except DataferryError as e:
            checks.append(FileCheck(name, str(path), rows, str(e)))
            continue
        checks.append(FileCheck(name, str(path), rows))
    return checks
