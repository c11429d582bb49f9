"""The external-host guard cannot be bypassed: every host a client library would contact is
checked against ``allowed_hosts`` the way that library reads the URL, before any connection.

The end-to-end test points each service at a trap: a real TCP listener on 127.0.0.2 (still
loopback, but not an allowed host) that counts the connections it gets. The URLs name an
allowed host where a naive parser looks and the trap where the client library goes.
"""

from __future__ import annotations

import socket
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from pytest_pipeline.config import ServiceConfig
from pytest_pipeline.errors import ConfigError, HostNotAllowedError
from pytest_pipeline.services import external
from pytest_pipeline.services.endpoints import KafkaEndpoint, PostgresEndpoint, S3Endpoint

SECRET = "Tr4p-s3cret-Value"
ALLOWED = ("localhost", "127.0.0.1", "::1")
TRAP_HOST = "127.0.0.2"


class Trap:
    """A loopback listener that accepts, counts and closes every connection."""

    def __init__(self, host: str = TRAP_HOST, lifetime: float = 120.0) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind((host, 0))
        self._sock.listen(64)
        self._sock.settimeout(0.1)
        self.port: int = self._sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._deadline = time.monotonic() + lifetime  # stops itself even if a test hangs
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set() and time.monotonic() < self._deadline:
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            self.connections += 1
            conn.close()
        self._sock.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


@contextmanager
def trap() -> Iterator[Trap]:
    listener = Trap()
    try:
        yield listener
    finally:
        listener.stop()


def _postgres(url: str) -> ServiceConfig:
    return ServiceConfig(name="postgres", url=url)


def _refused(service: ServiceConfig, error: type[Exception] = HostNotAllowedError) -> str:
    with pytest.raises(error) as info:
        external.endpoint(service, ALLOWED)
    message = str(info.value)
    assert SECRET not in message
    return message


# --------------------------------------------------------------------------- postgres


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://u:{SECRET}@localhost:5432/db?host=db.example.com&port=1",
        f"postgresql://u:{SECRET}@localhost:5432/db?host=localhost&host=db.example.com",
        f"postgresql://u:{SECRET}@localhost:5432/db?hostaddr=db.example.com",
        f"host=localhost hostaddr=db.example.com user=u password={SECRET}",
    ],
)
def test_postgres_query_parameters_are_checked_as_libpq_applies_them(url: str) -> None:
    assert "'db.example.com', which is not in allowed_hosts" in _refused(_postgres(url))


@pytest.mark.parametrize(
    ("url", "says"),
    [
        (f"postgresql://u:{SECRET}@localhost,db.example.com/db", "names more than one host"),
        (f"postgresql://u:{SECRET}@localhost:5432,localhost:5433/db", "names more than one host"),
        (f"postgresql://u:{SECRET}@localhost/db?hostaddr=127.0.0.1,10.0.0.1", "more than one"),
        (f"postgresql://u:{SECRET}@%2Ftmp/db", "Unix-socket directory"),
        (f"postgresql://u:{SECRET}@localhost/db?host=/tmp", "Unix-socket directory"),
        (f"postgresql://u:{SECRET}@localhost/db?service=prod", "libpq service"),
        (f"postgresql://u:{SECRET}@/db", "names no host"),
        (f"postgresql://u:{SECRET}@[::1/db", "cannot be parsed"),
        (f"postgresql://u:{SECRET}@localhost:99999/db", "invalid port"),
    ],
)
def test_postgres_urls_the_guard_cannot_vouch_for_are_refused(url: str, says: str) -> None:
    message = _refused(_postgres(url), ConfigError)
    assert says in message
    assert "services.postgres.url" in message


def test_postgres_hostaddr_from_the_environment_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    # libpq takes PGHOSTADDR when the URL has no hostaddr: it is where the password would go.
    monkeypatch.setenv("PGHOSTADDR", "10.9.8.7")
    message = _refused(_postgres(f"postgresql://u:{SECRET}@localhost/db"))
    assert "'10.9.8.7', which is not in allowed_hosts" in message


def test_postgres_service_from_the_environment_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGSERVICE", "prod")
    assert "libpq service" in _refused(
        _postgres(f"postgresql://u:{SECRET}@localhost/db"), ConfigError
    )


def test_postgres_allowed_url_keeps_its_parameters() -> None:
    url = f"postgresql://u:{SECRET}@[::1]:6543/app?sslmode=require&application_name=a%20b"
    endpoint = external.endpoint(_postgres(url), ALLOWED)
    assert isinstance(endpoint, PostgresEndpoint)
    assert (endpoint.host, endpoint.port, endpoint.user, endpoint.dbname) == (
        "::1",
        6543,
        "u",
        "app",
    )
    assert endpoint.password == SECRET
    from psycopg.conninfo import conninfo_to_dict

    # What the clients get names the same single host, with the user's parameters kept.
    params = conninfo_to_dict(endpoint.dsn())
    assert params["host"] == "::1"
    assert params["sslmode"] == "require"
    assert params["application_name"] == "a b"
    assert "hostaddr" not in params


# --------------------------------------------------------------------------- s3


