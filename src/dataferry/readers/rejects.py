"""Rejected rows: collected while a file is read and loaded, then written to a rejects file.

A reject knows its data row index (as Arrow counts rows: well-formed, non-empty records);
line numbers are found for all rejects at once, with one pass over the file, only when
there are any. The rejects file is CSV: source_file, line, column, value, reason.

A dataset may read many files in one load: row indexes then run on from one file to the
next, and the log keeps where each file's rows begin, so that a reject found later (a
key repeated, in the database) still names its file and line.
"""

from __future__ import annotations

import bisect
import csv
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Reject", "RejectLog"]

REJECT_COLUMNS = {
    "csv": ("source_file", "line", "column", "value", "reason"),
    # JSON: the line (JSON Lines) or the array index (record), and the key when known.
    "json": ("source_file", "line", "record", "key", "reason"),
    # Parquet: the row group and the row within it, both from 0 as pyarrow counts them.
    "parquet": ("source_file", "row_group", "row", "column", "value", "reason"),
}


@dataclass
class Reject:
    row: int | None  # data row index; None when only the line is known (a ragged row)
    column: str | None
    value: str | None
    reason: str
    line: int | None = None
    record: int | None = None  # a JSON array's index
    source: str | None = None  # the file, when the log reads several


Resolver = Callable[[set[int]], dict[int, int]]


@dataclass
class _Part:
    """One file of the log's source: its first row index and how to find its lines."""

    source: str
    first_row: int
    resolver: Resolver | None = None
    groups: list[int] | None = None  # Parquet: the file's row index where each group starts

    def row_group(self, row: int) -> tuple[int, int]:
        """(row group, row within it) of data row ``row`` of the load."""
        local = row - self.first_row
        groups = self.groups or [0]
        g = max(bisect.bisect_right(groups, local) - 1, 0)
        return g, local - groups[g]


