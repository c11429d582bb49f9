"""No secret is ever printed: a sweep of failing tests under every display pytest has.

A user's suite runs against real servers (started here by the local backend, reached through
the external backend with known credentials from the environment and pyproject.toml) with
``-vv -l --tb=long -rA --junitxml``. Its tests fail in every way that shows values: locals of
``postgres.dsn`` and ``s3.storage_options``, the ``pipeline_config`` fixture, an assertion diff
on a DSN, a dataclass diff on endpoints, a traceback out of a helper, and printed output. The
password and the secret key must appear nowhere in stdout, stderr or the XML.
"""

from __future__ import annotations

import html
import json
import shlex
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from pytest_pipeline.services.endpoints import PostgresEndpoint
from pytest_pipeline.services.postgres import ensure_template

# Imported before any pytester test: pytester drops modules imported during a test, and a
# psycopg imported again no longer matches the exception classes of its C extension.
psycopg = pytest.importorskip("psycopg")

#: A password with every character a naive masker stops at (space, quotes, '<', '@', '/'), and
#: that repr and JSON escape (quotes, backslash); its end is a second marker for cut reprs.
PG_PASSWORD = "Sw33p pa\"ss'w<rd>@/:x\\LONGSECRET9"
#: An S3 secret key that repr and JSON escape.
S3_SECRET = "S3k'ey\"Zz\\SECRETKEY77"
PG_ROLE = "pp_secret_sweep"
#: Markers of a secret's start and end: no line of output may hold them.
MARKERS = ("Sw33p", "SECRET9", "S3k'", "SECRETKEY")

SWEEP_TESTS = """
import dataclasses
import pytest

pytestmark = pytest.mark.integration


def _connect_with(dsn):
    import psycopg
    with psycopg.connect(dsn, connect_timeout=5) as conn:
        conn.execute("select 1")
    raise RuntimeError("helper failed after connecting")


def test_locals_of_dsn_and_storage_options(postgres, s3, dlq):
    dsn = postgres.dsn
    opts = s3.storage_options
    secret = opts["secret"]
    secret_attr = s3.secret_key
    dialects = {client: s3.storage_options_for(client) for client in ("polars", "pyarrow", "boto3")}
    both = {"dsn": dsn, "opts": opts, "dialects": dialects, "secret_attr": secret_attr}
    assert not both, "shows locals"


def test_diff_on_the_polars_options(s3, dlq):
    assert s3.storage_options_for("polars") == {"aws_secret_access_key": "other"}


def test_clients_work_then_fail_in_a_helper(postgres, s3, dlq):
    import boto3
    opts = s3.storage_options
    client = boto3.client(
        "s3", aws_access_key_id=opts["key"], aws_secret_access_key=opts["secret"],
        **opts["client_kwargs"],
    )
    bucket = s3.bucket("b")
    assert bucket in [b["Name"] for b in client.list_buckets()["Buckets"]]
    _connect_with(postgres.dsn)


def test_pipeline_config(pipeline_config):
    assert pipeline_config.seed == -1


def test_diff_on_the_dsn(postgres_service, dlq):
    assert postgres_service.dsn == "postgresql://someone@elsewhere:5432/postgres"


def test_diff_on_the_dsn_in_a_list(postgres_service, dlq):
    assert [postgres_service.dsn] == ["postgresql://someone@elsewhere:5432/postgres"]


def test_not_in_the_dsn(postgres_service, dlq):
    assert "pp_secret_sweep:" not in postgres_service.dsn


def test_dataclass_diff_on_endpoints(postgres_service, s3_service, dlq):
    pg = postgres_service.endpoint
    assert pg == dataclasses.replace(pg, password="other-password")


def test_derived_strings_and_prints(postgres, s3_service, dlq):
    url = postgres.dsn + "&application_name=x"
    print("connecting to", url, s3_service.endpoint.secret_key)
    assert url.endswith("y")


def test_service_objects(postgres_service, s3_service, dlq):
    assert postgres_service is s3_service


def test_warnings_and_logs(postgres_service, s3_service, dlq):
    import logging
    import warnings
    dsn, key = postgres_service.dsn, s3_service.endpoint.secret_key
    warnings.warn(f"using {dsn} key {key}")
    logging.getLogger("sweep").warning("dsn %s key %s", dsn, key)
    logging.getLogger("sweep").warning(f"formatted {dsn} {key}")
    assert False, "logged"


def test_xfail_with_the_dsn(postgres_service, dlq):
    pytest.xfail(f"flaky against {postgres_service.dsn}")


def test_skip_with_the_dsn(postgres_service, dlq):
    pytest.skip(f"skipped against {postgres_service.dsn}")


def test_record_property(postgres_service, s3_service, record_property, dlq):
    record_property("dsn", postgres_service.dsn)
    record_property("pw", str(postgres_service.endpoint.password))
    record_property("both", {"key": str(s3_service.endpoint.secret_key)})
    assert False, "recorded"
"""

