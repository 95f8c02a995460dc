"""The embedded local stack: PostgreSQL, a DynamoDB endpoint and a DuckDB file, on demand.

Everything lives under the spec's stack folder (``.dataferry/`` by default):
``postgres/`` is the PostgreSQL data folder, ``dynamodb/`` holds the DynamoDB snapshot and
server log, and the DuckDB warehouse file sits beside them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import embedded_dynamodb_server as dynamodb
from . import embedded_postgres_server as postgres

__all__ = ["EmbeddedStack", "ServiceStatus"]


@dataclass(frozen=True)
class ServiceStatus:
    service: str
    running: bool
    url: str | None
    data_dir: Path
    pid: int | None


class EmbeddedStack:
    """The local services for one spec, rooted at its stack folder."""

    def __init__(self, root: Path) -> None:
        # Absolute: the detached servers must find their files whatever their cwd.
        self.root = root.resolve()

    @property
    def postgres_dir(self) -> Path:
        return self.root / "postgres"

    @property
    def dynamodb_dir(self) -> Path:
        return self.root / "dynamodb"

    def postgres_url(self) -> str:
        """Start PostgreSQL if needed and return its connection URL."""
        self.root.mkdir(parents=True, exist_ok=True)
        url = postgres.start(self.postgres_dir).url
        assert url is not None
        return url

    def dynamodb_url(self) -> str:
        """Start the DynamoDB endpoint if needed and return its URL."""
        url = dynamodb.start(self.dynamodb_dir).url
        assert url is not None
        return url

    def persist_dynamodb(self) -> None:
        """Write the DynamoDB tables to disk now (they are also written at ``stack down``)."""
        current = dynamodb.status(self.dynamodb_dir)
        if current.running and current.url:
            dynamodb.snapshot(current.url)

    def up(self) -> list[ServiceStatus]:
        self.postgres_url()
        self.dynamodb_url()
        return self.status()

    def down(self) -> list[str]:
        stopped = []
        if dynamodb.stop(self.dynamodb_dir):
            stopped.append("dynamodb")
        if postgres.stop(self.postgres_dir):
            stopped.append("postgres")
        return stopped

    def status(self) -> list[ServiceStatus]:
        pg = postgres.status(self.postgres_dir)
        dd = dynamodb.status(self.dynamodb_dir)
        return [
            ServiceStatus("postgres", pg.running, pg.url, pg.data_dir, pg.pid),
            ServiceStatus("dynamodb", dd.running, dd.url, dd.data_dir, dd.pid),
        ]
