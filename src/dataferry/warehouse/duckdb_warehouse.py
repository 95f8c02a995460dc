"""DuckDB as the warehouse: raw tables merged on their keys, in one transaction per table.

Arrow batches are staged in a temporary table, checked for repeated keys (DuckDB's MERGE
would silently keep one where Snowflake raises), then merged: new keys inserted, changed
rows updated, identical rows left alone, so a second run changes nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from ..errors import TargetError, TargetUnavailable
from ..ledger import LoadCounts, LoadRecord
from .identifiers import ident, idents, table

__all__ = ["META_COLUMNS", "DuckDBWarehouse"]

META_COLUMNS = {
    "_dataferry_loaded_at": "TIMESTAMPTZ",
    "_dataferry_source": "VARCHAR",
    "_dataferry_run_id": "VARCHAR",
}
_LEDGER = ("dataferry", "loads")
_LEDGER_COLUMNS = {
    "run_id": "VARCHAR",
    "dataset": "VARCHAR",
    "target": "VARCHAR",
    "table": "VARCHAR",
    "source": "VARCHAR",
    "spec_sha256": "VARCHAR",
    "read": "BIGINT",
    "written": "BIGINT",
    "inserted": "BIGINT",
    "updated": "BIGINT",
    "unchanged": "BIGINT",
    "started_at": "TIMESTAMPTZ",
    "finished_at": "TIMESTAMPTZ",
    "status": "VARCHAR",
    "error": "VARCHAR",
}


def _arrow_to_duckdb(t: pa.DataType) -> str:
    if pa.types.is_decimal(t):
        return f"DECIMAL({t.precision},{t.scale})"
    mapping = {
        pa.int16(): "SMALLINT",
        pa.int32(): "INTEGER",
        pa.int64(): "BIGINT",
        pa.float32(): "FLOAT",
        pa.float64(): "DOUBLE",
        pa.bool_(): "BOOLEAN",
        pa.string(): "VARCHAR",
        pa.date32(): "DATE",
        pa.timestamp("us"): "TIMESTAMP",
        pa.timestamp("us", tz="UTC"): "TIMESTAMPTZ",
        pa.binary(): "BLOB",
    }
    return mapping.get(t, "VARCHAR")


class DuckDBWarehouse:
    """One DuckDB database file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.conn = duckdb.connect(str(path))
        except duckdb.IOException as e:
            # Another process holds the write lock on the file.
            raise TargetUnavailable(f"DuckDB {path}: {e}") from None
        self.conn.execute("SET TimeZone = 'UTC'")

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> DuckDBWarehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _columns(self, schema: str, name: str) -> dict[str, str]:
        rows = self.conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
            [schema, name],
        ).fetchall()
        return {r[0]: r[1] for r in rows}

    def _canonical(self, type_text: str) -> str:
        """DuckDB's own spelling of a type (TIMESTAMPTZ is TIMESTAMP WITH TIME ZONE)."""
        row = self.conn.execute(f"SELECT typeof(CAST(NULL AS {type_text}))").fetchone()
        assert row is not None
        return str(row[0])

    def provision(self, schema: str, name: str, arrow_schema: pa.Schema, keys: list[str]) -> None:
        """Create the raw table if missing; fail closed if it exists with other columns."""
        want = {f.name: _arrow_to_duckdb(f.type) for f in arrow_schema} | META_COLUMNS
        have = self._columns(schema, name)
        canonical = {c: self._canonical(t) for c, t in want.items()}
        if not have:
            cols = ", ".join(f"{ident(c)} {t}" for c, t in want.items())
            self.conn.execute(f"CREATE SCHEMA IF NOT EXISTS {ident(schema)}")
            self.conn.execute(
                f"CREATE TABLE {table(schema, name)} ({cols}, PRIMARY KEY ({idents(keys)}))"
            )
            return
        diff = [
            f"{c}: table has {have.get(c, 'nothing')}, expected {t}"
            for c, t in canonical.items()
            if have.get(c) != t
        ]
        diff += [f"{c}: in the table, not expected" for c in have if c not in want]
        if diff:
            raise TargetError(
                f"warehouse table {schema}.{name} differs from what the spec makes "
                f"(nothing was changed): " + "; ".join(diff)
            )

    def merge(
        self,
        schema: str,
        name: str,
        keys: list[str],
        batches: Iterable[pa.RecordBatch],
        *,
        source: str,
        run_id: str,
        expected_rows: int | None = None,
    ) -> LoadCounts:
        """Stage ``batches`` and merge them into the raw table, atomically."""
        target = table(schema, name)
        conn = self.conn
        conn.execute("BEGIN TRANSACTION")
        try:
            staged = 0
            stage_made = False
            for batch in batches:
                conn.register("dataferry_batch", batch)
                if not stage_made:
                    conn.execute(
                        "CREATE OR REPLACE TEMP TABLE dataferry_stage AS "
                        "SELECT * FROM dataferry_batch"
                    )
                    stage_made = True
                else:
                    conn.execute("INSERT INTO dataferry_stage SELECT * FROM dataferry_batch")
                conn.unregister("dataferry_batch")
                staged += batch.num_rows
            if not stage_made:
                if expected_rows:
                    raise TargetError(
                        f"{target}: reconciliation failed: the source counted {expected_rows} "
                        "rows, none arrived"
                    )
                conn.execute("COMMIT")
                return LoadCounts()
            counts = self._merge_stage(target, keys, source, run_id, staged, expected_rows)
            conn.execute("DROP TABLE dataferry_stage")
            conn.execute("COMMIT")
            return counts
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _merge_stage(
        self,
        target: str,
        keys: list[str],
        source: str,
        run_id: str,
        staged: int,
        expected_rows: int | None,
    ) -> LoadCounts:
        conn = self.conn
        dup = conn.execute(
            f"SELECT {idents(keys)}, count(*) FROM dataferry_stage GROUP BY ALL "
            f"HAVING count(*) > 1 LIMIT 1"
        ).fetchone()
        if dup:
            raise TargetError(f"{target}: the source holds key {dup[:-1]} {dup[-1]} times")
        cols = [r[0] for r in conn.execute("DESCRIBE dataferry_stage").fetchall()]
        values = [c for c in cols if c not in keys]
        on = " AND ".join(f"t.{ident(k)} = s.{ident(k)}" for k in keys)
        changed = " OR ".join(f"t.{ident(c)} IS DISTINCT FROM s.{ident(c)}" for c in values)
        row = conn.execute(
            f"SELECT count(*) FILTER (WHERE t.{ident(keys[0])} IS NULL), "
            f"count(*) FILTER (WHERE t.{ident(keys[0])} IS NOT NULL AND ({changed or 'false'})) "
            f"FROM dataferry_stage s LEFT JOIN {target} t ON {on}"
        ).fetchone()
        assert row is not None
        inserted, updated = int(row[0]), int(row[1])
        meta = ["_dataferry_loaded_at", "_dataferry_source", "_dataferry_run_id"]
        now = dt.datetime.now(dt.timezone.utc)
        meta_values = "?, ?, ?"
        update = ", ".join(
            [*(f"{ident(c)} = s.{ident(c)}" for c in values), *(f"{ident(m)} = ?" for m in meta)]
        )
        when_matched = f"WHEN MATCHED AND ({changed}) THEN UPDATE SET {update} " if values else ""
        params: list[Any] = [now, source, run_id] if values else []
        conn.execute(
            f"MERGE INTO {target} t USING dataferry_stage s ON {on} "
            f"{when_matched}"
            f"WHEN NOT MATCHED THEN INSERT ({idents(cols)}, {idents(meta)}) "
            f"VALUES ({idents(cols, prefix='s.')}, {meta_values})",
            [*params, now, source, run_id],
        )
        self._reconcile(target, on, cols, expected_rows)
        return LoadCounts(
            read=staged,
            written=inserted + updated,
            inserted=inserted,
            updated=updated,
            unchanged=staged - inserted - updated,
        )

    def _reconcile(self, target: str, on: str, cols: list[str], expected_rows: int | None) -> None:
        """Every staged source row must now be in the raw table with the same values.

        Row count and an order-independent checksum (the sum of each row's hash over its
        key and value columns), computed by DuckDB on both sides in the merge's own
        transaction: a difference rolls the merge back and fails the load.
        """
        src = self.conn.execute(
            f"SELECT count(*), coalesce(sum(hash({idents(cols, prefix='s.')})), 0) "
            "FROM dataferry_stage s"
        ).fetchone()
        raw = self.conn.execute(
            f"SELECT count(*), coalesce(sum(hash({idents(cols, prefix='t.')})), 0) "
            f"FROM {target} t JOIN dataferry_stage s ON {on}"
        ).fetchone()
        assert src is not None
        assert raw is not None
        if expected_rows is not None and src[0] != expected_rows:
            raise TargetError(
                f"{target}: reconciliation failed: the source counted {expected_rows} rows in "
                f"the snapshot it was read from, {src[0]} arrived; the merge was rolled back"
            )
        if tuple(src) != tuple(raw):
            raise TargetError(
                f"{target}: reconciliation failed: the source had {src[0]} rows (checksum "
                f"{src[1]}), the warehouse holds {raw[0]} of them (checksum {raw[1]}); "
                "the merge was rolled back"
            )

    def count(self, schema: str, name: str) -> int | None:
        if not self._columns(schema, name):
            return None
        row = self.conn.execute(f"SELECT count(*) FROM {table(schema, name)}").fetchone()
        assert row is not None
        return int(row[0])

    def record_load(self, record: LoadRecord) -> None:
        cols = ", ".join(f"{ident(c)} {t}" for c, t in _LEDGER_COLUMNS.items())
        self.conn.execute(f"CREATE SCHEMA IF NOT EXISTS {ident(_LEDGER[0])}")
        self.conn.execute(f"CREATE TABLE IF NOT EXISTS {table(*_LEDGER)} ({cols})")
        row = {k: v for k, v in record.flat().items() if k in _LEDGER_COLUMNS}
        self.conn.execute(
            f"INSERT INTO {table(*_LEDGER)} ({idents(list(row))}) "
            f"VALUES ({', '.join('?' * len(row))})",
            list(row.values()),
        )

    def last_loads(self) -> dict[str, dict[str, Any]]:
        if not self._columns(*_LEDGER):
            return {}
        cur = self.conn.execute(
            f"SELECT * FROM {table(*_LEDGER)} QUALIFY row_number() OVER "
            f"(PARTITION BY dataset ORDER BY started_at DESC) = 1"
        )
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
        return {r["dataset"]: r for r in rows}
