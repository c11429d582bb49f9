"""Isolation a test cannot break, and cleanup that removes what it was asked to remove.

Against real local servers: Postgres roles a test creates are dropped after it (and never
another xdist worker's), a test that poisons the template database does not reach the next
test's "fresh" database, and an S3 bucket with more than 1,000 objects (or versions and delete
markers) is really deleted at teardown.
"""

from __future__ import annotations

import dataclasses
import textwrap
import uuid
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from pytest_pipeline.errors import ServiceError
from pytest_pipeline.services import postgres as pg
from pytest_pipeline.services.endpoints import PostgresEndpoint, S3Endpoint
from pytest_pipeline.services.s3 import S3Namespace

psycopg = pytest.importorskip("psycopg")
pytest.importorskip("boto3")


def _project(pytester: pytest.Pytester, **files: str) -> None:
    pytester.makepyprojecttoml("[tool.pytest-pipeline]\n")
    pytester.makepyfile(**{name: textwrap.dedent(body) for name, body in files.items()})


# --------------------------------------------------------------------------- roles

ROLES = """
import pytest


@pytest.mark.parametrize("round", [1, 2])
def test_creates_app_user(postgres, round):
    # A raw, fixed name, as application code does: the second round must not find it.
    postgres.execute("create table t (id int)")
    postgres.execute("create role app_user login")
    postgres.execute("grant select on t to app_user")
    named = postgres.role("reader")
    assert named != "reader" and named.endswith("_reader")
    postgres.execute(f'create role "{named}"')


def test_roles_of_earlier_tests_are_gone(postgres_service):
    import psycopg

    with psycopg.connect(postgres_service.dsn) as conn:
        roles = {r[0] for r in conn.execute("select rolname from pg_roles")}
    assert "app_user" not in roles
    assert not {r for r in roles if r.endswith("_reader")}, roles
"""


def test_roles_a_test_created_are_dropped_after_it(pytester: pytest.Pytester) -> None:
    _project(pytester, test_roles=ROLES)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly")
    result.assert_outcomes(passed=3)


# Two tests on two xdist workers at the same time: the first ends while the second's role,
# created after the first test's database was handed out, is still in use.
CONCURRENT_A = """
import time
import psycopg


def test_short(postgres, postgres_service):
    postgres.execute("create table a (id int)")
    postgres.execute("create role role_a")
    postgres.execute("grant select on a to role_a")
    deadline = time.monotonic() + 60
    with psycopg.connect(postgres_service.dsn, autocommit=True) as conn:
        # This test's database exists: the other test may now create its role.
        conn.execute("insert into pp_sync.marks values (%s)", (postgres.name,))
        while not conn.execute("select 1 from pg_roles where rolname = 'role_b'").fetchall():
            assert time.monotonic() < deadline, "the other worker's test never created role_b"
            time.sleep(0.05)
"""

CONCURRENT_B = """
import time
import psycopg


def test_long(postgres, postgres_service):
    deadline = time.monotonic() + 60
    with psycopg.connect(postgres_service.dsn, autocommit=True) as conn:
        marks = []
        while not marks:  # until the other test's database was handed out
            marks = conn.execute("select name from pp_sync.marks").fetchall()
            assert time.monotonic() < deadline, "the other worker's test never started"
            time.sleep(0.05)
        postgres.execute("create table b (id int)")
        postgres.execute("create role role_b")
        postgres.execute("grant select on b to role_b")
        # Until the other test has ended: its database is gone, then its roles (its teardown).
        query = "select 1 from pg_database where datname = %s"
        query += " union all select 1 from pg_roles where rolname = 'role_a'"
        while conn.execute(query, (marks[0][0],)).fetchall():
            assert time.monotonic() < deadline, "the other worker's teardown never ended"
            time.sleep(0.05)
        roles = {r[0] for r in conn.execute("select rolname from pg_roles")}
    assert "role_b" in roles, "another worker's teardown dropped this test's role"
    assert "role_a" not in roles
    assert postgres.fetch("select has_table_privilege('role_b', 'b', 'select') as ok") == [
        {"ok": True}
    ]
"""

CONCURRENT_CONFTEST = """
import psycopg
import pytest


@pytest.fixture(scope="session", autouse=True)
def sync_schema(postgres_service):
    with psycopg.connect(postgres_service.dsn) as conn:  # one transaction: both workers run it
        conn.execute("select pg_advisory_xact_lock(4242)")
        conn.execute("create schema if not exists pp_sync")
        conn.execute("create table if not exists pp_sync.marks (name text)")
"""


