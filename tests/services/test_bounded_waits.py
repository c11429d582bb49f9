"""Every wait is bounded by services.startup_timeout, and an external server that cannot be
reached costs that wait once per session, not once per test.

The unreachable servers here are real loopback listeners that accept connections and never
answer a byte: the worst case of a firewalled or hung server. Attempts are counted at the
listener, so the tests assert how many connections were made, not how long anything took.
"""

from __future__ import annotations

import contextlib
import os
import socket
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

SECRET = "b0unded-S3cret-Key"


class Silent:
    """A loopback server that accepts every connection, counts it and never replies.

    Connections stay open until :meth:`stop`; the server stops itself after ``lifetime``
    seconds whatever happens to the test.
    """

    def __init__(self, lifetime: float = 180.0) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self._sock.settimeout(0.1)
        self.port: int = self._sock.getsockname()[1]
        self.connections = 0
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._deadline = time.monotonic() + lifetime
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set() and time.monotonic() < self._deadline:
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            self.connections += 1
            self._held.append(conn)
        for conn in self._held:
            conn.close()
        self._sock.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


@contextmanager
def silent_server() -> Iterator[Silent]:
    server = Silent()
    try:
        yield server
    finally:
        server.stop()


TESTS = """
import pytest

pytestmark = pytest.mark.integration

def test_first({fixture}, dlq):
    {action}
    dlq.assert_count(0, 0)

def test_second({fixture}, dlq):
    {action}
    dlq.assert_count(0, 0)

def test_third({fixture}, dlq):
    {action}
    dlq.assert_count(0, 0)
"""

#: What each test does with its fixture: the calls that reach the server.
ACTIONS = {
    "s3": 's3.bucket("out")',
    "postgres": 'postgres.execute("select 1")',
    "kafka": 'kafka.topic("t")',
}


def _run_against(
    pytester: pytest.Pytester,
    fixture: str,
    env: dict[str, str],
    startup_timeout: str,
    outer_bound: float | None = None,
) -> pytest.RunResult:
    pytester.makepyprojecttoml(
        f"[tool.pytest-pipeline.services]\nstartup_timeout = {startup_timeout}\n"
    )
    pytester.makepyfile(
        test_waits=textwrap.dedent(TESTS.format(fixture=fixture, action=ACTIONS[fixture]))
    )
    for key, value in env.items():
        pytester._monkeypatch.setenv(key, value)
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=outer_bound)


def _same_failure_for_every_test(result: pytest.RunResult, says: str) -> None:
    out = result.stdout.str()
    result.assert_outcomes(errors=3)
    lines = [line for line in out.splitlines() if says in line and not line.startswith("ERROR ")]
    # One message per test (setup error), all three the same: the first failure, cached.
    assert len(lines) == 3, out
    assert len(set(lines)) == 1, lines
    assert SECRET not in out
    assert "Traceback" not in out


def test_s3_endpoint_that_never_answers_costs_one_bounded_attempt_per_session(
    pytester: pytest.Pytester,
) -> None:
    with silent_server() as server:
        env = {
            "PYTEST_PIPELINE_S3_ENDPOINT": f"http://127.0.0.1:{server.port}",
            "PYTEST_PIPELINE_S3_ACCESS_KEY": "key",
            "PYTEST_PIPELINE_S3_SECRET_KEY": SECRET,
        }
        result = _run_against(pytester, "s3", env, "1.5")
        connections = server.connections
    _same_failure_for_every_test(result, "cannot reach the S3 endpoint at http://127.0.0.1:")
    result.stdout.fnmatch_lines(["*services.startup_timeout*"])
    # The first test's tries only (3 at most; the wall-clock deadline may end the request
    # during botocore's random back-off, before the last); the later tests made none.
    assert 1 <= connections <= 3, connections


def test_postgres_server_that_never_answers_costs_one_bounded_attempt_per_session(
    pytester: pytest.Pytester,
) -> None:
    with silent_server() as server:
        url = f"postgresql://app:{SECRET}@127.0.0.1:{server.port}/app?sslmode=disable"
        result = _run_against(pytester, "postgres", {"PYTEST_PIPELINE_POSTGRES_URL": url}, "1")
        connections = server.connections
    _same_failure_for_every_test(result, "cannot connect to Postgres")
    result.stdout.fnmatch_lines(["*timeout expired*"])
    assert connections == 1, connections


def test_kafka_cluster_that_never_answers_fails_every_test_with_the_first_message(
    pytester: pytest.Pytester,
) -> None:
    with silent_server() as server:
        env = {"PYTEST_PIPELINE_KAFKA_BOOTSTRAP": f"127.0.0.1:{server.port}"}
        result = _run_against(pytester, "kafka", env, "1")
    _same_failure_for_every_test(result, "cannot reach the Kafka cluster at 127.0.0.1:")


