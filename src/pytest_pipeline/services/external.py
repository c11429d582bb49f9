"""External services (already running: CI service containers, a shared cluster).

Before any connection, every host is checked against ``allowed_hosts``; passwords never leave
this module unmasked in messages (:func:`mask_url`).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable
from urllib.parse import quote, urlencode, urlsplit

from pytest_pipeline.config import ServiceConfig
from pytest_pipeline.errors import ConfigError, HostNotAllowedError, ServiceError

# Masking lives in pytest_pipeline.masking (config.py needs it too); re-exported here.
from pytest_pipeline.masking import mask_url
from pytest_pipeline.services.endpoints import (
    Endpoint,
    KafkaEndpoint,
    PostgresEndpoint,
    S3Endpoint,
)


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


def _port(text: str, what: str, url: str, default: int) -> int:
    if not text:
        return default
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ConfigError(f"pytest-pipeline: {what} has an invalid port: {mask_url(url)}")
    return int(text)


# -- Postgres: read the URL as libpq will (its query string may name other hosts) -----------


def _conninfo(url: str, what: str) -> dict[str, str]:
    """``url`` parsed by libpq itself (through psycopg), query parameters applied."""
    from pytest_pipeline._optional import require

    psycopg = require("psycopg", "postgres", "The postgres fixture")
    try:
        return dict(psycopg.conninfo.conninfo_to_dict(url))
    except psycopg.Error:
        # psycopg's message quotes the URL, password included.
        raise ConfigError(
            f"pytest-pipeline: {what} cannot be parsed as a libpq URL: {mask_url(url)}"
        ) from None


def _single(value: str, what: str, url: str) -> str:
    if "," in value:
        raise ConfigError(
            f"pytest-pipeline: {what} names more than one host or port ({value}): give one "
            f"host, so that the host guard checks the server tests talk to: {mask_url(url)}"
        )
    return value


def _postgres_endpoint(url: str, allowed: tuple[str, ...], timeout: float) -> Endpoint:
    what = "services.postgres.url (PYTEST_PIPELINE_POSTGRES_URL)"
    params = _conninfo(url, what)
    if "service" in params or os.environ.get("PGSERVICE"):
        raise ConfigError(
            f"pytest-pipeline: {what} uses a libpq service (service= or PGSERVICE), whose "
            "service file may name hosts the host guard cannot see: put host, port and "
            "credentials in the URL instead (and unset PGSERVICE for the tests)."
        )
    host = _single(params.pop("host", ""), what, url)
    if not host:
        raise ConfigError(f"pytest-pipeline: {what} names no host: {mask_url(url)}")
    if host.startswith(("/", "@")):
        raise ConfigError(
            f"pytest-pipeline: {what} names a Unix-socket directory ({host}), which another "
            "user of the machine may have planted: use a TCP host listed in allowed_hosts."
        )
    check_host(host, allowed, what)
    # libpq connects to hostaddr (from the URL, else PGHOSTADDR) when there is one.
    hostaddr = _single(params.get("hostaddr") or os.environ.get("PGHOSTADDR", ""), what, url)
    if hostaddr:
        check_host(hostaddr, allowed, what)
    port = _port(_single(params.pop("port", ""), what, url), what, url, 5432)
    user = params.pop("user", "") or "postgres"
    password = params.pop("password", "")
    dbname = params.pop("dbname", "") or "postgres"
    # Each connection attempt waits at most this (libpq counts whole seconds, at least 2).
    params.setdefault("connect_timeout", str(max(2, math.ceil(timeout))))
    query = urlencode(params, quote_via=quote)
    return PostgresEndpoint(host, port, user, password, dbname, query, timeout=timeout)


# -- S3: only URLs every parser reads alike ---------------------------------------------------


def _s3_problem(url: str) -> str:
    """What makes ``url`` read differently by different URL parsers ("" when nothing)."""
    if "\\" in url:
        return "a backslash"
    if "@" in url:
        return "user information (user@host)"
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        return "whitespace or control characters"
    if not url.isascii():
        return "non-ASCII characters"
    if "?" in url or "#" in url:
        return "a query or fragment"
    return ""


def _s3_host(url: str, what: str) -> str:
    """The host of an S3 endpoint, refused unless urllib3 (boto3's client) reads the same."""
    problem = _s3_problem(url)
    if problem:
        raise ConfigError(
            f"pytest-pipeline: {what} must be a plain http(s)://host[:port] URL; it holds "
            f"{problem}: {mask_url(url)}"
        )
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:  # e.g. an unclosed IPv6 bracket
        raise ConfigError(f"pytest-pipeline: {what} cannot be parsed: {mask_url(url)}") from None
    if parts.scheme not in ("http", "https"):
        raise ConfigError(
            f"pytest-pipeline: {what} must start with http:// or https://: {mask_url(url)}"
        )
    if not host:
        raise ConfigError(f"pytest-pipeline: {what} names no host: {mask_url(url)}")
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number in range
    except ValueError:
        raise ConfigError(f"pytest-pipeline: {what} has an invalid port: {mask_url(url)}") from None
    try:
        from urllib3.util import parse_url
    except ImportError:  # no S3 client installed: nothing will connect
        return host
    try:
        client_host = (parse_url(url).host or "").strip("[]").lower()
    except ValueError:  # urllib3's LocationParseError: "%00" in a host, "[v1.x]"
        raise ConfigError(f"pytest-pipeline: {what} cannot be parsed: {mask_url(url)}") from None
    if client_host != host:
        raise ConfigError(
            f"pytest-pipeline: {what} is read as host {host!r} by the host guard but as "
            f"{client_host!r} by the HTTP client: {mask_url(url)}"
        )
    return host


# -- Kafka: every entry of the bootstrap list, as librdkafka splits it ------------------------

_BROKER = re.compile(r"(?:[A-Za-z_]+://)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::([0-9]+))?")


def _kafka_entries(bootstrap: str, what: str) -> list[tuple[str, str]]:
    """``(entry, host)`` of each bootstrap server; librdkafka splits on commas and spaces."""
    entries = [entry for entry in re.split(r"[,\s]+", bootstrap) if entry]
    if not entries:
        raise ConfigError(f"pytest-pipeline: {what} names no host: {bootstrap!r}")
    checked = []
    for entry in entries:
        match = _BROKER.fullmatch(entry)
        if match is None:
            raise ConfigError(
                f"pytest-pipeline: {what} has an entry that is not [PROTOCOL://]host[:port] "
                f"(an IPv6 address in brackets): {mask_url(entry)!r}"
            )
        _port(match[2] or "", what, entry, 9092)
        checked.append((entry, match[1].strip("[]")))
    return checked


def endpoint(
    service: ServiceConfig, allowed_hosts: Iterable[str], timeout: float = 60.0
) -> Endpoint:
    """The endpoint of an external ``service``, after checking every host it names.

    Hosts are read the way the client library will read the URL; whatever it would read
    differently from this check is refused. ``timeout`` (services.startup_timeout) bounds
    each connection attempt of the clients.
    """
    allowed = tuple(allowed_hosts)
    if service.name == "postgres" and service.url:
        return _postgres_endpoint(service.url, allowed, timeout)
    if service.name == "kafka" and service.bootstrap:
        what = "services.kafka.bootstrap (PYTEST_PIPELINE_KAFKA_BOOTSTRAP)"
        entries = _kafka_entries(service.bootstrap, what)
        for _entry, host in entries:
            check_host(host, allowed, what)
        # librdkafka gets exactly the list that was checked.
        return KafkaEndpoint(",".join(entry for entry, _host in entries))
    if service.name == "s3" and service.endpoint:
        what = "services.s3.endpoint (PYTEST_PIPELINE_S3_ENDPOINT)"
        check_host(_s3_host(service.endpoint, what), allowed, what)
        if not service.access_key or not service.secret_key:
            raise ConfigError(
                "pytest-pipeline: an external S3 endpoint needs credentials: set "
                "services.s3.access_key and services.s3.secret_key (or "
                "PYTEST_PIPELINE_S3_ACCESS_KEY and PYTEST_PIPELINE_S3_SECRET_KEY)."
            )
        return S3Endpoint(
            service.endpoint,
            service.access_key,
            service.secret_key,
            service.region or "us-east-1",
            timeout=timeout,
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


def check_reachable(endpoint: Endpoint, allowed_hosts: Iterable[str], timeout: float) -> None:
    """Reach an external server once, within ``timeout`` (services.startup_timeout).

    Called from the session's ``*_service`` fixture: pytest keeps a session fixture's error,
    so when the server cannot be reached the first test pays the wait and every later test
    fails at once with the same message.
    """
    if isinstance(endpoint, KafkaEndpoint):
        check_kafka_brokers(endpoint, allowed_hosts, timeout)
    elif isinstance(endpoint, PostgresEndpoint):
        from pytest_pipeline.services.postgres import ensure_template

        ensure_template(endpoint)  # connects; every test's database is a copy of it
    else:
        from pytest_pipeline.services.s3 import reach

        reach(endpoint)


def describe(endpoint: Endpoint) -> str:
    """A one-line, secret-free description of an external endpoint."""
    if isinstance(endpoint, PostgresEndpoint):
        return f"external {mask_url(endpoint.dsn())}"
    if isinstance(endpoint, KafkaEndpoint):
        return f"external {endpoint.bootstrap_servers}"
    return f"external {endpoint.endpoint_url}"
