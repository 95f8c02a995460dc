"""Where each target is: the spec, the ecosystem's own environment variables, or embedded.

PostgreSQL, first that applies: ``DATABASE_URL``; the spec's ``stores.postgres`` (url, or
host/port/database/user/password); libpq's own ``PGHOST``/``PGSERVICE`` (libpq then reads
every ``PG*`` variable itself); the original project's ``RDS_HOST``/``RDS_PORT``/``RDS_DB``/
``RDS_USER``/``RDS_PASSWORD``; else the embedded server.

DynamoDB endpoint: the spec's ``stores.dynamodb.endpoint`` (a URL, or ``aws`` for AWS
itself); ``AWS_ENDPOINT_URL_DYNAMODB``; ``AWS_ENDPOINT_URL``; else the embedded endpoint.
Region: the spec, ``AWS_REGION``, ``AWS_DEFAULT_REGION``, then us-west-2 (the original's).
Credentials come from the AWS default chain, except on the embedded endpoint.

Snowflake, field by field: the spec's ``warehouse.snowflake``, then ``SNOWFLAKE_ACCOUNT``,
``SNOWFLAKE_USER``, ``SNOWFLAKE_PASSWORD``, ``SNOWFLAKE_PRIVATE_KEY_PATH`` or the key itself
in ``SNOWFLAKE_PRIVATE_KEY`` (PEM, as a container gets a secret; and
``SNOWFLAKE_PRIVATE_KEY_PASSPHRASE``), ``SNOWFLAKE_ROLE``, ``SNOWFLAKE_WAREHOUSE``,
``SNOWFLAKE_DATABASE``, ``SNOWFLAKE_SCHEMA``; with ``connection_name`` (or
``SNOWFLAKE_DEFAULT_CONNECTION_NAME``) the connector reads what is still missing from its
connections.toml.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .spec import Spec

__all__ = [
    "DynamoDBTarget",
    "PostgresTarget",
    "SnowflakeTarget",
    "read_secret",
    "resolve_dynamodb",
    "resolve_postgres",
    "resolve_snowflake",
]

DEFAULT_REGION = "us-west-2"
# moto accepts any key pair; these are not secrets, just what the local endpoint is sent.
_EMBEDDED_CREDENTIALS = {"aws_access_key_id": "dataferry", "aws_secret_access_key": "dataferry"}


@dataclass(frozen=True)
class PostgresTarget:
    conninfo: str = field(repr=False)  # may hold a password: never printed
    source: str  # which rule chose it, for `config show` and errors
    embedded: bool
    # A Secrets Manager secret holding the password, read when connecting (not here:
    # showing or checking the configuration must not need AWS credentials).
    password_secret: str | None = None
    # RDS IAM authentication: a token signed for this region at each connection.
    iam_region: str | None = None

    @property
    def local(self) -> bool:
        """The server runs on this machine (a Unix socket or a loopback address)."""
        from psycopg.conninfo import conninfo_to_dict

        host = str(conninfo_to_dict(self.conninfo).get("host") or os.environ.get("PGHOST") or "")
        return host in ("", "localhost", "127.0.0.1", "::1") or host.startswith("/")

    @property
    def display(self) -> str:
        """The connection without its password, for people to read."""
        if self.embedded:
            return "embedded " + masked_conninfo(self.conninfo)
        return masked_conninfo(self.conninfo)


def masked_conninfo(conninfo: str) -> str:
    from psycopg.conninfo import conninfo_to_dict  # psycopg only where PostgreSQL is used

    try:
        params = conninfo_to_dict(conninfo)
    except Exception:
        return "<unparseable connection string>"
    host = str(params.get("host") or os.environ.get("PGHOST") or "localhost")
    port = params.get("port") or os.environ.get("PGPORT") or "5432"
    user = params.get("user") or os.environ.get("PGUSER") or ""
    db = params.get("dbname") or os.environ.get("PGDATABASE") or ""
    secret = ":***" if params.get("password") or os.environ.get("PGPASSWORD") else ""
    if host.startswith("/"):  # a Unix socket folder, written as libpq's URLs write it
        return f"postgresql://{user}{secret}@/{db}?host={host}"
    return f"postgresql://{user}{secret}@{host}:{port}/{db}"


def read_secret(secret_id: str, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A JSON secret from AWS Secrets Manager (RDS keeps {"username", "password"} there).
    The region comes from the ARN, else AWS_REGION / AWS_DEFAULT_REGION."""
    import json

    import boto3

    env = os.environ if env is None else env
    from botocore.exceptions import BotoCoreError, ClientError

    from .errors import TargetUnavailable

    parts = secret_id.split(":")
    region = (
        parts[3]
        if secret_id.startswith("arn:") and len(parts) > 3
        else env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
    )
    try:
        client = boto3.session.Session().client("secretsmanager", region_name=region)
        value = client.get_secret_value(SecretId=secret_id)["SecretString"]
    except (BotoCoreError, ClientError) as e:
        # the error names the secret, never its value
        raise TargetUnavailable(f"PostgreSQL password secret {secret_id}: {e}") from None
    data = json.loads(value)
    return data if isinstance(data, dict) else {"password": value}


