"""COPY into a staging table, check keys set-wise, reject what fails, merge the rest.

All of it runs in the caller's transaction: when more rows are rejected than allowed, or
anything else goes wrong, the target is left exactly as it was. Unchanged rows cost no
write (the upsert's WHERE skips them).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
from psycopg import sql
from psycopg.copy import LibpqWriter

from ...background import in_background
from ...errors import RejectedRows
from ...ledger import LoadCounts
from ...readers import ROW_COLUMN, RejectLog
from ...spec import Dataset, Spec
from .connection import translated
from .ddl import table_ident

__all__ = ["write"]

BatchSource = Callable[[], Iterable[pa.RecordBatch]]
STAGE = sql.Identifier("dataferry_stage")
FK_DEFER_MIN_ROWS = 50_000
ROW = sql.Identifier(ROW_COLUMN)
_CSV_OUT = pacsv.WriteOptions(include_header=False, quoting_style="needed")


def _ids(names: Iterable[str], prefix: str = "") -> sql.Composed:
    return sql.SQL(", ").join(sql.SQL(prefix) + sql.Identifier(n) for n in names)


def _encoded(batches: Iterable[pa.RecordBatch], drop_row: bool) -> Iterator[tuple[int, memoryview]]:
    for batch in batches:
        if drop_row:
            batch = batch.drop_columns([ROW_COLUMN])
        buf = io.BytesIO()
        # Arrow quotes every string, so "" stays an empty string and NULL stays NULL.
        pacsv.write_csv(batch, buf, write_options=_CSV_OUT)
        yield batch.num_rows, buf.getbuffer()


def _copy_in(
    conn: psycopg.Connection,
    into: sql.Composable,
    columns: list[str],
    batches: Iterable[pa.RecordBatch],
) -> int:
    """COPY the batches into ``into``; reading and encoding run ahead in a thread."""
    rows = 0
    drop_row = ROW_COLUMN not in columns
    stmt = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(into, _ids(columns))
    # psycopg's default writer queues up to 128 MB in its own thread; ours already runs
    # ahead by a few batches, so the plain writer keeps memory flat at the same speed.
    with conn.cursor() as cur, cur.copy(stmt, writer=LibpqWriter(cur)) as copy:
        for n, chunk in in_background(_encoded(batches, drop_row), depth=2):
            copy.write(chunk)
            rows += n
    return rows


def _reject_duplicates(conn: psycopg.Connection, ds: Dataset, log: RejectLog) -> int:
    """Every row whose primary key repeats within one file: which copy is right is
    unknowable. A key that several files of the load hold is the later file's (merge,
    replace: the earlier rows are superseded and dropped from the stage, as if each file
    were a load of its own) or the first file's (append: the later rows are rejected,
    their key being in the table by then). Returns the rows superseded."""
    stmt = sql.SQL(
        "SELECT array_agg({row} ORDER BY {row}), {pk} FROM {stage} GROUP BY {pk} "
        "HAVING count(*) > 1"
    ).format(row=ROW, stage=STAGE, pk=_ids(ds.primary_key))
    groups = conn.execute(stmt).fetchall()
    if not groups:
        return 0
    lines = log.lines({r for rows, *_ in groups for r in rows})
    key = ", ".join(ds.primary_key)
    superseded: list[int] = []
    for rows, *values in groups:
        shown = ", ".join(map(str, values))
        by_file: dict[int, list[int]] = {}
        for r in rows:
            by_file.setdefault(log.file_index(r), []).append(r)
        kept = []
        for repeated in by_file.values():
            if len(repeated) == 1:
                kept.append(repeated[0])
                continue
            where = log.positions(repeated, lines)
            for r in repeated:
                log.add(
                    r,
                    key,
                    shown,
                    f"primary key ({key})=({shown}) repeats on {where}",
                    line=lines.get(r),
                )
        if len(kept) < 2:
            continue
        if ds.mode == "append":
            first = kept[0]
            for r in kept[1:]:
                log.add(
                    r,
                    key,
                    shown,
                    f"primary key ({key})=({shown}) is already in {log.file_of_row(first)} "
                    f"({log.positions([first], lines)}; mode: append)",
                    line=lines.get(r),
                )
        else:
            superseded += kept[:-1]
    if superseded:
        conn.execute(sql.SQL("DELETE FROM {} WHERE {} = ANY(%s)").format(STAGE, ROW), (superseded,))
    return len(superseded)


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


def _insert_all(conn: psycopg.Connection, ds: Dataset) -> int:
    """An empty target: every staged row is new, so no conflict handling is needed."""
    cols = list(ds.columns)
    cur = conn.execute(
        sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(
            table_ident(ds), _ids(cols), _ids(cols), STAGE
        )
    )
    return cur.rowcount


def _reject_existing(conn: psycopg.Connection, ds: Dataset, log: RejectLog) -> None:
    """mode: append inserts only: a row whose key the table already holds is rejected."""
    match = sql.SQL(" AND ").join(
        sql.SQL("t.{0} = s.{0}").format(sql.Identifier(c)) for c in ds.primary_key
    )
    stmt = sql.SQL(
        "SELECT s.{row}, {pk} FROM {stage} s WHERE EXISTS (SELECT 1 FROM {target} t WHERE {m})"
    ).format(row=ROW, pk=_ids(ds.primary_key, "s."), stage=STAGE, target=table_ident(ds), m=match)
    key = ", ".join(ds.primary_key)
    for row, *values in conn.execute(stmt).fetchall():
        shown = ", ".join(map(str, values))
        log.add(
            row, key, shown, f"primary key ({key})=({shown}) is already in the table (mode: append)"
        )


def _delete_missing(conn: psycopg.Connection, ds: Dataset) -> int:
    """mode: replace: rows of the table whose key the file no longer has are deleted."""
    match = sql.SQL(" AND ").join(
        sql.SQL("s.{0} = t.{0}").format(sql.Identifier(c)) for c in ds.primary_key
    )
    cur = conn.execute(
        sql.SQL(
            "DELETE FROM {target} t WHERE NOT EXISTS (SELECT 1 FROM {stage} s WHERE {m})"
        ).format(target=table_ident(ds), stage=STAGE, m=match)
    )
    return cur.rowcount


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


def _target_rows_estimate(conn: psycopg.Connection, ds: Dataset) -> tuple[bool, float]:
    """(is the target empty, the planner's row estimate) without counting the table."""
    empty = conn.execute(
        sql.SQL("SELECT NOT EXISTS (SELECT 1 FROM {})").format(table_ident(ds))
    ).fetchone()
    estimate = conn.execute(
        "SELECT greatest(reltuples, 0) FROM pg_class WHERE oid = %s::regclass",
        (table_ident(ds).as_string(conn),),
    ).fetchone()
    return bool(empty and empty[0]), float(estimate[0]) if estimate else 0.0


@contextmanager
def _foreign_keys_deferred_to_one_pass(
    conn: psycopg.Connection, ds: Dataset, staged: int, empty: bool, existing: float
) -> Iterator[None]:
    """For a large load, drop the table's foreign keys and add them back afterwards.

    A foreign key checks each inserted row with its own lookup in the parent (most of the
    time of a big load); adding it back validates all rows in one set-based pass, as
    pg_restore does. The staged rows were already checked against the parents
    (_reject_orphans), and it all happens in the load's transaction, so the constraints
    are never missing for anyone else. Small loads keep the row-by-row checks, which are
    cheaper than revalidating a large table.
    """
    if staged < FK_DEFER_MIN_ROWS or (not empty and staged < existing / 4):
        yield
        return
    fks = conn.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = %s::regclass AND contype = 'f' ORDER BY conname",
        (table_ident(ds).as_string(conn),),
    ).fetchall()
    for name, _ in fks:
        conn.execute(
            sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
                table_ident(ds), sql.Identifier(name)
            )
        )
    yield
    for name, definition in fks:
        # The definition is PostgreSQL's own rendering of the constraint it just had
        # (identifiers quoted by the server), put back unchanged.
        conn.execute(
            sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
                table_ident(ds), sql.Identifier(name), sql.SQL(definition)
            )
        )


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


