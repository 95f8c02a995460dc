"""`dataferry doctor`: for each configured target, what works and what to fix (and
whether the ``s3://`` sources can be listed).

Per target: reachable within ``--wait``, who it is logged in as, TLS, the server's
version, and whether it can create a table, write it and read it back (in a transaction
that is rolled back, or with a marker item that is deleted again). Read-only as far as
anything persists; it never starts the embedded stack.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from .connections import resolve_dynamodb, resolve_postgres
from .errors import DataferryError, TargetUnavailable
from .spec import Spec

__all__ = ["Finding", "doctor"]

DOCTOR_TABLE = "_dataferry_doctor"


@dataclass(frozen=True)
class Finding:
    target: str
    check: str
    ok: bool | None  # None: not checked (and why is in detail)
    detail: str
    fix: str = ""
    unreachable: bool = False


def _stack_down(target: str) -> Finding:
    return Finding(
        target,
        "reachable",
        None,
        "the embedded stack is down; doctor does not start it",
        "`dataferry stack up`, then run doctor again",
    )


def _postgres(spec: Spec, wait_s: float) -> list[Finding]:
    from psycopg import sql

    from .stores import postgres as pg

    name = "postgres"
    target = resolve_postgres(spec, start=False)
    if target.embedded and not target.conninfo:
        return [_stack_down(name)]
    out = []
    try:
        conn = pg.connect_when_ready(target, wait_s)
    except DataferryError as e:
        fix = "check the host, port and network path (security groups, VPC), and the password"
        return [Finding(name, "reachable", False, str(e), fix, isinstance(e, TargetUnavailable))]
    out.append(Finding(name, "reachable", True, target.display))
    with conn:
        row = conn.execute(
            "SELECT current_user, current_setting('server_version'), "
            "(SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), "
            "inet_server_addr() IS NULL"
        ).fetchone()
        assert row is not None
        user, version, ssl, local_socket = row
        out.append(Finding(name, "credentials", True, f"logged in as {user}"))
        out.append(Finding(name, "version", True, f"PostgreSQL {version}"))
        if ssl:
            out.append(Finding(name, "TLS", True, "in use"))
        elif local_socket:
            out.append(Finding(name, "TLS", None, "not used: a Unix socket on this machine"))
        else:
            out.append(
                Finding(
                    name,
                    "TLS",
                    False,
                    "not in use over the network",
                    "set stores.postgres.sslmode: verify-full and sslrootcert (RDS's CA bundle)",
                )
            )
        for schema in sorted({d.target.schema_ for d in spec.datasets_for("postgres").values()}):
            table = sql.Identifier(schema, DOCTOR_TABLE)
            try:
                with conn.transaction(force_rollback=True):
                    pg.ensure_schema(conn, schema)
                    conn.execute(sql.SQL("CREATE TABLE {} (n integer)").format(table))
                    conn.execute(sql.SQL("INSERT INTO {} VALUES (1)").format(table))
                    back = conn.execute(sql.SQL("SELECT n FROM {}").format(table)).fetchone()
                ok = back == (1,)
                out.append(Finding(name, f"schema {schema}", ok, "can create a table, write, read"))
            except Exception as e:  # the database's own refusal, shown as it is
                out.append(
                    Finding(
                        name,
                        f"schema {schema}",
                        False,
                        str(e).splitlines()[0],
                        f"grant {user} CREATE on schema {schema} (or on the database)",
                    )
                )
    return out


def _dynamodb(spec: Spec, wait_s: float) -> list[Finding]:
    from botocore.exceptions import BotoCoreError, ClientError

    from .stores import dynamodb as ddb
    from .stores.dynamodb.connection import translate

    name = "dynamodb"
    target = resolve_dynamodb(spec, start=False)
    if target.embedded and not target.endpoint_url:
        return [_stack_down(name)]
    try:
        ddb.client_when_ready(target, spec.stores.dynamodb.ledger_table, wait_s)
    except DataferryError as e:
        fix = "check the endpoint and region, and the AWS credentials (aws sts get-caller-identity)"
        return [Finding(name, "reachable", False, str(e), fix, isinstance(e, TargetUnavailable))]
    out = [Finding(name, "reachable", True, target.display)]
    out.append(
        Finding(
            name,
            "credentials",
            True,
            f"DescribeTable answered (the ledger table {spec.stores.dynamodb.ledger_table})",
        )
    )
    if target.embedded:
        from .stack import EmbeddedStack

        engine = EmbeddedStack.for_spec(spec).dynamodb_engine()
        out.append(Finding(name, "version", True, f"the embedded {engine} endpoint"))
    else:
        out.append(Finding(name, "version", True, f"region {target.region}"))
    url = target.endpoint_url or "https://"
    if url.startswith("https://"):
        out.append(Finding(name, "TLS", True, "in use (https)"))
    else:
        out.append(Finding(name, "TLS", None, "not used: plain http to a local endpoint"))
    client = ddb.client(target, outage_s=wait_s)
    ledger = spec.stores.dynamodb.ledger_table
    key = {
        "dataset": {"S": "~doctor"},
        "started_at": {"S": dt.datetime.now(dt.timezone.utc).isoformat()},
    }
    try:
        client.put_item(TableName=ledger, Item=key)
        back = client.get_item(TableName=ledger, Key=key, ConsistentRead=True).get("Item")
        client.delete_item(TableName=ledger, Key=key)
        out.append(
            Finding(name, f"table {ledger}", back == key, "can write, read and delete an item")
        )
    except (BotoCoreError, ClientError) as e:
        code = getattr(e, "response", {}).get("Error", {}).get("Code", "")
        if code == "ResourceNotFoundException":
            out.append(
                Finding(
                    name,
                    f"table {ledger}",
                    None,
                    "the ledger table does not exist yet (the first load creates it); "
                    "CreateTable permission not checked",
                )
            )
        else:
            out.append(
                Finding(
                    name,
                    f"table {ledger}",
                    False,
                    str(translate(e, f"table {ledger}")),
                    "allow dynamodb:PutItem, GetItem, DeleteItem (and CreateTable) on the "
                    "spec's tables and the ledger table",
                )
            )
    return out


def _warehouse(spec: Spec, wait_s: float) -> list[Finding]:
    from .stages import open_warehouse

    name = "warehouse"
    try:
        wh = open_warehouse(spec, wait_s)
    except DataferryError as e:
        return [Finding(name, "reachable", False, str(e), "see the message", True)]
    with wh:
        out = [Finding(name, "reachable", True, wh.display)]
        try:
            ok = wh.self_test()
            out.append(Finding(name, "write", ok, "can create a table, write, read"))
        except DataferryError as e:
            out.append(Finding(name, "write", False, str(e), "check the role's privileges"))
    return out


def _s3_sources(spec: Spec) -> list[str]:
    from .sources import is_s3

    return sorted({p for ds in spec.datasets.values() for p in ds.source.paths if is_s3(p)})


def _s3(spec: Spec, wait_s: float) -> list[Finding]:
    """Each ``s3://`` source: listed (or its object found) as a load would, with the
    credentials a load would use; nothing is read or written."""
    from .connections import resolve_s3
    from .sources.s3 import list_objects, s3_client

    name = "s3"
    target = resolve_s3(spec, start=False)
    if target.embedded and not target.endpoint_url:
        return [_stack_down(name)]
    client = s3_client(target)
    out = [Finding(name, "endpoint", None, target.display)]
    for source in _s3_sources(spec):
        try:
            found = list_objects(source, client)
        except DataferryError as e:
            fix = (
                "allow s3:ListBucket on the bucket (a pattern) and s3:GetObject on its "
                "objects, for the credentials the pipeline runs with"
            )
            unreachable = isinstance(e, TargetUnavailable)
            out.append(Finding(name, source, False, str(e), fix, unreachable))
            continue
        if found:
            size = sum(o.size for o in found)
            out.append(Finding(name, source, True, f"{len(found)} object(s), {size:,} bytes"))
        else:
            out.append(Finding(name, source, None, "no object matches yet (a load would fail)"))
    return out


CHECKS: dict[str, Callable[[Spec, float], list[Finding]]] = {
    "postgres": _postgres,
    "dynamodb": _dynamodb,
    "s3": _s3,
    "warehouse": _warehouse,
}


def _configured(spec: Spec, store: str) -> bool:
    if store == "warehouse":
        return True
    if store == "s3":
        return bool(_s3_sources(spec))
    return bool(spec.datasets_for(store))


def doctor(spec: Spec, wait_s: float) -> list[Finding]:
    """Every configured target's findings, in order: PostgreSQL, DynamoDB, the S3 of
    ``s3://`` sources, the warehouse."""
    out: list[Finding] = []
    for store, check in CHECKS.items():
        if not _configured(spec, store):
            continue
        try:
            out += check(spec, wait_s)
        except DataferryError as e:
            out.append(Finding(store, "checks", False, str(e), "see the message"))
    return out