def resolve_postgres(
    spec: Spec, env: Mapping[str, str] | None = None, *, start: bool = True
) -> PostgresTarget:
    """Decide which PostgreSQL to use; start the embedded one when that is the answer.
    With ``iam_auth``, a server given by any rule but the embedded one is logged into with
    an IAM token (see stores.postgres.iam_auth)."""
    env = os.environ if env is None else env
    target = _resolve_postgres(spec, env, start)
    s = spec.stores.postgres
    if not s.iam_auth or target.embedded:
        return target
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    from .stores.postgres.iam_auth import region_of_host

    params = conninfo_to_dict(target.conninfo)
    host = str(params.get("host") or env.get("PGHOST") or "")
    region = (
        s.region
        or region_of_host(host)
        or env.get("AWS_REGION")
        or env.get("AWS_DEFAULT_REGION")
        or DEFAULT_REGION
    )
    conninfo = target.conninfo
    if not params.get("sslmode"):
        conninfo = make_conninfo(conninfo, sslmode="verify-full")
    bundle = env.get("DATAFERRY_RDS_CA_BUNDLE")
    if bundle and not params.get("sslrootcert") and not env.get("PGSSLROOTCERT"):
        # The image ships RDS's CA bundle and names it here, for IAM logins only: as
        # PGSSLROOTCERT it would make libpq verify every server with it, others included.
        conninfo = make_conninfo(conninfo, sslrootcert=bundle)
    return dataclasses.replace(target, conninfo=conninfo, iam_region=region, password_secret=None)


def _resolve_postgres(spec: Spec, env: Mapping[str, str], start: bool) -> PostgresTarget:
    from psycopg.conninfo import make_conninfo

    s = spec.stores.postgres
    extra: dict[str, Any] = {
        k: v for k, v in (("sslmode", s.sslmode), ("sslrootcert", s.sslrootcert)) if v
    }
    if env.get("DATABASE_URL"):
        return PostgresTarget(make_conninfo(env["DATABASE_URL"], **extra), "DATABASE_URL", False)
    if s.url is not None:
        return PostgresTarget(make_conninfo(s.url.get_secret_value(), **extra), "spec url", False)
    if s.host:
        parts = {
            "host": s.host,
            "port": s.port,
            "dbname": s.database,
            "user": s.user,
            "password": s.password.get_secret_value() if s.password else None,
        }
        info = make_conninfo("", **{k: v for k, v in parts.items() if v is not None}, **extra)
        secret = s.password_secret if s.password is None else None
        return PostgresTarget(info, "spec host", False, secret)
    if env.get("PGHOST") or env.get("PGSERVICE"):
        return PostgresTarget(make_conninfo("", **extra), "PG* environment", False)
    if env.get("RDS_HOST"):
        parts = {
            "host": env["RDS_HOST"],
            "port": env.get("RDS_PORT"),
            "dbname": env.get("RDS_DB"),
            "user": env.get("RDS_USER"),
            "password": env.get("RDS_PASSWORD"),
        }
        info = make_conninfo("", **{k: v for k, v in parts.items() if v}, **extra)
        return PostgresTarget(info, "RDS_* environment", False)
    # Imported here: the embedded stack's modules are not needed when a server is given.
    from .stack import EmbeddedStack

    stack = EmbeddedStack.for_spec(spec)
    if start:
        return PostgresTarget(stack.postgres_url(), "embedded", True)
    from .stack import embedded_postgres_server

    url = embedded_postgres_server.status(stack.postgres_dir).url or ""
    return PostgresTarget(url, "embedded", True)


