"""Identifier quoting for warehouse SQL.

DuckDB (whose parser is PostgreSQL's) and Snowflake both write an identifier the SQL
standard's way: in double quotes, with a double quote inside doubled. psycopg's
``sql.Identifier`` does exactly that, so every name goes through it and none is ever
pasted into SQL raw. (DuckDB's own ``ColumnExpression`` quotes only from DuckDB 2.0 on,
and 1.x is what Python 3.10 gets; sqlglot, which the models need, costs a tenth of a
second to import on every command.)
"""

from __future__ import annotations

from collections.abc import Iterable

from psycopg import sql

__all__ = ["ident", "idents", "table"]


def ident(name: str) -> str:
    return sql.Identifier(name).as_string(None)


def idents(names: Iterable[str], prefix: str = "") -> str:
    return ", ".join(prefix + ident(n) for n in names)


def table(schema: str, name: str) -> str:
    return sql.Identifier(schema, name).as_string(None)
