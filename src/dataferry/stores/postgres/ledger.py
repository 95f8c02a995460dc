"""The PostgreSQL ledger: ``dataferry.loads``, one row per dataset load, and
``dataferry.load_files``, one row per file a successful load read."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from ...ledger import LoadRecord
from .ddl import ensure_schema

__all__ = ["file_loads", "history", "last_loads", "ok_loads", "record_load"]

LEDGER = sql.Identifier("dataferry", "loads")
FILES = sql.Identifier("dataferry", "load_files")
_FILE_COLUMNS = {
    "run_id": "text NOT NULL",
    "dataset": "text NOT NULL",
    "source": "text NOT NULL",
    "spec_sha256": "text NOT NULL",
    "file_size": "bigint",
    "file_sha256": "text",
    "read": "bigint",
    "rejected": "bigint",
    "started_at": "timestamptz NOT NULL",
}
_COLUMNS = {
    "run_id": "text NOT NULL",
    "dataset": "text NOT NULL",
    "target": "text NOT NULL",
    "table": "text NOT NULL",
    "source": "text NOT NULL",
    "spec_sha256": "text NOT NULL",
    "file_size": "bigint",
    "file_sha256": "text",
    "read": "bigint",
    "written": "bigint",
    "inserted": "bigint",
    "updated": "bigint",
    "unchanged": "bigint",
    "rejected": "bigint",
    "started_at": "timestamptz NOT NULL",
    "finished_at": "timestamptz",
    "status": "text NOT NULL",
    "error": "text",
    "rejects_file": "text",
    "deleted": "bigint",
    "note": "text",
    "superseded": "bigint",
}


def _ensure(conn: psycopg.Connection, with_files: bool) -> None:
    """Make what the ledger lacks. One catalogue query answers for all of it, so a ledger
    that is complete (every run but the first) costs one round trip, not four."""
    schema, have, files = conn.execute(
        "SELECT to_regnamespace('dataferry') IS NOT NULL, ARRAY(SELECT attname::text "
        "FROM pg_attribute WHERE attrelid = to_regclass('dataferry.loads') AND attnum > 0 "
        "AND NOT attisdropped), to_regclass('dataferry.load_files') IS NOT NULL"
    ).fetchone() or (False, [], False)
    if not schema:
        ensure_schema(conn, "dataferry")
    if not have:
        columns = [
            sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(t)) for c, t in _COLUMNS.items()
        ]
        conn.execute(
            sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(
                LEDGER, sql.SQL(", ").join(columns)
            )
        )
    else:
        # A ledger made by an older dataferry gains the columns added since (all nullable).
        for c, t in _COLUMNS.items():
            if c not in have:
                conn.execute(
                    sql.SQL("ALTER TABLE {} ADD COLUMN {} {}").format(
                        LEDGER, sql.Identifier(c), sql.SQL(t)
                    )
                )
    if files or not with_files:
        return
    columns = [
        sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(t)) for c, t in _FILE_COLUMNS.items()
    ]
    conn.execute(sql.SQL("CREATE TABLE {} ({})").format(FILES, sql.SQL(", ").join(columns)))
    conn.execute(
        sql.SQL("CREATE INDEX {} ON {} (dataset, source, started_at)").format(
            sql.Identifier("load_files_dataset_source"), FILES
        )
    )


def record_load(conn: psycopg.Connection, record: LoadRecord) -> None:
    """Insert the record, and an entry per file it loaded when it succeeded, in the open
    transaction (with the data they describe)."""
    with_files = record.status == "ok" and bool(record.loaded_files)
    _ensure(conn, with_files)
    row = {k: v for k, v in record.flat().items() if k in _COLUMNS}
    conn.execute(
        sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
            LEDGER,
            sql.SQL(", ").join(map(sql.Identifier, row)),
            sql.SQL(", ").join(sql.Placeholder() * len(row)),
        ),
        list(row.values()),
    )
    if not with_files:
        return
    with (
        conn.cursor() as cur,
        cur.copy(
            sql.SQL("COPY {} ({}) FROM STDIN").format(
                FILES, sql.SQL(", ").join(map(sql.Identifier, _FILE_COLUMNS))
            )
        ) as copy,
    ):
        for f in record.loaded_files:
            copy.write_row(
                (
                    record.run_id,
                    record.dataset,
                    f.source,
                    record.spec_sha256,
                    f.file_size,
                    f.file_sha256,
                    f.read,
                    f.rejected,
                    record.started_at,
                )
            )


def _exists(conn: psycopg.Connection, table: str = "loads") -> bool:
    row = conn.execute("SELECT to_regclass(%s)", (f"dataferry.{table}",)).fetchone()
    return bool(row and row[0] is not None)


def last_loads(conn: psycopg.Connection, status: str | None = None) -> dict[str, dict[str, Any]]:
    """The latest ledger row per dataset (of that ``status`` when given)."""
    if not _exists(conn):
        return {}
    where = sql.SQL("WHERE status = %s") if status else sql.SQL("")
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            sql.SQL(
                "SELECT DISTINCT ON (dataset) * FROM {} {} ORDER BY dataset, started_at DESC"
            ).format(LEDGER, where),
            (status,) if status else None,
        )
        return {r["dataset"]: r for r in cur.fetchall()}


def history(
    conn: psycopg.Connection, limit: int, dataset: str | None = None
) -> list[dict[str, Any]]:
    """The ledger's rows, newest first (of one dataset when given)."""
    if not _exists(conn):
        return []
    where = sql.SQL("WHERE dataset = %s") if dataset else sql.SQL("")
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            sql.SQL("SELECT * FROM {} {} ORDER BY started_at DESC LIMIT %s").format(LEDGER, where),
            (dataset, limit) if dataset else (limit,),
        )
        return cur.fetchall()


def ok_loads(conn: psycopg.Connection, dataset: str, limit: int = 1000) -> list[dict[str, Any]]:
    """The dataset's successful loads, newest first (file size and checksum, spec hash)."""
    if not _exists(conn):
        return []
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            sql.SQL(
                "SELECT run_id, source, file_size, file_sha256, spec_sha256, started_at, "
                "finished_at FROM {} WHERE dataset = %s AND status = 'ok' "
                "ORDER BY started_at DESC LIMIT %s"
            ).format(LEDGER),
            (dataset, limit),
        )
        return cur.fetchall()


def file_loads(conn: psycopg.Connection, dataset: str) -> list[dict[str, Any]]:
    """Every version of every file the dataset's successful loads read (the latest entry
    of each source and checksum), newest first."""
    if not _exists(conn, "load_files"):
        return []
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            sql.SQL(
                "SELECT * FROM (SELECT DISTINCT ON (source, file_sha256) run_id, source, "
                "file_size, file_sha256, spec_sha256, started_at FROM {} WHERE dataset = %s "
                "ORDER BY source, file_sha256, started_at DESC) f ORDER BY started_at DESC"
            ).format(FILES),
            (dataset,),
        )
        return cur.fetchall()