# --------------------------------------------------------------------------- configuration


RANGE = "a positive number of seconds, at least 0.1 and at most 86400"


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("inf", "inf"),
        ("1e308", "1e+308"),
        ("nan", "nan"),
        ("0", "0"),
        ("1e-300", "1e-300"),  # accepted before: every wait failed at once
        ("0.05", "0.05"),
    ],
)
def test_startup_timeout_must_be_a_usable_number_of_seconds(
    pytester: pytest.Pytester, assert_usage_error: Callable[..., None], value: str, shown: str
) -> None:
    # inf used to pass and crash the first wait with OverflowError.
    pytester.makepyprojecttoml(f"[tool.pytest-pipeline.services]\nstartup_timeout = {value}\n")
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert_usage_error(result, f"*services.startup_timeout in * must be {RANGE}, got {shown}.")


@pytest.mark.parametrize("value", ["inf", "\u0663", "1e-300"])  # \u0663: Arabic-Indic 3
def test_startup_timeout_from_the_environment_is_checked_alike(
    pytester: pytest.Pytester, assert_usage_error: Callable[..., None], value: str
) -> None:
    # float() reads any script's digits: the Arabic-Indic 3 used to pass as 3 seconds.
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    pytester._monkeypatch.setenv("PYTEST_PIPELINE_STARTUP_TIMEOUT", value)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert_usage_error(
        result,
        f"*services.startup_timeout in environment variable PYTEST_PIPELINE_STARTUP_TIMEOUT "
        f"must be {RANGE}, got {value!r}.",
    )


# --------------------------------------------------------------------------- local backend