@dataclass
class RejectLog:
    """The rejected rows of a dataset's source (one file or several), and where they
    will be written."""

    source: Path | str
    dest: Path | None = None
    kind: str = "csv"  # csv | json: which columns the rejects file has
    items: list[Reject] = field(default_factory=list)
    parts: list[_Part] = field(default_factory=list)
    next_row: int = 0  # the row index after the last row read (kept or rejected)
    _starts: list[int] = field(default_factory=list, repr=False)  # each part's first_row
    _resolved: int = field(default=0, repr=False)  # items[:_resolved] had their lines sought

    def begin(
        self,
        source: object,
        first_row: int = 0,
        resolver: Resolver | None = None,
        groups: list[int] | None = None,
    ) -> None:
        """The reader starts on file ``source``, whose first data row has index
        ``first_row``; ``resolver`` maps its own row indexes (from 0) to first lines;
        ``groups``: a Parquet file's row group starts."""
        self.parts.append(_Part(str(source), first_row, resolver, groups))
        self._starts.append(first_row)

    def restart(self) -> None:
        """Forget everything: the source is about to be read again from its start."""
        self.items.clear()
        self.parts.clear()
        self._starts.clear()
        self._resolved = 0
        self.next_row = 0

    def tally(self) -> dict[str, tuple[int, int]]:
        """(rows read, rows rejected) of each file read, by its name as the log shows it."""
        read: dict[str, int] = {}
        for i, part in enumerate(self.parts):
            end = self.parts[i + 1].first_row if i + 1 < len(self.parts) else self.next_row
            read[part.source] = read.get(part.source, 0) + end - part.first_row
        rejected: dict[str, set[object]] = {}
        for n, r in enumerate(self.items):
            where = self.file_of(r)
            if r.row is None:
                read[where] = read.get(where, 0) + (1 if self.kind == "csv" else 0)
            rejected.setdefault(where, set()).add(r.row if r.row is not None else ("item", n))
        return {s: (read.get(s, 0), len(rejected.get(s, ()))) for s in read.keys() | rejected}

    def _part(self, row: int | None) -> _Part | None:
        if not self.parts:
            return None
        if row is None:
            return self.parts[-1]
        at = bisect.bisect_right(self._starts, row) - 1
        return self.parts[max(at, 0)]

    def file_index(self, row: int) -> int:
        """Which file of the load (0, 1...) holds data row ``row``."""
        return max(bisect.bisect_right(self._starts, row) - 1, 0)

    def file_of_row(self, row: int) -> str:
        part = self._part(row)
        return part.source if part is not None else str(self.source)

    def _source_of(self, row: int | None) -> str | None:
        part = self._part(row)
        return part.source if part is not None else None

    def add(
        self,
        row: int | None,
        column: str | None,
        value: object,
        reason: str,
        line: int | None = None,
    ) -> None:
        text = None if value is None else str(value)
        self.items.append(Reject(row, column, text, reason, line, source=self._source_of(row)))

    def add_record(
        self,
        line: int | None,
        record: int | None,
        key: str | None,
        reason: str,
        column: str | None = None,
        source: object = None,
    ) -> None:
        """A rejected JSON record: by line (JSON Lines) or array index, with its key and,
        when one declared attribute is the reason, that attribute. ``source``: its file,
        when not the one being read."""
        where = str(source) if source is not None else self._source_of(None)
        self.items.append(Reject(None, column, key, reason, line=line, record=record, source=where))

    def __len__(self) -> int:
        """Rejected rows: a row that failed twice (say, a repeated key and an orphan) is one."""
        return len(self.rows) + sum(1 for r in self.items if r.row is None)

    @property
    def rows(self) -> set[int]:
        return {r.row for r in self.items if r.row is not None}

    def lines(self, rows: set[int]) -> dict[int, int]:
        """The first line of each row index of ``rows``, in its own file. Rows are
        placed by bisection: a load of many files asks this after each of them."""
        out: dict[int, int] = {}
        if not rows or not self.parts:
            return out
        by_part: dict[int, set[int]] = {}
        for r in rows:
            i = max(bisect.bisect_right(self._starts, r) - 1, 0)
            by_part.setdefault(i, set()).add(r - self.parts[i].first_row)
        for i, mine in by_part.items():
            part = self.parts[i]
            if part.resolver is not None:
                out.update((r + part.first_row, n) for r, n in part.resolver(mine).items())
        return out

    def resolve(self) -> None:
        """Give the rejects logged since the last call that have only a row index their
        line numbers (one pass over their file). Called after each file of a load, it
        looks at each reject once, however many files and rejects there are."""
        start, self._resolved = self._resolved, len(self.items)
        pending = [r for r in self.items[start:] if r.line is None and r.row is not None]
        if not pending:
            return
        lines = self.lines({r.row for r in pending if r.row is not None})
        for r in pending:
            assert r.row is not None
            r.line = lines.get(r.row)

    def file_of(self, r: Reject) -> str:
        return r.source if r.source is not None else str(self.source)

    def positions(self, rows: list[int], lines: dict[int, int]) -> str:
        """Where rows of one file are, as its format counts: "lines 2, 4", or Parquet's
        "row group 0, rows 1, 3" (``lines`` from ``self.lines``)."""
        part = self._part(rows[0]) if rows else None
        if self.kind != "parquet" or part is None:
            return "lines " + ", ".join(str(lines.get(r, "?")) for r in rows)
        spots = [part.row_group(r) for r in rows]
        return "; ".join(f"row group {g}, row {row}" for g, row in spots)

    def locate(self, r: Reject) -> str:
        """Where in its file a Parquet reject is: its row group and row."""
        part = self._part(r.row)
        if r.row is None or part is None:
            return "the file"
        g, row = part.row_group(r.row)
        return f"row group {g}, row {row}"

    def describe(self, r: Reject) -> str:
        """One reject as one line: where (file:line, or the record), why, and the value."""
        file = self.file_of(r)
        if self.kind == "parquet":
            where = f"{file}: {self.locate(r)}"
        elif r.line:
            where = f"{file}:{r.line}"
        elif r.record is not None:
            where = f"{file}: record {r.record}"
        else:
            where = file
        shown = r.value is not None and r.column is not None and self.kind != "json"
        return f"{where}: {r.reason}" + (f" (value {r.value!r})" if shown else "")

    def summary(self) -> str:
        """The first reject, as one line of text."""
        first = self.first()
        return "no rejects" if first is None else self.describe(first)

    def sorted(self) -> list[Reject]:
        order = {p.source: i for i, p in enumerate(self.parts)}
        return sorted(
            self.items,
            key=lambda r: (
                order.get(r.source or "", 0),
                r.line or 0,
                r.row if r.row is not None else -1,
                r.record or 0,
                r.column or "",
            ),
        )

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
            w.writerows(self._rows(self.sorted()))

    def _rows(self, rejects: Iterable[Reject]) -> Iterable[list[object]]:
        for r in rejects:
            line = r.line if r.line is not None else ""
            if self.kind == "json":
                record = r.record if r.record is not None else ""
                yield [self.file_of(r), line, record, r.value or "", r.reason]
            elif self.kind == "parquet":
                part = self._part(r.row)
                g, row = part.row_group(r.row) if part and r.row is not None else ("", "")
                yield [self.file_of(r), g, row, r.column or "", r.value, r.reason]
            else:
                yield [self.file_of(r), line, r.column or "", r.value, r.reason]
