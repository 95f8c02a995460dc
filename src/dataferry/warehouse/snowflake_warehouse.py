"""Snowflake as the warehouse: Parquet files PUT to a stage, COPY INTO a staging table,
then applied to the raw table in one explicit transaction.

The bulk path is Snowflake's own (PUT + COPY INTO, Parquet keeping decimals exact); no
row is inserted from Python. The staging table is checked for repeated keys (Snowflake's
MERGE would raise on them mid-statement), then one transaction updates the changed rows,
inserts the new ones, reconciles, and marks or deletes the rows gone from the source.
That transaction is an UPDATE ... FROM and an INSERT ... WHERE NOT EXISTS rather than a
MERGE: the same set-based work, and the form the Snowflake emulator used in the tests
(fakesnow) can run inside an explicit transaction, so what is tested is what runs.

Connector sessions autocommit, and DDL commits any open transaction: every CREATE and
COPY happens before BEGIN, only DML inside it.
"""

from __future__ import annotations

import datetime as dt
import re
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq
import snowflake.connector  # the optional extra; an ImportError says to install it

from ..connections import SnowflakeTarget
from ..errors import CheckFailed, TargetError, TargetUnavailable
from ..ledger import LoadCounts, LoadRecord
from ..types import LogicalType
from . import DELETED_AT, reconciled
from . import snowflake_export as sfx
from .identifiers import ident, idents, table

if TYPE_CHECKING:
    from .models import PlannedModel

__all__ = ["SESSION_SCHEMA", "ExportFiles", "SnowflakeWarehouse"]

DIALECT = "snowflake"
SESSION_SCHEMA = "PUBLIC"  # where the stage lives; deploy/snowflake grants on it
STAGING_SUFFIX = "__dataferry_build"
_STAGE = "DATAFERRY_FILES"  # a temporary stage: it goes with the session
_EXPORT_STAGE = "DATAFERRY_EXPORT"  # the same, on the storage integration
_STAGE_PATH = re.compile(r"[A-Za-z0-9_./-]+/")  # AWSDynamoDB/<export id>/data/
_FILE_ROWS = 500_000  # rows per Parquet file: COPY INTO loads the files in parallel
META_COLUMNS = {
    "_dataferry_loaded_at": "TIMESTAMP_TZ",
    "_dataferry_source": "VARCHAR",
    "_dataferry_run_id": "VARCHAR",
    DELETED_AT: "TIMESTAMP_TZ",
}
_LEDGER = ("dataferry", "loads")
_LEDGER_COLUMNS = {
    "run_id": "VARCHAR",
    "dataset": "VARCHAR",
    "target": "VARCHAR",
    "table": "VARCHAR",
    "source": "VARCHAR",
    "spec_sha256": "VARCHAR",
    "read": "NUMBER(38,0)",
    "written": "NUMBER(38,0)",
    "inserted": "NUMBER(38,0)",
    "updated": "NUMBER(38,0)",
    "unchanged": "NUMBER(38,0)",
    "deleted": "NUMBER(38,0)",
    "started_at": "TIMESTAMP_TZ",
    "finished_at": "TIMESTAMP_TZ",
    "status": "VARCHAR",
    "error": "VARCHAR",
}


@dataclass(frozen=True)
class ExportFiles:
    """Where a finished DynamoDB export's data files are, as an external stage sees them:
    ``url`` the stage's location, ``folders`` the data folders under it; ``extras`` the
    raw table's column for undeclared attributes."""

    table: str  # the DynamoDB table, for messages
    url: str
    folders: list[str]
    integration: str
    item_count: int
    extras: str


@dataclass(frozen=True)
class Staged:
    table: str
    rows: int


def _bound(fragment: sfx.Fragment) -> tuple[str, tuple[Any, ...]]:
    return fragment.sql, tuple(fragment.params)


def _canonical(type_text: str) -> str:
    """One spelling per type, as information_schema and our DDL may differ in it."""
    t = type_text.upper().replace(" ", "")
    if t.startswith(("VARCHAR", "TEXT", "STRING")):
        return "TEXT"
    if t in ("FLOAT", "DOUBLE", "REAL", "FLOAT8"):
        return "FLOAT"
    return t