def test_a_teardown_never_drops_another_workers_role(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    _project(pytester, conftest=CONCURRENT_CONFTEST, test_a=CONCURRENT_A, test_b=CONCURRENT_B)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-n", "2", "--dist", "loadfile"
    )
    result.assert_outcomes(passed=2)


# --------------------------------------------------------------------------- the template

POISON = """
import psycopg
import pytest

TEMPLATE = "pytest_pipeline_template"
held = []


def _template_dsn(postgres_service):
    return postgres_service.endpoint.dsn(TEMPLATE)


def test_1_poisons_the_template_and_hides_it(postgres_service):
    with psycopg.connect(postgres_service.dsn, autocommit=True) as admin:
        admin.execute(f"alter database {TEMPLATE} allow_connections true")
        with psycopg.connect(_template_dsn(postgres_service), autocommit=True) as conn:
            conn.execute("create table poison (id int)")
        # Flags back as they were: only the content gives it away.
        admin.execute(f"alter database {TEMPLATE} allow_connections false")


def test_2_fresh_database_is_clean(postgres):
    assert postgres.fetch("select tablename from pg_tables where tablename = 'poison'") == []


def test_3_opens_the_template_and_stays_connected(postgres_service):
    with psycopg.connect(postgres_service.dsn, autocommit=True) as admin:
        admin.execute(f"alter database {TEMPLATE} allow_connections true")
        admin.execute(f"alter database {TEMPLATE} is_template false")
    conn = psycopg.connect(_template_dsn(postgres_service), autocommit=True)
    conn.execute("create table poison2 (id int)")
    held.append(conn)  # a connection to the template blocks every later clone


def test_4_fresh_database_is_clean_again(postgres, postgres_service):
    assert postgres.fetch("select tablename from pg_tables where tablename like 'poison%'") == []
    with psycopg.connect(postgres_service.dsn) as admin:
        flags = admin.execute(
            "select datallowconn, datistemplate from pg_database where datname = %s",
            (TEMPLATE,),
        ).fetchall()
    assert flags == [(False, True)]
"""


def test_a_test_that_poisons_the_template_does_not_reach_the_next(
    pytester: pytest.Pytester,
) -> None:
    _project(pytester, test_poison=POISON)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly")
    result.assert_outcomes(passed=4)


# --------------------------------------------------------------------------- role settings

# The admin role's settings are server-wide: a test that changes them (ALTER ROLE CURRENT_USER
# SET ...) would change every later connection, for the rest of the run and, on an external
# server, for good. Settings made before the test (by a session fixture) are set back as they
# were, including a quoted search_path list.
ROLE_SETTINGS_CONFTEST = """
import psycopg
import pytest


@pytest.fixture(scope="session", autouse=True)
def settings_before(postgres_service):
    with psycopg.connect(postgres_service.dsn, autocommit=True) as conn:
        conn.execute("alter role current_user set statement_timeout = '123s'")
        conn.execute("alter role current_user set search_path = '$user', public, 'my schema'")
"""

ROLE_SETTINGS = """
import psycopg

SHOW = (
    "select current_setting('timezone'), current_setting('search_path'), "
    "current_setting('statement_timeout'), current_setting('work_mem')"
)
seen = {}


def _fresh(dsn):
    with psycopg.connect(dsn) as conn:
        return conn.execute(SHOW).fetchone()


def test_1_before(postgres, postgres_service):
    seen["test"], seen["admin"] = _fresh(postgres.dsn), _fresh(postgres_service.dsn)
    assert seen["test"][1] == '"$user", public, "my schema"'


def test_2_changes_its_role(postgres, postgres_service):
    admin_db = postgres_service.endpoint.dbname
    postgres.execute("alter role current_user set timezone = 'Pacific/Chatham'")
    postgres.execute("alter role current_user set search_path = 'nowhere'")
    postgres.execute("alter role current_user set statement_timeout = '5s'")
    postgres.execute(f"alter role current_user in database {admin_db} set work_mem = '7MB'")
    postgres.execute(f"alter database {admin_db} set timezone = 'Asia/Kathmandu'")
    postgres.execute("alter role all set work_mem = '9MB'")  # a superuser's: every role
    # Its own database's settings go with it.
    own = postgres.name
    postgres.execute(f"alter role current_user in database \\"{own}\\" set work_mem = '2MB'")
    assert _fresh(postgres.dsn)[:3] == ("Pacific/Chatham", "nowhere", "5s")


def test_3_sees_the_server_as_before(postgres, postgres_service):
    assert _fresh(postgres.dsn) == seen["test"]
    assert _fresh(postgres_service.dsn) == seen["admin"]
"""