#: Secrets shown escaped (repr, JSON, pytest's %-doubling) or cut by repr truncation: run
#: with ``-l`` but without ``-vv``, where pytest truncates long locals.
ESCAPED_TESTS = """
import json


def test_escaped_and_cut(postgres_service, s3_service, dlq):
    pw = str(postgres_service.endpoint.password)
    key = str(s3_service.endpoint.secret_key)
    dsn = str(postgres_service.dsn)
    print(json.dumps({"k": key, "pw": pw, "dsn": dsn}))
    cmd = "x" * 80 + dsn + "y" * 300  # cut inside the (URL-encoded) password
    cut_pw = "x" * 100 + pw + "y" * 300
    cut_key = "x" * 110 + key + "y" * 300
    tail = "x" * 300 + pw + key
    assert False, "failed against " + dsn + " " + pw
"""


@pytest.fixture
def sweep_role(local_postgres: Any) -> Iterator[PostgresEndpoint]:
    """A role with a known, awkward password on the local server (dropped afterwards)."""
    sql = psycopg.sql

    admin: PostgresEndpoint = local_postgres.endpoint
    ensure_template(admin)  # created by the superuser: the sweep role need not own it
    role = sql.Identifier(PG_ROLE)
    with psycopg.connect(admin.dsn(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN CREATEDB PASSWORD {}").format(
                role, sql.Literal(PG_PASSWORD)
            )
        )
    try:
        yield PostgresEndpoint(admin.host, admin.port, PG_ROLE, PG_PASSWORD)
    finally:
        with psycopg.connect(admin.dsn(), autocommit=True) as conn:
            owned = conn.execute(
                "SELECT datname FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba "
                "WHERE r.rolname = %s",
                (PG_ROLE,),
            ).fetchall()
            for (name,) in owned:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )
            conn.execute(sql.SQL("DROP ROLE {}").format(role))


def _leaks(text: str, secrets: tuple[str, ...] = ()) -> list[str]:
    secrets = (*secrets, PG_PASSWORD, quote(PG_PASSWORD, safe=""), quote(PG_PASSWORD), S3_SECRET)
    return [
        line
        for line in text.splitlines()
        if any(secret in line for secret in secrets) or any(m in line for m in MARKERS)
    ]


def _sweep_config(pytester: pytest.Pytester, role: PostgresEndpoint, local_s3: Any) -> None:
    url = (
        f"postgresql://{PG_ROLE}:{quote(PG_PASSWORD, safe='')}@{role.host}:"
        f"{role.port}/postgres?application_name=sweep"
    )
    # Postgres from the environment, S3 from pyproject.toml: both routes of a secret. The local
    # S3 server takes any key. json.dumps writes a TOML basic string.
    pytester._monkeypatch.setenv("PYTEST_PIPELINE_POSTGRES_URL", url)
    pytester.makepyprojecttoml(
        textwrap.dedent(
            f"""
            [tool.pytest-pipeline.services.s3]
            endpoint = "{local_s3.endpoint.endpoint_url}"
            access_key = "{local_s3.endpoint.access_key}"
            secret_key = {json.dumps(S3_SECRET)}
            """
        )
    )


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_no_secret_in_output_or_junit_xml(
    pytester: pytest.Pytester,
    sweep_role: PostgresEndpoint,
    local_s3: Any,
    tmp_path: Path,
    workers: list[str],
) -> None:
    _sweep_config(pytester, sweep_role, local_s3)
    pytester.makepyfile(test_sweep=SWEEP_TESTS)
    xml = tmp_path / "junit.xml"
    log_file = tmp_path / "run.log"
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-vv", "-l", "--tb=long", "-rA", f"--junitxml={xml}",
        "--log-cli-level=INFO", f"--log-file={log_file}", "--log-file-level=INFO", *workers
    )  # fmt: skip
    out = result.stdout.str() + "\n" + result.stderr.str()
    result.assert_outcomes(failed=12, xfailed=1, skipped=1)
    assert "warnings summary" in out
    assert "using postgresql://pp_secret_sweep:***@" in out  # the warning, masked
    if not workers:  # xdist workers' live log is not shown
        assert "live log call" in out
        assert "dsn postgresql://pp_secret_sweep:***@" in out
    assert "flaky against postgresql://pp_secret_sweep:***@" in out
    assert "formatted postgresql://pp_secret_sweep:***@" in log_file.read_text(encoding="utf-8")
    assert 'name="dsn"' in xml.read_text(encoding="utf-8")
    assert _leaks(log_file.read_text(encoding="utf-8")) == []
    # The failures happened where expected, so every display was exercised ...
    assert "helper failed after connecting" in out  # psycopg connected with postgres.dsn
    assert "dsn        = 'postgresql://pp_secret_sweep:***@" in out  # -l shows the locals
    assert "'secret': '***'" in out
    assert "'aws_secret_access_key': '***'" in out  # storage_options_for's dialects too
    assert "url=" in out
    assert "secret_key=" in out
    assert "connecting to" in out  # the captured print is shown
    # ... and no secret, in any encoding, appears in any of them.
    assert _leaks(out) == []
    assert _leaks(xml.read_text(encoding="utf-8")) == []
    assert _leaks(html.unescape(xml.read_text(encoding="utf-8"))) == []


