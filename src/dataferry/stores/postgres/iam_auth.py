"""Amazon RDS IAM database authentication: a fresh token per connection, in place of a
password. A token is a SigV4-presigned URL, signed locally with the caller's AWS
credentials (no call to AWS) and valid for 15 minutes; RDS accepts it only over TLS."""

from __future__ import annotations

import re
from typing import Any

from ...errors import TargetUnavailable

__all__ = ["auth_token", "region_of_host"]

_RDS_HOST = re.compile(r"\.([a-z]{2}(?:-[a-z]+)+-\d)\.rds\.amazonaws\.com\.?$")


def region_of_host(host: str) -> str | None:
    """``mydb.abc123.us-west-2.rds.amazonaws.com`` -> ``us-west-2``."""
    found = _RDS_HOST.search(host)
    return found[1] if found else None


def _client(region: str) -> Any:
    # A client per token: it takes the credentials of this moment (a role's renewed ones,
    # not those of the first connection); a run opens only a few connections.
    import boto3

    return boto3.session.Session().client("rds", region_name=region)


def auth_token(host: str, port: int, user: str, region: str) -> str:
    """The token to send as the password. Never logged: it is a credential for 15 min."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        token: str = _client(region).generate_db_auth_token(
            DBHostname=host, Port=port, DBUsername=user, Region=region
        )
    except (BotoCoreError, ClientError) as e:
        # NoCredentialsError and the like: the message names the cause, never a key
        raise TargetUnavailable(
            f"PostgreSQL IAM authentication for {user}@{host}:{port}: no token ({e})"
        ) from None
    return token
