"""`dataferry db bootstrap` on the embedded server: the pipeline's least-privilege role,
made by a master that is no superuser (as RDS's is), then loading as that role."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from dataferry import stages
from dataferry.connections import resolve_postgres
from dataferry.db_bootstrap import bootstrap
from dataferry.errors import TargetError
from dataferry.stages import RunContext
from tests.conftest import PipelineFactory, unique
from tests.integration.conftest import retail_sql_datasets, write_retail_csv


def _as(spec: Any, user: str, dbname: str | None = None) -> str:
    """The embedded server's connection string, logged in as ``user`` (the socket trusts)."""
    params = conninfo_to_dict(resolve_postgres(spec).conninfo)
    return make_conninfo(**{**params, "user": user, **({"dbname": dbname} if dbname else {})})


def _spec_as(pipeline: PipelineFactory, schema: str, url: str) -> Any:
    return pipeline.spec(retail_sql_datasets(schema), stores={"postgres": {"url": url}})


@pytest.fixture
def rds_like(pipeline: PipelineFactory) -> tuple[str, str]:
    """A master as RDS makes one (may create roles, is no superuser) and a database it
    owns: (master, database)."""
    spec = pipeline.spec(retail_sql_datasets("public"))
    master, database = unique("master"), unique("db")
    with psycopg.connect(resolve_postgres(spec).conninfo, autocommit=True) as su:
        su.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEROLE").format(sql.Identifier(master)))
        su.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(database), sql.Identifier(master)
            )
        )
    return master, database


def test_the_role_loads_what_it_was_given_and_nothing_more(
    pipeline: PipelineFactory, schema: str, rds_like: tuple[str, str]
) -> None:
    master, database = rds_like
    write_retail_csv(pipeline)
    spec = pipeline.spec(retail_sql_datasets(schema))
    role = unique("loader")
    # the master loaded the tables first (the ledger too): they are the master's
    stages.load_sql(_spec_as(pipeline, schema, _as(spec, master, database)))

    with psycopg.connect(_as(spec, master, database), autocommit=True) as conn:
        done = bootstrap(conn, spec, role)
        assert f"created role {role}" in done
        assert f"{master}: member of {role}" in done  # PostgreSQL 16+: needed to give
        assert f"table {schema}.orders: owner {master} -> {role}" in done
        assert f"table dataferry.loads: owner {master} -> {role}" in done
        assert any(line.startswith("no rds_iam role here") for line in done)
        again = bootstrap(conn, spec, role)  # idempotent: nothing left to create or move
        assert f"role {role} exists" in again
        assert not [line for line in again if "created" in line or "owner" in line]

    as_role = _spec_as(pipeline, schema, _as(spec, role, database))
    *_, orders = stages.load_sql(as_role, ctx=RunContext(force=True))
    assert (orders.status, orders.counts.read, orders.counts.unchanged) == ("ok", 3, 3)
    (read,) = stages.etl(as_role, ["orders"])  # ADBC's reads, as the role
    assert read.counts.read == 3
    with psycopg.connect(_as(spec, role, database), autocommit=True) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (role,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(unique("own"))))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT count(*) FROM pg_authid")  # nothing of the superuser's


def test_what_the_master_cannot_give_is_named(
    pipeline: PipelineFactory, schema: str, rds_like: tuple[str, str]
) -> None:
    master, database = rds_like
    write_retail_csv(pipeline)
    spec = pipeline.spec(retail_sql_datasets(schema))
    stranger = unique("stranger")
    with psycopg.connect(_as(spec, "postgres", database), autocommit=True) as su:
        su.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(stranger)))
        su.execute(
            sql.SQL("CREATE SCHEMA {} AUTHORIZATION {}").format(
                sql.Identifier(schema), sql.Identifier(stranger)
            )
        )
    with (
        psycopg.connect(_as(spec, master, database), autocommit=True) as conn,
        pytest.raises(TargetError, match=f"schema {schema} belongs to {stranger}: {master}"),
    ):
        bootstrap(conn, spec, unique("loader"))


def test_a_new_table_is_made_by_the_role_in_a_schema_made_for_it(
    pipeline: PipelineFactory, schema: str
) -> None:
    write_retail_csv(pipeline)
    spec = pipeline.spec(retail_sql_datasets(schema))
    role = unique("loader")
    with psycopg.connect(resolve_postgres(spec).conninfo, autocommit=True) as su:
        done = bootstrap(su, spec, role)  # the embedded superuser: no membership needed
    assert f"created schema {schema}, owned by {role}" in done
    loaded = stages.load_sql(_spec_as(pipeline, schema, _as(spec, role)))
    assert [r.counts.inserted for r in loaded] == [2, 2, 3]
    with psycopg.connect(resolve_postgres(spec).conninfo, autocommit=True) as su:
        owners = su.execute(
            "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = %s", (schema,)
        ).fetchall()
    assert owners == [(role,)]
