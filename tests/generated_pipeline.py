"""A generated pipeline driven as a user drives it: `dataferry` subprocesses on a data
set of its own, an embedded PostgreSQL in its own folder, dynalite for DynamoDB and a
DuckDB file. Used by the interruption, locking and crash-safety tests and by the long
crash harness (tests/crash_harness.py).

`fingerprint()` reads every target back (row contents, not counts) so that a run can
be compared with a clean one: the same data, nothing lost, nothing doubled.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
import duckdb
import psycopg
from psycopg import sql

from dataferry.connections import resolve_postgres
from dataferry.spec import Spec, load_spec

STAGES = ("load sql", "load nosql", "etl")
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "dataferry-test", "AWS_SECRET_ACCESS_KEY": "dataferry-test"}
DUCKDB_META = ("_dataferry_loaded_at", "_dataferry_source", "_dataferry_run_id")


class GeneratedPipeline:
    def __init__(self, root: Path, dynamodb_url: str, orders: int, seed: int = 7) -> None:
        self.root = root
        self.dynamodb_url = dynamodb_url
        self.env = {**CREDENTIALS, "DATAFERRY_DYNAMODB_ENDPOINT": dynamodb_url}
        if not (root / "dataferry.yaml").exists():
            customers, items = max(orders // 10, 10), max(orders // 100, 5)
            self.dataferry(
                "generate",
                str(root),
                "--orders",
                str(orders),
                "--customers",
                str(customers),
                "--items",
                str(items),
                "--seed",
                str(seed),
                check=True,
            )
        self.config = root / "dataferry.yaml"
        self.spec: Spec = load_spec(self.config)

    # -- running dataferry -------------------------------------------------------------

    @staticmethod
    def argv(*args: str) -> list[str]:
        return [sys.executable, "-m", "dataferry", *args]

    def environ(self) -> dict[str, str]:
        return {**os.environ, **self.env}

    def dataferry(
        self, *args: str, check: bool = False, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            self.argv(*args),
            capture_output=True,
            text=True,
            env=self.environ(),
            timeout=timeout,
        )
        if check and proc.returncode:
            raise AssertionError(f"dataferry {' '.join(args)}: {proc.returncode}\n{proc.stderr}")
        return proc

    def stage(
        self, stage: str, *extra: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return self.dataferry(*stage.split(), "-c", str(self.config), "-q", *extra, check=check)

    def start(self, stage: str, *extra: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.argv(*stage.split(), "-c", str(self.config), *extra),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.environ(),
        )

    def stop_stack(self) -> None:
        self.dataferry("stack", "down", "-c", str(self.config))

    # -- the targets ---------------------------------------------------------------------

    def pg(self) -> psycopg.Connection:
        return psycopg.connect(resolve_postgres(self.spec).conninfo, autocommit=True)

    def ddb(self) -> Any:
        return boto3.client(
            "dynamodb",
            endpoint_url=self.dynamodb_url,
            region_name="us-west-2",
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )

    def datasets(self, store: str) -> dict[str, Any]:
        return self.spec.datasets_for(store)

    def reset(self, stage: str) -> None:
        """Empty the targets the stage writes (and their ledgers)."""
        if stage == "load sql":
            with self.pg() as conn:
                for ds in reversed(list(self.datasets("postgres").values())):
                    conn.execute(
                        sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(
                            sql.Identifier(ds.target.schema_, ds.target.table)
                        )
                    )
                conn.execute("DROP SCHEMA IF EXISTS dataferry CASCADE")
        elif stage == "load nosql":
            client = self.ddb()
            tables = [ds.target.table for ds in self.datasets("dynamodb").values()]
            for table in [*tables, self.spec.stores.dynamodb.ledger_table]:
                try:
                    client.delete_table(TableName=table)
                    client.get_waiter("table_not_exists").wait(
                        TableName=table, WaiterConfig={"Delay": 0.1, "MaxAttempts": 300}
                    )
                except client.exceptions.ResourceNotFoundException:
                    pass
        else:
            self.spec.duckdb_path.unlink(missing_ok=True)
            Path(f"{self.spec.duckdb_path}.wal").unlink(missing_ok=True)

    def fingerprint(self, stage: str) -> dict[str, str]:
        """Per table the stage writes: a digest of its rows (order-free), and whether the
        latest ledger entry of each dataset says its data is in place (ok, or skipped
        because an earlier load put this very file there)."""
        return {
            k: _settled(v) if k.startswith("ledger:") else v
            for k, v in self._digests(stage).items()
        }

    def _digests(self, stage: str) -> dict[str, str]:
        out: dict[str, str] = {}
        if stage == "load sql":
            with self.pg() as conn:
                for name, ds in self.datasets("postgres").items():
                    ident = sql.Identifier(ds.target.schema_, ds.target.table)
                    row = conn.execute(
                        sql.SQL(
                            "SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY "
                            "t::text), '')) FROM {} t"
                        ).format(ident)
                    ).fetchone()
                    out[name] = f"{row[0]}:{row[1]}" if row else "missing"
                ledger = conn.execute(
                    "SELECT DISTINCT ON (dataset) dataset, status FROM dataferry.loads "
                    "ORDER BY dataset, started_at DESC"
                ).fetchall()
                out.update({f"ledger:{d}": s for d, s in ledger})
        elif stage == "load nosql":
            client = self.ddb()
            for name, ds in self.datasets("dynamodb").items():
                digest = hashlib.sha256()
                items = []
                for page in client.get_paginator("scan").paginate(TableName=ds.target.table):
                    items += [json.dumps(i, sort_keys=True) for i in page["Items"]]
                for text in sorted(items):
                    digest.update(text.encode())
                out[name] = f"{len(items)}:{digest.hexdigest()}"
            from dataferry.stores.dynamodb.ledger import last_loads

            last = last_loads(
                client, list(self.datasets("dynamodb")), self.spec.stores.dynamodb.ledger_table
            )
            out.update({f"ledger:{d}": str(r.get("status")) for d, r in last.items()})
        else:
            with duckdb.connect(str(self.spec.duckdb_path), read_only=True) as conn:
                for name in self.spec.datasets:
                    schema, table = self.spec.raw_table(name)
                    row = conn.execute(
                        f"SELECT count(*), md5(coalesce(string_agg(CAST(t AS VARCHAR), '|' "
                        f"ORDER BY CAST(t AS VARCHAR)), '')) FROM (SELECT * EXCLUDE "
                        f'({", ".join(DUCKDB_META)}) FROM "{schema}"."{table}") t'
                    ).fetchone()
                    out[name] = f"{row[0]}:{row[1]}" if row else "missing"
                for model in self.spec.models.tables:
                    row = conn.execute(
                        f'SELECT count(*) FROM "{self.spec.models.schema_}"."{model}"'
                    ).fetchone()
                    out[f"model:{model}"] = str(row[0] if row else "missing")
                ledger = conn.execute(
                    "SELECT dataset, arg_max(status, started_at) FROM dataferry.loads "
                    "GROUP BY dataset"
                ).fetchall()
                out.update({f"ledger:{d}": s for d, s in ledger})
        return out

    def interrupted_in_ledger(self, stage: str) -> list[str]:
        """Datasets whose ledger holds an `interrupted` entry for the stage's target."""
        if stage == "load sql":
            with self.pg() as conn:
                if conn.execute("SELECT to_regclass('dataferry.loads')").fetchone() == (None,):
                    return []
                rows = conn.execute(
                    "SELECT dataset FROM dataferry.loads WHERE status = 'interrupted'"
                ).fetchall()
            return [r[0] for r in rows]
        if stage == "load nosql":
            client = self.ddb()
            items = client.scan(
                TableName=self.spec.stores.dynamodb.ledger_table,
                FilterExpression="#s = :i",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={":i": {"S": "interrupted"}},
            )["Items"]
            return [i["dataset"]["S"] for i in items]
        with duckdb.connect(str(self.spec.duckdb_path), read_only=True) as conn:
            try:
                rows = conn.execute(
                    "SELECT dataset FROM dataferry.loads WHERE status = 'interrupted'"
                ).fetchall()
            except duckdb.CatalogException:
                return []  # no ledger yet
        return [r[0] for r in rows]

    def timed(self, stage: str) -> float:
        """Run the stage on emptied targets; how long it took."""
        self.reset(stage)
        began = time.monotonic()
        self.stage(stage)
        return time.monotonic() - began

    # -- watching a run ------------------------------------------------------------------

    def wait_until_working(
        self, stage: str, proc: subprocess.Popen[str], limit_s: float = 30
    ) -> None:
        """Return once the stage's process is writing its target (not starting up)."""
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(f"{stage} ended before it was seen working: {proc.returncode}")
            if self._working(stage):
                return
            time.sleep(0.02)
        raise AssertionError(f"{stage} was not seen working within {limit_s}s")

    def _working(self, stage: str) -> bool:
        if stage == "load sql":
            with self.pg() as conn:
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE "
                    "'dataferry run%' AND state = 'active' AND query NOT LIKE '%advisory%'"
                ).fetchone()
            return bool(row and row[0])
        if stage == "load nosql":
            client = self.ddb()
            first = next(iter(self.datasets("dynamodb").values())).target.table
            try:
                desc = client.describe_table(TableName=first)["Table"]
            except client.exceptions.ResourceNotFoundException:
                return False
            return desc.get("TableStatus") == "ACTIVE"
        with self.pg() as conn:  # the etl's snapshot of PostgreSQL is open: it is reading
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'dataferry' "
                "AND state LIKE 'idle in transaction%'"
            ).fetchone()
        return bool(row and row[0])


def _settled(status: str) -> str:
    return "in place" if status in ("ok", "skipped") else status
