"""Fixtures for every layer: no ambient credentials, markers by folder, spec building."""

from __future__ import annotations

import os
import socket
import subprocess
import textwrap
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from dataferry.spec import Spec, load_spec
from dataferry.stack.embedded_dynamodb_server import STOP_GRACE_S

REPO = Path(__file__).resolve().parents[1]
SEED_DATA = Path(os.environ.get("DATAFERRY_SEED_DATA", REPO.parent / "shared" / "seed" / "data"))

_AMBIENT_PREFIXES = ("PG", "RDS_", "AWS_", "SNOWFLAKE_", "DATAFERRY_")
_AMBIENT_NAMES = {"DATABASE_URL"}


@pytest.fixture(autouse=True)
def _no_ambient_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests see only the configuration they set: a developer's PG*/AWS_* never leak in."""
    for name in list(os.environ):
        if name in _AMBIENT_NAMES or name.startswith(_AMBIENT_PREFIXES):
            if name == "DATAFERRY_SEED_DATA":
                continue
            monkeypatch.delenv(name)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        layer = Path(str(item.fspath)).relative_to(REPO / "tests").parts[0]
        if layer in ("unit", "integration", "cli", "deploy"):
            item.add_marker(getattr(pytest.mark, layer))


def unique(prefix: str = "t") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


class PipelineFactory:
    """Writes a spec (and its data files) into a test's folder; shares one stack folder."""

    def __init__(self, root: Path, stack_dir: Path | None) -> None:
        self.root = root
        self.stack_dir = stack_dir

    def write(self, relpath: str, text: str, encoding: str = "utf-8") -> Path:
        path = self.root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(textwrap.dedent(text).lstrip("\n").encode(encoding))
        return path

    def write_bytes(self, relpath: str, data: bytes) -> Path:
        path = self.root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path

    def spec(self, datasets: dict[str, object] | str, **top: object) -> Spec:
        if isinstance(datasets, str):
            datasets = yaml.safe_load(textwrap.dedent(datasets))
        body: dict[str, object] = {
            "version": 1,
            "datasets": datasets,
            "warehouse": {"duckdb": {"path": str(self.root / "warehouse.duckdb")}},
        }
        if self.stack_dir is not None:
            body["stack"] = {"dir": str(self.stack_dir)}
        body.update(top)
        path = self.root / "dataferry.yaml"
        path.write_text(yaml.safe_dump(body, allow_unicode=True, sort_keys=False))
        return load_spec(path)


@pytest.fixture
def pipeline(tmp_path: Path) -> PipelineFactory:
    return PipelineFactory(tmp_path, None)


def start_dynalite(log: Path, path: Path | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """dynalite as the embedded stack runs it (the package's pinned install and server
    script), on a free loopback port, in memory or on disk under ``path``, up and
    answering; the process and its URL."""
    from dataferry.stack.dynalite_install import ensure_dynalite

    dynalite = ensure_dynalite()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    storage = ["--path", str(path)] if path is not None else []
    fast = ["--createTableMs", "20", "--deleteTableMs", "20", "--updateTableMs", "20"]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*dynalite.command(), "--host", "127.0.0.1", "--port", str(port), *storage, *fast],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dynalite.environment(),
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(url, timeout=1)
            return proc, url
        except urllib.error.HTTPError:
            return proc, url  # it answers (400 for a bare GET): it is up
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError(f"dynalite did not start: {log.read_text()}") from None
            time.sleep(0.1)


@pytest.fixture(scope="session")
def dynalite_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """dynalite on a free loopback port, in memory, for the session."""
    from dataferry.stack.dynalite_install import Unavailable

    try:
        proc, url = start_dynalite(tmp_path_factory.mktemp("dynalite") / "dynalite.log")
    except Unavailable as e:
        pytest.skip(f"dynalite cannot be had here: {e}")
    yield url
    proc.terminate()
    try:  # as `stack down` does: dynalite lets requests in flight finish, 10 s at most
        proc.wait(timeout=STOP_GRACE_S["dynalite"])
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def moto_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's server as the embedded stack runs it when dynalite cannot be had (and the
    stand-in for S3, DynamoDB exports and Secrets Manager), for the session."""
    from dataferry.stack import EmbeddedStack

    stack = EmbeddedStack(tmp_path_factory.mktemp("moto-stack"), dynamodb="moto")
    try:
        yield stack.dynamodb_url()
    finally:
        stack.down()