def test_role_settings_a_test_changed_are_set_back(pytester: pytest.Pytester) -> None:
    _project(pytester, conftest=ROLE_SETTINGS_CONFTEST, test_settings=ROLE_SETTINGS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly")
    result.assert_outcomes(passed=3)


ALTER_SYSTEM = """
def test_alters_the_system(postgres):
    postgres.execute("alter system set work_mem = '11MB'")


def test_after(postgres):
    pass
"""


def test_alter_system_in_a_test_is_reported(pytester: pytest.Pytester) -> None:
    _project(pytester, test_system=ALTER_SYSTEM)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        ["*test_alters_the_system*", "*postgresql.auto.conf*changed*ALTER SYSTEM*work_mem*"]
    )
    assert "test_after" not in result.stdout.str().split("warnings summary")[-1]


# Under -n 2 the two workers' tests share the admin role: a test that ends while the other
# worker's test (which changed the role's settings) still runs must not set them back under it.
SETTINGS_A = """
import time
import psycopg


def test_short(postgres, postgres_service):
    deadline = time.monotonic() + 60
    with psycopg.connect(postgres_service.dsn, autocommit=True) as conn:
        conn.execute("insert into pp_sync.marks values (%s)", (postgres.name,))
        # Until the other test has changed its role's settings, then end.
        while not conn.execute("select 1 from pp_sync.marks where name = 'changed'").fetchall():
            assert time.monotonic() < deadline, "the other worker's test never changed them"
            time.sleep(0.05)
"""

SETTINGS_B = """
import time
import psycopg


def test_long(postgres, postgres_service):
    deadline = time.monotonic() + 60
    with psycopg.connect(postgres_service.dsn, autocommit=True) as conn:
        marks = []
        while not marks:  # until the other test's database was handed out
            marks = conn.execute("select name from pp_sync.marks").fetchall()
            assert time.monotonic() < deadline, "the other worker's test never started"
            time.sleep(0.05)
        postgres.execute("alter role current_user set timezone = 'Pacific/Chatham'")
        conn.execute("insert into pp_sync.marks values ('changed')")
        query = "select 1 from pg_database where datname = %s"
        while conn.execute(query, (marks[0][0],)).fetchall():  # until its teardown ran
            assert time.monotonic() < deadline, "the other worker's test never ended"
            time.sleep(0.05)
    with psycopg.connect(postgres.dsn) as fresh:
        timezone = fresh.execute("select current_setting('timezone')").fetchone()[0]
    assert timezone == "Pacific/Chatham", "another worker's teardown undid this test's setting"
"""


def test_a_teardown_never_undoes_another_workers_role_settings(
    pytester: pytest.Pytester,
) -> None:
    pytest.importorskip("xdist")
    _project(pytester, conftest=CONCURRENT_CONFTEST, test_a=SETTINGS_A, test_b=SETTINGS_B)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-n", "2", "--dist", "loadfile"
    )
    result.assert_outcomes(passed=2)


# --------------------------------------------------------------------------- direct API


@pytest.fixture(scope="module")
def pg_endpoint(local_postgres: Any) -> PostgresEndpoint:
    ep: PostgresEndpoint = local_postgres.endpoint
    pg.ensure_template(ep)
    return ep


def _admin_rows(endpoint: PostgresEndpoint, query: str, params: Any = None) -> list[Any]:
    with psycopg.connect(endpoint.dsn(), autocommit=True) as conn:
        cursor = conn.execute(query, params)
        return list(cursor.fetchall()) if cursor.description else []


def _unique() -> str:
    return f"pp-iso-{uuid.uuid4().hex[:10]}"


