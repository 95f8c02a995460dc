"""``dataferry validate``: read every file as a load would, and load nothing.

Foreign keys, and primary keys repeated across a CSV file, are checked in the database at
load time. Everything else a file can be wrong about (header, field counts, types, nulls,
lengths, encoding, JSON syntax, DynamoDB's limits and a key repeated in a JSON file) is
found here without touching a target.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field

from .errors import DataferryError
from .readers import RejectLog, read_batches, reject_kind
from .sources import SourceFile, dataset_files, fetch_ahead
from .spec import Spec
from .stages import spool_items
from .stages.common import source_text

__all__ = ["FileCheck", "validate"]

SHOWN = 5  # problems listed per file; the count says how many there are


@dataclass
class FileCheck:
    dataset: str
    path: str
    rows: int
    rejected: int = 0
    problems: list[str] = field(default_factory=list)
    # the columns (JSON: declared attributes) of the rejected values; None for a reject
    # that names none (a row with the wrong field count, a record DynamoDB cannot store
    # whatever the spec says, a file that cannot be read)
    columns: set[str | None] = field(default_factory=set)

    @property
    def ok(self) -> bool:
        return not self.problems


def validate(spec: Spec, datasets: list[str] | None = None) -> list[FileCheck]:
    """One check per file of each dataset, each listing its bad rows or records."""
    names = datasets or list(spec.datasets)
    spec.datasets_for("postgres", names)  # unknown names fail here
    spec.load_order()  # a foreign-key cycle fails here
    checks = []
    for name in names:
        try:
            files = dataset_files(spec, name)
        except DataferryError as e:
            checks.append(FileCheck(name, source_text(spec, name), 0, 1, [str(e)], {None}))
            continue
        checks += [_check(spec, name, f) for f in fetch_ahead(files)]
    return checks


def _check(spec: Spec, name: str, source: SourceFile) -> FileCheck:
    ds = spec.datasets[name]
    check = FileCheck(name, str(source), 0)
    try:
        if ds.target.store == "postgres":
            log = RejectLog(str(source), kind=reject_kind(ds))
            for batch in read_batches([source], ds, log):
                check.rows += batch.num_rows
        else:
            from .stores.dynamodb.codec import ItemCodec  # botocore: for DynamoDB datasets only

            log = RejectLog(str(source), kind="json")
            with tempfile.TemporaryFile(prefix="dataferry-", suffix=".spool") as spool:
                check.rows = spool_items([source], ds, ItemCodec(ds), log, spool).to_send
        check.rejected = len(log)
        check.problems = [log.describe(r) for r in log.sorted()[:SHOWN]]
        check.columns = {r.column for r in log.items}
    except DataferryError as e:
        check.problems = [str(e)]
        check.rejected = max(check.rejected, 1)
        check.columns.add(None)
    return check
