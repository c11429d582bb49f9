"""Connection details of a running server, independent of the backend that started it.

Endpoints are plain frozen dataclasses so they can be written to the run's shared state file
(pytest-xdist workers read them back) and printed with secrets masked.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import quote

from pytest_pipeline.masking import Secret, SecretURL


@dataclass(frozen=True)
class PostgresEndpoint:
    """A Postgres server: where it listens and the superuser to connect as."""

    host: str
    port: int
    user: str
    # Kept out of repr: pytest prints fixture values of failing tests.
    password: str = field(default="", repr=False)
    dbname: str = "postgres"
    # libpq parameters of an external URL, e.g. "sslmode=require" (kept on every DSN).
    query: str = ""
    # Seconds one of the plugin's own admin statements may take: services.startup_timeout.
    timeout: float = 60.0
    #: A local server's private unix-socket directory ("" if none): only the server user can
    #: enter it (0700) and logins there need no password, so the plugin's own connections
    #: skip scram (see ``services/postgres.py``). :meth:`dsn` stays TCP with the password.
    socket_dir: str = ""

    def __post_init__(self) -> None:
        # Also when read back from the shared state file (xdist workers): repr() masks it.
        object.__setattr__(self, "password", Secret(self.password))

    def dsn(self, dbname: str | None = None) -> SecretURL:
        """A libpq URL for ``dbname`` (the admin database by default).

        A ``str`` for every client; its ``repr`` (pytest's displays) masks the password.
        """
        auth = quote(self.user, safe="")
        if self.password:
            auth += ":" + quote(self.password, safe="")
        host = f"[{self.host}]" if ":" in self.host else self.host
        query = f"?{self.query}" if self.query else ""
        database = quote(dbname or self.dbname, safe="")
        return SecretURL(f"postgresql://{auth}@{host}:{self.port}/{database}{query}")


@dataclass(frozen=True)
class KafkaEndpoint:
    """A Kafka-protocol broker."""

    bootstrap_servers: str


@dataclass(frozen=True)
class S3Endpoint:
    """An S3-compatible object store."""

    endpoint_url: str
    access_key: str
    secret_key: str = field(repr=False)
    region: str = "us-east-1"
    # Seconds one request may take in all (connects, reads, retries): services.startup_timeout.
    timeout: float = 60.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "secret_key", Secret(self.secret_key))


Endpoint = PostgresEndpoint | KafkaEndpoint | S3Endpoint

_KINDS: dict[str, type[PostgresEndpoint] | type[KafkaEndpoint] | type[S3Endpoint]] = {
    "postgres": PostgresEndpoint,
    "kafka": KafkaEndpoint,
    "s3": S3Endpoint,
}


def endpoint_to_dict(endpoint: Endpoint) -> dict[str, Any]:
    """Serialise an endpoint for the shared state file."""
    return asdict(endpoint)


def endpoint_from_dict(service: str, data: dict[str, Any]) -> Endpoint:
    """Rebuild the endpoint of ``service`` from :func:`endpoint_to_dict` output."""
    return _KINDS[service](**data)
