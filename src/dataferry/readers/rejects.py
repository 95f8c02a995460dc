"""Rejected rows: collected while a file is read and loaded, then written to a rejects file.

A reject knows its data row index (as Arrow counts rows: well-formed, non-empty records);
line numbers are found for all rejects at once, with one pass over the file, only when
there are any. The rejects file is CSV: source_file, line, column, value, reason.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Reject", "RejectLog"]

REJECT_COLUMNS = {
    "csv": ("source_file", "line", "column", "value", "reason"),
    # JSON: the line (JSON Lines) or the array index (record), and the key when known.
    "json": ("source_file", "line", "record", "key", "reason"),
}


@dataclass
class Reject:
    row: int | None  # data row index; None when only the line is known (a ragged row)
    column: str | None
    value: str | None
    reason: str
    line: int | None = None
    record: int | None = None  # a JSON array's index


@dataclass
class RejectLog:
    """The rejected rows of one source file, and where they will be written."""

    source: Path
    dest: Path | None = None
    kind: str = "csv"  # csv | json: which columns the rejects file has
    items: list[Reject] = field(default_factory=list)
    # Maps data row indexes to first lines; set by the reader, which knows the format.
    resolver: Callable[[set[int]], dict[int, int]] | None = None

    def add(
        self,
        row: int | None,
        column: str | None,
        value: object,
        reason: str,
        line: int | None = None,
    ) -> None:
        text = None if value is None else str(value)
        self.items.append(Reject(row, column, text, reason, line))

    def add_record(
        self,
        line: int | None,
        record: int | None,
        key: str | None,
        reason: str,
        column: str | None = None,
    ) -> None:
        """A rejected JSON record: by line (JSON Lines) or array index, with its key and,
        when one declared attribute is the reason, that attribute."""
        self.items.append(Reject(None, column, key, reason, line=line, record=record))

    def __len__(self) -> int:
        """Rejected rows: a row that failed twice (say, a repeated key and an orphan) is one."""
        return len(self.rows) + sum(1 for r in self.items if r.row is None)

    @property
    def rows(self) -> set[int]:
        return {r.row for r in self.items if r.row is not None}

    def lines(self, rows: set[int]) -> dict[int, int]:
        return self.resolver(rows) if self.resolver and rows else {}

    def resolve(self) -> None:
        """Give every reject that has only a row index its line number (one file pass)."""
        todo = {r.row for r in self.items if r.line is None and r.row is not None}
        lines = self.lines(todo)
        for r in self.items:
            if r.line is None and r.row is not None:
                r.line = lines.get(r.row)

    def describe(self, r: Reject) -> str:
        """One reject as one line: where (file:line, or the record), why, and the value."""
        if r.line:
            where = f"{self.source}:{r.line}"
        elif r.record is not None:
            where = f"{self.source}: record {r.record}"
        else:
            where = str(self.source)
        shown = r.value is not None and r.column is not None and self.kind == "csv"
        return f"{where}: {r.reason}" + (f" (value {r.value!r})" if shown else "")

    def summary(self) -> str:
        """The first reject, as one line of text."""
        first = self.first()
        return "no rejects" if first is None else self.describe(first)

    def sorted(self) -> list[Reject]:
        return sorted(self.items, key=lambda r: (r.line or 0, r.record or 0, r.column or ""))

    def first(self) -> Reject | None:
        ordered = self.sorted()
        return ordered[0] if ordered else None

    def write(self, dest: Path) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        # A rejected value may hold what UTF-8 cannot encode (a lone surrogate, the very
        # reason it was rejected): written escaped, as \udc00.
        with dest.open("w", encoding="utf-8", errors="backslashreplace", newline="") as f:
            w = csv.writer(f)
            w.writerow(REJECT_COLUMNS[self.kind])
            w.writerows(_rows(self.source, self.sorted(), self.kind))


def _rows(source: Path, rejects: Iterable[Reject], kind: str) -> Iterable[list[object]]:
    for r in rejects:
        line = r.line if r.line is not None else ""
        if kind == "json":
            record = r.record if r.record is not None else ""
            yield [str(source), line, record, r.value or "", r.reason]
        else:
            yield [str(source), line, r.column or "", r.value, r.reason]
