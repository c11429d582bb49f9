"""The service fixtures end to end: real pytest sessions (pytester) against real local servers.

Each test writes a small pipeline repo and runs pytest on it in a subprocess, so servers,
watchdogs and signals behave as in a user's run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pytest_pipeline.services.manager import temp_root

pytestmark = pytest.mark.usefixtures("no_leftovers")

PIPELINE = '''
"""A tiny pipeline: Kafka in, Postgres and S3 out, bad records to a DLQ topic."""
import json
from confluent_kafka import Consumer, Producer, TopicPartition
import boto3, psycopg


def run(consumer_conf, producer_conf, source, dlq_topic, dsn, s3_endpoint, bucket, expected):
    consumer = Consumer(consumer_conf)
    consumer.subscribe([source])  # a consumer group, as a deployed pipeline runs
    good, bad = [], []
    while len(good) + len(bad) < expected:
        message = consumer.poll(30)
        record = json.loads(message.value())
        (good if isinstance(record.get("amount"), (int, float)) else bad).append(record)
    consumer.close()
    producer = Producer(producer_conf)
    for record in bad:
        producer.produce(dlq_topic, json.dumps(record).encode())
    producer.flush(10)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("create table payments (id text, amount float)")
        for record in good:
            conn.execute("insert into payments values (%s, %s)", (record["id"], record["amount"]))
    client = boto3.client("s3", endpoint_url=s3_endpoint["url"],
                          aws_access_key_id=s3_endpoint["key"],
                          aws_secret_access_key=s3_endpoint["secret"], region_name="us-east-1")
    body = "\\n".join(json.dumps(r) for r in good)
    client.put_object(Bucket=bucket, Key="silver/part-0.jsonl", Body=body.encode())
    return len(good), len(bad)
'''

PIPELINE_TEST = """
import pytest
from pipeline import run

EVENTS = [{"id": "a", "amount": 1.5}, {"id": "b", "amount": "N/A"}, {"id": "c", "amount": 2}]


@pytest.mark.integration
def test_pipeline(kafka, postgres, s3, s3_service, dlq):
    source, dead = kafka.topic("payments"), kafka.topic("payments-dlq")
    bucket = s3.bucket("silver")
    kafka.produce(source, EVENTS)
    endpoint = s3_service.endpoint
    written, rejected = run(kafka.consumer_config(), kafka.producer_config(), source, dead,
                            postgres.dsn,
                            {"url": s3.endpoint_url, "key": endpoint.access_key,
                             "secret": endpoint.secret_key}, bucket, len(EVENTS))
    assert postgres.fetch("select id from payments order by id") == [{"id": "a"}, {"id": "c"}]
    assert [r["id"] for r in s3.read_records(bucket, "silver/")] == ["a", "c"]
    dlq.assert_count(dead, 1)
"""


def _our_processes() -> list[str]:
    """Local servers and watchdogs of runs under our temp root.

    The local backend marks each server with ``PYTEST_PIPELINE_LOCAL_SERVER=<workdir>`` in its
    environment (command lines are no help: Postgres rewrites them as process titles).
    """
    marker = f"PYTEST_PIPELINE_LOCAL_SERVER={temp_root()}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            environ = (proc / "environ").read_bytes()
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if any(entry.startswith(marker) for entry in environ.split(b"\0")):
            found.append(f"{proc.name}: {cmdline[:200]}")
    return found


def _runs() -> set[str]:
    root = temp_root()
    return {p.name for p in root.glob("run-*")} if root.exists() else set()


@pytest.fixture
def no_leftovers() -> object:
    """Every test here must leave no server process and no run directory behind."""
    before_runs = _runs()
    before_procs = set(_our_processes())
    yield None
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        leaked = set(_our_processes()) - before_procs
        runs = _runs() - before_runs
        if not leaked and not runs:
            return
        time.sleep(0.2)
    raise AssertionError(f"leftovers after the run: processes {leaked}, run dirs {runs}")


def _project(pytester: pytest.Pytester, toml: str = "", **files: str) -> None:
    pytester.makepyprojecttoml("[tool.pytest-pipeline]\n" + textwrap.dedent(toml))
    pytester.makepyfile(**{name: textwrap.dedent(body) for name, body in files.items()})


def test_pipeline_repo_kafka_in_postgres_and_s3_out(pytester: pytest.Pytester) -> None:
    _project(pytester, pipeline=PIPELINE, test_pipeline=PIPELINE_TEST)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    out = result.stdout.str()
    for service in ("postgres", "kafka", "s3"):
        starts = [line for line in out.splitlines() if line.startswith(f"{service}: local ")]
        assert len(starts) == 1, out
        assert " ready in " in starts[0]
    result.stdout.fnmatch_lines(["DLQ assertions: 1 of 1 integration tests"])


ISOLATION = """
import pytest

