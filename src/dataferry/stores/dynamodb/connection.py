"""botocore clients, and translating botocore's errors at this one boundary."""

from __future__ import annotations

import functools
from typing import Any

import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from ...connections import DynamoDBTarget
from ...errors import TargetError, TargetUnavailable

__all__ = ["client", "probe", "s3_client", "translate"]

MAX_POOL = 32


@functools.cache
def _models() -> Any:
    return botocore.session.get_session().get_component("data_loader")


def _session() -> botocore.session.Session:
    """A botocore session of its own (credentials are resolved per session) sharing one
    loader of service models: a new session otherwise parses DynamoDB's model again,
    about 50 ms a client. Clients are all dataferry uses, so boto3's Session adds
    nothing."""
    session = botocore.session.get_session()
    session.register_component("data_loader", _models())
    return session


def client(target: DynamoDBTarget, timeout_s: float | None = None) -> Any:
    """A client shared by all worker threads (boto3 clients are thread-safe). With
    ``timeout_s``, a client for one quick attempt (a readiness probe): no retries, and
    connecting and answering bounded by it."""
    config = Config(
        # throttling: backoff built in
        retries={"mode": "standard", "max_attempts": 1 if timeout_s else 10},
        # ItemCodec builds DynamoDB's wire form and checks it; botocore walking every item
        # again against its model doubled the client's CPU time for nothing.
        parameter_validation=False,
        max_pool_connections=MAX_POOL,
        connect_timeout=timeout_s or 10,
        read_timeout=timeout_s or 60,
    )
    return _session().create_client("dynamodb", config=config, **target.client_kwargs())


def s3_client(target: DynamoDBTarget) -> Any:
    """S3 for table exports: the embedded endpoint serves it too (moto); elsewhere boto3's
    own resolution (AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, else AWS)."""
    kwargs = target.client_kwargs() if target.embedded else {"region_name": target.region}
    return _session().create_client("s3", **kwargs)


def translate(err: Exception, what: str) -> Exception:
    """A dataferry error for a botocore one; credentials never appear in the text."""
    if isinstance(err, EndpointConnectionError):
        return TargetUnavailable(
            f"DynamoDB {what}: cannot connect to {err.kwargs.get('endpoint_url')}"
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


def probe(target: DynamoDBTarget, timeout_s: float = 10.0) -> None:
    """Succeed once the endpoint answers ListTables, within ``timeout_s``."""
    try:
        client(target, timeout_s).list_tables(Limit=1)
    except (BotoCoreError, ClientError) as e:
        raise translate(e, "endpoint") from None
