"""The DynamoDB writer lock: a lease item in the ledger table, one `load nosql` at a time.

DynamoDB has no sessions, so the lock is an item written only if absent or expired (a
conditional PutItem), renewed by a thread while held. A holder that dies stops renewing
and its lease expires after LEASE_S; the next run then takes it over.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ...locks import holder_identity, wait_for_lock
from .connection import translate

__all__ = ["LEASE_S", "writer_lock"]

LEASE_S = 60.0
RENEW_EVERY_S = LEASE_S / 4
# The ledger's key is (dataset, started_at); no dataset name can start with "~".
_KEY = {"dataset": {"S": "~lock"}, "started_at": {"S": "writer"}}
log = logging.getLogger("dataferry")


def _conditional_failed(e: ClientError) -> bool:
    return e.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class _Lease:
    def __init__(self, client: Any, table: str, holder: str) -> None:
        self.client = client
        self.table = table
        self.holder = holder
        self.stop = threading.Event()
        self.lost = False

    def try_acquire(self) -> str | None:
        now = time.time()
        try:
            self.client.put_item(
                TableName=self.table,
                Item={
                    **_KEY,
                    "holder": {"S": self.holder},
                    "expires_at": {"N": f"{now + LEASE_S:.3f}"},
                },
                ConditionExpression="attribute_not_exists(#d) OR expires_at < :now OR holder = :me",
                ExpressionAttributeNames={"#d": "dataset"},
                ExpressionAttributeValues={":now": {"N": f"{now:.3f}"}, ":me": {"S": self.holder}},
            )
            return None
        except ClientError as e:
            if not _conditional_failed(e):
                raise translate(e, f"table {self.table}: writer lock") from None
        except BotoCoreError as e:
            raise translate(e, f"table {self.table}: writer lock") from None
        return self._current_holder()

    def _current_holder(self) -> str:
        try:
            item = self.client.get_item(TableName=self.table, Key=_KEY, ConsistentRead=True)
        except (BotoCoreError, ClientError) as e:
            raise translate(e, f"table {self.table}: writer lock") from None
        found = item.get("Item")
        if not found:
            return "a run that has just released it"
        left = float(found["expires_at"]["N"]) - time.time()
        return f"{found['holder']['S']}; its lease runs {max(left, 0):.0f}s more unless renewed"

    def renew_until_stopped(self) -> None:
        while not self.stop.wait(RENEW_EVERY_S):
            try:
                self.client.update_item(
                    TableName=self.table,
                    Key=_KEY,
                    UpdateExpression="SET expires_at = :t",
                    ConditionExpression="holder = :me",
                    ExpressionAttributeValues={
                        ":t": {"N": f"{time.time() + LEASE_S:.3f}"},
                        ":me": {"S": self.holder},
                    },
                )
            except ClientError as e:
                if _conditional_failed(e):
                    self.lost = True
                    log.error("the DynamoDB writer lock was taken over by another run")
                    return
                log.warning("renewing the DynamoDB writer lock failed: %s", e)
            except BotoCoreError as e:
                log.warning("renewing the DynamoDB writer lock failed: %s", e)

    def release(self) -> None:
        self.stop.set()
        with contextlib.suppress(BotoCoreError, ClientError):
            self.client.delete_item(
                TableName=self.table,
                Key=_KEY,
                ConditionExpression="holder = :me",
                ExpressionAttributeValues={":me": {"S": self.holder}},
            )


@contextlib.contextmanager
def writer_lock(
    client: Any, ledger_table: str, endpoint: str, run_id: str, wait_s: float
) -> Iterator[None]:
    """Hold the lease for the block, waiting up to ``wait_s`` for another holder."""
    from .ledger import ensure_ledger

    ensure_ledger(client, ledger_table)
    lease = _Lease(client, ledger_table, holder_identity(run_id))
    wait_for_lock(lease.try_acquire, f"DynamoDB {endpoint}", wait_s)
    renewer = threading.Thread(
        target=lease.renew_until_stopped, name="dataferry-lease", daemon=True
    )
    renewer.start()
    try:
        yield
    finally:
        lease.release()
        renewer.join(timeout=5)