@dataclass(frozen=True)
class DynamoDBTarget:
    endpoint_url: str | None  # None: AWS's own endpoint for the region
    region: str
    source: str
    embedded: bool

    @property
    def display(self) -> str:
        if self.embedded:
            return f"embedded {self.endpoint_url or '(not running)'}"
        return self.endpoint_url or f"AWS DynamoDB ({self.region})"

    def client_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"region_name": self.region}
        if self.endpoint_url:
            kwargs["endpoint_url"] = self.endpoint_url
        if self.embedded:
            kwargs.update(_EMBEDDED_CREDENTIALS)
        return kwargs


def say_chosen(what: str, target: PostgresTarget | DynamoDBTarget) -> None:
    """-v: which endpoint a stage uses and which rule chose it (never a secret: display
    and source are written to be shown)."""
    logging.getLogger("dataferry").info(
        "%s: %s (chosen by %s)", what, target.display, target.source
    )


Target = TypeVar("Target", bound="DynamoDBTarget")


def _aws_endpoint(
    cls: type[Target],
    endpoint: str | None,
    variables: tuple[str, ...],
    region: str,
    env: Mapping[str, str],
    embedded: Callable[[], str | None],
) -> Target:
    """An AWS service's endpoint: the spec's (``aws``: AWS itself), the first of the
    environment ``variables`` set, else the embedded stack's (``embedded()``)."""
    if endpoint == "aws":
        return cls(None, region, "spec endpoint: aws", False)
    if endpoint:
        return cls(endpoint, region, "spec endpoint", False)
    for var in variables:
        if env.get(var):
            return cls(env[var], region, var, False)
    return cls(embedded(), region, "embedded", True)


def resolve_dynamodb(
    spec: Spec, env: Mapping[str, str] | None = None, *, start: bool = True
) -> DynamoDBTarget:
    """Decide which DynamoDB endpoint to use; start the embedded one when that is the answer."""
    env = os.environ if env is None else env
    s = spec.stores.dynamodb
    # boto3 reads AWS_DEFAULT_REGION but not AWS_REGION, so both are looked at here.
    region = s.region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or DEFAULT_REGION

    def embedded() -> str | None:
        from .stack import EmbeddedStack, embedded_dynamodb_server

        stack = EmbeddedStack.for_spec(spec)
        if start:
            return stack.dynamodb_url()
        return embedded_dynamodb_server.status(stack.dynamodb_dir).url

    variables = ("AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL")
    return _aws_endpoint(DynamoDBTarget, s.endpoint, variables, region, env, embedded)


class S3Target(DynamoDBTarget):
    """Where ``s3://`` sources are read from (the same rules, and fields, as DynamoDB's)."""

    @property
    def display(self) -> str:
        if self.embedded:
            return f"embedded S3 {self.endpoint_url or '(not running)'}"
        return self.endpoint_url or f"AWS S3 ({self.region})"


