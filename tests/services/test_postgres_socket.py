"""The local Postgres server's private unix socket: the plugin's own connections use it.

A new connection over TCP pays scram-sha-256 (~9 ms); one over the socket with ``trust`` ~3 ms.
The socket lives in a directory only the server user can enter (0700), inside our checked
per-user directory, so ``trust`` there lets in no one who could not already read the server's
data; TCP stays behind the password. Users' URLs (``postgres.dsn``) are unchanged: TCP.
Another user is played by uid 12345 (the tests run as root in CI containers).
"""

from __future__ import annotations

import dataclasses
import os
import socket
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pytest_pipeline import _safedir
from pytest_pipeline.errors import ServiceError
from pytest_pipeline.services import local, postgres
from pytest_pipeline.services.endpoints import (
    PostgresEndpoint,
    endpoint_from_dict,
    endpoint_to_dict,
)
from pytest_pipeline.services.local import ServerRecord, _postgres

psycopg = pytest.importorskip("psycopg")

OTHER_UID = 12345


def _endpoint(record: ServerRecord) -> PostgresEndpoint:
    endpoint = record.endpoint
    assert isinstance(endpoint, PostgresEndpoint)
    return endpoint


def _server_uid() -> int:
    user = _postgres._server_user()
    return user[1] if user else os.geteuid()


def _server_addr(db: postgres.PostgresDatabase) -> str | None:
    """Where the server took this session: None over a unix socket."""
    addr = db.fetch("SELECT inet_server_addr()::text AS addr")[0]["addr"]
    return None if addr is None else str(addr).removesuffix("/32")


@pytest.fixture
def database(
    local_postgres: ServerRecord, request: pytest.FixtureRequest
) -> Iterator[postgres.PostgresDatabase]:
    db = postgres.create_database(_endpoint(local_postgres), f"sock-{request.node.name[:40]}")
    try:
        yield db
    finally:
        db.close(delete=True)


def test_the_per_test_connection_goes_over_the_private_socket(
    local_postgres: ServerRecord, database: postgres.PostgresDatabase
) -> None:
    endpoint = _endpoint(local_postgres)
    sockdir = Path(endpoint.socket_dir)
    assert sockdir.is_absolute(), "the local server offers no unix socket"
    st = os.lstat(sockdir)
    assert stat.S_ISDIR(st.st_mode), "not a directory (or a symlink)"
    # Only the server user may enter it (root reaches it as root); its parent is ours.
    assert (st.st_uid, oct(stat.S_IMODE(st.st_mode))) == (_server_uid(), "0o700")
    assert _safedir.check(sockdir.parent)
    sock = sockdir / f".s.PGSQL.{endpoint.port}"
    assert sock.is_socket()
    assert oct(stat.S_IMODE(os.lstat(sock).st_mode)) == "0o700"  # unix_socket_permissions
    # inet_server_addr() is NULL on a unix-socket session: the test's connection and the
    # plugin's admin connection (which made the database) both use the socket.
    assert _server_addr(database) is None
    assert postgres._admin(endpoint, "SELECT inet_server_addr()")[0][0] is None


def test_users_urls_stay_tcp_with_the_password(database: postgres.PostgresDatabase) -> None:
    dsn = str(database.dsn)
    assert dsn.startswith(f"postgresql://postgres:{database.endpoint.password}@127.0.0.1:")
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT inet_server_addr()").fetchone()[0] is not None


def test_tcp_still_needs_the_password(
    local_postgres: ServerRecord, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint = _endpoint(local_postgres)
    for name in ("PGPASSWORD", "PGPASSFILE", "PGHOST", "PGSERVICE"):
        monkeypatch.delenv(name, raising=False)
    where = {"host": "127.0.0.1", "port": endpoint.port, "user": "postgres", "dbname": "postgres"}
    for password in ("", "wrong"):
        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(**where, password=password, passfile=os.devnull, connect_timeout=5)


def _as_user(uid: int, body: Callable[[], int]) -> int:
    """Run ``body`` in a forked child switched to ``uid``; returns what it returned (< 256)."""
    pid = os.fork()
    if pid == 0:
        status = 70
        try:
            if uid != os.geteuid():
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)
            status = body()
        finally:
            os._exit(status)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


@pytest.mark.skipif(os.geteuid() != 0, reason="plays another user with setuid")
def test_another_user_cannot_reach_the_socket(local_postgres: ServerRecord) -> None:
    endpoint = _endpoint(local_postgres)
    path = str(Path(endpoint.socket_dir) / f".s.PGSQL.{endpoint.port}")

    def connect() -> int:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            try:
                sock.connect(path)
            except PermissionError:
                return 13
            except OSError:
                return 1
        return 0

    assert _as_user(os.geteuid(), connect) == 0, "the socket is not there to refuse anyone"
    assert _as_user(OTHER_UID, connect) == 13, "another user reached the trusted socket"


def _reaching_the_server(where: Path, mode: int, endpoint: PostgresEndpoint) -> Path:
    """A directory ``where`` (``mode``) whose socket file leads to the real server's socket:
    only the directory check keeps the plugin from logging in there without a password."""
    where.mkdir(mode=mode)
    os.chmod(where, mode)
    name = f".s.PGSQL.{endpoint.port}"
    (where / name).symlink_to(Path(endpoint.socket_dir) / name)
    return where