pytestmark = pytest.mark.integration
seen = {}


@pytest.mark.parametrize("round", [1, 2])
def test_each_test_has_its_own_namespace(postgres, kafka, s3, dlq, round):
    tables = postgres.fetch("select tablename from pg_tables where tablename = 'mine'")
    assert tables == []
    postgres.execute("create table mine (id int)")
    topic, bucket = kafka.topic("events"), s3.bucket("out")
    assert kafka.count(topic) == 0
    assert s3.client.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0
    kafka.produce(topic, [{"round": round}])
    s3.put_records(bucket, "a.json", [{"round": round}])
    for name, value in (("db", postgres.name), ("topic", topic), ("bucket", bucket)):
        assert value not in seen.values()
        seen[f"{name}{round}"] = value
    dlq.assert_count(topic, 1)


def test_namespaces_of_earlier_tests_are_dropped(postgres_service, kafka_service, s3, dlq):
    import psycopg
    from confluent_kafka.admin import AdminClient

    with psycopg.connect(postgres_service.dsn) as conn:
        names = {r[0] for r in conn.execute("select datname from pg_database")}
    assert not {v for k, v in seen.items() if k.startswith("db")} & names
    topics = AdminClient({"bootstrap.servers": kafka_service.bootstrap_servers}).list_topics(
        timeout=10).topics
    assert not {v for k, v in seen.items() if k.startswith("topic")} & set(topics)
    buckets = {b["Name"] for b in s3.client.list_buckets()["Buckets"]}
    assert not {v for k, v in seen.items() if k.startswith("bucket")} & buckets
    dlq.assert_count(0, 0)
"""


def test_each_test_gets_fresh_database_topics_and_buckets(pytester: pytest.Pytester) -> None:
    _project(pytester, test_isolation=ISOLATION)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly")
    result.assert_outcomes(passed=3)


def test_xdist_workers_share_one_server_per_service(pytester: pytest.Pytester) -> None:
    tests = {
        f"test_w{i}": """
            import pytest

            @pytest.mark.integration
            @pytest.mark.parametrize("n", range(3))
            def test_roundtrip(postgres, kafka, dlq, n):
                postgres.execute("create table t (n int)")
                postgres.insert("t", [{"n": n}])
                topic = kafka.topic("dlq")
                kafka.produce(topic, [{"n": n}] * n)
                assert postgres.fetch("select n from t") == [{"n": n}]
                dlq.assert_count(topic, n)
            """
        for i in range(2)
    }
    _project(pytester, **tests)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2")
    result.assert_outcomes(passed=6)
    out = result.stdout.str()
    assert out.count("postgres: local ") == 1, out
    assert out.count("kafka: local ") == 1, out
    result.stdout.fnmatch_lines(["DLQ assertions: 6 of 6 integration tests"])


def test_failing_run_stops_servers_too(pytester: pytest.Pytester) -> None:
    _project(
        pytester,
        test_fail="""
        import pytest

        @pytest.mark.integration
        def test_breaks(postgres, dlq):
            dlq.assert_count(0, 0)
            assert postgres.fetch("select 1 as one") == [{"one": 2}]
        """,
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)


def test_dlq_topic_count_mismatch_and_foreign_topic(pytester: pytest.Pytester) -> None:
    _project(
        pytester,
        test_dlq="""
        import pytest

        pytestmark = pytest.mark.integration

        def test_mismatch(kafka, dlq):
            topic = kafka.topic("dead")
            kafka.produce(topic, [{"bad": 1}, {"bad": 2}])
            dlq.assert_count(topic, 1)

        def test_foreign(kafka, dlq):
            dlq.assert_count("somebody-elses-topic", 0)
        """,
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "*DLQ count of pp-*-dead (kafka.topic('dead')): expected 1, got 2",
            "E *first 2 DLQ record(s):",
            "E *{'bad': 1}",
            "E *{'bad': 2}",
            "*'somebody-elses-topic' is not a Kafka topic of this test*",
        ],
        consecutive=False,
    )


KILL_TEST = """
import json, os, time
import pytest

