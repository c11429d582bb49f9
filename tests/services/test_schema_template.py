"""The project's schema in every per-test database: built once into the template, cached.

Real pytest sessions (pytester, in subprocesses) against real local PostgreSQL servers. Builds
are counted by a ``schema_command`` that appends a line to a file outside the project, and by
the start line the local backend prints (``schema <hash> built in ...`` / ``from the cache``).
"""

from __future__ import annotations

import shlex
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from pytest_pipeline.services import local
from pytest_pipeline.services.schema import natural_key, split_statements

SCHEMA_SQL = """\
-- the project's tables, with seed rows
CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL);
INSERT INTO customers VALUES (1, 'ada'), (2, 'grace');
CREATE FUNCTION shout(t text) RETURNS text AS $$
    SELECT upper(t) || ';'
$$ LANGUAGE sql;
"""

# Natural order: 2_ before 10_ (lexical order would run 10_ first and fail: no orders table).
MIGRATIONS = {
    "1_orders.sql": "CREATE TABLE orders (id int PRIMARY KEY, customer int REFERENCES customers);",
    "2_amount.sql": "ALTER TABLE orders ADD COLUMN amount numeric;",
    "10_seed.sql": "INSERT INTO orders VALUES (100, 1, 9.5); /* a comment; with a semicolon */",
}

TESTS = """
def test_first(postgres):
    assert postgres.fetch("SELECT name FROM customers ORDER BY id") == [
        {"name": "ada"}, {"name": "grace"}]
    assert postgres.fetch("SELECT shout('x') AS s") == [{"s": "X;"}]
    assert postgres.fetch("SELECT id, amount FROM orders") == [{"id": 100, "amount": 9.5}]
    postgres.execute("INSERT INTO customers VALUES (3, 'leak')")
    postgres.execute("CREATE TABLE scratch (x int)")

def test_second(postgres):
    # The first test's changes stayed in its own database.
    assert [r["id"] for r in postgres.fetch("SELECT id FROM customers ORDER BY id")] == [1, 2]
    assert postgres.fetch("SELECT to_regclass('scratch') AS t") == [{"t": None}]
"""

pytestmark = pytest.mark.skipif(
    not local.availability("postgres").ok, reason="no local PostgreSQL here"
)


def _project(pytester: pytest.Pytester, tmp_path: Path, extra: str = "") -> Path:
    """A project with db/schema.sql and db/migrations/; returns the build-count file."""
    builds = tmp_path / "builds.txt"
    command = f"echo built >> {shlex.quote(str(builds))}"
    pytester.makepyprojecttoml(
        textwrap.dedent(
            f"""
            [tool.pytest-pipeline.services]
            backend = "local"
            [tool.pytest-pipeline.services.postgres]
            schema = ["db/schema.sql", "db/migrations/"]
            schema_command = {command!r}
            """
        ).replace("'", '"')
        + extra
    )
    migrations = pytester.path / "db" / "migrations"
    migrations.mkdir(parents=True)
    (pytester.path / "db" / "schema.sql").write_text(SCHEMA_SQL)
    for name, body in MIGRATIONS.items():
        (migrations / name).write_text(body)
    pytester.makepyfile(test_app=TESTS)
    return builds


@pytest.fixture
def cache(pytester: pytest.Pytester, tmp_path: Path) -> Path:
    """A cache directory of this test's own, so builds and cache hits are this test's."""
    path = tmp_path / "cache"
    path.mkdir(mode=0o700)
    pytester._monkeypatch.setenv("XDG_CACHE_HOME", str(path))
    return path