def _addr_via(endpoint: PostgresEndpoint, socket_dir: Path, label: str) -> str | None:
    """The server address of a test database's connection, the endpoint naming ``socket_dir``."""
    changed = dataclasses.replace(endpoint, socket_dir=str(socket_dir))
    db = postgres.create_database(changed, f"sock-{label.replace(' ', '-')}")
    try:
        return _server_addr(db)
    finally:
        db.close(delete=True)
        postgres.close_admin_connections(changed)


@pytest.mark.parametrize("how", ["symlink", "mode 0755", "parent writable by others", "missing"])
def test_an_unsafe_socket_directory_is_not_used(
    local_postgres: ServerRecord, tmp_path: Path, how: str
) -> None:
    endpoint = _endpoint(local_postgres)
    where = tmp_path / "sock"
    if how == "symlink":
        where.symlink_to(endpoint.socket_dir)
    elif how == "mode 0755":
        _reaching_the_server(where, 0o755, endpoint)
    elif how == "parent writable by others":
        (tmp_path / "open").mkdir()
        os.chmod(tmp_path / "open", 0o777)
        where = _reaching_the_server(tmp_path / "open" / "sock", 0o700, endpoint)
    assert _addr_via(endpoint, where, how) == "127.0.0.1", "an unsafe socket directory was used"
    if how in ("mode 0755", "parent writable by others"):
        # Control: made safe, the same directory reaches the server over the socket.
        os.chmod(where, 0o700)
        os.chmod(where.parent, 0o700)
        assert _addr_via(endpoint, where, f"{how} fixed") is None


def test_a_socket_that_does_not_answer_falls_back_to_tcp(
    local_postgres: ServerRecord, tmp_path: Path
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir(mode=0o700)
    assert _addr_via(_endpoint(local_postgres), empty, "silent") == "127.0.0.1"


def test_a_socket_that_hangs_is_not_waited_for_twice(
    local_postgres: ServerRecord, tmp_path: Path
) -> None:
    # A listener that accepts and never answers, as a hung server would: the connect timeout
    # is the answer (a fallback to TCP would wait for the same hung server again).
    hung = tmp_path / "hung"
    hung.mkdir(mode=0o700)
    endpoint = dataclasses.replace(_endpoint(local_postgres), socket_dir=str(hung))
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(hung / f".s.PGSQL.{endpoint.port}"))
        listener.listen(1)
        db = postgres.PostgresDatabase(endpoint, "postgres")
        with pytest.raises(ServiceError, match="timeout"):
            db.connect(connect_timeout=1)
    assert endpoint not in postgres._socket_failed


def test_the_socket_directory_reaches_xdist_workers(local_postgres: ServerRecord) -> None:
    endpoint = _endpoint(local_postgres)
    again = endpoint_from_dict("postgres", endpoint_to_dict(endpoint))
    assert endpoint.socket_dir
    assert again == endpoint  # socket_dir included
    # A state file written before the field existed still reads (TCP only).
    old = {k: v for k, v in endpoint_to_dict(endpoint).items() if k != "socket_dir"}
    assert endpoint_from_dict("postgres", old) == dataclasses.replace(endpoint, socket_dir="")


def test_a_socket_path_too_long_falls_back_to_tcp_and_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if not local.availability("postgres").ok:
        pytest.skip("no local postgres here")
    # A deep temp root the server user can pass through (0711, in our per-user directory):
    # whichever directory the data lands in, the socket path is longer than sun_path allows.
    user = _safedir.user_dir(Path(tempfile.gettempdir()))
    deep = user / ("long-" + "d" * 90)
    deep.mkdir(mode=0o711)
    os.chmod(deep, 0o711)
    monkeypatch.setenv(_postgres.TMPFS_ENV, "0")
    monkeypatch.setenv("TMPDIR", str(deep))
    monkeypatch.setattr(tempfile, "tempdir", str(deep))
    run_dir = deep / "run"
    run_dir.mkdir(mode=0o711)
    try:
        record = local.start("postgres", run_dir, root_pid=os.getpid(), timeout=60)
        try:
            endpoint = _endpoint(record)
            assert endpoint.socket_dir == ""
            assert "TCP only" in record.description
            assert "107 bytes" in record.description
            db = postgres.create_database(endpoint, "sock-too-long")
            try:
                assert _server_addr(db) == "127.0.0.1"
            finally:
                db.close(delete=True)
                postgres.close_admin_connections(endpoint)
        finally:
            local.stop(record)
    finally:
        monkeypatch.undo()
        _safedir.remove(deep, [user])
    assert not deep.exists()


FIXTURE_TEST = """
import pytest

@pytest.mark.parametrize("n", range(2))
def test_socket(postgres, postgres_service, n):
    # The fixture's connection: over the socket; the URL users get: TCP with the password.
    assert postgres.fetch("select inet_server_addr() as a") == [{"a": None}]
    assert postgres.endpoint.socket_dir == postgres_service.endpoint.socket_dir != ""
    assert str(postgres.dsn).startswith("postgresql://postgres:")
    assert "@127.0.0.1:" in str(postgres.dsn)
"""


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "-n 2"])
def test_the_postgres_fixture_uses_the_socket(
    pytester: pytest.Pytester, workers: list[str]
) -> None:
    if not local.availability("postgres").ok:
        pytest.skip("no local postgres here")
    pytester.makepyprojecttoml('[tool.pytest-pipeline]\nservices = { backend = "local" }\n')
    pytester.makepyfile(test_socket=FIXTURE_TEST)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *workers)
    result.assert_outcomes(passed=2)
