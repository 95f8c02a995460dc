"""The DynamoDB writer lock: a lease item in the ledger table, one `load nosql` at a time.

DynamoDB has no sessions, so the lock is an item written only if absent or expired (a
conditional PutItem), renewed by a thread while held. A holder that dies stops renewing
and its lease expires after LEASE_S; the next run then takes it over. On the holder's
own host a dead holder is seen at once (its process is gone), and taken over then.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
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


def _dead_here(lease: dict[str, Any]) -> bool:
    """The lease's holder ran on this host and its process no longer exists. (A pid
    reused since by another process counts as alive: then the lease must expire.)"""
    if lease.get("host", {}).get("S") != socket.gethostname() or "pid" not in lease:
        return False
    try:
        os.kill(int(lease["pid"]["N"]), 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


class _Lease:
    def __init__(self, client: Any, table: str, holder: str) -> None:
        self.client = client
        self.table = table
        self.holder = holder
        self.stop = threading.Event()
        self.lost = False

    def _put(self, condition: str, names: dict[str, str], values: dict[str, Any]) -> bool:
        """Write the lease if ``condition`` holds; False if it does not."""
        try:
            self.client.put_item(
                TableName=self.table,
                Item={
                    **_KEY,
                    "holder": {"S": self.holder},
                    "host": {"S": socket.gethostname()},
                    "pid": {"N": str(os.getpid())},
                    "expires_at": {"N": f"{time.time() + LEASE_S:.3f}"},
                },
                ConditionExpression=condition,
                **({"ExpressionAttributeNames": names} if names else {}),
                ExpressionAttributeValues=values,
            )
            return True
        except ClientError as e:
            if _conditional_failed(e):
                return False
            raise translate(e, f"table {self.table}: writer lock") from None
        except BotoCoreError as e:
            raise translate(e, f"table {self.table}: writer lock") from None

    def try_acquire(self) -> str | None:
        """None once the lease is ours; else who holds it."""
        if self._put(
            "attribute_not_exists(#d) OR expires_at < :now OR holder = :me",
            {"#d": "dataset"},
            {":now": {"N": f"{time.time():.3f}"}, ":me": {"S": self.holder}},
        ):
            return None
        found = self._current()
        if found is None:
            return "a run that has just released it"
        theirs = found["holder"]["S"]
        if _dead_here(found) and self._put("holder = :theirs", {}, {":theirs": {"S": theirs}}):
            log.info("took over the DynamoDB writer lock of %s: that process has ended", theirs)
            return None
        left = float(found["expires_at"]["N"]) - time.time()
        return f"{theirs}; its lease runs {max(left, 0):.0f}s more unless renewed"

    def _current(self) -> dict[str, Any] | None:
        try:
            item = self.client.get_item(TableName=self.table, Key=_KEY, ConsistentRead=True)
        except (BotoCoreError, ClientError) as e:
            raise translate(e, f"table {self.table}: writer lock") from None
        found: dict[str, Any] | None = item.get("Item")
        return found

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