def _builds(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly", *args)


def _schema_dirs(cache: Path) -> list[str]:
    found = (cache / "pytest-pipeline" / "postgres").glob("*-schema-*")
    return sorted(p.name for p in found if p.is_dir())


def test_schema_in_every_database_built_once_and_cached(
    pytester: pytest.Pytester, tmp_path: Path, cache: Path
) -> None:
    builds = _project(pytester, tmp_path)
    first = _run(pytester)
    first.assert_outcomes(passed=2)
    first.stdout.fnmatch_lines(["postgres: local PostgreSQL *, schema * built in * s ready in *"])
    assert _builds(builds) == 1

    # Unchanged schema: the next run copies the cached data directory, runs nothing.
    second = _run(pytester)
    second.assert_outcomes(passed=2)
    second.stdout.fnmatch_lines(["postgres: local PostgreSQL *, schema * from the cache ready*"])
    assert _builds(builds) == 1
    assert len(_schema_dirs(cache)) == 1

    # A changed file is another schema: built again.
    seed = pytester.path / "db" / "migrations" / "10_seed.sql"
    seed.write_text(seed.read_text() + "\nINSERT INTO orders VALUES (101, 2, 1);\n")
    third = _run(pytester)
    assert _builds(builds) == 2
    third.assert_outcomes(passed=1, failed=1)  # test_first now sees two orders
    assert len(_schema_dirs(cache)) == 2


def test_xdist_workers_build_it_once(
    pytester: pytest.Pytester, tmp_path: Path, cache: Path
) -> None:
    builds = _project(pytester, tmp_path)
    pytester.makepyfile(
        test_many="""
        import pytest

        @pytest.mark.parametrize("n", range(6))
        def test_seeded(postgres, n):
            assert postgres.fetch("SELECT count(*) AS c FROM customers") == [{"c": 2}]
            postgres.execute("TRUNCATE customers CASCADE")
        """
    )
    result = _run(pytester, "-n", "2")
    result.assert_outcomes(passed=8)
    assert _builds(builds) == 1


def test_failing_statement_names_file_line_and_statement(
    pytester: pytest.Pytester, tmp_path: Path, cache: Path
) -> None:
    builds = _project(pytester, tmp_path)
    bad = pytester.path / "db" / "migrations" / "3_bad.sql"
    bad.write_text(
        "-- adds a column\n"
        "ALTER TABLE orders ADD COLUMN note text;\n"
        "\n"
        "INSERT INTO orders (id, customer)\n"
        "VALUES (7, 42);\n"
    )
    result = _run(pytester)
    out = result.stdout.str()
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        [
            "*the schema file db/migrations/3_bad.sql failed at line 4: insert or update on "
            'table "orders" violates foreign key constraint*',
            "*statement (line 4): INSERT INTO orders (id, customer)",
            "*VALUES (7, 42)",
        ]
    )
    assert "Traceback" not in out
    assert "psycopg.errors" not in out
    assert _schema_dirs(cache) == []  # nothing half-built was cached
    assert _builds(builds) == 1  # the command ran; the SQL failed after it

    bad.write_text("ALTER TABLE orders ADD COLUMN note text;\nSELECT 1 FROM nowhere;\n")
    result = _run(pytester)
    result.stdout.fnmatch_lines(
        ['*db/migrations/3_bad.sql failed at line 2: relation "nowhere" does not exist*']
    )

    bad.unlink()
    _run(pytester).assert_outcomes(passed=2)
    assert len(_schema_dirs(cache)) == 1


HOOK = """
import psycopg

def migrate(dsn):
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL)")
        conn.execute("INSERT INTO customers VALUES (1, 'ada'), (2, 'grace')")

def broken(dsn):
    raise RuntimeError("the migration tool gave up")
"""

COMMAND_SCRIPT = """
import os, psycopg
with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
    conn.execute("CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL)")
    conn.execute("INSERT INTO customers VALUES (1, 'ada'), (2, 'grace')")
"""

HOOK_TESTS = """
def test_seeded(postgres):
    assert postgres.fetch("SELECT name FROM customers ORDER BY id") == [
        {"name": "ada"}, {"name": "grace"}]
"""


@pytest.mark.parametrize(
    "setting",
    [
        'schema_hook = "dbsetup:migrate"',
        f"schema_command = {shlex.quote(sys.executable)} + ' make_schema.py'",
    ],
    ids=["hook", "command"],
)
def test_hook_and_command(pytester: pytest.Pytester, cache: Path, setting: str) -> None:
    if setting.startswith("schema_command"):
        setting = f'schema_command = "{sys.executable} make_schema.py"'
    pytester.makepyprojecttoml(
        "[tool.pytest-pipeline.services]\nbackend = 'local'\n"
        f"[tool.pytest-pipeline.services.postgres]\n{setting}\n"
    )
    pytester.makepyfile(dbsetup=HOOK, make_schema=COMMAND_SCRIPT, test_hooked=HOOK_TESTS)
    result = _run(pytester)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["postgres: local PostgreSQL *, schema * built in *"])
    _run(pytester).stdout.fnmatch_lines(["postgres: *, schema * from the cache*"])