@pytest.mark.integration
def test_hangs(postgres_service, kafka_service, s3_service, dlq):
    from pytest_pipeline.services.manager import temp_root
    out = {"run_dirs": [str(p) for p in temp_root().glob("run-*")]}
    with open(os.environ["READY_FILE"] + ".tmp", "w") as handle:
        json.dump(out, handle)
    os.replace(os.environ["READY_FILE"] + ".tmp", os.environ["READY_FILE"])
    time.sleep(120)
    dlq.assert_count(0, 0)
"""


def _run_until_ready(
    pytester: pytest.Pytester, tmp_path: Path
) -> tuple[subprocess.Popen[bytes], dict[str, list[str]]]:
    _project(pytester, test_kill=KILL_TEST)
    ready = tmp_path / "ready.json"
    env = {**os.environ, "READY_FILE": str(ready)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-s"],
        cwd=pytester.path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        # A suite started in the background (CI scripts, `cmd &`) inherits an ignored SIGINT,
        # which Python keeps: give the run the Ctrl-C a terminal would deliver.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 60
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            out = proc.stdout.read().decode() if proc.stdout else ""
            proc.kill()
            raise AssertionError(f"pytest did not get its servers up:\n{out}")
        time.sleep(0.1)
    return proc, json.loads(ready.read_text())


def test_kill_9_of_pytest_leaves_no_server_or_directory(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    proc, info = _run_until_ready(pytester, tmp_path)
    assert info["run_dirs"], "the run directory should exist while servers run"
    assert _our_processes(), "servers should be running"
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    if proc.stdout:
        proc.stdout.close()
    # no_leftovers waits (bounded) for the watchdogs to stop the servers and remove the dirs.


def test_ctrl_c_stops_servers(pytester: pytest.Pytester, tmp_path: Path) -> None:
    proc, _ = _run_until_ready(pytester, tmp_path)
    proc.send_signal(signal.SIGINT)
    try:
        out = proc.communicate(timeout=120)[0].decode()
    except subprocess.TimeoutExpired as exc:
        proc.kill()  # not left running to spoil the tests after this one
        partial = (exc.output or b"").decode(errors="replace")
        raise AssertionError(f"pytest did not end within 120 s of Ctrl-C:\n{partial}") from None
    assert "KeyboardInterrupt" in out, out


def test_run_directory_of_a_dead_run_without_servers_is_reaped(tmp_path: Path) -> None:
    from pytest_pipeline.services.manager import _reap_dead_runs

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / "run-dead01"
    stale.mkdir()
    (stale / "root.json").write_text(json.dumps({"root_pid": dead.pid}))
    alive = tmp_path / "run-alive1"
    alive.mkdir()
    (alive / "root.json").write_text(json.dumps({"root_pid": os.getpid()}))
    with_server = tmp_path / "run-srv001"
    (with_server / "postgres-0123456789ab").mkdir(parents=True)
    (with_server / "root.json").write_text(json.dumps({"root_pid": dead.pid}))
    _reap_dead_runs(tmp_path)
    assert not stale.exists()
    assert alive.exists()
    assert with_server.exists()  # servers' directories are reap_stale's to judge
