"""COPY into a staging table, check keys set-wise, then merge into the target.

All of it runs in the caller's transaction: a bad row anywhere leaves the target exactly
as it was. Unchanged rows cost no write (the upsert's WHERE skips them).
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
from psycopg import sql

from ...errors import InputError
from ...ledger import LoadCounts
from ...readers import ROW_COLUMN
from ...readers.csv_file import line_of_row
from ...spec import Dataset, Spec
from .connection import translated
from .ddl import table_ident

__all__ = ["write"]

STAGE = sql.Identifier("dataferry_stage")
_CSV_OUT = pacsv.WriteOptions(include_header=False, quoting_style="needed")


def _ids(names: Iterable[str]) -> sql.Composed:
    return sql.SQL(", ").join(map(sql.Identifier, names))


def _copy_in(
    conn: psycopg.Connection, columns: list[str], batches: Iterable[pa.RecordBatch]
) -> int:
    rows = 0
    stmt = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(STAGE, _ids(columns))
    with conn.cursor() as cur, cur.copy(stmt) as copy:
        for batch in batches:
            buf = io.BytesIO()
            # Arrow quotes every string, so "" stays an empty string and NULL stays NULL.
            pacsv.write_csv(batch, buf, write_options=_CSV_OUT)
            copy.write(buf.getbuffer())
            rows += batch.num_rows
    return rows


def _check_duplicates(conn: psycopg.Connection, ds: Dataset, path: Path) -> None:
    stmt = sql.SQL(
        "SELECT min({row}), max({row}) FROM {stage} GROUP BY {pk} HAVING count(*) > 1 "
        "ORDER BY 1 LIMIT 1"
    ).format(row=sql.Identifier(ROW_COLUMN), stage=STAGE, pk=_ids(ds.primary_key))
    dup = conn.execute(stmt).fetchone()
    if dup:
        first, second = (line_of_row(path, ds.source.csv, r) for r in dup)
        raise InputError(
            str(path),
            f"primary key ({', '.join(ds.primary_key)}) repeats the key of line {first}",
            line=second,
        )


def _check_foreign_keys(conn: psycopg.Connection, spec: Spec, ds: Dataset, path: Path) -> None:
    for fk in ds.foreign_keys:
        parent = spec.datasets[fk.references.dataset]
        match = sql.SQL(" AND ").join(
            sql.SQL("p.{} = s.{}").format(sql.Identifier(pc), sql.Identifier(c))
            for c, pc in zip(fk.columns, fk.references.columns, strict=True)
        )
        not_null = sql.SQL(" AND ").join(
            sql.SQL("s.{} IS NOT NULL").format(sql.Identifier(c)) for c in fk.columns
        )
        stmt = sql.SQL(
            "SELECT s.{row}, {cols} FROM {stage} s WHERE {not_null} "
            "AND NOT EXISTS (SELECT 1 FROM {parent} p WHERE {match}) ORDER BY 1 LIMIT 1"
        ).format(
            row=sql.Identifier(ROW_COLUMN),
            cols=sql.SQL(", ").join(sql.SQL("s.{}").format(sql.Identifier(c)) for c in fk.columns),
            stage=STAGE,
            not_null=not_null,
            parent=table_ident(parent),
            match=match,
        )
        bad = conn.execute(stmt).fetchone()
        if bad:
            values = ", ".join(f"{c}={v!r}" for c, v in zip(fk.columns, bad[1:], strict=True))
            raise InputError(
                str(path),
                f"{values} has no matching row in {parent.target.table} "
                f"({', '.join(fk.references.columns)})",
                line=line_of_row(path, ds.source.csv, bad[0]),
            )


def _merge(conn: psycopg.Connection, ds: Dataset) -> tuple[int, int]:
    cols = list(ds.columns)
    values = [c for c in cols if c not in ds.primary_key]
    action: sql.Composable
    if values:
        action = sql.SQL("DO UPDATE SET {} WHERE ({}) IS DISTINCT FROM ({})").format(
            sql.SQL(", ").join(
                sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c)) for c in values
            ),
            sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(c)) for c in values),
            sql.SQL(", ").join(sql.SQL("EXCLUDED.{}").format(sql.Identifier(c)) for c in values),
        )
    else:
        action = sql.SQL("DO NOTHING")
    stmt = sql.SQL(
        "WITH m AS (INSERT INTO {target} AS t ({cols}) SELECT {cols} FROM {stage} "
        "ON CONFLICT ({pk}) {action} RETURNING (xmax = 0) AS inserted) "
        "SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM m"
    ).format(
        target=table_ident(ds), cols=_ids(cols), stage=STAGE, pk=_ids(ds.primary_key), action=action
    )
    row = conn.execute(stmt).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def _advance_identities(conn: psycopg.Connection, ds: Dataset) -> None:
    # Explicit ids do not move an identity's sequence; without this the next generated id
    # would collide with a loaded one (a weakness of the original).
    table_text = table_ident(ds).as_string(conn)
    for name, col in ds.columns.items():
        if col.identity:
            conn.execute(
                sql.SQL(
                    "SELECT setval(pg_get_serial_sequence(%s, %s), max({col})) FROM {table} "
                    "HAVING max({col}) IS NOT NULL"
                ).format(col=sql.Identifier(name), table=table_ident(ds)),
                (table_text, name),
            )


def write(
    conn: psycopg.Connection,
    spec: Spec,
    ds: Dataset,
    batches: Iterable[pa.RecordBatch],
    path: Path,
) -> LoadCounts:
    """Stage, check and merge ``batches`` into the dataset's table, in the open transaction."""
    with translated(f"loading {ds.target.schema_}.{ds.target.table}"):
        cols = list(ds.columns)
        conn.execute(
            sql.SQL(
                "CREATE TEMP TABLE {stage} ON COMMIT DROP AS SELECT {cols}, 0::bigint AS {row} "
                "FROM {target} WITH NO DATA"
            ).format(
                stage=STAGE, cols=_ids(cols), row=sql.Identifier(ROW_COLUMN), target=table_ident(ds)
            )
        )
        read = _copy_in(conn, [*cols, ROW_COLUMN], batches)
        _check_duplicates(conn, ds, path)
        _check_foreign_keys(conn, spec, ds, path)
        inserted, updated = _merge(conn, ds)
        _advance_identities(conn, ds)
        return LoadCounts(
            read=read,
            written=inserted + updated,
            inserted=inserted,
            updated=updated,
            unchanged=read - inserted - updated,
        )