def test_failing_hook_and_command(pytester: pytest.Pytester, cache: Path) -> None:
    pytester.makepyfile(dbsetup=HOOK, test_hooked=HOOK_TESTS)
    for setting, expected in [
        (
            'schema_hook = "dbsetup:broken"',
            "*services.postgres.schema_hook 'dbsetup:broken' failed (at *dbsetup.py:*): "
            "RuntimeError: the migration tool gave up",
        ),
        (
            'schema_command = "echo nope; echo $DATABASE_URL; echo pw=$PGPASSWORD; exit 3"',
            "*services.postgres.schema_command * failed with exit status 3*",
        ),
    ]:
        pytester.makepyprojecttoml(
            "[tool.pytest-pipeline.services]\nbackend = 'local'\n"
            f"[tool.pytest-pipeline.services.postgres]\n{setting}\n"
        )
        result = _run(pytester)
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines([expected])
        assert "Traceback" not in result.stdout.str()
        assert _schema_dirs(cache) == []
    # The command's output is shown, its password masked.
    result.stdout.fnmatch_lines(
        ["*nope", "*postgresql://postgres:***@127.0.0.1:*/pytest_pipeline_tpl_*", "*pw=***"]
    )


ORDERS_DB = """
import psycopg

def migrate(dsn):
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL)")
        conn.execute("INSERT INTO customers VALUES (1, 'ada'), (2, 'grace')")
"""


def _orders_project(pytester: pytest.Pytester) -> Path:
    """A src-layout project whose schema_hook is orders.db:migrate; returns src/orders/db.py."""
    pytester.makepyprojecttoml(
        "[tool.pytest.ini_options]\npythonpath = ['src']\n"
        "[tool.pytest-pipeline.services]\nbackend = 'local'\n"
        "[tool.pytest-pipeline.services.postgres]\nschema_hook = 'orders.db:migrate'\n"
    )
    package = pytester.path / "src" / "orders"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "db.py").write_text(ORDERS_DB)
    pytester.makepyfile(test_hooked=HOOK_TESTS)
    return package / "db.py"


def test_the_hook_module_is_in_the_cache_key(pytester: pytest.Pytester, cache: Path) -> None:
    db = _orders_project(pytester)
    _run(pytester).stdout.fnmatch_lines(["postgres: *, schema * built in *"])
    _run(pytester).stdout.fnmatch_lines(["postgres: *, schema * from the cache*"])

    # An edited hook module is another schema, without listing it in schema_inputs.
    db.write_text(ORDERS_DB.replace("(2, 'grace')", "(2, 'grace'), (3, 'linus')"))
    result = _run(pytester)
    result.stdout.fnmatch_lines(["postgres: *, schema * built in *"])
    result.assert_outcomes(failed=1)  # test_seeded sees the third customer
    assert len(_schema_dirs(cache)) == 2


def test_a_failing_hook_points_at_the_users_line(pytester: pytest.Pytester, cache: Path) -> None:
    db = _orders_project(pytester)
    db.write_text(ORDERS_DB.replace("CREATE TABLE customers", "DROP TYPE no_such_type; --"))
    result = _run(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*services.postgres.schema_hook 'orders.db:migrate' failed (at *src/orders/db.py:6):"
            " UndefinedObject: *no_such_type*"
        ]
    )
    assert "site-packages" not in result.stdout.str()


def test_a_command_that_never_ends_is_stopped_at_the_timeout(
    pytester: pytest.Pytester, cache: Path
) -> None:
    pytester.makepyprojecttoml(
        "[tool.pytest-pipeline.services]\nbackend = 'local'\nstartup_timeout = 8\n"
        "[tool.pytest-pipeline.services.postgres]\n"
        "schema_command = 'sleep 600 & echo $! > sleeper.pid; wait'\n"
    )
    pytester.makepyfile(test_hooked=HOOK_TESTS)
    result = _run(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*schema_command * did not finish within 8 s (services.startup_timeout)*"]
    )
    sleeper = Path(f"/proc/{int((pytester.path / 'sleeper.pid').read_text())}/cmdline")
    assert not sleeper.exists() or "sleep" not in sleeper.read_text(errors="replace")
    assert _schema_dirs(cache) == []


