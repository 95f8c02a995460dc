"""A spec inferred from data files: column types, lengths, nullability, keys.

Every CSV and JSON file is read in full, streaming (CSV through Python's csv module, JSON
through the readers dataferry loads with), and each column's values are summarised: how
many, how many empty, the longest, and whether all of them are integers (and how large),
decimals (digits and scale), booleans or dates. From those:

- a CSV column's type is the narrowest that holds every value, and NOT NULL when no value
  is empty; a candidate primary key is the first column that is unique and never empty
  over the whole file (names ending in ``id`` first); a foreign key is a column whose
  values all appear in another file's key (value containment);
- a JSON file's DynamoDB key is its first unique, never-missing string or number
  attribute, else the first such pair (pairs of columns with too few distinct values
  between them for the file's rows are ruled out; the rest are checked eight at a time
  in one pass each, names ending in ``id`` first); scalar attributes are declared, others are kept
  whole in the raw table's ``_attributes``.

Each inference carries a comment saying what was seen. The spec is then checked by
reading the files as a load would (`validate`), and any column that would reject a value
falls back to ``text``: the inferred spec loads its files with zero rejects.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Inferred", "infer_files"]

INT32 = 2**31 - 1
INT64 = 2**63 - 1
_INT = re.compile(r"-?\d+\Z")
_DEC = re.compile(r"-?\d+\.\d+\Z")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
MAX_KEY_VALUES = 5_000_000  # distinct values kept per candidate key column
FEW = 4_096  # distinct values counted per column, to rule out pairs that cannot be keys
PAIRS_PER_PASS = 8  # key pairs checked together in one more pass over a file
MAX_PAIRS = 300  # pairs tried in all (every pair of 25 never-empty columns)


@dataclass
class _Column:
    name: str
    seen: int = 0
    empty: int = 0
    longest: int = 0
    ints: bool = True
    biggest: int = 0
    decimals: bool = True
    digits: int = 0  # integer digits
    scale: int = 0
    dates: bool = True
    bools: bool = True
    values: set[str] | None = field(default_factory=set)  # while it may be a key
    repeated: bool = False
    few: set[str] | None = field(default_factory=set)  # its distinct values, up to FEW

    def add(self, value: str | None) -> None:
        self.seen += 1
        if value is None or value == "":
            self.empty += 1
            self.values = None  # a key is never empty
            return
        self.longest = max(self.longest, len(value))
        if value.lstrip("-")[:1] == "0" and value.lstrip("-")[1:2].isdigit():
            # a leading zero (a phone number, a code) would be lost as a number
            self.ints = self.decimals = False
        if self.ints:
            if _INT.match(value):
                self.biggest = max(self.biggest, abs(int(value)))
            else:
                self.ints = False
        if self.decimals:
            if _INT.match(value) or _DEC.match(value):
                whole, _, frac = value.lstrip("-").partition(".")
                self.digits = max(self.digits, len(whole.lstrip("0")) or 1)
                self.scale = max(self.scale, len(frac))
            else:
                self.decimals = False
        if self.dates:
            try:
                self.dates = bool(_DATE.match(value)) and bool(dt.date.fromisoformat(value))
            except ValueError:
                self.dates = False
        if self.bools and value.lower() not in ("true", "false"):
            self.bools = False
        if self.few is not None and value not in self.few:
            if len(self.few) < FEW:
                self.few.add(value)
            else:
                self.few = None  # FEW or more
        if self.values is not None:
            if value in self.values:
                self.repeated = True
                self.values = None
            elif len(self.values) < MAX_KEY_VALUES:
                self.values.add(value)
            else:
                self.values = None  # too many to tell: not offered as a key

    @property
    def unique(self) -> bool:
        return self.seen > 0 and self.values is not None and not self.repeated

    def type_and_why(self) -> tuple[str, str]:
        filled = self.seen - self.empty
        if filled == 0:
            return "text", "no values"
        if self.ints:
            kind = (
                "integer" if self.biggest <= INT32 else "bigint" if self.biggest <= INT64 else None
            )
            if kind:
                return kind, f"{filled} integers, largest magnitude {self.biggest}"
        if self.decimals and self.digits + self.scale <= 38:
            p = max(self.digits + self.scale, 1)
            return (
                f'"numeric({p},{self.scale})"',
                f"{filled} decimals, {p} digits, scale {self.scale}",
            )
        if self.bools:
            return "boolean", f"{filled} true/false values"
        if self.dates:
            return "date", f"{filled} dates (YYYY-MM-DD)"
        if self.longest <= 255:
            return f"varchar({self.longest})", f"{filled} texts, longest {self.longest} characters"
        return "text", f"{filled} texts, longest {self.longest} characters"


@dataclass
class Inferred:
    """One dataset as inferred, ready to be written as YAML with its comments."""

    name: str
    path: str  # relative to the spec
    source: Path
    store: str  # postgres | dynamodb
    columns: dict[str, tuple[str, str, bool]]  # name: (type, why, nullable)
    key: list[str]
    key_why: str
    foreign_keys: list[tuple[str, str, str]] = field(default_factory=list)  # col, dataset, col
    rows: int = 0


def _csv_rows(path: Path) -> tuple[list[str], Iterator[list[str]]]:
    """The header and the rows, decoded as a load decodes them (a BOM dropped; a byte
    that is not UTF-8 or a value over 16 MiB is an InputError naming the line)."""
    from .readers import csv_records

    records = csv_records(path)
    header = [h.strip() for h in next(records, (1, []))[1]]
    return header, (row for _, row in records if row)  # a blank line: not a row to a load


def _scan_csv(path: Path) -> tuple[list[_Column], int]:
    header, rows_of = _csv_rows(path)
    cols = [_Column(h) for h in header]
    rows = 0
    for row in rows_of:
        rows += 1
        for col, value in zip(cols, row, strict=False):
            col.add(value)
    return cols, rows


def _scan_json(path: Path) -> tuple[list[_Column], int, set[str]]:
    from .readers import read_json_records

    fmt = "jsonl" if path.suffix == ".jsonl" else "json"
    cols: dict[str, _Column] = {}
    nested: set[str] = set()
    rows = 0
    for _, rec in read_json_records(path, fmt):
        rows += 1
        for name, value in rec.items():
            col = cols.setdefault(name, _Column(name, seen=rows - 1, empty=rows - 1))
            if isinstance(value, (dict, list)):
                nested.add(name)
                col.add("~nested")
            elif isinstance(value, bool):
                col.add("true" if value else "false")
            else:
                col.add(None if value is None else str(value))
        for name, col in cols.items():
            if name not in rec:
                col.add(None)
    return list(cols.values()), rows, nested


def _dataset_name(path: Path, taken: set[str]) -> str:
    base = re.sub(r"\W+", "_", path.stem.lower()).strip("_") or "data"
    if base in taken:  # the same name in another folder: name the folder too
        base = re.sub(r"\W+", "_", f"{base}_{path.parent.name}".lower()).strip("_")
    name, n = base, 2
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    taken.add(name)
    return name


def _rows_of(path: Path) -> Iterator[dict[str, Any]]:
    """The file's rows or records as dicts, streaming (another pass over it)."""
    if path.suffix == ".csv":
        header, rows = _csv_rows(path)
        for row in rows:
            if any(row):
                yield {h: row[i] if i < len(row) else None for i, h in enumerate(header)}
        return
    from .readers import read_json_records

    fmt = "jsonl" if path.suffix == ".jsonl" else "json"
    for _, rec in read_json_records(path, fmt):
        yield rec


