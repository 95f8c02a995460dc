"""Identifier quoting for warehouse SQL, by each engine's own tools.

DuckDB: its expression API quotes names (duckdb.ColumnExpression, parts joined with dots,
inner quotes doubled). Snowflake's connector has no quoting helper: sqlglot's generator
knows its quoting and escaping rules. Either way no identifier is pasted into SQL raw.
"""

from __future__ import annotations

import duckdb

__all__ = ["ident", "idents", "table"]


def ident(name: str, dialect: str = "duckdb") -> str:
    if dialect == "duckdb":
        return str(duckdb.ColumnExpression(name))
    from sqlglot import exp  # imported only where a dialect other than DuckDB's is used

    return exp.to_identifier(name, quoted=True).sql(dialect=dialect)


def idents(names: list[str], dialect: str = "duckdb", prefix: str = "") -> str:
    return ", ".join(prefix + ident(n, dialect) for n in names)


def table(schema: str, name: str, dialect: str = "duckdb") -> str:
    if dialect == "duckdb":
        return str(duckdb.ColumnExpression(schema, name))
    return f"{ident(schema, dialect)}.{ident(name, dialect)}"