def _has_foreign_keys(conn: psycopg.Connection, ds: Dataset) -> bool:
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = %s::regclass "
        "AND contype = 'f')",
        (table_ident(ds).as_string(conn),),
    ).fetchone()
    return bool(row and row[0])


def _check_rejects(log: RejectLog, max_rejects: int) -> None:
    log.resolve()
    if len(log) > max_rejects:
        raise RejectedRows(
            str(log.source),
            len(log),
            max_rejects,
            log.summary(),
            str(log.dest) if log.dest else None,
        )


def _direct(
    conn: psycopg.Connection, ds: Dataset, read: BatchSource, log: RejectLog, max_rejects: int
) -> LoadCounts | None:
    """An empty table with no foreign keys: COPY straight into it, as psql would.

    The primary key still guards it: a key repeated in the file makes the COPY fail, the
    savepoint undoes it, and None tells the caller to take the staging path, which names
    every repeated row.
    """
    try:
        with conn.transaction():  # a savepoint inside the load's transaction
            copied = _copy_in(conn, table_ident(ds), list(ds.columns), read())
            _check_rejects(log, max_rejects)
    except psycopg.errors.UniqueViolation:
        log.restart()
        return None
    return LoadCounts(
        read=copied + len(log),
        written=copied,
        inserted=copied,
        rejected=len(log),
    )