class SnowflakeWarehouse:
    """One Snowflake database, through the official connector."""

    dialect = DIALECT
    staging_suffix = STAGING_SUFFIX

    def __init__(self, target: SnowflakeTarget) -> None:
        self.target = target
        # What the last merge or model build checked before it committed, for the report.
        self.checks: list[str] = []
        params = dict(target.params)
        database = params.pop("database", None)
        warehouse = params.pop("warehouse", None)
        self.schema = params.pop("schema", None) or SESSION_SCHEMA
        if not database:
            raise TargetError(
                "Snowflake: no database given (warehouse.snowflake.database or SNOWFLAKE_DATABASE)"
            )
        try:
            # attribute access at call time: the tests' emulator patches this function
            self.conn = snowflake.connector.connect(**params)
        except snowflake.connector.errors.Error as e:
            raise TargetUnavailable(f"{target.display}: {e.msg or e}") from None
        self._stage_made = False
        self._setup(warehouse, database)

    def _setup(self, warehouse: str | None, database: str) -> None:
        """Use the warehouse, database and schema, creating each that is missing, as the
        original project did (it needs CREATE privileges only the first time)."""
        if warehouse:
            try:
                self._exec(f"USE WAREHOUSE {ident(warehouse)}")
            except snowflake.connector.errors.ProgrammingError:
                self._exec(
                    f"CREATE WAREHOUSE IF NOT EXISTS {ident(warehouse)} WITH "
                    "WAREHOUSE_SIZE = XSMALL AUTO_SUSPEND = 60 AUTO_RESUME = TRUE "
                    "INITIALLY_SUSPENDED = TRUE"
                )
                self._exec(f"USE WAREHOUSE {ident(warehouse)}")
        # USE first: a role that may not create databases (deploy/snowflake makes one
        # that cannot) still works with one that exists.
        for kind, name in (("DATABASE", database), ("SCHEMA", self.schema)):
            try:
                self._exec(f"USE {kind} {ident(name)}")
            except snowflake.connector.errors.ProgrammingError:
                self._exec(f"CREATE {kind} IF NOT EXISTS {ident(name)}")
                self._exec(f"USE {kind} {ident(name)}")
        self.database = database

    @property
    def display(self) -> str:
        return self.target.display

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> SnowflakeWarehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _exec(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        try:
            cur = self.conn.cursor()
            try:
                cur.execute(sql, params)
                return list(cur.fetchall()) if cur.description else []
            finally:
                cur.close()
        except snowflake.connector.errors.ProgrammingError:
            raise
        except snowflake.connector.errors.Error as e:
            raise TargetUnavailable(f"{self.target.display}: {e.msg or e}") from None

    def _create_schema(self, name: str) -> None:
        # CREATE SCHEMA also makes the new schema the session's current one: go back, so
        # the session's stage stays where unqualified names find it.
        self._exec(f"CREATE SCHEMA IF NOT EXISTS {ident(name)}")
        self._exec(f"USE SCHEMA {ident(self.schema)}")

    def _one(self, sql: str, params: Any = None) -> tuple[Any, ...]:
        rows = self._exec(sql, params)
        assert rows
        return rows[0]

    @contextmanager
    def _translated(self, what: str) -> Iterator[None]:
        try:
            yield
        except snowflake.connector.errors.ProgrammingError as e:
            raise TargetError(f"Snowflake {what}: {e.msg or e}") from None

    def _columns(self, schema: str, name: str) -> dict[str, str]:
        rows = self._exec(
            "SELECT column_name, data_type, numeric_precision, numeric_scale "
            "FROM information_schema.columns WHERE table_schema = %s AND table_name = %s "
            "ORDER BY ordinal_position",
            (schema, name),
        )
        out = {}
        for col, dtype, precision, scale in rows:
            t = str(dtype).upper()
            if t in ("NUMBER", "DECIMAL", "NUMERIC") and precision is not None:
                t = f"NUMBER({precision},{scale or 0})"
            out[col] = _canonical(t)
        return out

    # ---- raw tables

    def provision(
        self, schema: str, name: str, columns: dict[str, LogicalType], keys: list[str]
    ) -> None:
        """Create the raw table if missing; fail closed if it exists with other columns."""
        want = {c: t.snowflake() for c, t in columns.items()} | META_COLUMNS
        with self._translated(f"table {schema}.{name}"):
            have = self._columns(schema, name)
            if not have:
                cols = ", ".join(f"{ident(c)} {t}" for c, t in want.items())
                self._create_schema(schema)
                self._exec(
                    f"CREATE TABLE IF NOT EXISTS {table(schema, name)} ({cols}, "
                    f"PRIMARY KEY ({idents(keys)}))"
                )
                return
            if DELETED_AT not in have:
                self._exec(
                    f"ALTER TABLE {table(schema, name)} ADD COLUMN {ident(DELETED_AT)} TIMESTAMP_TZ"
                )
                have[DELETED_AT] = "TIMESTAMP_TZ"
        diff = [
            f"{c}: table has {have.get(c, 'nothing')}, expected {t}"
            for c, t in want.items()
            if have.get(c) != _canonical(t)
        ]
        diff += [f"{c}: in the table, not expected" for c in have if c not in want]
        if diff:
            raise TargetError(
                f"warehouse table {schema}.{name} differs from what the spec makes "
                f"(nothing was changed): " + "; ".join(diff)
            )

    def _upload(self, batches: Iterable[pa.RecordBatch], prefix: str) -> tuple[int, bool]:
        """PUT the batches as Parquet files under ``prefix`` in the session's stage;
        return (rows, any file)."""
        if not self._stage_made:
            self._exec(f"CREATE TEMPORARY STAGE IF NOT EXISTS {_STAGE}")
            self._stage_made = True
        rows = 0
        files = 0
        with tempfile.TemporaryDirectory(prefix="dataferry-") as tmp:
            writer: pq.ParquetWriter | None = None
            in_file = 0

            def put() -> None:
                nonlocal writer, in_file, files
                if writer is None:
                    return
                writer.close()
                path = Path(tmp) / f"part-{files:05d}.parquet"
                self._exec(f"PUT 'file://{path.as_posix()}' @{_STAGE}/{prefix} AUTO_COMPRESS=FALSE")
                path.unlink()
                files += 1
                writer, in_file = None, 0

            it = iter(batches)
            try:
                for batch in it:
                    if writer is None:
                        path = Path(tmp) / f"part-{files:05d}.parquet"
                        writer = pq.ParquetWriter(path, batch.schema)
                    writer.write_batch(batch)
                    rows += batch.num_rows
                    in_file += batch.num_rows
                    if in_file >= _FILE_ROWS:
                        put()
                put()
            finally:
                # A source left suspended would hold its database connection mid-COPY.
                close = getattr(it, "close", None)
                if close is not None:
                    close()
        return rows, files > 0

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
        deletes: str = "soft",
        keys_unique: bool = False,
    ) -> LoadCounts:
        """Stage ``batches`` (PUT + COPY INTO) and apply them to the raw table in one
        transaction; see DuckDBWarehouse.merge for ``full``, ``deletes`` and
        ``keys_unique``."""

        def fill(tag: str, cols: list[str], have: dict[str, str], scratch: list[str]) -> Staged:
            variant = [c for c in cols if have[c] == "VARIANT"]
            landing = table(self.schema, f"dataferry_landing_{tag}")
            # Parquet text lands in VARCHAR; JSON columns are parsed into VARIANT after.
            land_types = {c: "VARCHAR" if c in variant else have[c] for c in cols}
            ddl = ", ".join(f"{ident(c)} {t}" for c, t in land_types.items())
            scratch.append(f"DROP TABLE IF EXISTS {landing}")
            self._exec(f"CREATE OR REPLACE TABLE {landing} ({ddl})")
            staged, any_file = self._upload(batches, tag)
            if any_file:
                self._exec(
                    f"COPY INTO {landing} FROM @{_STAGE}/{tag}/ "
                    "FILE_FORMAT = (TYPE = PARQUET) MATCH_BY_COLUMN_NAME = CASE_INSENSITIVE"
                )
            if not variant:
                return Staged(landing, staged)
            stage = self._stage_table(tag, cols, have, scratch)
            select = ", ".join(
                f"PARSE_JSON({ident(c)})" if c in variant else ident(c) for c in cols
            )
            self._exec(f"INSERT INTO {stage} ({idents(cols)}) SELECT {select} FROM {landing}")
            return Staged(stage, staged)

        return self._merge(
            schema,
            name,
            keys,
            fill,
            source=source,
            run_id=run_id,
            expected_rows=expected_rows,
            full=full,
            deletes=deletes,
            keys_unique=keys_unique,
        )

    def merge_export(
        self,
        schema: str,
        name: str,
        keys: list[str],
        columns: dict[str, LogicalType],
        export: ExportFiles,
        *,
        source: str,
        run_id: str,
        deletes: str = "soft",
    ) -> LoadCounts:
        """Copy a DynamoDB export into the raw table from S3, through a temporary external
        stage on the spec's storage integration: the items never pass through this
        machine. They are typed in SQL as the scan path types them (snowflake_export.py),
        then merged and reconciled as ``merge`` does, against the export's own count."""

        def fill(tag: str, cols: list[str], have: dict[str, str], scratch: list[str]) -> Staged:
            landing = table(self.schema, f"dataferry_landing_{tag}")
            # One temporary stage per session, pointed at each export in turn: it goes
            # with the session, so nothing is left behind when a run is killed.
            self._exec(
                f"CREATE OR REPLACE TEMPORARY STAGE {_EXPORT_STAGE} URL = %s "
                f"STORAGE_INTEGRATION = {ident(export.integration)}",
                (export.url,),
            )
            scratch.append(f"DROP TABLE IF EXISTS {landing}")
            self._exec(f"CREATE OR REPLACE TABLE {landing} (item VARIANT)")
            for folder in export.folders:
                if not _STAGE_PATH.fullmatch(folder):  # it goes into the SQL as a path
                    raise TargetError(
                        f"DynamoDB table {export.table}: the export wrote to {folder!r} under "
                        f"{export.url}, not a folder a stage path can name"
                    )
                # FORCE: Snowflake skips files it remembers loading into a table of this
                # name; each landing table is new, but its rows must not depend on that.
                self._exec(
                    f"COPY INTO {landing} FROM @{_EXPORT_STAGE}/{folder} "
                    "FILE_FORMAT = (TYPE = JSON COMPRESSION = GZIP) FORCE = TRUE"
                )
            (staged,) = self._one(f"SELECT COUNT(*) FROM {landing}")
            declared = [c for c in cols if c != export.extras]
            typed = {c: sfx.typed_attribute(c, columns[c]) for c in declared}
            self._refuse_bad_values(landing, export.table, columns, typed)
            extras = export.extras in cols and int(
                self._one(*_bound(sfx.has_extras(landing, declared)))[0]
            )
            if extras or any(t.uses_udf for t in typed.values()):
                for create in sfx.udf_sql():
                    self._exec(create)
            everything_else = sfx.extras_value(declared) if extras else sfx.Fragment("NULL")
            select = sfx.Fragment.join(
                ", ", [typed[c].value if c in typed else everything_else for c in cols]
            )
            stage = self._stage_table(tag, cols, have, scratch)
            self._exec(
                f"INSERT INTO {stage} ({idents(cols)}) SELECT {select.sql} FROM {landing}",
                tuple(select.params),
            )
            return Staged(stage, int(staged))

        return self._merge(
            schema,
            name,
            keys,
            fill,
            source=source,
            run_id=run_id,
            expected_rows=export.item_count,
            full=True,
            deletes=deletes,
            keys_unique=False,
        )

    def _refuse_bad_values(
        self,
        landing: str,
        source_table: str,
        columns: dict[str, LogicalType],
        typed: dict[str, sfx.TypedAttribute],
    ) -> None:
        """One pass counting each column's refused values; the first column with any
        names one of them, as the Python reader would (TargetError)."""
        checked = {c: t.bad for c, t in typed.items() if t.bad is not None}
        if not checked:
            return
        counts = sfx.Fragment.join(", ", list(checked.values()), wrap="COUNT_IF({})")
        found = self._one(f"SELECT {counts.sql} FROM {landing}", tuple(counts.params))
        for (column, bad), n in zip(checked.items(), found, strict=True):
            if not n:
                continue
            example = sfx.Fragment("SELECT TO_JSON({a}) FROM " + landing + " WHERE {bad} LIMIT 1")
            example = example.format(a=sfx.Fragment(f"{sfx.ITEM}[%s]", [column]), bad=bad)
            (value,) = self._one(example.sql, tuple(example.params))
            raise TargetError(
                f"DynamoDB table {source_table}: attribute {column} holds {str(value)[:80]}, "
                f"not {columns[column]} ({'1 item' if n == 1 else f'{int(n):,} items'} like "
                "it); nothing was merged"
            )

    def _stage_table(
        self, tag: str, cols: list[str], have: dict[str, str], scratch: list[str]
    ) -> str:
        """An empty table shaped as the raw table's data columns."""
        stage = table(self.schema, f"dataferry_stage_{tag}")
        scratch.append(f"DROP TABLE IF EXISTS {stage}")
        ddl = ", ".join(f"{ident(c)} {have[c]}" for c in cols)
        self._exec(f"CREATE OR REPLACE TABLE {stage} ({ddl})")
        return stage

    def _merge(
        self,
        schema: str,
        name: str,
        keys: list[str],
        fill: Callable[[str, list[str], dict[str, str], list[str]], Staged],
        *,
        source: str,
        run_id: str,
        expected_rows: int | None,
        full: bool,
        deletes: str,
        keys_unique: bool,
    ) -> LoadCounts:
        """``fill`` stages the source's rows (DDL and COPY, before the transaction);
        then one transaction applies them, reconciles, and handles deletions. Every
        scratch object ``fill`` names is dropped whatever happens."""
        target = table(schema, name)
        self.checks = []
        tag = f"{run_id}_{uuid.uuid4().hex[:8]}"
        have = self._columns(schema, name)
        cols = [c for c in have if c not in META_COLUMNS]
        scratch: list[str] = []
        with self._translated(f"table {schema}.{name}"):
            try:
                staged = fill(tag, cols, have, scratch)
                if not keys_unique:
                    self._check_keys(target, staged.table, keys)
                counts = self._apply(target, staged.table, keys, cols, source, run_id, staged.rows)
                self._reconcile(target, staged.table, keys, cols, expected_rows)
                if full and deletes != "ignore":
                    counts.deleted = self._deletions(target, staged.table, keys, deletes, run_id)
                self._exec("COMMIT")
                return counts
            except BaseException:
                self._exec("ROLLBACK")
                raise
            finally:
                for drop in reversed(scratch):
                    self._exec(drop)

    def _apply(
        self,
        target: str,
        stage: str,
        keys: list[str],
        cols: list[str],
        source: str,
        run_id: str,
        staged: int,
    ) -> LoadCounts:
        values = [c for c in cols if c not in keys]
        on = " AND ".join(f"t.{ident(k)} = s.{ident(k)}" for k in keys)
        changed = " OR ".join(
            [
                *(f"t.{ident(c)} IS DISTINCT FROM s.{ident(c)}" for c in values),
                f"t.{ident(DELETED_AT)} IS NOT NULL",
            ]
        )
        inserted, updated = self._one(
            f"SELECT COUNT_IF(t.{ident(keys[0])} IS NULL), "
            f"COUNT_IF(t.{ident(keys[0])} IS NOT NULL AND ({changed})) "
            f"FROM {stage} AS s LEFT JOIN {target} AS t ON {on}"
        )
        now = dt.datetime.now(dt.timezone.utc)
        self._exec("BEGIN")
        sets = ", ".join(
            [
                *(f"{ident(c)} = s.{ident(c)}" for c in values),
                f"{ident('_dataferry_loaded_at')} = %s",
                f"{ident('_dataferry_source')} = %s",
                f"{ident('_dataferry_run_id')} = %s",
                f"{ident(DELETED_AT)} = NULL",
            ]
        )
        self._exec(
            f"UPDATE {target} AS t SET {sets} FROM {stage} AS s WHERE {on} AND ({changed})",
            (now, source, run_id),
        )
        meta = ["_dataferry_loaded_at", "_dataferry_source", "_dataferry_run_id"]
        self._exec(
            f"INSERT INTO {target} ({idents(cols)}, {idents(meta)}) "
            f"SELECT {idents(cols, prefix='s.')}, %s, %s, %s FROM {stage} AS s "
            f"WHERE NOT EXISTS (SELECT 1 FROM {target} AS t WHERE {on})",
            (now, source, run_id),
        )
        return LoadCounts(
            read=staged,
            written=int(inserted) + int(updated),
            inserted=int(inserted),
            updated=int(updated),
            unchanged=staged - int(inserted) - int(updated),
        )

    def _check_keys(self, target: str, stage: str, keys: list[str]) -> None:
        dup = self._exec(
            f"SELECT {idents(keys)}, COUNT(*) FROM {stage} GROUP BY {idents(keys)} "
            "HAVING COUNT(*) > 1 LIMIT 1"
        )
        if dup:
            raise TargetError(f"{target}: the source holds key {dup[0][:-1]} {dup[0][-1]} times")

    def _checksum(self, cols: list[str], alias: str) -> str:
        # HASH is 64-bit; summing it modulo 2^32 keeps the sum exact at any row count.
        return (
            f"COUNT(*), CAST(COALESCE(SUM(MOD(HASH({idents(cols, prefix=alias + '.')}), "
            "4294967296)), 0) AS NUMBER(38,0))"
        )

    def _reconcile(
        self, target: str, stage: str, keys: list[str], cols: list[str], expected: int | None
    ) -> None:
        on = " AND ".join(f"t.{ident(k)} = s.{ident(k)}" for k in keys)
        src = self._one(f"SELECT {self._checksum(cols, 's')} FROM {stage} AS s")
        raw = self._one(
            f"SELECT {self._checksum(cols, 't')} FROM {target} AS t JOIN {stage} AS s ON {on}"
        )
        if expected is not None and int(src[0]) != expected:
            raise CheckFailed(
                f"{target}: reconciliation failed: the source counted {expected} rows in "
                f"the snapshot it was read from, {src[0]} arrived; the merge was rolled back"
            )
        if (int(src[0]), int(src[1])) != (int(raw[0]), int(raw[1])):
            raise CheckFailed(
                f"{target}: reconciliation failed: the source had {src[0]} rows (checksum "
                f"{src[1]}), the warehouse holds {raw[0]} of them (checksum {raw[1]}); "
                "the merge was rolled back"
            )
        self.checks.append(reconciled(expected, src, raw))

    def _deletions(
        self, target: str, stage: str, keys: list[str], deletes: str, run_id: str
    ) -> int:
        gone = (
            f"NOT EXISTS (SELECT 1 FROM {stage} AS s WHERE "
            + " AND ".join(f"s.{ident(k)} = t.{ident(k)}" for k in keys)
            + ")"
        )
        if deletes == "apply":
            (n,) = self._one(f"SELECT COUNT(*) FROM {target} AS t WHERE {gone}")
            self._exec(f"DELETE FROM {target} AS t WHERE {gone}")
            return int(n)
        (n,) = self._one(
            f"SELECT COUNT(*) FROM {target} AS t WHERE t.{ident(DELETED_AT)} IS NULL AND {gone}"
        )
        self._exec(
            f"UPDATE {target} AS t SET {ident(DELETED_AT)} = %s, {ident('_dataferry_run_id')} = %s "
            f"WHERE t.{ident(DELETED_AT)} IS NULL AND {gone}",
            (dt.datetime.now(dt.timezone.utc), run_id),
        )
        return int(n)

    def watermark(self, schema: str, name: str, column: str) -> Any:
        if not self._columns(schema, name):
            return None
        return self._one(f"SELECT MAX({ident(column)}) FROM {table(schema, name)}")[0]

    def fingerprint(self, schema: str, name: str) -> str | None:
        if not self._columns(schema, name):
            return None
        row = self._one(
            f"SELECT COUNT(*), MAX({ident('_dataferry_loaded_at')}), "
            f"COUNT({ident(DELETED_AT)}), MAX({ident(DELETED_AT)}) FROM {table(schema, name)}"
        )
        return repr(row)

    def count(self, schema: str, name: str) -> int | None:
        if not self._columns(schema, name):
            return None
        return int(self._one(f"SELECT COUNT(*) FROM {table(schema, name)}")[0])

    # ---- models

    def build_model(self, model: PlannedModel) -> int:
        """Build into a staging table and check it; then the previous build's rows are
        replaced in one transaction (grants on the table survive), or, when the model's
        columns changed or it is new, the staging table takes its name."""
        final = table(model.schema, model.name)
        staged_name = model.name + STAGING_SUFFIX
        staged = table(model.schema, staged_name)
        self.checks = []
        with self._translated(f"model {model.name} ({model.file})"):
            self._create_schema(model.schema)
            self._exec(f"CREATE OR REPLACE TABLE {staged} AS {model.sql}")
            try:
                failures = []
                for check in model.checks:
                    (n,) = self._one(check.sql)
                    if n:
                        failures.append(f"{check.description} ({n} rows)")
                if failures:
                    raise CheckFailed(
                        f"model {model.name} ({model.file}): "
                        + "; ".join(failures)
                        + f"; {final} was left as it was"
                    )
                self.checks = [f"{c.description}: 0 rows" for c in model.checks]
                old = self._columns(model.schema, model.name)
                new = self._columns(model.schema, staged_name)
                if old and old == new:
                    try:
                        self._exec("BEGIN")  # inside the try: a signal after it rolls back
                        self._exec(f"DELETE FROM {final}")
                        self._exec(f"INSERT INTO {final} SELECT * FROM {staged}")
                        self._exec("COMMIT")
                    except BaseException:
                        self._exec("ROLLBACK")
                        raise
                else:
                    self._exec(f"DROP TABLE IF EXISTS {final}")
                    self._exec(f"ALTER TABLE {staged} RENAME TO {final}")
            finally:
                self._exec(f"DROP TABLE IF EXISTS {staged}")
            return int(self._one(f"SELECT COUNT(*) FROM {final}")[0])

    # ---- ledger

    def record_load(self, record: LoadRecord) -> None:
        cols = ", ".join(f"{ident(c)} {t}" for c, t in _LEDGER_COLUMNS.items())
        self._create_schema(_LEDGER[0])
        self._exec(f"CREATE TABLE IF NOT EXISTS {table(*_LEDGER)} ({cols})")
        row = {k: v for k, v in record.flat().items() if k in _LEDGER_COLUMNS}
        marks = ", ".join(["%s"] * len(row))
        self._exec(
            f"INSERT INTO {table(*_LEDGER)} ({idents(row)}) VALUES ({marks})", tuple(row.values())
        )

    def self_test(self) -> bool:
        """Create a temporary table (Snowflake commits DDL at once; a temporary table ends
        with the session), write and read it, drop it."""
        test = ident("_dataferry_doctor")
        cur = self.conn.cursor()
        try:
            cur.execute(f"CREATE OR REPLACE TEMPORARY TABLE {test} (n INTEGER)")
            cur.execute(f"INSERT INTO {test} VALUES (1)")
            cur.execute(f"SELECT n FROM {test}")
            ok = cur.fetchone() == (1,)
            cur.execute(f"DROP TABLE IF EXISTS {test}")
            return ok
        except Exception as e:  # the connector's own errors, shown as they are
            raise TargetError(f"{self.display}: {e}") from None
        finally:
            cur.close()

    def last_loads(self, status: str | None = None) -> dict[str, dict[str, Any]]:
        """The latest ledger row per dataset (of that ``status`` when given)."""
        where = f"WHERE {ident('status')} = %s" if status else ""
        rows = self._ledger_rows(
            f"SELECT * FROM {table(*_LEDGER)} {where} QUALIFY ROW_NUMBER() OVER "
            f"(PARTITION BY {ident('dataset')} ORDER BY {ident('started_at')} DESC) = 1",
            [status] if status else [],
        )
        return {r["dataset"]: r for r in rows}

    def history(self, limit: int, dataset: str | None = None) -> list[dict[str, Any]]:
        """The ledger's rows, newest first (of one dataset when given)."""
        where = f"WHERE {ident('dataset')} = %s" if dataset else ""
        return self._ledger_rows(
            f"SELECT * FROM {table(*_LEDGER)} {where} ORDER BY {ident('started_at')} DESC LIMIT %s",
            [dataset, limit] if dataset else [limit],
        )

    def _ledger_rows(self, query: str, params: list[Any]) -> list[dict[str, Any]]:
        if not self._columns(*_LEDGER):
            return []
        cur = self.conn.cursor()
        try:
            cur.execute(query, params)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
        finally:
            cur.close()