def test_external_server_keeps_the_template_under_its_hash(
    pytester: pytest.Pytester, tmp_path: Path, local_postgres: Any
) -> None:
    from pytest_pipeline.services.postgres import SCHEMA_TEMPLATE_PREFIX, _admin

    endpoint = local_postgres.endpoint
    pytester._monkeypatch.setenv("PYTEST_PIPELINE_POSTGRES_URL", endpoint.dsn())
    builds = _project(pytester, tmp_path)

    def templates() -> list[str]:
        rows = _admin(
            endpoint,
            "SELECT datname FROM pg_database WHERE starts_with(datname, %s) ORDER BY 1",
            (SCHEMA_TEMPLATE_PREFIX,),
        )
        return [row[0] for row in rows]

    first = _run(pytester)
    first.assert_outcomes(passed=2)
    first.stdout.fnmatch_lines(["postgres: schema * applied to the template in * s"])
    assert _builds(builds) == 1
    (kept,) = templates()

    second = _run(pytester, "-n", "2")
    second.assert_outcomes(passed=2)
    assert _builds(builds) == 1
    assert templates() == [kept]

    (pytester.path / "db" / "schema.sql").write_text(SCHEMA_SQL + "CREATE TABLE more (x int);\n")
    _run(pytester).assert_outcomes(passed=2)
    assert _builds(builds) == 2
    (new,) = templates()  # the stale one was dropped
    assert new != kept


def test_split_statements_keeps_quoted_semicolons_and_lines() -> None:
    text = (
        "-- header; not a statement\n"
        "CREATE TABLE a (s text DEFAULT ';');\n"
        "/* block; /* nested; */ still */ INSERT INTO a VALUES (E'it\\'s;');\n"
        'CREATE TABLE "b;c" (x int);\n'
        "CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql;\n"
        "DO $$ BEGIN PERFORM 1; END $$;\n"
        "SELECT $1x;\n"
        "CREATE OR REPLACE FUNCTION g(x int) RETURNS int LANGUAGE sql\n"
        "BEGIN ATOMIC SELECT CASE WHEN x > 0 THEN 1 END; SELECT 2; END;\n"
        "-- trailing comment only"
    )
    lines = [line for line, _ in split_statements(text)]
    statements = [statement for _, statement in split_statements(text)]
    assert lines == [2, 3, 4, 5, 6, 7, 8]
    assert statements[0] == "CREATE TABLE a (s text DEFAULT ';')"
    assert statements[1].endswith("INSERT INTO a VALUES (E'it\\'s;')")
    assert statements[3].endswith("$body$ LANGUAGE sql")
    assert statements[4] == "DO $$ BEGIN PERFORM 1; END $$"
    assert statements[6].endswith("BEGIN ATOMIC SELECT CASE WHEN x > 0 THEN 1 END; SELECT 2; END")


def test_natural_order_of_migration_names() -> None:
    names = ["10_c.sql", "2_b.sql", "1_a.sql", "001_z.sql", "b.sql", "a.sql"]
    assert sorted(names, key=natural_key) == [
        "001_z.sql",  # equal numbers: the digits as text break the tie
        "1_a.sql",
        "2_b.sql",
        "10_c.sql",
        "a.sql",
        "b.sql",
    ]


def test_schema_settings_are_checked(
    pytester: pytest.Pytester, assert_usage_error: Any, cache: Path
) -> None:
    pytester.makepyprojecttoml("[tool.pytest-pipeline.services.postgres]\nschema = 5\n")
    assert_usage_error(
        pytester.runpytest_subprocess("-p", "no:cacheprovider"),
        "*services.postgres.schema in * must be a list of strings, got 5.",
    )
    pytester.makepyprojecttoml("[tool.pytest-pipeline.services.postgres]\nschema_hooks = 'x'\n")
    assert_usage_error(
        pytester.runpytest_subprocess("-p", "no:cacheprovider"),
        "*unknown configuration key 'services.postgres.schema_hooks'*(did you mean "
        "services.postgres.schema_hook?)*",
    )
    pytester.makepyprojecttoml(
        "[tool.pytest-pipeline.services]\nbackend = 'local'\n"
        "[tool.pytest-pipeline.services.postgres]\nschema_hook = 'no colon'\n"
    )
    pytester.makepyfile(test_hooked=HOOK_TESTS)
    result = _run(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*services.postgres.schema_hook must be 'module:function' (e.g. *), got 'no colon'."]
    )