def _staged(
    conn: psycopg.Connection,
    spec: Spec,
    ds: Dataset,
    read: BatchSource,
    log: RejectLog,
    max_rejects: int,
    empty: bool,
    existing: float,
) -> LoadCounts:
    """Stage everything, reject repeated keys and orphans set-wise, then merge."""
    cols = list(ds.columns)
    conn.execute(
        sql.SQL(
            "CREATE TEMP TABLE {stage} ON COMMIT DROP AS SELECT {cols}, 0::bigint AS {row} "
            "FROM {target} WITH NO DATA"
        ).format(stage=STAGE, cols=_ids(cols), row=ROW, target=table_ident(ds))
    )
    staged = _copy_in(conn, STAGE, [*cols, ROW_COLUMN], read())
    read_rejects = len(log)
    read_rows = log.rows
    superseded = _reject_duplicates(conn, ds, log)
    _reject_orphans(conn, spec, ds, log)
    if ds.mode == "append" and not empty:
        _reject_existing(conn, ds, log)
    staged_rejects = sorted(log.rows - read_rows)
    if staged_rejects:
        conn.execute(
            sql.SQL("DELETE FROM {} WHERE {} = ANY(%s)").format(STAGE, ROW), (staged_rejects,)
        )
    _check_rejects(log, max_rejects)
    loaded = staged - len(staged_rejects) - superseded
    deleted = 0
    with _foreign_keys_deferred_to_one_pass(conn, ds, loaded, empty, existing):
        if empty or ds.mode == "append":
            inserted, updated = _insert_all(conn, ds), 0
        else:
            inserted, updated = _merge(conn, ds)
    if ds.mode == "replace" and not empty:
        # Children's foreign keys still guard this: deleting a row they use fails the load.
        deleted = _delete_missing(conn, ds)
    return LoadCounts(
        read=staged + read_rejects,
        written=inserted + updated,
        inserted=inserted,
        updated=updated,
        unchanged=loaded - inserted - updated,
        rejected=len(log),
        deleted=deleted,
        superseded=superseded,
    )


def write(
    conn: psycopg.Connection,
    spec: Spec,
    ds: Dataset,
    read: BatchSource,
    log: RejectLog,
    max_rejects: int,
    advance_identities: bool = True,
) -> LoadCounts:
    """Load the batches ``read()`` yields into the dataset's table, in the open transaction.

    ``read`` may be called twice (see _direct); ``log`` collects the rows the reader and
    the key checks reject, and more of them than ``max_rejects`` fails the load.
    ``advance_identities``: move identity sequences past the loaded ids (not in a plan:
    setval outlives a rollback).
    """
    with translated(f"loading {ds.target.schema_}.{ds.target.table}"):
        empty, existing = _target_rows_estimate(conn, ds)
        counts = None
        if empty and not _has_foreign_keys(conn, ds):
            counts = _direct(conn, ds, read, log, max_rejects)
        if counts is None:
            counts = _staged(conn, spec, ds, read, log, max_rejects, empty, existing)
        if advance_identities:
            _advance_identities(conn, ds)
    return counts
