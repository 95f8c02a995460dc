"""Targets that fail under a load: a DynamoDB endpoint gone for a while or for good, and
a rejects folder that cannot be written. Real faults: a TCP proxy that is cut, a folder
without write permission."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from dataferry import stages
from dataferry.errors import DataferryError, RejectedRows, TargetUnavailable
from dataferry.stages import RunContext
from dataferry.stores.dynamodb.connection import READ_TIMEOUT_S
from tests.conftest import PipelineFactory, unique
from tests.integration.conftest import ddb_client, pg_conn
from tests.integration.tcp_outage import tcp_outage

ITEMS = 3000


def _dataset(table: str) -> dict[str, Any]:
    return {
        "source": {"path": "items.jsonl"},
        "target": {"store": "dynamodb", "table": table},
        "key": {"hash": "id"},
    }


def _write_items(pipeline: PipelineFactory) -> None:
    pipeline.write("items.jsonl", "".join(f'{{"id": "i{n}", "n": {n}}}\n' for n in range(ITEMS)))


def _stores(url: str, table: str) -> dict[str, Any]:
    # a ledger (and writer lock) of the test's own: a failed test's lease must not
    # hold up the next one
    return {"dynamodb": {"endpoint": url, "ledger_table": f"{table}_ledger"}}


def _count(spec: Any, table: str) -> int:
    client = ddb_client(spec)
    return sum(
        page["Count"]
        for page in client.get_paginator("scan").paginate(TableName=table, Select="COUNT")
    )


@contextlib.contextmanager
def _cut_mid_load(
    pipeline: PipelineFactory, url: str, monkeypatch: pytest.MonkeyPatch, outage_s: float | None
) -> Iterator[tuple[Any, str, threading.Event]]:
    """A spec whose DynamoDB endpoint goes through a proxy that is cut once the load has
    created its table, for ``outage_s`` seconds (None: for good); the spec, the table,
    and an event set when the cut happened."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "dataferry-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "dataferry-test")
    _write_items(pipeline)
    table = unique("outage")
    with tcp_outage(url) as proxy:
        spec = pipeline.spec({"d": _dataset(table)}, stores=_stores(proxy.url, table))
        cut = threading.Event()

        def cut_when_the_table_is_there() -> None:
            while _table_missing(spec, table):
                time.sleep(0.01)
            proxy.down()
            cut.set()
            if outage_s is not None:
                time.sleep(outage_s)
                proxy.up()

        threading.Thread(target=cut_when_the_table_is_there, daemon=True).start()
        yield spec, table, cut


def _table_missing(spec: Any, table: str) -> bool:
    try:
        return table not in ddb_client(spec).list_tables()["TableNames"]
    except Exception:
        return True


def test_dynamodb_gone_for_seconds_mid_load_the_load_waits_and_completes(
    pipeline: PipelineFactory, dynalite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _cut_mid_load(pipeline, dynalite_url, monkeypatch, 3.0) as (spec, table, cut):
        (record,) = stages.load_nosql(spec, ctx=RunContext(wait_s=30))
        assert cut.is_set(), "the endpoint went away during the load"
        assert record.counts.written == ITEMS
        assert _count(spec, table) == ITEMS


def test_dynamodb_gone_for_good_fails_within_the_wait_saying_so(
    pipeline: PipelineFactory, dynalite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _cut_mid_load(pipeline, dynalite_url, monkeypatch, None) as (spec, _, cut):
        began = time.monotonic()
        gone = r"(cannot connect to|no answer from) .* until --wait"
        with pytest.raises(TargetUnavailable, match=gone) as e:
            stages.load_nosql(spec, ctx=RunContext(wait_s=3))
        took = time.monotonic() - began
        assert cut.is_set()
    # --wait 3; a request cut while waiting for its answer may first sit out its read
    # timeout; the ledger and lock calls after it fail at once (the outage clock ran out)
    assert took < 3 + READ_TIMEOUT_S + 5, took
    assert "running the same command again finishes the work" in str(e.value)


def test_rejects_that_cannot_be_written_fail_before_anything_is_loaded(
    pipeline: PipelineFactory, schema: str
) -> None:
    """The rejects folder is a file (so no permission trick is needed as root): the load
    must say so before it writes anything, not after the table has changed."""
    pipeline.write("t.csv", "id,name\n1,a\nx,b\n")
    pipeline.write("rejects", "a file where the rejects folder should be")
    spec = pipeline.spec(
        {
            "t": {
                "source": {"path": "t.csv"},
                "target": {"store": "postgres", "table": "t", "schema": schema},
                "columns": {"id": {"type": "integer"}, "name": {"type": "text"}},
                "primary_key": ["id"],
            }
        }
    )
    with pytest.raises(DataferryError, match="rejects") as e:
        stages.load_sql(spec, ctx=RunContext(max_rejects=5))
    assert not isinstance(e.value, RejectedRows)
    with pg_conn(spec) as conn:
        assert conn.execute("SELECT to_regclass(%s)", (f"{schema}.t",)).fetchone() == (None,)
