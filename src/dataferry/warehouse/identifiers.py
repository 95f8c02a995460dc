"""Identifier quoting for warehouse SQL, by sqlglot's dialect-aware generator.

Neither DuckDB's nor Snowflake's Python driver has a quoting helper that every supported
version shares (duckdb.ColumnExpression quotes from DuckDB 2.0 on, but 1.x, which Python
3.10 gets, leaves dotted names bare); sqlglot knows each dialect's quoting and escaping
rules, so no identifier is ever pasted into SQL raw.
"""

from __future__ import annotations

from sqlglot import exp

__all__ = ["ident", "idents", "table"]


def ident(name: str, dialect: str = "duckdb") -> str:
    return exp.to_identifier(name, quoted=True).sql(dialect=dialect)


def idents(names: list[str], dialect: str = "duckdb", prefix: str = "") -> str:
    return ", ".join(prefix + ident(n, dialect) for n in names)


def table(schema: str, name: str, dialect: str = "duckdb") -> str:
    return f"{ident(schema, dialect)}.{ident(name, dialect)}"