def test_no_escaped_or_cut_secret_in_output(
    pytester: pytest.Pytester, sweep_role: PostgresEndpoint, local_s3: Any, tmp_path: Path
) -> None:
    _sweep_config(pytester, sweep_role, local_s3)
    pytester.makepyfile(test_escaped=ESCAPED_TESTS)
    xml = tmp_path / "junit.xml"
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-l", "--tb=long", "-rA", f"--junitxml={xml}"
    )
    out = result.stdout.str() + "\n" + result.stderr.str()
    result.assert_outcomes(failed=1)
    assert "cut_pw" in out  # -l shows the (truncated) locals
    assert '{"k": "***", "pw": "***", "dsn": "postgresql://pp_secret_sweep:***@' in out
    assert _leaks(out) == []
    assert _leaks(html.unescape(xml.read_text(encoding="utf-8"))) == []


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"PYTEST_PIPELINE_POSTGRES_URL": "postgresql://app:Ipv6-s3cret pass@[::1:5432/db"},
            "*services.postgres.url (PYTEST_PIPELINE_POSTGRES_URL) cannot be parsed*:***@[::1*",
        ),
        (
            {
                "PYTEST_PIPELINE_S3_ENDPOINT": "http://[::1:9000",
                "PYTEST_PIPELINE_S3_ACCESS_KEY": "key",
                "PYTEST_PIPELINE_S3_SECRET_KEY": "Ipv6-s3cret pass",
            },
            "*services.s3.endpoint (PYTEST_PIPELINE_S3_ENDPOINT) cannot be parsed*",
        ),
    ],
    ids=["postgres", "s3"],
)
def test_malformed_ipv6_url_is_a_clear_error_without_the_secret(
    pytester: pytest.Pytester, request: pytest.FixtureRequest, env: dict[str, str], message: str
) -> None:
    for name, value in env.items():
        pytester._monkeypatch.setenv(name, value)
    pytester.makepyprojecttoml("[tool.pytest-pipeline]\n")
    pytester.makepyfile(
        test_v6="""
        import pytest

        @pytest.mark.integration
        def test_service(SERVICE_service, dlq):
            dlq.assert_count(0, 0)
        """.replace("SERVICE", request.node.callspec.id)
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-vv", "-l", "--tb=long")
    out = result.stdout.str() + result.stderr.str()
    result.assert_outcomes(errors=1)
    assert "Ipv6-s3cret" not in out
    assert "Traceback" not in out
    assert "ValueError" not in out
    result.stdout.fnmatch_lines([message])


def test_keep_failed_prints_a_pasteable_command_for_local_servers(
    pytester: pytest.Pytester, local_postgres: Any, local_s3: Any
) -> None:
    pytester.makepyprojecttoml('[tool.pytest-pipeline.services]\nbackend = "local"\n')
    pytester.makepyfile(
        test_kept="""
        import pytest

        @pytest.mark.integration
        def test_fails(postgres, s3, dlq):
            postgres.execute("create table evidence (id int)")
            s3.bucket("out")
            with open("dsn.txt", "w") as f:
                f.write(postgres.dsn)
            assert False
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--pipeline-keep-failed")
    result.assert_outcomes(failed=1)
    dsn = (pytester.path / "dsn.txt").read_text()
    password = dsn.split("@")[0].rsplit(":", 1)[1]
    out = result.stdout.str()
    # The failure report masks it; the kept-data section gives what a person can paste.
    report, _, kept = out.partition("pytest-pipeline: kept after failure")
    assert password not in report
    assert f"psql {shlex.quote(dsn)}" in kept
    assert "throwaway" in kept
    assert "AWS_SECRET_ACCESS_KEY=" in kept
    assert "aws --endpoint-url" in kept