def resolve_s3(spec: Spec, env: Mapping[str, str] | None = None, *, start: bool = True) -> S3Target:
    """Decide which S3 ``s3://`` sources come from: the spec's ``stores.s3.endpoint``
    (``aws``: AWS itself), AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, else the embedded S3
    (started when that is the answer)."""
    env = os.environ if env is None else env
    s = spec.stores.s3
    region = (
        s.region
        or spec.stores.dynamodb.region
        or env.get("AWS_REGION")
        or env.get("AWS_DEFAULT_REGION")
        or DEFAULT_REGION
    )

    def embedded() -> str | None:
        from .stack import EmbeddedStack, embedded_s3_server

        stack = EmbeddedStack.for_spec(spec)
        return stack.s3_url() if start else embedded_s3_server.status(stack.s3_dir).url

    variables = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
    return _aws_endpoint(S3Target, s.endpoint, variables, region, env, embedded)


_SNOWFLAKE_FIELDS = {
    "account": "SNOWFLAKE_ACCOUNT",
    "user": "SNOWFLAKE_USER",
    "password": "SNOWFLAKE_PASSWORD",
    "private_key_file": "SNOWFLAKE_PRIVATE_KEY_PATH",
    "private_key_file_pwd": "SNOWFLAKE_PRIVATE_KEY_PASSPHRASE",
    "role": "SNOWFLAKE_ROLE",
    "warehouse": "SNOWFLAKE_WAREHOUSE",
    "database": "SNOWFLAKE_DATABASE",
    "schema": "SNOWFLAKE_SCHEMA",
}


@dataclass(frozen=True)
class SnowflakeTarget:
    params: dict[str, Any] = field(repr=False)  # the connector's arguments: may hold secrets
    source: str

    @property
    def display(self) -> str:
        p = self.params
        where = f"{p.get('user', '?')}@{p.get('account', '?')}/{p.get('database', '?')}"
        if p.get("connection_name"):
            where += f" (connections.toml: {p['connection_name']})"
        return "snowflake " + where


def resolve_snowflake(spec: Spec, env: Mapping[str, str] | None = None) -> SnowflakeTarget:
    """The connector's arguments from the spec and SNOWFLAKE_* variables; no secret is kept
    anywhere it could be printed."""
    env = os.environ if env is None else env
    s = spec.warehouse.snowflake
    assert s is not None
    given = {
        "account": s.account,
        "user": s.user,
        "password": s.password.get_secret_value() if s.password else None,
        "private_key_file": str(spec.resolve(s.private_key_path)) if s.private_key_path else None,
        "role": s.role,
        "warehouse": s.warehouse,
        "database": s.database,
        "schema": s.schema_,
    }
    params: dict[str, Any] = {}
    sources = []
    for key, var in _SNOWFLAKE_FIELDS.items():
        value = given.get(key)
        if value:
            params[key] = value
            sources.append("spec")
        elif env.get(var):
            params[key] = env[var]
            sources.append(var)
    name = s.connection_name or env.get("SNOWFLAKE_DEFAULT_CONNECTION_NAME")
    if name:
        params["connection_name"] = name
    if not params.get("private_key_file") and env.get("SNOWFLAKE_PRIVATE_KEY"):
        # The key itself (PEM), as a container gets a secret: ECS injects it as a variable.
        params["private_key"] = _private_key_der(
            env["SNOWFLAKE_PRIVATE_KEY"], params.pop("private_key_file_pwd", None)
        )
        sources.append("SNOWFLAKE_PRIVATE_KEY")
    if params.get("private_key_file") or params.get("private_key"):
        params["authenticator"] = "SNOWFLAKE_JWT"
    source = "connections.toml" if name else ("spec" if "spec" in sources else "environment")
    return SnowflakeTarget(params, source)


def _private_key_der(pem: str, passphrase: str | None) -> bytes:
    """A PEM private key (encrypted or not) as the DER bytes the connector takes."""
    from cryptography.hazmat.primitives import serialization

    from .errors import SpecError

    try:
        key = serialization.load_pem_private_key(
            pem.replace("\\n", "\n").encode(),
            password=passphrase.encode() if passphrase else None,
        )
    except (ValueError, TypeError) as e:
        # the reason only: never the key
        raise SpecError(f"SNOWFLAKE_PRIVATE_KEY is not a usable PEM private key ({e})") from None
    return key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
