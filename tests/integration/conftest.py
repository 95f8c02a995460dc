"""One embedded stack (PostgreSQL + DynamoDB endpoint) for the whole integration session.

Tests isolate themselves by name: a PostgreSQL schema and DynamoDB table names of their
own, and a DuckDB file in their own folder.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from dataferry.connections import resolve_dynamodb, resolve_postgres
from dataferry.spec import Spec
from dataferry.stack import EmbeddedStack
from dataferry.stores import dynamodb as ddb
from tests.conftest import PipelineFactory, unique


@pytest.fixture(scope="session")
def stack_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("stack")
    stack = EmbeddedStack(root)
    stack.up()
    yield root
    stack.down()


@pytest.fixture
def pipeline(tmp_path: Path, stack_dir: Path) -> PipelineFactory:
    return PipelineFactory(tmp_path, stack_dir)


@pytest.fixture
def schema() -> str:
    return unique("s")


def pg_conn(spec: Spec) -> psycopg.Connection:
    return psycopg.connect(resolve_postgres(spec).conninfo, autocommit=True)


def ddb_client(spec: Spec) -> Any:
    return ddb.client(resolve_dynamodb(spec))


RETAIL_CSV = {
    "customer.csv": """
        customer_id,first_name,last_name,phone_number,curp,rfc,address
        1,José,García López,5512345678,GALJ800101HDFRPS09,GALJ800101AB1,"Reforma 1, Centro, CDMX"
        2,Ana,Pérez Ruiz,3312345678,PERA900202MJCRZN01,PERA900202CD2,
        """,
    "item.csv": """
        item_id,name,price
        1,Café 500 g,189.00
        2,Agua 1 L,14.50
        """,
    "orders.csv": '''
        order_id,customer_id,item_id,order_date,price,comments
        1,1,2,2024-01-31,14.50,"sin bolsa, por favor"
        2,2,1,2024-02-01,189.00,
        3,1,1,2024-02-02,189.00,"dijo ""gracias"""
        ''',
}


def retail_sql_datasets(schema: str) -> dict[str, Any]:
    return {
        "customer": {
            "source": {"path": "customer.csv"},
            "target": {"store": "postgres", "table": "customer", "schema": schema},
            "columns": {
                "customer_id": {"type": "integer", "nullable": False, "identity": True},
                "first_name": {"type": "varchar(64)", "nullable": False},
                "last_name": {"type": "varchar(64)", "nullable": False},
                "phone_number": {"type": "varchar(15)", "nullable": False},
                "curp": {"type": "varchar(18)", "nullable": False},
                "rfc": {"type": "varchar(13)", "nullable": False},
                "address": {"type": "text"},
            },
            "primary_key": ["customer_id"],
        },
        "item": {
            "source": {"path": "item.csv"},
            "target": {"store": "postgres", "table": "item", "schema": schema},
            "columns": {
                "item_id": {"type": "integer", "nullable": False, "identity": True},
                "name": {"type": "varchar(64)", "nullable": False},
                "price": {"type": "numeric(10,2)", "nullable": False},
            },
            "primary_key": ["item_id"],
        },
        "orders": {
            "source": {"path": "orders.csv"},
            "target": {"store": "postgres", "table": "orders", "schema": schema},
            "columns": {
                "order_id": {"type": "integer", "nullable": False, "identity": True},
                "customer_id": {"type": "integer", "nullable": False},
                "item_id": {"type": "integer", "nullable": False},
                "order_date": {"type": "date", "nullable": False, "default": "current_date"},
                "price": {"type": "numeric(10,2)", "nullable": False},
                "comments": {"type": "text"},
            },
            "primary_key": ["order_id"],
            "foreign_keys": [
                {
                    "columns": ["customer_id"],
                    "references": {"dataset": "customer", "columns": ["customer_id"]},
                },
                {"columns": ["item_id"], "references": {"dataset": "item", "columns": ["item_id"]}},
            ],
        },
    }


def write_retail_csv(pipeline: PipelineFactory, **overrides: str) -> None:
    for name, text in {**RETAIL_CSV, **overrides}.items():
        pipeline.write(name, text)


@pytest.fixture
def moto_stores(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The spec's `stores` for moto's server (the session's), as an endpoint given; it
    serves S3 too (DynamoDB exports)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "dataferry-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "dataferry-test")
    return {"dynamodb": {"endpoint": moto_url, "region": "us-west-2"}}


@pytest.fixture(params=["dynalite", "moto"])
def dynamodb_stores(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The spec's `stores` for one DynamoDB endpoint: the embedded default (dynalite, which
    rejects what DynamoDB rejects) or moto's server (the fallback, lenient, with point-in-
    time recovery and exports). Empty means the embedded one."""
    if request.param == "dynalite":
        return {}
    return dict(request.getfixturevalue("moto_stores"))