def _s3(url: str) -> ServiceConfig:
    return ServiceConfig(name="s3", endpoint=url, access_key="key", secret_key=SECRET)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://127.0.0.2:9000\\@localhost:9000", "a backslash"),
        (f"http://u:{SECRET}@localhost:9000", "user information"),
        ("http://127.0.0.2:9000@localhost:9000", "user information"),
        ("http://localhost:9000 127.0.0.2", "whitespace or control characters"),
        ("http://localhost:9000\t", "whitespace or control characters"),
        ("http://localhost\x00.example.com:9000", "whitespace or control characters"),
        ("http://\uff4cocalhost:9000", "non-ASCII characters"),  # a fullwidth l
        ("http://localhost:9000/?x=1", "a query or fragment"),
        ("ftp://localhost:9000", "http:// or https://"),
        ("http://[::1:9000", "cannot be parsed"),
        # urllib3 raises its own LocationParseError on these: still our clear error.
        ("http://localhost%00.evil:9000", "cannot be parsed"),
        ("http://[v1.x]:9000", "cannot be parsed"),
        ("http://localhost:9x00", "invalid port"),
    ],
)
def test_s3_endpoints_that_do_not_round_trip_are_refused(url: str, says: str) -> None:
    message = _refused(_s3(url), ConfigError)
    assert says in message
    assert "services.s3.endpoint" in message


@pytest.mark.parametrize(
    "url", ["http://localhost:9000", "https://[::1]:9443", "http://127.0.0.1:9000/"]
)
def test_s3_plain_endpoints_pass(url: str) -> None:
    endpoint = external.endpoint(_s3(url), ALLOWED)
    assert isinstance(endpoint, S3Endpoint)
    assert endpoint.endpoint_url == url


# --------------------------------------------------------------------------- kafka


def _kafka(bootstrap: str) -> ServiceConfig:
    return ServiceConfig(name="kafka", bootstrap=bootstrap)


@pytest.mark.parametrize(
    "bootstrap",
    [
        "localhost:9092,db.example.com:9092",
        "localhost:9092 db.example.com:9092",
        "PLAINTEXT://localhost:9092,SASL_SSL://db.example.com:9093",
        "[::1]:9092,[2001:db8::1]:9092",
    ],
)
def test_kafka_every_bootstrap_entry_is_checked(bootstrap: str) -> None:
    message = _refused(_kafka(bootstrap))
    assert "which is not in allowed_hosts" in message


@pytest.mark.parametrize(
    "bootstrap",
    [
        "127.0.0.2:9092@localhost",
        "localhost\\@127.0.0.2:9092",
        "[::1:9092",
        "::1:9092",
        "localhost:9092/x",
        "localhost:99999",
    ],
)
def test_kafka_entries_librdkafka_reads_differently_are_refused(bootstrap: str) -> None:
    message = _refused(_kafka(bootstrap), ConfigError)
    assert "services.kafka.bootstrap" in message


def test_kafka_allowed_list_is_passed_on_as_checked() -> None:
    endpoint = external.endpoint(
        _kafka(" PLAINTEXT://localhost:9092, SSL://[::1]:9093 127.0.0.1"), ALLOWED
    )
    assert isinstance(endpoint, KafkaEndpoint)
    assert endpoint.bootstrap_servers == "PLAINTEXT://localhost:9092,SSL://[::1]:9093,127.0.0.1"


# --------------------------------------------------------------------------- end to end


def test_no_client_reaches_a_host_hidden_behind_an_allowed_one(pytester: pytest.Pytester) -> None:
    """Each URL names localhost where urlsplit looks and the trap where the client goes."""
    pytester.makepyprojecttoml("[tool.pytest-pipeline]\n")
    pytester.makepyfile(
        test_hidden=textwrap.dedent(
            """
            import pytest

            pytestmark = pytest.mark.integration

            def test_pg(postgres, dlq):
                dlq.assert_count(0, 0)

            def test_s3(s3, dlq):
                s3.bucket("b")
                dlq.assert_count(0, 0)

            def test_kafka(kafka, dlq):
                kafka.topic("t")
                dlq.assert_count(0, 0)
            """
        )
    )
    with trap() as listener:
        port = listener.port
        env = {
            "PYTEST_PIPELINE_POSTGRES_URL": (
                f"postgresql://u:{SECRET}@localhost:5432/db?host={TRAP_HOST}&port={port}"
            ),
            "PYTEST_PIPELINE_S3_ENDPOINT": f"http://{TRAP_HOST}:{port}\\@localhost:9000",
            "PYTEST_PIPELINE_S3_ACCESS_KEY": "key",
            "PYTEST_PIPELINE_S3_SECRET_KEY": SECRET,
            "PYTEST_PIPELINE_KAFKA_BOOTSTRAP": f"{TRAP_HOST}:{port}@localhost",
            "PYTEST_PIPELINE_STARTUP_TIMEOUT": "3",
        }
        for key, value in env.items():
            pytester._monkeypatch.setenv(key, value)
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
        connections = listener.connections
    out = result.stdout.str() + result.stderr.str()
    assert connections == 0, out
    result.assert_outcomes(errors=3)
    result.stdout.fnmatch_lines_random(
        [
            f"*services.postgres.url*points at host '{TRAP_HOST}', which is not in allowed_hosts*",
            "*services.s3.endpoint*must be a plain http(s)://host[[]:port] URL*a backslash*",
            "*services.kafka.bootstrap*has an entry that is not [[]PROTOCOL://]host[[]:port]*",
        ]
    )
    assert SECRET not in out
    assert "Traceback" not in out
