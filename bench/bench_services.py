"""Service benchmarks: per-test isolation cost, and a 200-test suite serial vs -n 2.

Run through ``python bench/run.py services`` (writes docs/benchmarks.md) or directly
(prints Markdown).
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

from pytest_pipeline.services import local
from pytest_pipeline.services.endpoints import KafkaEndpoint, PostgresEndpoint, S3Endpoint

ROOT = Path(__file__).resolve().parents[1]


def _median_ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:.1f}"


def _time(fn: Callable[[], object], rounds: int) -> list[float]:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return samples


def isolation(rounds: int) -> list[str]:
    """Milliseconds per test for a fresh database / topic / bucket, against a baseline."""
    from pytest_pipeline.services.kafka import KafkaNamespace
    from pytest_pipeline.services.postgres import create_database, drop_database, ensure_template
    from pytest_pipeline.services.s3 import S3Namespace

    rows = [
        "| per-test isolation | median ms (create + drop) | baseline | baseline ms |",
        "|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory() as run_dir:
        os.chmod(run_dir, 0o755)
        records = {
            name: local.start(name, Path(run_dir), root_pid=os.getpid(), timeout=60)
            for name in ("postgres", "kafka", "s3")
        }
        try:
            pg = records["postgres"].endpoint
            assert isinstance(pg, PostgresEndpoint)
            ensure_template(pg)
            counter = iter(range(10**6))

            def database() -> None:
                name = f"bench_{next(counter)}"
                create_database(pg, name).close()
                drop_database(pg, name)

            import psycopg

            shared = create_database(pg, "bench_shared")
            shared.execute("create table t (id int)")

            def bare() -> None:
                # What a suite sharing one database pays per test: connect, clean, close.
                with psycopg.connect(shared.dsn, autocommit=True) as conn:
                    conn.execute("truncate t")

            db_ms, bare_ms = _time(database, rounds), _time(bare, rounds)
            rows.append(
                f"| database (CREATE DATABASE ... TEMPLATE) | {_median_ms(db_ms)} | "
                f"shared database, connect + TRUNCATE | {_median_ms(bare_ms)} |"
            )
            shared.close()
            socket_rows = per_test_database(pg, rounds * 2)

            kafka = records["kafka"].endpoint
            assert isinstance(kafka, KafkaEndpoint)

            def topic() -> None:
                namespace = KafkaNamespace(kafka.bootstrap_servers, f"bench-{next(counter)}")
                namespace.topic("events")
                namespace.close()

            topic()  # first admin connection outside the measurement
            topic_ms = _median_ms(_time(topic, rounds))
            rows.append(f"| topic (create, wait usable, delete) | {topic_ms} | | |")

            s3 = records["s3"].endpoint
            assert isinstance(s3, S3Endpoint)

            def bucket() -> None:
                namespace = S3Namespace(s3, f"bench-{next(counter)}")
                namespace.bucket("out")
                namespace.close()

            bucket()
            rows.append(f"| bucket (create, delete) | {_median_ms(_time(bucket, rounds))} | | |")
        finally:
            for record in records.values():
                local.stop(record)
    return [*rows, "", *socket_rows]


def per_test_database(pg: PostgresEndpoint, rounds: int) -> list[str]:
    """What the ``postgres`` fixture costs a test on the local server, over its private unix
    socket (trust) and over TCP (scram-sha-256), rounds interleaved: a fresh database, one
    connection to it running one statement, and the drop (with the settings/roles checks)."""
    import psycopg

    from pytest_pipeline.services.postgres import create_database

    assert pg.socket_dir, "the local server has no unix socket (its path is too long?)"
    ways = {"unix socket, trust": pg, "TCP, scram-sha-256": dataclasses.replace(pg, socket_dir="")}
    counter = iter(range(10**6))

    def fresh(endpoint: PostgresEndpoint) -> None:
        db = create_database(endpoint, f"bench_fresh_{next(counter)}")
        db.execute("select 1")
        db.close(delete=True)

    def connect(endpoint: PostgresEndpoint) -> None:
        psycopg.connect(endpoint.dsn(), host=endpoint.socket_dir or endpoint.host).close()

    samples: dict[tuple[str, str], list[float]] = {}
    for _ in range(rounds):
        for label, endpoint in ways.items():
            for what, fn in (("fresh", fresh), ("connect", connect)):
                started = time.perf_counter()
                fn(endpoint)
                samples.setdefault((label, what), []).append(time.perf_counter() - started)
    rows = [
        "| per-test `postgres` (local server) | fresh database + connection, median ms "
        "| new connection alone, median ms |",
        "|---|---|---|",
    ]
    for label in ways:
        fresh_ms, connect_ms = samples[(label, "fresh")], samples[(label, "connect")]
        rows.append(f"| {label} | {_median_ms(fresh_ms)} | {_median_ms(connect_ms)} |")
    rows += [
        "",
        "One server, rounds interleaved. The plugin's own connections use the socket (its "
        "directory only the server user can enter); `postgres.dsn` stays TCP with the password.",
    ]
    return rows


SUITE_TEST = """
import pytest

@pytest.mark.integration
@pytest.mark.parametrize("i", range({count}))
def test_roundtrip(postgres, kafka, s3, dlq, i):
    postgres.execute("create table out (id int, v text)")
    postgres.insert("out", [{{"id": i, "v": "x"}}])
    topic = kafka.topic("dlq")
    kafka.produce(topic, [{{"id": i}}])
    bucket = s3.bucket("sink")
    s3.put_records(bucket, "part.jsonl", [{{"id": i}}])
    assert postgres.fetch("select count(*) as n from out")[0]["n"] == 1
    assert len(s3.read_records(bucket)) == 1
    dlq.assert_count(topic, 1)
"""


def suite(count: int) -> list[str]:
    """Wall time of a `count`-test integration suite, serial and with -n 2, side by side."""
    rows = [
        f"| {count}-test integration suite (postgres + kafka + s3 per test) | wall time (s) |",
        "|---|---|",
    ]
    with tempfile.TemporaryDirectory() as project:
        path = Path(project)
        (path / "pyproject.toml").write_text("[tool.pytest-pipeline]\n")
        (path / "test_suite.py").write_text(textwrap.dedent(SUITE_TEST.format(count=count)))
        for label, extra in (("serial", []), ("-n 2", ["-n", "2"])):
            started = time.perf_counter()
            result = subprocess.run(
                [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra],
                cwd=path,
                capture_output=True,
                text=True,
                check=False,
            )
            elapsed = time.perf_counter() - started
            if result.returncode != 0:
                raise SystemExit(f"suite failed ({label}):\n{result.stdout[-3000:]}")
            rows.append(f"| {label} | {elapsed:.1f} |")
    return rows


def run() -> str:
    """All service benchmarks as Markdown."""
    parts = [
        "### Per-test isolation",
        "",
        *isolation(rounds=30),
        "",
        "### Integration suite",
        "",
        *suite(200),
        "",
    ]
    return "\n".join(parts)


if __name__ == "__main__":
    print(run())
