"""botocore clients, and translating botocore's errors at this one boundary."""

from __future__ import annotations

import functools
import random
import time
from typing import TYPE_CHECKING, Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    HTTPClientError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

from ... import interrupt
from ...connections import DynamoDBTarget
from ...errors import TargetError, TargetUnavailable

if TYPE_CHECKING:
    import botocore.session

# botocore's session and config (a tenth of a second to import) are imported when a
# client is made: validate, plan and the codec import this package without one.

__all__ = ["client", "client_when_ready", "probe", "s3_client", "translate"]

# write.DEFAULT_WORKERS (32) writer threads, and the calls made beside them (the writer
# lock's lease, the ledger, a Scan's segments), each on a connection of its own
MAX_POOL = 40
OUTAGE_S = 120.0  # the stage commands' default --wait
READ_TIMEOUT_S = 20.0


@functools.cache
def _models() -> Any:
    import botocore.session

    return botocore.session.get_session().get_component("data_loader")


def _session() -> botocore.session.Session:
    """A botocore session of its own (credentials are resolved per session) sharing one
    loader of service models: a new session otherwise parses DynamoDB's model again,
    about 50 ms a client. Clients are all dataferry uses, so boto3's Session adds
    nothing."""
    import botocore.session

    session = botocore.session.get_session()
    session.register_component("data_loader", _models())
    return session


def client(
    target: DynamoDBTarget, timeout_s: float | None = None, outage_s: float = OUTAGE_S
) -> Any:
    """A client shared by all worker threads (boto3 clients are thread-safe).

    Each request whose endpoint cannot be reached (refused, reset, timed out) is sent
    again with backoff for ``outage_s`` (the command's --wait), so an endpoint gone for a
    few seconds costs a pause, not the load: every call dataferry makes is idempotent
    (puts of the same items, reads, conditional writes). With ``timeout_s``, a client for
    one quick attempt (a readiness probe, which does its own waiting).
    """
    from botocore.config import Config

    config = Config(
        retries={"mode": "standard", "max_attempts": 1 if timeout_s else 10},  # throttling
        # ItemCodec builds DynamoDB's wire form and checks it; botocore walking every item
        # again against its model doubled the client's CPU time for nothing.
        parameter_validation=False,
        max_pool_connections=MAX_POOL,
        connect_timeout=timeout_s or 10,
        # DynamoDB answers in milliseconds; a request silent for this long is lost (a
        # network gone quiet) and is sent again, within --wait, like a refused one.
        read_timeout=timeout_s or READ_TIMEOUT_S,
    )
    made = _session().create_client("dynamodb", config=config, **target.client_kwargs())
    if not timeout_s:
        made.meta.events.register_first("needs-retry.dynamodb", _OutageRetry(outage_s))
    return made


def client_when_ready(target: DynamoDBTarget, ledger: str, wait_s: float) -> Any:
    """A client (see client), once the endpoint answers a probe, within ``wait_s``."""
    from ...readiness import wait_until_ready

    wait_until_ready(lambda t: probe(target, ledger, t), f"DynamoDB {target.display}", wait_s)
    return client(target, outage_s=wait_s)


# Refused, reset, timed out: botocore's ConnectionError covers refused and connect
# timeouts, HTTPClientError a connection closed or silent mid-request.
_UNREACHABLE = (BotoConnectionError, HTTPClientError)


class _OutageRetry:
    """A botocore needs-retry handler: the delay before sending a request again while the
    endpoint is unreachable. The outage is the client's, shared by its threads: it starts
    at the first failure and ends at the next answer; past ``outage_s`` every request
    fails at once (no more retries, botocore's own included)."""

    def __init__(self, outage_s: float) -> None:
        self.outage_s = outage_s
        self.down_since: float | None = None

    def __call__(
        self, caught_exception: Exception | None, attempts: int, **_: Any
    ) -> float | bool | None:
        if not isinstance(caught_exception, _UNREACHABLE):
            self.down_since = None  # it answered
            return None  # botocore's own rules (throttling, errors worth a retry)
        if interrupt.cancelled():
            return False  # a signal: no more waiting, in any thread
        now = time.monotonic()
        if self.down_since is None:
            self.down_since = now
        left = self.down_since + self.outage_s - now
        if left <= 0:
            return False
        delay = min(0.2 * 2 ** min(attempts - 1, 5), 5.0) * random.uniform(0.5, 1.0)  # noqa: S311
        return min(delay, left)


def s3_client(target: DynamoDBTarget) -> Any:
    """S3 for table exports: the embedded endpoint serves it too (moto's; dynalite has no
    exports); elsewhere boto3's own resolution (AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL,
    else AWS)."""
    kwargs = target.client_kwargs() if target.embedded else {"region_name": target.region}
    return _session().create_client("s3", **kwargs)


def translate(err: Exception, what: str) -> Exception:
    """A dataferry error for a botocore one; credentials never appear in the text."""
    if isinstance(err, _UNREACHABLE):
        url = err.kwargs.get("endpoint_url")
        how = "cannot connect to" if isinstance(err, EndpointConnectionError) else "no answer from"
        return TargetUnavailable(
            f"DynamoDB {what}: {how} {url} (tried again until --wait ran out); what was "
            "written before stays written, and running the same command again finishes "
            "the work"
        )
    if isinstance(err, ClientError):
        code = err.response.get("Error", {}).get("Code", "")
        msg = err.response.get("Error", {}).get("Message", "")
        if code in ("ResourceInUseException", "ServiceUnavailable", "InternalServerError"):
            return TargetUnavailable(f"DynamoDB {what}: {code}: {msg}")
        return TargetError(f"DynamoDB {what}: {code}: {msg}")
    if isinstance(err, BotoCoreError):
        return TargetUnavailable(f"DynamoDB {what}: {err}")
    return err


def probe(target: DynamoDBTarget, table: str, timeout_s: float = 10.0) -> None:
    """Succeed once the endpoint answers DescribeTable on ``table`` (dataferry's ledger: a
    table the pipeline's permissions cover; that it does not exist yet is an answer too),
    within ``timeout_s``. Not ListTables: it needs a permission on every table of the
    account, and a local endpoint's answer slows with the items it holds (dynalite: 0.11 s
    at 100k items)."""
    try:
        client(target, timeout_s).describe_table(TableName=table)
    except EndpointConnectionError as e:
        raise TargetUnavailable(
            f"DynamoDB endpoint: cannot connect to {e.kwargs.get('endpoint_url')}"
        ) from None
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
            raise translate(e, "endpoint") from None
    except BotoCoreError as e:
        raise translate(e, "endpoint") from None