def test_a_hung_version_probe_gives_up_after_startup_timeout(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    """A ``minio --version`` that never returns is abandoned after startup_timeout (not 10 s)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    minio = bin_dir / "minio"
    minio.write_text("#!/bin/sh\nexec sleep 60\n")
    minio.chmod(0o755)
    pytester._monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    result = _run_against(pytester, "s3", {}, "1")
    result.assert_outcomes(errors=3)
    result.stdout.fnmatch_lines(["*minio --version* failed: *timed out after 1.0 seconds*"])


def test_a_watchdog_that_does_not_report_in_time_names_startup_timeout(tmp_path: Path) -> None:
    from pytest_pipeline.errors import ServiceError
    from pytest_pipeline.services import local

    if not local.availability("s3").ok:
        pytest.skip(f"no local s3 here: {local.availability('s3').why_not}")
    # A Python process cannot start and report within a microsecond.
    with pytest.raises(ServiceError, match=r"services\.startup_timeout") as info:
        local.start("s3", tmp_path, root_pid=os.getpid(), timeout=1e-6)
    assert "watchdog" in str(info.value)


# --------------------------------------------------------------------------- slow answers


class Drip:
    """A loopback HTTP server that starts its answer at once and then sends one byte every
    ``period`` seconds, for ever: each socket read is quick, the response never ends.

    ``quick`` methods (e.g. ``{"GET"}``) get a complete ``403`` at once instead. Connections
    are counted per method; the server stops itself after ``lifetime`` seconds.
    """

    def __init__(
        self, period: float = 0.1, quick: frozenset[str] = frozenset(), lifetime: float = 120.0
    ) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self._sock.settimeout(0.1)
        self.port: int = self._sock.getsockname()[1]
        self.requests: dict[str, int] = {}
        self._period = period
        self._quick = quick
        self._stop = threading.Event()
        self._deadline = time.monotonic() + lifetime
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _running(self) -> bool:
        return not self._stop.is_set() and time.monotonic() < self._deadline

    def _serve(self) -> None:
        while self._running():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()
        self._sock.close()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(1.0)
            try:
                method = conn.recv(65536).split(b" ", 1)[0].decode("ascii", "replace")
                self.requests[method] = self.requests.get(method, 0) + 1
                if method in self._quick:
                    conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                    return
                conn.sendall(b"HTTP/1.1 200 OK\r\nX-Pad: ")
                while self._running():
                    conn.sendall(b"a")
                    self._stop.wait(self._period)
            except OSError:
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


@contextmanager
def drip_server(quick: frozenset[str] = frozenset()) -> Iterator[Drip]:
    server = Drip(quick=quick)
    try:
        yield server
    finally:
        server.stop()


def _s3_env(port: int) -> dict[str, str]:
    return {
        "PYTEST_PIPELINE_S3_ENDPOINT": f"http://127.0.0.1:{port}",
        "PYTEST_PIPELINE_S3_ACCESS_KEY": "key",
        "PYTEST_PIPELINE_S3_SECRET_KEY": SECRET,
    }


#: A generous outer bound on a whole pytester run: an unbounded wait never ends at all.
OUTER_BOUND = 90.0


def test_s3_endpoint_that_drips_its_answer_is_given_up_at_startup_timeout(
    pytester: pytest.Pytester,
) -> None:
    # botocore's read timeout bounds each socket read: a byte every 0.1 s never trips it.
    with drip_server() as server:
        result = _run_against(pytester, "s3", _s3_env(server.port), "1.5", OUTER_BOUND)
        requests = dict(server.requests)
    _same_failure_for_every_test(result, "cannot reach the S3 endpoint at http://127.0.0.1:")
    result.stdout.fnmatch_lines(["*no complete answer within services.startup_timeout (1.5 s)*"])
    assert requests == {"GET": 1}, requests


def test_s3_requests_of_a_test_that_drip_are_given_up_at_startup_timeout(
    pytester: pytest.Pytester,
) -> None:
    # The store answers the session's first request (a refusal counts), then drips the rest.
    with drip_server(quick=frozenset({"GET"})) as server:
        result = _run_against(pytester, "s3", _s3_env(server.port), "1.5", OUTER_BOUND)
        requests = dict(server.requests)
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines(
        ["*cannot create S3 bucket * no complete answer within services.startup_timeout (1.5 s)*"]
    )
    assert SECRET not in result.stdout.str()
    # One bucket creation per test, each given up (not retried); nothing else was sent.
    assert requests == {"GET": 1, "PUT": 3}, requests


class StallingProxy:
    """A loopback TCP proxy to a real Postgres that passes the connection's start-up and
    authentication, then swallows the first query (``Q``) or parse (``P``) message and all
    that follows: a server (or middlebox) that hangs while the connection stays up.

    Connections are counted; the proxy stops itself after ``lifetime`` seconds.
    """

    def __init__(self, target: tuple[str, int], lifetime: float = 120.0) -> None:
        self._target = target
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self._sock.settimeout(0.1)
        self.port: int = self._sock.getsockname()[1]
        self.connections = 0
        self.swallowed = 0
        self._stop = threading.Event()
        self._deadline = time.monotonic() + lifetime
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _running(self) -> bool:
        return not self._stop.is_set() and time.monotonic() < self._deadline

    def _serve(self) -> None:
        while self._running():
            try:
                client, _ = self._sock.accept()
            except TimeoutError:
                continue
            self.connections += 1
            server = socket.create_connection(self._target, timeout=5)
            for pump in (self._upstream, self._downstream):
                threading.Thread(target=pump, args=(client, server), daemon=True).start()
        self._sock.close()

    def _recv(self, conn: socket.socket) -> bytes:
        conn.settimeout(0.1)
        while self._running():
            try:
                return conn.recv(65536)
            except TimeoutError:
                continue
        return b""

    def _upstream(self, client: socket.socket, server: socket.socket) -> None:
        """Client to server, message by message, until the first query: then nothing."""
        with contextlib.suppress(OSError):
            self._forward(client, server)
        client.close()
        server.close()

    def _forward(self, client: socket.socket, server: socket.socket) -> None:
        buffer, typed, stalled = b"", False, False
        while chunk := self._recv(client):
            if stalled:
                continue  # read and dropped: the peer stays up and silent
            buffer += chunk
            while True:
                head = 5 if typed else 4
                if len(buffer) < head:
                    break
                kind = buffer[:1] if typed else b""
                size = int.from_bytes(buffer[head - 4 : head], "big") + (1 if typed else 0)
                if kind in (b"Q", b"P"):
                    stalled, buffer = True, b""
                    self.swallowed += 1
                    break
                if len(buffer) < size:
                    break
                server.sendall(buffer[:size])
                buffer, typed = buffer[size:], True

    def _downstream(self, client: socket.socket, server: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while chunk := self._recv(server):
                client.sendall(chunk)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def test_postgres_that_hangs_after_the_handshake_is_given_up_at_startup_timeout(
    pytester: pytest.Pytester, local_postgres: Any
) -> None:
    # connect_timeout covers connecting only: the first admin query used to wait for ever.
    ep = local_postgres.endpoint
    proxy = StallingProxy((ep.host, ep.port))
    try:
        url = f"postgresql://{ep.user}:{ep.password}@127.0.0.1:{proxy.port}/postgres"
        env = {"PYTEST_PIPELINE_POSTGRES_URL": url + "?sslmode=disable"}
        result = _run_against(pytester, "postgres", env, "1.5", OUTER_BOUND)
        connections, swallowed = proxy.connections, proxy.swallowed
    finally:
        proxy.stop()
    _same_failure_for_every_test(result, "did not answer within services.startup_timeout (1.5 s)")
    # The handshake passed and the query was swallowed once: no retry, no later test tried.
    assert (connections, swallowed) == (1, 1), (connections, swallowed)