def test_a_role_used_elsewhere_or_made_before_is_kept(pg_endpoint: PostgresEndpoint) -> None:
    before = f"kept_before_{uuid.uuid4().hex[:8]}"
    _admin_rows(pg_endpoint, f"create role {before}")
    try:
        db = pg.create_database(pg_endpoint, _unique())
        elsewhere = f"kept_elsewhere_{uuid.uuid4().hex[:8]}"
        db.execute(f"create role {elsewhere}")
        db.execute(f"create table t (id int); grant select on t to {before}, {elsewhere}")
        # A privilege outside the test's database: not this test's alone.
        _admin_rows(pg_endpoint, "create table if not exists iso_shared (id int)")
        _admin_rows(pg_endpoint, f"grant select on iso_shared to {elsewhere}")
        db.close(delete=True)
        roles = {r[0] for r in _admin_rows(pg_endpoint, "select rolname from pg_roles")}
        assert {before, elsewhere} <= roles
    finally:
        _admin_rows(pg_endpoint, "drop table if exists iso_shared")
        _admin_rows(pg_endpoint, f"drop role if exists {before}")
        _admin_rows(pg_endpoint, f"drop role if exists {elsewhere}")


def test_a_changed_template_this_user_cannot_remake_says_how(
    pg_endpoint: PostgresEndpoint,
) -> None:
    user = f"ci_{uuid.uuid4().hex[:8]}"
    _admin_rows(pg_endpoint, f"create role {user} login password 'pw' createdb")
    _admin_rows(pg_endpoint, f"alter database {pg.TEMPLATE_DB} allow_connections true")
    other = dataclasses.replace(pg_endpoint, user=user, password="pw")
    try:
        with pytest.raises(ServiceError) as caught:
            pg.create_database(other, _unique())
        message = str(caught.value)
        assert "was changed since it was made, and re-creating it failed" in message
        assert "must be owner" in message
        assert f"DROP DATABASE {pg.TEMPLATE_DB}" in message
    finally:
        pg.close_admin_connections()
        pg.ensure_template(pg_endpoint)  # its owner re-makes it
        _admin_rows(pg_endpoint, f"drop role {user}")


def test_role_names_are_unique_per_test_and_valid(pg_endpoint: PostgresEndpoint) -> None:
    first = pg.create_database(pg_endpoint, _unique())
    second = pg.create_database(pg_endpoint, _unique())
    try:
        long = "x" * 80
        names = [first.role("app"), second.role("app"), first.role(long), first.role("App User")]
        assert len(set(names)) == len(names)
        assert all(len(n.encode()) <= pg.MAX_IDENTIFIER_BYTES for n in names)
        assert first.role("app") == names[0]
        first.execute(f'create role "{names[2]}"')
    finally:
        first.close(delete=True)
        second.close(delete=True)
    roles = {r[0] for r in _admin_rows(pg_endpoint, "select rolname from pg_roles")}
    assert names[2] not in roles


# --------------------------------------------------------------------------- S3 cleanup


@pytest.fixture(scope="module")
def s3_endpoint(local_s3: Any) -> S3Endpoint:
    ep: S3Endpoint = local_s3.endpoint
    return ep


@pytest.fixture
def namespace(s3_endpoint: S3Endpoint) -> Iterator[S3Namespace]:
    ns = S3Namespace(s3_endpoint, f"pp-iso-{uuid.uuid4().hex[:8]}")
    yield ns
    ns.close()


def _put_many(ns: S3Namespace, bucket: str, keys: list[str]) -> None:
    client = ns.client
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda k: client.put_object(Bucket=bucket, Key=k, Body=b"x"), keys))


def _server_buckets(ns: S3Namespace) -> set[str]:
    return {b["Name"] for b in ns.client.list_buckets()["Buckets"]}


def _close_without_warnings(ns: S3Namespace) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ns.close()


def test_a_bucket_of_1500_objects_is_deleted(namespace: S3Namespace) -> None:
    bucket = namespace.bucket("many")
    _put_many(namespace, bucket, [f"part/{i:05d}.json" for i in range(1500)])
    assert len(namespace.keys(bucket)) == 1500
    _close_without_warnings(namespace)
    assert bucket not in _server_buckets(namespace)


def test_a_versioned_bucket_with_delete_markers_is_deleted(namespace: S3Namespace) -> None:
    bucket = namespace.bucket("versioned")
    client = namespace.client
    client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    keys = [f"v/{i:05d}.json" for i in range(700)]
    _put_many(namespace, bucket, keys)
    _put_many(namespace, bucket, keys)  # a second version of each
    with ThreadPoolExecutor(8) as pool:  # 300 delete markers
        list(pool.map(lambda k: client.delete_object(Bucket=bucket, Key=k), keys[:300]))
    _close_without_warnings(namespace)
    assert bucket not in _server_buckets(namespace)
