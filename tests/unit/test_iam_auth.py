"""RDS IAM authentication settings and tokens (signed locally: no call to AWS)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from dataferry.connections import resolve_postgres
from dataferry.errors import SpecError
from dataferry.spec import load_spec
from dataferry.stores.postgres.connection import connect_kwargs
from dataferry.stores.postgres.iam_auth import region_of_host

HOST = "shop.abc123.eu-west-1.rds.amazonaws.com"


def _spec(tmp_path: Path, postgres: str) -> object:
    (tmp_path / "a.csv").write_text("id\n1\n")
    (tmp_path / "dataferry.yaml").write_text(
        "version: 1\n"
        f"stores: {{postgres: {postgres}}}\n"
        "datasets:\n"
        "  a:\n"
        "    source: {path: a.csv}\n"
        "    target: {store: postgres, table: a}\n"
        "    columns: {id: {type: integer}}\n"
        "    primary_key: [id]\n"
    )
    return load_spec(tmp_path / "dataferry.yaml", env={})


def test_a_token_per_connection_for_the_user_at_the_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    spec = _spec(tmp_path, f"{{host: {HOST}, user: dataferry, database: shop, iam_auth: true}}")
    target = resolve_postgres(spec, env={})
    assert target.iam_region == "eu-west-1"  # from the host name
    assert "sslmode=verify-full" in target.conninfo  # the default with IAM
    token = connect_kwargs(target)["password"]
    url = urlsplit("https://" + token)
    query = parse_qs(url.query)
    assert url.netloc == f"{HOST}:5432"
    assert (query["Action"], query["DBUser"], query["X-Amz-Expires"]) == (
        ["connect"],
        ["dataferry"],
        ["900"],
    )
    assert "/eu-west-1/rds-db/aws4_request" in query["X-Amz-Credential"][0]
    assert "X-Amz-Signature" in query
    assert token not in target.display
    assert "X-Amz" not in repr(target)


@pytest.mark.parametrize(
    ("postgres", "why"),
    [
        ("{host: h, user: u, iam_auth: true, password: p}", "set neither password"),
        ("{host: h, user: u, iam_auth: true, sslmode: require}", "does not verify the server"),
    ],
)
def test_iam_settings_that_cannot_work_are_refused(tmp_path: Path, postgres: str, why: str) -> None:
    with pytest.raises(SpecError, match=why):
        _spec(tmp_path, postgres)


def test_no_user_is_said_before_anything_is_signed(tmp_path: Path) -> None:
    spec = _spec(tmp_path, f"{{host: {HOST}, database: shop, iam_auth: true}}")
    with pytest.raises(SpecError, match="names no user"):
        connect_kwargs(resolve_postgres(spec, env={}))


def test_the_region_of_an_rds_host_name() -> None:
    assert region_of_host(HOST) == "eu-west-1"
    assert region_of_host("db.cluster-x.ap-southeast-2.rds.amazonaws.com") == "ap-southeast-2"
    assert region_of_host("localhost") is None


def test_the_images_rds_bundle_is_used_for_iam_logins_only(tmp_path: Path) -> None:
    env = {"DATAFERRY_RDS_CA_BUNDLE": "/etc/ssl/certs/rds-global-bundle.pem"}
    iam = _spec(tmp_path, f"{{host: {HOST}, user: dataferry, iam_auth: true}}")
    assert "sslrootcert=/etc/ssl/certs/rds-global-bundle.pem" in resolve_postgres(iam, env).conninfo
    plain = _spec(tmp_path, f"{{host: {HOST}, user: dataferry, sslmode: require}}")
    assert "sslrootcert" not in resolve_postgres(plain, env).conninfo
    given = _spec(tmp_path, f"{{host: {HOST}, user: u, iam_auth: true, sslrootcert: /mine.pem}}")
    assert "sslrootcert=/mine.pem" in resolve_postgres(given, env).conninfo
