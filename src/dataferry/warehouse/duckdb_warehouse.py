"""DuckDB as the warehouse: raw tables merged on their keys, in one transaction per table.

Arrow batches are staged in a temporary table, checked for repeated keys (DuckDB's MERGE
would silently keep one where Snowflake raises), then merged: new keys inserted, changed
rows updated, identical rows left alone, so a second run changes nothing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa

from ..errors import CheckFailed, TargetError, TargetUnavailable
from ..ledger import LoadCounts, LoadRecord
from ..locks import wait_for_lock
from ..types import LogicalType
from . import DELETED_AT, reconciled
from .identifiers import ident, idents, table

if TYPE_CHECKING:
    from .models import PlannedModel

__all__ = ["META_COLUMNS", "STAGING_SUFFIX", "DuckDBWarehouse"]

META_COLUMNS = {
    "_dataferry_loaded_at": "TIMESTAMPTZ",
    "_dataferry_source": "VARCHAR",
    "_dataferry_run_id": "VARCHAR",
    # When a full read no longer found the row at the source (deletes: soft); else NULL.
    DELETED_AT: "TIMESTAMPTZ",
}
STAGING_SUFFIX = "__dataferry_build"
Deletes = str  # "soft" | "apply" | "ignore", as the spec says
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
    "deleted": "BIGINT",
    "started_at": "TIMESTAMPTZ",
    "finished_at": "TIMESTAMPTZ",
    "status": "VARCHAR",
    "error": "VARCHAR",
}


# DuckDB's message: ... Conflicting lock is held in /usr/bin/python3 (PID 1234) by user root.
_LOCK_HOLDER = re.compile(r"Conflicting lock is held in (.+?\(PID \d+\)(?: by user \S+?)?)[.\s]")


class DuckDBWarehouse:
    """One DuckDB database file."""

    dialect = "duckdb"
    staging_suffix = STAGING_SUFFIX

    def __init__(self, path: Path, memory_limit: str | None = None, wait_s: float = 0.0) -> None:
        self.path = path
        # What the last merge or model build checked before it committed, for the report.
        self.checks: list[str] = []
        path.parent.mkdir(parents=True, exist_ok=True)
        opened: list[duckdb.DuckDBPyConnection] = []

        def attempt() -> str | None:
            # DuckDB locks its file for one writing process; the operating system drops
            # the lock with its holder, so a killed run never leaves it behind.
            try:
                opened.append(duckdb.connect(str(path)))
            except duckdb.IOException as e:
                if "lock" not in str(e).lower():
                    raise TargetUnavailable(f"DuckDB {path}: {e}") from None
                held = _LOCK_HOLDER.search(str(e))
                return held.group(1) if held else str(e)
            return None

        wait_for_lock(attempt, f"the DuckDB warehouse {path}", wait_s)
        self.conn = opened[0]
        self.conn.execute("SET TimeZone = 'UTC'")
        if memory_limit:
            # Staging a large table must not grow with it: DuckDB spills past the limit.
            self.conn.execute("SET memory_limit = ?", [memory_limit])

    @property
    def display(self) -> str:
        return f"duckdb {self.path}"

    def close(self) -> None:
        self.conn.close()

    def _rollback(self) -> None:
        # An interrupted COMMIT may leave no transaction to roll back; an interrupt that
        # arrives between queries is kept by DuckDB for the next one, which may be this
        # ROLLBACK: it is sent again.
        for _ in range(3):
            try:
                self.conn.execute("ROLLBACK")
                return
            except duckdb.TransactionException:
                return
            except duckdb.InterruptException:
                continue

    def interrupt(self) -> None:
        """Stop the running query (called from another thread on a signal)."""
        self.conn.interrupt()

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

    def provision(
        self, schema: str, name: str, columns: dict[str, LogicalType], keys: list[str]
    ) -> None:
        """Create the raw table if missing; fail closed if it exists with other columns."""
        want = {c: t.duckdb() for c, t in columns.items()} | META_COLUMNS
        have = self._columns(schema, name)
        canonical = {c: self._canonical(t) for c, t in want.items()}
        if not have:
            cols = ", ".join(f"{ident(c)} {t}" for c, t in want.items())
            self.conn.execute(f"CREATE SCHEMA IF NOT EXISTS {ident(schema)}")
            # No PRIMARY KEY constraint: every merge checks its keys before writing, and
            # DuckDB's key index must stay in memory and slows every load.
            self.conn.execute(f"CREATE TABLE {table(schema, name)} ({cols})")
            return
        if DELETED_AT not in have:
            # Raw tables made before deletions were tracked: the one change made in place,
            # additive and NULL for every existing row.
            self.conn.execute(
                f"ALTER TABLE {table(schema, name)} ADD COLUMN {ident(DELETED_AT)} TIMESTAMPTZ"
            )
            have[DELETED_AT] = canonical[DELETED_AT]
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
        full: bool = True,
        deletes: Deletes = "soft",
        keys_unique: bool = False,
    ) -> LoadCounts:
        """Stage ``batches`` and merge them into the raw table, atomically.

        ``full``: the batches are the whole source table, so a raw row whose key is not
        among them was deleted at the source: ``deletes`` says whether to delete it too,
        mark it (``_dataferry_deleted_at``) or leave it. ``keys_unique``: the source
        guarantees that no key repeats (a primary key read in one snapshot), so the
        batches are not checked for repeated keys; the row count still is.
        """
        target = table(schema, name)
        conn = self.conn
        self.checks = []
        # BEGIN inside the try: a signal handled right after it returns must still find
        # the rollback (else the ledger's record of the interruption would be written in
        # the open transaction, and lost with it).
        try:
            conn.execute("BEGIN TRANSACTION")
            if self._is_empty(target):
                counts = self._first_load(
                    schema, name, keys, batches, source, run_id, expected_rows, keys_unique
                )
                conn.execute("COMMIT")
                return counts
            # The stage has the raw table's own column types, so the checksums compare
            # like with like; an empty source still gets a stage (and its deletions).
            conn.execute(
                f"CREATE OR REPLACE TEMP TABLE dataferry_stage AS SELECT * EXCLUDE "
                f"({idents(list(META_COLUMNS))}) FROM {target} LIMIT 0"
            )
            staged = self._insert_stream(
                "INSERT INTO dataferry_stage BY NAME SELECT * FROM dataferry_batches", batches
            )
            counts = self._merge_stage(
                target,
                keys,
                source,
                run_id,
                staged,
                expected_rows,
                keys_unique,
                deletes if full else "ignore",
            )
            conn.execute("DROP TABLE dataferry_stage")
            conn.execute("COMMIT")
            return counts
        except BaseException:
            self._rollback()
            raise

    def _insert_stream(
        self, sql: str, batches: Iterable[pa.RecordBatch], params: list[Any] | None = None
    ) -> int:
        """Run ``sql``, which reads ``dataferry_batches``, over all the batches as one Arrow
        stream; return the rows it read. One statement, not one per batch: DuckDB keeps
        every batch it was handed in a transaction alive until the commit (its strings
        point into them), which grew memory with the table; a stream is read and let go.
        """
        it = iter(batches)
        first = next(it, None)
        if first is None:
            return 0
        rows = 0
        failure: list[BaseException] = []

        def feed() -> Iterator[pa.RecordBatch]:
            nonlocal rows
            try:
                for batch in itertools.chain([first], it):
                    rows += batch.num_rows
                    yield batch
            except BaseException as e:
                failure.append(e)  # DuckDB reports it as its own error: keep ours
                raise

        reader = pa.RecordBatchReader.from_batches(first.schema, feed())
        self.conn.register("dataferry_batches", reader)
        try:
            self.conn.execute(sql, params or [])
        except duckdb.Error as e:
            if failure:
                raise failure[0] from None
            raise TargetError(f"warehouse: {e}") from None
        finally:
            # In an aborted transaction DuckDB refuses even this; the caller rolls back,
            # and the next register of the name replaces the view.
            with contextlib.suppress(duckdb.TransactionException):
                self.conn.unregister("dataferry_batches")
            # A source left suspended would hold its database connection mid-COPY.
            close = getattr(it, "close", None)
            if close is not None:
                close()
        return rows

    def _is_empty(self, target: str) -> bool:
        return self.conn.execute(f"SELECT 1 FROM {target} LIMIT 1").fetchone() is None

    def _first_load(
        self,
        schema: str,
        name: str,
        keys: list[str],
        batches: Iterable[pa.RecordBatch],
        source: str,
        run_id: str,
        expected_rows: int | None,
        keys_unique: bool,
    ) -> LoadCounts:
        """Into an empty raw table the batches go straight in, with no stage: nothing can
        match, change or be deleted, and a stage would double the memory and the writes.
        Keys and counts are still checked before the transaction commits."""
        meta = ["_dataferry_loaded_at", "_dataferry_source", "_dataferry_run_id"]
        now = dt.datetime.now(dt.timezone.utc)
        target = table(schema, name)
        data = [c for c in self._columns(schema, name) if c not in META_COLUMNS]
        loaded = self._insert_stream(
            f"INSERT INTO {target} ({idents(data)}, {idents(meta)}) "
            f"SELECT {idents(data)}, ?, ?, ? FROM dataferry_batches",
            batches,
            [now, source, run_id],
        )
        if not keys_unique:
            self._check_keys(target, target, keys)
        row = self.conn.execute(f"SELECT count(*) FROM {target}").fetchone()
        assert row is not None
        if (expected_rows is not None and loaded != expected_rows) or row[0] != loaded:
            raise CheckFailed(
                f"{target}: reconciliation failed: the source counted {expected_rows} rows in "
                f"the snapshot it was read from, {loaded} arrived and {row[0]} were written; "
                "the load was rolled back"
            )
        counted = "" if expected_rows is None else f"the source counted {expected_rows:,}, "
        self.checks.append(f"rows: {counted}{loaded:,} arrived, the raw table holds {row[0]:,}")
        return LoadCounts(read=loaded, written=loaded, inserted=loaded)

    def _check_keys(self, target: str, rows: str, keys: list[str]) -> None:
        """Fail, naming a key, when ``rows`` repeat one: DuckDB's MERGE would silently keep
        one of them."""
        dup = self.conn.execute(
            f"SELECT {idents(keys)}, count(*) FROM {rows} GROUP BY ALL HAVING count(*) > 1 LIMIT 1"
        ).fetchone()
        if dup:
            raise TargetError(f"{target}: the source holds key {dup[:-1]} {dup[-1]} times")

    def _merge_stage(
        self,
        target: str,
        keys: list[str],
        source: str,
        run_id: str,
        staged: int,
        expected_rows: int | None,
        keys_unique: bool,
        deletes: Deletes,
    ) -> LoadCounts:
        """Merge the stage into ``target``: new keys inserted, changed rows updated and,
        unless ``deletes`` is ignore, raw rows whose key is not staged marked or deleted.
        One query counts all three, one MERGE writes them."""
        conn = self.conn
        if not keys_unique:
            self._check_keys(target, "dataferry_stage", keys)
        cols = [r[0] for r in conn.execute("DESCRIBE dataferry_stage").fetchall()]
        values = [c for c in cols if c not in keys]
        on = " AND ".join(f"t.{ident(k)} = s.{ident(k)}" for k in keys)
        # A row back at the source after being marked deleted counts as changed.
        changed = " OR ".join(
            [
                *(f"t.{ident(c)} IS DISTINCT FROM s.{ident(c)}" for c in values),
                f"t.{ident(DELETED_AT)} IS NOT NULL",
            ]
        )
        # A raw row with no staged key is gone from the source; soft deletion marks it
        # once, so a row marked earlier is not counted (or stamped) again.
        gone = "" if deletes == "apply" else f" AND t.{ident(DELETED_AT)} IS NULL"
        s_key, t_key = f"s.{ident(keys[0])}", f"t.{ident(keys[0])}"
        row = conn.execute(
            f"SELECT count(*) FILTER (WHERE {t_key} IS NULL), "
            f"count(*) FILTER (WHERE {s_key} IS NOT NULL AND {t_key} IS NOT NULL "
            f"AND ({changed})), "
            f"count(*) FILTER (WHERE {s_key} IS NULL{gone}) "
            f"FROM dataferry_stage s {'LEFT' if deletes == 'ignore' else 'FULL'} "
            f"JOIN {target} t ON {on}"
        ).fetchone()
        assert row is not None
        inserted, updated, deleted = int(row[0]), int(row[1]), int(row[2])
        meta = ["_dataferry_loaded_at", "_dataferry_source", "_dataferry_run_id"]
        now = dt.datetime.now(dt.timezone.utc)
        if inserted == staged and not deleted:  # nothing to match or remove: an insert
            conn.execute(
                f"INSERT INTO {target} ({idents(cols)}, {idents(meta)}) "
                f"SELECT {idents(cols)}, ?, ?, ? FROM dataferry_stage",
                [now, source, run_id],
            )
        elif inserted or updated or deleted:
            update = ", ".join(
                [
                    *(f"{ident(c)} = s.{ident(c)}" for c in values),
                    *(f"{ident(m)} = ?" for m in meta),
                    f"{ident(DELETED_AT)} = NULL",
                ]
            )
            params: list[Any] = [now, source, run_id, now, source, run_id]
            when_gone = ""
            if deletes == "apply":
                when_gone = " WHEN NOT MATCHED BY SOURCE THEN DELETE"
            elif deletes == "soft":
                when_gone = (
                    f" WHEN NOT MATCHED BY SOURCE{gone} THEN UPDATE "
                    f"SET {ident(DELETED_AT)} = ?, {ident('_dataferry_run_id')} = ?"
                )
                params += [now, run_id]
            conn.execute(
                f"MERGE INTO {target} t USING dataferry_stage s ON {on} "
                f"WHEN MATCHED AND ({changed}) THEN UPDATE SET {update} "
                f"WHEN NOT MATCHED THEN INSERT ({idents(cols)}, {idents(meta)}) "
                f"VALUES ({idents(cols, prefix='s.')}, ?, ?, ?){when_gone}",
                params,
            )
        self._reconcile(target, on, cols, expected_rows)
        return LoadCounts(
            read=staged,
            written=inserted + updated,
            inserted=inserted,
            updated=updated,
            unchanged=staged - inserted - updated,
            deleted=deleted,
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
            raise CheckFailed(
                f"{target}: reconciliation failed: the source counted {expected_rows} rows in "
                f"the snapshot it was read from, {src[0]} arrived; the merge was rolled back"
            )
        if tuple(src) != tuple(raw):
            raise CheckFailed(
                f"{target}: reconciliation failed: the source had {src[0]} rows (checksum "
                f"{src[1]}), the warehouse holds {raw[0]} of them (checksum {raw[1]}); "
                "the merge was rolled back"
            )
        self.checks.append(reconciled(expected_rows, src, raw))

    def watermark(self, schema: str, name: str, column: str) -> Any:
        """The highest ``column`` value in a raw table: where an incremental read resumes.
        Kept in the data itself, so it cannot drift from what the table holds."""
        if not self._columns(schema, name):
            return None
        row = self.conn.execute(
            f"SELECT max({ident(column)}) FROM {table(schema, name)}"
        ).fetchone()
        return row[0] if row else None

    def fingerprint(self, schema: str, name: str) -> str | None:
        """A raw table's state, cheap to take: rows, latest load, rows marked deleted.
        Any merge that changes the table changes it; None when the table does not exist."""
        if not self._columns(schema, name):
            return None
        row = self.conn.execute(
            f"SELECT count(*), max({ident('_dataferry_loaded_at')}), "
            f"count({ident(DELETED_AT)}), max({ident(DELETED_AT)}) FROM {table(schema, name)}"
        ).fetchone()
        return repr(row)

    def build_model(self, model: PlannedModel) -> int:
        """Build a model into a staging table, check it, then let it replace the previous
        build, all in one transaction: a failed check leaves the old table as it was."""
        final = table(model.schema, model.name)
        staged = table(model.schema, model.name + STAGING_SUFFIX)
        conn = self.conn
        self.checks = []
        try:
            conn.execute("BEGIN TRANSACTION")  # inside the try: see merge
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {ident(model.schema)}")
            conn.execute(f"CREATE OR REPLACE TABLE {staged} AS {model.sql}")
            failures = []
            for check in model.checks:
                row = conn.execute(check.sql).fetchone()
                if row and row[0]:
                    failures.append(f"{check.description} ({row[0]} rows)")
            if failures:
                raise CheckFailed(
                    f"model {model.name} ({model.file}): "
                    + "; ".join(failures)
                    + f"; {final} was left as it was"
                )
            self.checks = [f"{c.description}: 0 rows" for c in model.checks]
            conn.execute(f"DROP TABLE IF EXISTS {final}")
            conn.execute(f"ALTER TABLE {staged} RENAME TO {ident(model.name)}")
            row = conn.execute(f"SELECT count(*) FROM {final}").fetchone()
            conn.execute("COMMIT")
        except duckdb.Error as e:
            self._rollback()
            raise TargetError(f"model {model.name} ({model.file}): {e}") from None
        except BaseException:
            self._rollback()
            raise
        assert row is not None
        return int(row[0])

    def count(self, schema: str, name: str) -> int | None:
        if not self._columns(schema, name):
            return None
        row = self.conn.execute(f"SELECT count(*) FROM {table(schema, name)}").fetchone()
        assert row is not None
        return int(row[0])

    def self_test(self) -> bool:
        """Create a table in the file, write and read it, in a transaction rolled back."""
        conn = self.conn
        try:
            conn.execute("BEGIN TRANSACTION")  # inside the try: see merge
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {ident(_LEDGER[0])}")
            test = table(_LEDGER[0], "_doctor")
            conn.execute(f"CREATE TABLE {test} (n INTEGER)")
            conn.execute(f"INSERT INTO {test} VALUES (1)")
            return conn.execute(f"SELECT n FROM {test}").fetchone() == (1,)
        except duckdb.Error as e:
            raise TargetError(f"{self.display}: {e}") from None
        finally:
            self._rollback()

    def record_load(self, record: LoadRecord) -> None:
        try:
            self._record_load(record)
        except (duckdb.TransactionException, duckdb.InterruptException):
            # A signal's interrupt can leave the failed load's transaction open, or land on
            # this very statement: the ledger row is written after a clean rollback.
            self._rollback()
            self._record_load(record)

    def _record_load(self, record: LoadRecord) -> None:
        cols = ", ".join(f"{ident(c)} {t}" for c, t in _LEDGER_COLUMNS.items())
        self.conn.execute(f"CREATE SCHEMA IF NOT EXISTS {ident(_LEDGER[0])}")
        self.conn.execute(f"CREATE TABLE IF NOT EXISTS {table(*_LEDGER)} ({cols})")
        # Ledgers written before a column existed get it (NULL for their rows).
        have = self._columns(*_LEDGER)
        for c, t in _LEDGER_COLUMNS.items():
            if c not in have:
                self.conn.execute(f"ALTER TABLE {table(*_LEDGER)} ADD COLUMN {ident(c)} {t}")
        row = {k: v for k, v in record.flat().items() if k in _LEDGER_COLUMNS}
        self.conn.execute(
            f"INSERT INTO {table(*_LEDGER)} ({idents(list(row))}) "
            f"VALUES ({', '.join('?' * len(row))})",
            list(row.values()),
        )

    def last_loads(self, status: str | None = None) -> dict[str, dict[str, Any]]:
        """The latest ledger row per dataset (of that ``status`` when given)."""
        where = "WHERE status = ?" if status else ""
        rows = self._ledger_rows(
            f"SELECT * FROM {table(*_LEDGER)} {where} QUALIFY row_number() OVER "
            f"(PARTITION BY dataset ORDER BY started_at DESC) = 1",
            [status] if status else [],
        )
        return {r["dataset"]: r for r in rows}

    def history(self, limit: int, dataset: str | None = None) -> list[dict[str, Any]]:
        """The ledger's rows, newest first (of one dataset when given)."""
        where = "WHERE dataset = ?" if dataset else ""
        return self._ledger_rows(
            f"SELECT * FROM {table(*_LEDGER)} {where} ORDER BY started_at DESC LIMIT ?",
            [dataset, limit] if dataset else [limit],
        )

    def _ledger_rows(self, query: str, params: list[Any]) -> list[dict[str, Any]]:
        if not self._columns(*_LEDGER):
            return []
        cur = self.conn.execute(query, params)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
