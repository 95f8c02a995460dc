"""`dataferry db bootstrap`: the least-privilege login role the pipeline loads as.

Run once (and again whenever the spec gains a schema) by someone who can create roles:
RDS's master user, with its secret. Every step is idempotent. The role gets:

- LOGIN and nothing else of the superuser kind (no CREATEDB, CREATEROLE, BYPASSRLS);
- CONNECT and TEMPORARY on the database (the loads stage rows in temporary tables);
- each schema of the spec's PostgreSQL datasets, and ``dataferry`` (the ledger): made
  for it (AUTHORIZATION) when missing, else USAGE and CREATE on it;
- the ownership of those datasets' tables and the ledger's where they exist already (a
  load alters, merges into and replaces what it owns);
- ``rds_iam`` where the server has that role (RDS): it then logs in with IAM tokens only.

It gets no CREATE on the database: it cannot make schemas of its own, nor touch tables
it was not given.
"""

from __future__ import annotations

import os
from typing import Any

import psycopg
from psycopg import sql

from .errors import SpecError, TargetError
from .spec import Spec

__all__ = ["DEFAULT_ROLE", "bootstrap", "bootstrap_as_master"]

DEFAULT_ROLE = "dataferry"
LEDGER_SCHEMA = "dataferry"
LEDGER_TABLES = ("loads", "load_files")  # stores/postgres/ledger.py: loads and their files


def _exists(conn: Any, query: str, *args: Any) -> bool:
    return conn.execute(query, args).fetchone() is not None


def bootstrap(conn: Any, spec: Spec, role: str = DEFAULT_ROLE) -> list[str]:
    """Make ``role`` what the pipeline needs, in one transaction; what was done, in order."""
    done: list[str] = []
    who = sql.Identifier(role)

    def run(statement: sql.Composable, said: str) -> None:
        conn.execute(statement)
        done.append(said)

    with conn.transaction():
        if _exists(conn, "SELECT 1 FROM pg_roles WHERE rolname = %s", role):
            done.append(f"role {role} exists")
        else:
            run(sql.SQL("CREATE ROLE {} LOGIN").format(who), f"created role {role}")
        # Only what differs: RDS's master may not even name SUPERUSER or REPLICATION.
        attrs = conn.execute(
            "SELECT NOT rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolreplication, "
            "rolbypassrls FROM pg_roles WHERE rolname = %s",
            (role,),
        ).fetchone()
        wanted = ("LOGIN", "NOSUPERUSER", "NOCREATEDB", "NOCREATEROLE", "NOREPLICATION")
        fix = [w for w, wrong in zip((*wanted, "NOBYPASSRLS"), attrs, strict=True) if wrong]
        if fix:
            run(
                sql.SQL("ALTER ROLE {} " + " ".join(fix)).format(who),
                f"{role}: {', '.join(f.lower() for f in fix)}",
            )
        me, superuser = conn.execute(
            "SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        if not superuser and not _exists(
            conn, "SELECT 1 WHERE pg_has_role(current_user, %s, 'SET')", role
        ):
            # RDS's master is no superuser: giving the role schemas and tables (AUTHORIZATION,
            # OWNER TO) needs it to be able to SET ROLE to it; PostgreSQL 16 no longer gives
            # a role's creator that by itself.
            run(sql.SQL("GRANT {} TO CURRENT_USER").format(who), f"{me}: member of {role}")
        database = conn.execute("SELECT current_database()").fetchone()[0]
        run(
            sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}").format(
                sql.Identifier(database), who
            ),
            f"{role}: connect and temporary tables on database {database}",
        )
        datasets = spec.datasets_for("postgres")
        schemas = sorted({d.target.schema_ for d in datasets.values()} | {LEDGER_SCHEMA})
        for schema in schemas:
            name = sql.Identifier(schema)
            found = conn.execute(
                "SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = %s",
                (schema,),
            ).fetchone()
            if found is not None:
                cannot = TargetError(
                    f"schema {schema} belongs to {found[0]}: {me} cannot give {role} usage "
                    f"and create on it; run `dataferry db bootstrap` as {found[0]} (or an "
                    "administrator), or make the schema theirs"
                )
                try:
                    run(
                        sql.SQL("GRANT USAGE, CREATE ON SCHEMA {} TO {}").format(name, who),
                        f"{role}: usage and create on schema {schema}",
                    )
                except psycopg.errors.InsufficientPrivilege:
                    raise cannot from None
                # A GRANT its grantor may give only in part just warns: check that it took.
                if not _exists(
                    conn,
                    "SELECT 1 WHERE has_schema_privilege(%s, %s, 'USAGE, CREATE')",
                    role,
                    schema,
                ):
                    raise cannot
            else:
                run(
                    sql.SQL("CREATE SCHEMA {} AUTHORIZATION {}").format(name, who),
                    f"created schema {schema}, owned by {role}",
                )
        tables = [(d.target.schema_, d.target.table) for d in datasets.values()]
        ledger = [(LEDGER_SCHEMA, t) for t in LEDGER_TABLES]
        for schema, table in [*tables, *ledger]:
            owner = conn.execute(
                "SELECT pg_get_userbyid(c.relowner) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r', 'p')",
                (schema, table),
            ).fetchone()
            if owner is None or owner[0] == role:
                continue
            if not superuser and not _exists(
                conn, "SELECT 1 WHERE pg_has_role(current_user, %s, 'USAGE')", owner[0]
            ):
                raise TargetError(
                    f"table {schema}.{table} belongs to {owner[0]}: {me} cannot give it to "
                    f"{role}; run `dataferry db bootstrap` as {owner[0]} (or an administrator)"
                )
            run(
                sql.SQL("ALTER TABLE {} OWNER TO {}").format(sql.Identifier(schema, table), who),
                f"table {schema}.{table}: owner {owner[0]} -> {role}",
            )
        if _exists(conn, "SELECT 1 FROM pg_roles WHERE rolname = 'rds_iam'"):
            run(
                sql.SQL("GRANT rds_iam TO {}").format(who),
                f"{role}: rds_iam (logs in with IAM tokens)",
            )
        else:
            done.append("no rds_iam role here (not RDS): the role logs in as pg_hba.conf says")
    return done


def bootstrap_as_master(
    spec: Spec,
    role: str,
    master_secret: str | None,
    master_user: str | None,
    wait_s: float,
) -> list[str]:
    """Connect as a user who can create roles, then bootstrap: the spec's PostgreSQL
    settings without IAM authentication, logged in with ``master_secret`` when given
    (RDS keeps the master's {username, password} there), else as the settings say
    (DATABASE_URL, a url, the embedded server's superuser)."""
    from .connections import resolve_postgres
    from .stores import postgres as pg

    settings = spec.stores.postgres
    if settings.iam_auth and master_secret is None and not os.environ.get("DATABASE_URL"):
        raise SpecError(
            f"{spec.path}: stores.postgres logs in as the pipeline (iam_auth); `db bootstrap` "
            "connects as a user who can create roles: give --master-secret, --from-terraform "
            "or DATABASE_URL"
        )
    update: dict[str, Any] = {"iam_auth": False}
    if master_secret is not None:
        update |= {"password_secret": master_secret, "password": None, "user": master_user}
    stores = spec.stores.model_copy(update={"postgres": settings.model_copy(update=update)})
    target = resolve_postgres(spec.model_copy(update={"stores": stores}))
    with (
        pg.connect_when_ready(target, wait_s) as conn,
        pg.translated(f"db bootstrap of role {role}"),
    ):
        return bootstrap(conn, spec, role)
