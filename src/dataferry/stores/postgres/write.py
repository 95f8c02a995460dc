"""COPY into a staging table, check keys set-wise, reject what fails, merge the rest.

All of it runs in the caller's transaction: when more rows are rejected than allowed, or
anything else goes wrong, the target is left exactly as it was. Unchanged rows cost no
write (the upsert's WHERE skips them).
"""

from __future__ import annotations

import io
from collections.abc import Iterable

import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
from psycopg import sql

from ...errors import RejectedRows
from ...ledger import LoadCounts
from ...readers import ROW_COLUMN, RejectLog
from ...spec import Dataset, Spec
from .connection import translated
from .ddl import table_ident

__all__ = ["write"]

STAGE = sql.Identifier("dataferry_stage")
ROW = sql.Identifier(ROW_COLUMN)
_CSV_OUT = pacsv.WriteOptions(include_header=False, quoting_style="needed")


def _ids(names: Iterable[str], prefix: str = "") -> sql.Composed:
    return sql.SQL(", ").join(sql.SQL(prefix) + sql.Identifier(n) for n in names)


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


def _reject_duplicates(conn: psycopg.Connection, ds: Dataset, log: RejectLog) -> None:
    """Every row whose primary key repeats in the file: which copy is right is unknowable."""
    stmt = sql.SQL(
        "SELECT array_agg({row} ORDER BY {row}), {pk} FROM {stage} GROUP BY {pk} "
        "HAVING count(*) > 1"
    ).format(row=ROW, stage=STAGE, pk=_ids(ds.primary_key))
    groups = conn.execute(stmt).fetchall()
    if not groups:
        return
    lines = log.lines({r for rows, *_ in groups for r in rows})
    key = ", ".join(ds.primary_key)
    for rows, *values in groups:
        where = ", ".join(str(lines.get(r, "?")) for r in rows)
        shown = ", ".join(map(str, values))
        for r in rows:
            log.add(
                r,
                key,
                shown,
                f"primary key ({key})=({shown}) repeats on lines {where}",
                line=lines.get(r),
            )


def _reject_orphans(conn: psycopg.Connection, spec: Spec, ds: Dataset, log: RejectLog) -> None:
    """Every row whose foreign key has no parent row, named with the value and the parent."""
    for fk in ds.foreign_keys:
        parent = spec.datasets[fk.references.dataset]
        match = sql.SQL(" AND ").join(
            sql.SQL("p.{} = s.{}").format(sql.Identifier(pc), sql.Identifier(c))
            for c, pc in zip(fk.columns, fk.references.columns, strict=True)
        )
        not_null = sql.SQL(" AND ").join(
            sql.SQL("s.{} IS NOT NULL").format(sql.Identifier(c)) for c in fk.columns
        )
        # A self-reference may point at a row of this same file.
        also_staged: sql.Composable = sql.SQL("")
        if parent is ds:
            also_staged = sql.SQL(" AND NOT EXISTS (SELECT 1 FROM {} p WHERE {})").format(
                STAGE, match
            )
        stmt = sql.SQL(
            "SELECT s.{row}, {cols} FROM {stage} s WHERE {not_null} "
            "AND NOT EXISTS (SELECT 1 FROM {parent} p WHERE {match}){also} ORDER BY 1"
        ).format(
            row=ROW,
            cols=_ids(fk.columns, "s."),
            stage=STAGE,
            not_null=not_null,
            parent=table_ident(parent),
            match=match,
            also=also_staged,
        )
        for row, *values in conn.execute(stmt).fetchall():
            shown = ", ".join(f"{c}={v!r}" for c, v in zip(fk.columns, values, strict=True))
            log.add(
                row,
                ", ".join(fk.columns),
                ", ".join(map(str, values)),
                f"{shown} has no matching row in {parent.target.table} "
                f"({', '.join(fk.references.columns)})",
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
            _ids(values, "t."),
            _ids(values, "EXCLUDED."),
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
    log: RejectLog,
    max_rejects: int,
) -> LoadCounts:
    """Stage, check and merge ``batches`` into the dataset's table, in the open transaction.

    ``log`` already holds the rows the reader rejected; rows rejected here are added.
    """
    cols = list(ds.columns)
    with translated(f"loading {ds.target.schema_}.{ds.target.table}"):
        conn.execute(
            sql.SQL(
                "CREATE TEMP TABLE {stage} ON COMMIT DROP AS SELECT {cols}, 0::bigint AS {row} "
                "FROM {target} WITH NO DATA"
            ).format(stage=STAGE, cols=_ids(cols), row=ROW, target=table_ident(ds))
        )
        staged = _copy_in(conn, [*cols, ROW_COLUMN], batches)
        read_rejects = len(log)
        read_rows = log.rows
        _reject_duplicates(conn, ds, log)
        _reject_orphans(conn, spec, ds, log)
        staged_rejects = sorted(log.rows - read_rows)
        if staged_rejects:
            conn.execute(
                sql.SQL("DELETE FROM {} WHERE {} = ANY(%s)").format(STAGE, ROW),
                (staged_rejects,),
            )
        log.resolve()
        if len(log) > max_rejects:
            raise RejectedRows(
                str(log.source),
                len(log),
                max_rejects,
                log.summary(),
                str(log.dest) if log.dest else None,
            )
        inserted, updated = _merge(conn, ds)
        _advance_identities(conn, ds)
    loaded = staged - len(staged_rejects)
    return LoadCounts(
        read=staged + read_rejects,
        written=inserted + updated,
        inserted=inserted,
        updated=updated,
        unchanged=loaded - inserted - updated,
        rejected=len(log),
    )
