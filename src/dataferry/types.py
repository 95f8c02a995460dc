"""Logical column types and how each maps to Arrow, PostgreSQL, DuckDB and DynamoDB.

A spec column names a logical type (``integer``, ``varchar(64)``, ``numeric(10,2)``...).
Every engine-specific type is derived from it here, so a new engine is a new method,
never a new spelling in the spec.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["DYNAMODB_ONLY", "TYPE_NAMES", "LogicalType", "from_postgres", "parse_type"]

_ALIASES = {
    "int": "integer",
    "int4": "integer",
    "int8": "bigint",
    "int2": "smallint",
    "decimal": "numeric",
    "float": "double",
    "float8": "double",
    "double precision": "double",
    "float4": "real",
    "bool": "boolean",
    "string": "text",
    "timestamp with time zone": "timestamptz",
    "character varying": "varchar",
}
TYPE_NAMES = (
    "smallint",
    "integer",
    "bigint",
    "numeric",
    "real",
    "double",
    "boolean",
    "text",
    "varchar",
    "date",
    "timestamp",
    "timestamptz",
    "json",
    "binary",
    "string_set",
    "number_set",
)
# DynamoDB's own kinds of value (B, SS, NS): not loadable from CSV into PostgreSQL.
DYNAMODB_ONLY = frozenset({"binary", "string_set", "number_set"})
_INT_RANGES = {
    "smallint": (-(2**15), 2**15 - 1),
    "integer": (-(2**31), 2**31 - 1),
    "bigint": (-(2**63), 2**63 - 1),
}
_TYPE_RE = re.compile(r"^\s*([a-z][a-z0-9_ ]*?)\s*(?:\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\))?\s*$")
MAX_NUMERIC_PRECISION = 38  # what Arrow decimal128, DuckDB and Snowflake all hold


@dataclass(frozen=True)
class LogicalType:
    """A column type as the spec declares it."""

    name: str
    length: int | None = None  # varchar
    precision: int | None = None  # numeric
    scale: int | None = None  # numeric

    def __str__(self) -> str:
        if self.name == "varchar" and self.length is not None:
            return f"varchar({self.length})"
        if self.name == "numeric":
            return f"numeric({self.precision},{self.scale})"
        return self.name

    @property
    def int_range(self) -> tuple[int, int] | None:
        return _INT_RANGES.get(self.name)

    @property
    def is_numeric(self) -> bool:
        return self.name in ("smallint", "integer", "bigint", "numeric", "real", "double")

    def widens_to(self, new: LogicalType) -> bool:
        """Whether every value of this type fits ``new`` unchanged (a safe ALTER TYPE)."""
        if self == new:
            return True
        digits = {"smallint": 5, "integer": 10, "bigint": 19}
        if self.name in digits:
            if new.name in digits:
                return digits[new.name] >= digits[self.name]
            if new.name == "numeric":
                assert new.precision is not None
                assert new.scale is not None
                return new.precision - new.scale >= digits[self.name]
            return False
        if self.name == "numeric" and new.name == "numeric":
            assert self.precision is not None
            assert self.scale is not None
            assert new.precision is not None
            assert new.scale is not None
            return new.scale >= self.scale and (
                new.precision - new.scale >= self.precision - self.scale
            )
        if self.name == "real":
            return new.name == "double"
        if self.name == "varchar":
            if new.name == "text":
                return True
            if new.name == "varchar":
                return new.length is None or (self.length is not None and new.length >= self.length)
        return False

    def arrow(self) -> pa.DataType:
        """The Arrow type values of this column travel as."""
        import pyarrow as pa  # only the CSV and warehouse paths need Arrow

        match self.name:
            case "smallint":
                return pa.int16()
            case "integer":
                return pa.int32()
            case "bigint":
                return pa.int64()
            case "numeric":
                assert self.precision is not None
                assert self.scale is not None
                return pa.decimal128(self.precision, self.scale)
            case "real":
                return pa.float32()
            case "double":
                return pa.float64()
            case "boolean":
                return pa.bool_()
            case "date":
                return pa.date32()
            case "timestamp":
                return pa.timestamp("us")
            case "timestamptz":
                return pa.timestamp("us", tz="UTC")
            case "binary":
                return pa.binary()
            case _:  # text, varchar, json and sets (as JSON arrays) travel as text
                return pa.string()

    def postgres(self) -> str:
        """PostgreSQL type text; built only from this fixed vocabulary and integers."""
        match self.name:
            case "double":
                return "double precision"
            case "varchar":
                return f"varchar({self.length})" if self.length else "varchar"
            case "numeric":
                return f"numeric({self.precision},{self.scale})"
            case "timestamptz":
                return "timestamp with time zone"
            case "timestamp":
                return "timestamp without time zone"
            case "json":
                return "jsonb"
            case _:
                return self.name

    def duckdb(self) -> str:
        """DuckDB type text (DuckDB does not enforce varchar lengths, so none is given)."""
        match self.name:
            case "numeric":
                return f"DECIMAL({self.precision},{self.scale})"
            case "varchar" | "text":
                return "VARCHAR"
            case "double":
                return "DOUBLE"
            case "real":
                return "FLOAT"
            case "timestamptz":
                return "TIMESTAMPTZ"
            case "json" | "string_set" | "number_set":
                return "JSON"
            case "binary":
                return "BLOB"
            case _:
                return self.name.upper()

    def snowflake(self) -> str:
        """Snowflake type text: exact numbers, time zones kept, JSON as VARIANT."""
        match self.name:
            case "smallint" | "integer" | "bigint":
                return "NUMBER(38,0)"
            case "numeric":
                return f"NUMBER({self.precision},{self.scale})"
            case "real" | "double":
                return "FLOAT"
            case "varchar":
                return f"VARCHAR({self.length})" if self.length else "VARCHAR"
            case "text":
                return "VARCHAR"
            case "timestamp":
                return "TIMESTAMP_NTZ"
            case "timestamptz":
                return "TIMESTAMP_TZ"
            case "json" | "string_set" | "number_set":
                return "VARIANT"
            case _:  # boolean, date, binary
                return self.name.upper()

    def dynamodb(self) -> str:
        """DynamoDB scalar attribute type for a key attribute: S, N or B."""
        if self.is_numeric:
            return "N"
        if self.name == "binary":
            return "B"
        return "S"


_FORMAT_TYPE_NAMES = {
    "character varying": "varchar",
    "double precision": "double",
    "timestamp without time zone": "timestamp",
    "timestamp with time zone": "timestamptz",
    "jsonb": "json",
}


def from_postgres(format_type: str) -> LogicalType | None:
    """The logical type of a PostgreSQL column as format_type() prints it, if it has one."""
    text = format_type.strip()
    if text == "numeric":
        return None  # unconstrained numeric has no logical equivalent
    for pg_name, name in _FORMAT_TYPE_NAMES.items():
        if text.startswith(pg_name):
            text = name + text[len(pg_name) :]
    try:
        return parse_type(text)
    except ValueError:
        return None


def parse_type(text: str) -> LogicalType:
    """Parse ``varchar(64)``, ``numeric(10,2)``, ``bigint``...; raise ValueError with the reason."""
    m = _TYPE_RE.match(text.lower())
    if not m:
        hint = ""
        if "(" in text and ")" not in text:
            hint = ' (inside {...} in YAML a comma splits the value: quote it, "numeric(10,2)")'
        raise ValueError(f"unknown type {text!r}{hint}")
    raw_name, a, b = m.group(1), m.group(2), m.group(3)
    name = _ALIASES.get(raw_name, raw_name)
    if name not in TYPE_NAMES:
        raise ValueError(f"unknown type {text!r} (known: {', '.join(TYPE_NAMES)})")
    if name == "varchar":
        if b is not None:
            raise ValueError(f"varchar takes one length, got {text!r}")
        length = int(a) if a is not None else None
        if length is not None and length < 1:
            raise ValueError(f"varchar length must be at least 1, got {text!r}")
        return LogicalType(name, length=length)
    if name == "numeric":
        precision = int(a) if a is not None else MAX_NUMERIC_PRECISION
        scale = int(b) if b is not None else 0
        if not 1 <= precision <= MAX_NUMERIC_PRECISION:
            raise ValueError(f"numeric precision must be 1..{MAX_NUMERIC_PRECISION}, got {text!r}")
        if scale > precision:
            raise ValueError(f"numeric scale cannot exceed its precision, got {text!r}")
        return LogicalType(name, precision=precision, scale=scale)
    if a is not None:
        raise ValueError(f"type {name} takes no parameters, got {text!r}")
    return LogicalType(name)