def _pairs(cols: list[_Column], candidates: list[_Column], rows: int) -> list[tuple[str, str]]:
    """Pairs that could be a key, likeliest first: both never empty, and with enough
    distinct values between them for ``rows`` rows; names ending in id first."""
    full = [c for c in candidates if c.empty == 0]

    def distinct(c: _Column) -> int:
        return len(c.few) if c.few is not None else rows  # FEW or more: could be any

    pairs = [
        (a, b)
        for i, a in enumerate(full)
        for b in full[i + 1 :]
        if distinct(a) * distinct(b) >= rows
    ]
    ids = {c.name for c in full if c.name.lower().endswith("id")}
    pairs.sort(key=lambda p: (-(p[0].name in ids) - (p[1].name in ids), *map(cols.index, p)))
    return [(a.name, b.name) for a, b in pairs[:MAX_PAIRS]]


def _unique_pairs(path: Path, pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Which of ``pairs`` are present and unique together in every row: one more pass
    over the file, 8 bytes a row per pair still unique (a pair is dropped at its first
    repeat, and the pass ends when none is left; a hash collision can only make a pair
    look repeated, never unique)."""
    seen: dict[tuple[str, str], set[int]] = {p: set() for p in pairs}
    for row in _rows_of(path):
        for pair in list(seen):
            x, y = row.get(pair[0]), row.get(pair[1])
            h = hash((str(x), str(y)))
            if x in (None, "") or y in (None, "") or h in seen[pair]:
                del seen[pair]
            else:
                seen[pair].add(h)
        if not seen:
            return []
    return [p for p in pairs if seen.get(p)]


def _key(
    path: Path, cols: list[_Column], candidates: list[_Column], rows: int
) -> tuple[list[str], str]:
    """A single unique, never-empty column (names ending in id first), else such a pair."""
    single = [c for c in candidates if c.unique and c.empty == 0]
    single.sort(key=lambda c: (not c.name.lower().endswith("id"), cols.index(c)))
    if single:
        c = single[0]
        return [c.name], f"{c.name}: unique and never empty in all {c.seen} rows"
    pairs = _pairs(cols, candidates, rows)
    for start in range(0, len(pairs), PAIRS_PER_PASS):
        found = _unique_pairs(path, pairs[start : start + PAIRS_PER_PASS])
        if found:
            a, b = found[0]
            return [a, b], f"({a}, {b}): unique together in every row"
    return [], "no column, nor pair of columns, is unique and never empty"


def infer_files(data_dir: Path, spec_dir: Path) -> list[Inferred]:
    """Every *.csv (PostgreSQL) and *.json / *.jsonl (DynamoDB) file under ``data_dir``."""
    out: list[Inferred] = []
    taken: set[str] = set()
    scanned: dict[str, list[_Column]] = {}
    files = sorted(
        (p for p in data_dir.rglob("*") if p.suffix in (".csv", ".json", ".jsonl")),
        key=lambda p: (p.suffix != ".csv", str(p)),  # CSV first: they get the plain names
    )
    for path in files:
        name = _dataset_name(path, taken)
        rel = _relative(path, spec_dir)
        if path.suffix == ".csv":
            cols, rows = _scan_csv(path)
            key, why = _key(path, cols, cols, rows)
            columns = {c.name: (*c.type_and_why(), c.empty > 0 or c.seen == 0) for c in cols}
            store = "postgres"
        else:
            cols, rows, nested = _scan_json(path)
            flat = [c for c in cols if c.name not in nested and not c.bools]
            key, why = _key(path, cols, flat, rows)
            columns = {}
            for c in cols:
                if c.name in nested:
                    continue  # kept whole in the raw table's _attributes
                kind, seen = c.type_and_why()
                columns[c.name] = (
                    "text" if kind.startswith("varchar") else kind,
                    seen,
                    c.empty > 0,
                )
            store = "dynamodb"
        out.append(Inferred(name, rel, path, store, columns, key, why, rows=rows))
        scanned[name] = cols
    _foreign_keys(out, scanned)
    return out


def _foreign_keys(items: list[Inferred], scanned: dict[str, list[_Column]]) -> None:
    """A CSV column named as another CSV file's single-column key (``customer_id``, or
    ``customer_`` + the key) whose values all appear in that key."""
    keys = {
        i.name: next(c for c in scanned[i.name] if c.name == i.key[0])
        for i in items
        if i.store == "postgres" and len(i.key) == 1
    }
    for item in items:
        if item.store != "postgres":
            continue
        for col in scanned[item.name]:
            if col.name in item.key or col.empty == col.seen:
                continue
            parents = [
                (p, pk)
                for p, pk in keys.items()
                if p != item.name
                and pk.values is not None
                and col.name in (pk.name, f"{p}_{pk.name}", f"{p}_id")
            ]
            if not parents:
                continue
            values = {r[col.name] for r in _rows_of(item.source) if r.get(col.name)}
            for parent, pk in parents:
                assert pk.values is not None
                if values <= pk.values:
                    item.foreign_keys.append((col.name, parent, pk.name))
                    break


def _relative(path: Path, base: Path) -> str:
    try:
        return str(path.resolve().relative_to(base.resolve()))
    except ValueError:
        return str(path.resolve())
