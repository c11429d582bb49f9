"""External services (already running: CI service containers, a shared cluster).

Before any connection, every host is checked against ``allowed_hosts``; passwords never leave
this module unmasked in messages (:func:`mask_url`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit

from pytest_pipeline.config import ServiceConfig
from pytest_pipeline.errors import ConfigError, HostNotAllowedError, ServiceError
from pytest_pipeline.services.endpoints import (
    Endpoint,
    KafkaEndpoint,
    PostgresEndpoint,
    S3Endpoint,
)

_URL = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+")
_SECRET_PARAM = re.compile(r"(?i)(password|secret|secret_key|sslpassword)=([^&\s]+)")


def _mask_one(url: str) -> str:
    scheme, _, rest = url.partition("://")
    # The password runs from the first ':' of the user part to the LAST '@' before the host:
    # an unencoded password may itself hold '/', ':' or '@'.
    at = rest.rfind("@")
    if at < 0:
        return url
    userinfo, host = rest[:at], rest[at + 1 :]
    user, colon, _password = userinfo.partition(":")
    if not colon:
        return url
    return f"{scheme}://{user}:***@{host}"


def mask_url(text: str) -> str:
    """``text`` with the password of every URL (and password=... parameters) replaced by ***."""
    text = _URL.sub(lambda m: _mask_one(m.group(0)), text)
    return _SECRET_PARAM.sub(lambda m: f"{m[1]}=***", text)


def mask_secrets(text: str, secrets: Iterable[str]) -> str:
    """``text`` with URLs masked and each known secret value replaced by ***."""
    text = mask_url(text)
    for secret in secrets:
        if secret and len(secret) >= 3:
            text = text.replace(secret, "***")
    return text


def check_host(host: str, allowed_hosts: Iterable[str], what: str) -> None:
    """Refuse ``host`` unless it is listed in ``allowed_hosts`` (no connection is made)."""
    allowed = [h.lower() for h in allowed_hosts]
    if host.strip("[]").lower() not in allowed:
        raise HostNotAllowedError(
            f"pytest-pipeline: {what} points at host {host!r}, which is not in allowed_hosts "
            f"({', '.join(allowed) or 'empty'}). Tests only talk to hosts you list: add it to "
            'allowed_hosts in [tool.pytest-pipeline] (e.g. allowed_hosts = ["localhost", '
            f'"{host}"]) if this server is meant for tests.'
        )


def _split(url: str, what: str, default_port: int) -> tuple[str, int, str, str, str, str]:
    parts = urlsplit(url if "://" in url else f"tcp://{url}")
    try:
        port = parts.port or default_port
    except ValueError:
        raise ConfigError(f"pytest-pipeline: {what} has an invalid port: {mask_url(url)}") from None
    if not parts.hostname:
        raise ConfigError(f"pytest-pipeline: {what} names no host: {mask_url(url)}")
    return (
        parts.hostname,
        port,
        unquote(parts.username or ""),
        unquote(parts.password or ""),
        parts.path.lstrip("/"),
        parts.query,
    )


def endpoint(service: ServiceConfig, allowed_hosts: Iterable[str]) -> Endpoint:
    """The endpoint of an external ``service``, after checking every host it names."""
    allowed = tuple(allowed_hosts)
    if service.name == "postgres" and service.url:
        what = "services.postgres.url (PYTEST_PIPELINE_POSTGRES_URL)"
        host, port, user, password, dbname, query = _split(service.url, what, 5432)
        check_host(host, allowed, what)
        return PostgresEndpoint(
            host, port, user or "postgres", password, dbname or "postgres", query
        )
    if service.name == "kafka" and service.bootstrap:
        what = "services.kafka.bootstrap (PYTEST_PIPELINE_KAFKA_BOOTSTRAP)"
        for server in service.bootstrap.split(","):
            host = _split(server.strip(), what, 9092)[0]
            check_host(host, allowed, what)
        return KafkaEndpoint(service.bootstrap)
    if service.name == "s3" and service.endpoint:
        what = "services.s3.endpoint (PYTEST_PIPELINE_S3_ENDPOINT)"
        host = _split(service.endpoint, what, 443)[0]
        check_host(host, allowed, what)
        if not service.access_key or not service.secret_key:
            raise ConfigError(
                "pytest-pipeline: an external S3 endpoint needs credentials: set "
                "services.s3.access_key and services.s3.secret_key (or "
                "PYTEST_PIPELINE_S3_ACCESS_KEY and PYTEST_PIPELINE_S3_SECRET_KEY)."
            )
        return S3Endpoint(
            service.endpoint, service.access_key, service.secret_key, service.region or "us-east-1"
        )
    env = {
        "postgres": ("services.postgres.url", "PYTEST_PIPELINE_POSTGRES_URL"),
        "kafka": ("services.kafka.bootstrap", "PYTEST_PIPELINE_KAFKA_BOOTSTRAP"),
        "s3": ("services.s3.endpoint", "PYTEST_PIPELINE_S3_ENDPOINT"),
    }[service.name]
    raise ConfigError(
        f"pytest-pipeline: backend = external needs {env[0]} in [tool.pytest-pipeline] "
        f"or the environment variable {env[1]} for {service.name}."
    )


def check_kafka_brokers(
    endpoint: KafkaEndpoint, allowed_hosts: Iterable[str], timeout: float
) -> None:
    """Refuse a cluster whose advertised brokers are outside ``allowed_hosts``.

    The bootstrap servers are checked before any connection; the clients then talk to the
    brokers the cluster advertises, which may be other hosts: those are checked on the
    bootstrap's metadata answer, before anything is produced or consumed.
    """
    from pytest_pipeline._optional import require

    admin = require("confluent_kafka.admin", "kafka", "The kafka fixture")
    client = admin.AdminClient(
        {"bootstrap.servers": endpoint.bootstrap_servers, "socket.nagle.disable": True}
    )
    try:
        brokers = client.list_topics(timeout=timeout).brokers.values()
    except Exception as exc:
        raise ServiceError(
            f"pytest-pipeline: cannot reach the Kafka cluster at {endpoint.bootstrap_servers}: "
            f"{exc}"
        ) from None
    for broker in brokers:
        check_host(
            broker.host,
            allowed_hosts,
            f"a broker advertised by the Kafka cluster at {endpoint.bootstrap_servers} "
            f"({broker.host}:{broker.port})",
        )


def describe(endpoint: Endpoint) -> str:
    """A one-line, secret-free description of an external endpoint."""
    if isinstance(endpoint, PostgresEndpoint):
        return f"external {mask_url(endpoint.dsn())}"
    if isinstance(endpoint, KafkaEndpoint):
        return f"external {endpoint.bootstrap_servers}"
    return f"external {endpoint.endpoint_url}"
