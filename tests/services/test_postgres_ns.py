"""The per-test Postgres database (``postgres`` fixture object), against a real server."""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from pytest_pipeline.errors import ServiceError
from pytest_pipeline.services import postgres as pg
from pytest_pipeline.services.endpoints import PostgresEndpoint

psycopg = pytest.importorskip("psycopg")


@pytest.fixture(scope="module")
def endpoint(local_postgres: Any) -> PostgresEndpoint:
    ep: PostgresEndpoint = local_postgres.endpoint
    pg.ensure_template(ep)
    return ep


def _unique(label: str = "db") -> str:
    return f"pp-test-{uuid.uuid4().hex[:10]}-{label}"


@pytest.fixture
def make_db(endpoint: PostgresEndpoint) -> Iterator[Any]:
    made: list[pg.PostgresDatabase] = []

    def make(name: str | None = None) -> pg.PostgresDatabase:
        db = pg.create_database(endpoint, name or _unique())
        made.append(db)
        return db

    yield make
    for db in made:
        db.close()
        pg.drop_database(endpoint, db.name)


@pytest.fixture
def db(make_db: Any) -> pg.PostgresDatabase:
    return make_db()  # type: ignore[no-any-return]


def _admin_rows(endpoint: PostgresEndpoint, query: str, params: Any = None) -> list[Any]:
    with psycopg.connect(endpoint.dsn(), autocommit=True) as conn:
        return list(conn.execute(query, params).fetchall())


def _exists(endpoint: PostgresEndpoint, name: str) -> bool:
    return bool(_admin_rows(endpoint, "SELECT 1 FROM pg_database WHERE datname = %s", (name,)))


# --------------------------------------------------------------------------- template


def _template_state(endpoint: PostgresEndpoint) -> list[Any]:
    return _admin_rows(
        endpoint,
        "SELECT datistemplate, datallowconn, pg_encoding_to_char(encoding) "
        "FROM pg_database WHERE datname = %s",
        (pg.TEMPLATE_DB,),
    )


def test_ensure_template_twice_is_harmless(endpoint: PostgresEndpoint) -> None:
    pg.ensure_template(endpoint)
    pg.ensure_template(endpoint)
    # A template nobody may connect to: a stray session would block every CREATE DATABASE.
    assert _template_state(endpoint) == [(True, False, "UTF8")]


_RACER = """
import os, sys, time
from pytest_pipeline.services.endpoints import PostgresEndpoint
from pytest_pipeline.services.postgres import ensure_template
start_at, host, port, user = float(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
endpoint = PostgresEndpoint(host, port, user, os.environ["RACER_PASSWORD"])
time.sleep(max(0.0, start_at - time.time()))  # all racers start together
ensure_template(endpoint)
"""


def test_ensure_template_races_between_processes(endpoint: PostgresEndpoint) -> None:
    # Like xdist workers starting together on a server that has no template yet.
    with psycopg.connect(endpoint.dsn(), autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{pg.TEMPLATE_DB}" WITH IS_TEMPLATE false')
        conn.execute(f'DROP DATABASE "{pg.TEMPLATE_DB}"')
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
        "RACER_PASSWORD": endpoint.password,  # not on the command line
    }
    start_at = str(time.time() + 2)
    args = [start_at, endpoint.host, str(endpoint.port), endpoint.user]
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", _RACER, *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for _ in range(3)
    ]
    outputs = [racer.communicate(timeout=120)[0].decode() for racer in racers]
    assert [racer.returncode for racer in racers] == [0, 0, 0], outputs
    assert _template_state(endpoint) == [(True, False, "UTF8")]


def test_create_database_recreates_a_missing_template(
    endpoint: PostgresEndpoint, make_db: Any
) -> None:
    with psycopg.connect(endpoint.dsn(), autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{pg.TEMPLATE_DB}" WITH IS_TEMPLATE false')
        conn.execute(f'DROP DATABASE "{pg.TEMPLATE_DB}"')
    db = make_db()
    assert db.fetch("SELECT 1 AS one") == [{"one": 1}]
    assert _template_state(endpoint) == [(True, False, "UTF8")]


# --------------------------------------------------------------------------- databases


def test_databases_made_from_the_template_are_isolated(make_db: Any) -> None:
    a, b = make_db(), make_db()
    a.execute("CREATE TABLE only_in_a (id int)")
    a.insert("only_in_a", [{"id": 1}])
    assert a.fetch("SELECT to_regclass('only_in_a') IS NOT NULL AS present") == [{"present": True}]
    assert b.fetch("SELECT to_regclass('only_in_a') IS NOT NULL AS present") == [{"present": False}]
    # And a third database made later does not see it either: the template was not touched.
    c = make_db()
    assert c.fetch("SELECT count(*) AS n FROM pg_tables WHERE schemaname = 'public'") == [{"n": 0}]


def test_database_names_are_sanitized_and_distinct(
    make_db: Any, endpoint: PostgresEndpoint
) -> None:
    long_name = "pp-run-gw0-" + "Very Long Test Name; DROP TABLE x" * 4
    assert len(long_name.encode()) > 63
    real = pg.database_name(long_name)
    assert len(real.encode()) <= 63
    assert real == pg.database_name(real)  # stable: drop_database(original) finds it
    assert real != pg.database_name(long_name + "2")
    assert pg.database_name("pp-3f9a1c-gw0-17") == "pp-3f9a1c-gw0-17"
    db = make_db(long_name)
    assert db.name == real
    assert db.fetch("SELECT current_database() AS name") == [{"name": real}]
    db.close()
    pg.drop_database(endpoint, long_name)  # the original name drops the sanitized database
    assert not _exists(endpoint, real)


def test_drop_database_with_an_open_connection(endpoint: PostgresEndpoint) -> None:
    db = pg.create_database(endpoint, _unique())
    conn = db.connect()
    conn.execute("SELECT 1")
    other = psycopg.connect(db.dsn)  # not tracked by db: a pipeline's own connection
    pg.drop_database(endpoint, db.name)
    assert not _exists(endpoint, db.name)
    with pytest.raises(psycopg.OperationalError):
        other.execute("SELECT 1")
    other.close()
    pg.drop_database(endpoint, db.name)  # idempotent
    db.close()
    assert conn.closed


def test_close_with_delete_drops_the_database(endpoint: PostgresEndpoint) -> None:
    kept = pg.create_database(endpoint, _unique("kept"))
    dropped = pg.create_database(endpoint, _unique("dropped"))
    for db in (kept, dropped):
        db.connect()
    kept.close()  # what --pipeline-keep-failed does: connections closed, database kept
    dropped.close(delete=True)
    assert _exists(endpoint, kept.name)
    assert not _exists(endpoint, dropped.name)
    pg.drop_database(endpoint, kept.name)


def test_drop_database_refuses_server_databases(endpoint: PostgresEndpoint) -> None:
    for name in ("postgres", "template1", pg.TEMPLATE_DB):
        with pytest.raises(ServiceError, match="refusing"):
            pg.drop_database(endpoint, name)


def test_close_closes_every_connection(db: pg.PostgresDatabase) -> None:
    first, second = db.connect(), db.connect(autocommit=False)
    assert first.autocommit
    assert not second.autocommit
    db.execute("SELECT 1")
    db.close()
    assert first.closed
    assert second.closed
    db.close()  # idempotent
    assert db.fetch("SELECT 2 AS two") == [{"two": 2}]  # usable again: reconnects


def test_errors_never_show_the_password() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    endpoint = PostgresEndpoint("127.0.0.1", port, "postgres", password="s3cret-pw")
    with pytest.raises(ServiceError) as info:
        pg.create_database(endpoint, "pp-no-server")
    assert "s3cret-pw" not in str(info.value)
    assert f"127.0.0.1:{port}" in str(info.value)
    db = pg.PostgresDatabase(endpoint, "x")
    assert "s3cret-pw" not in repr(db)
    assert "s3cret-pw" in db.dsn  # what users connect with


# --------------------------------------------------------------------------- data helpers


def test_insert_fetch_and_fetch_df_round_trip(db: pg.PostgresDatabase) -> None:
    db.execute(
        """
        CREATE TABLE orders (
            id int PRIMARY KEY, customer text, amount numeric(10, 2), paid boolean,
            placed_at timestamptz, due date, attrs jsonb, ref uuid, raw bytea, tags text[],
            score double precision
        );
        CREATE INDEX ON orders (customer);
        """
    )
    ref = uuid.uuid4()
    placed = dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.UTC)
    records: list[dict[str, Any]] = [
        {
            "id": 1, "customer": "O'Brien", "amount": Decimal("12.50"), "paid": True,
            "placed_at": placed, "due": dt.date(2024, 6, 1), "attrs": {"vip": True, "n": [1, 2]},
            "ref": ref, "raw": b"\x00\xff", "tags": ["a", "b,c"], "score": 0.1,
        },
        {
            "id": 2, "customer": None, "amount": None, "paid": False, "placed_at": None,
            "due": None, "attrs": [1, "x"], "ref": None, "raw": None, "tags": [], "score": None,
        },
    ]  # fmt: skip
    assert db.insert("orders", records) == 2
    rows = db.fetch("SELECT * FROM orders ORDER BY id")
    assert rows[0] == {**records[0], "raw": b"\x00\xff"}
    assert rows[1] == records[1]
    assert db.fetch("SELECT id FROM orders WHERE customer = %s", ["O'Brien"]) == [{"id": 1}]
    assert db.fetch("SELECT id FROM orders WHERE paid = %(paid)s", {"paid": False}) == [{"id": 2}]

    df = db.fetch_df("SELECT id, customer, score FROM orders ORDER BY id")
    assert list(df.columns) == ["id", "customer", "score"]
    assert df["id"].tolist() == [1, 2]
    assert df.loc[0, "customer"] == "O'Brien"
    assert df.loc[0, "score"] == pytest.approx(0.1)
    empty = db.fetch_df("SELECT id, customer FROM orders WHERE false")
    assert list(empty.columns) == ["id", "customer"]
    assert len(empty) == 0


def test_insert_missing_keys_get_column_defaults_in_order(db: pg.PostgresDatabase) -> None:
    db.execute(
        "CREATE TABLE events (id serial PRIMARY KEY, kind text NOT NULL, "
        "source text DEFAULT 'api', at timestamptz NOT NULL DEFAULT now(), note text)"
    )
    records = [
        {"kind": "a"},
        {"kind": "b", "note": "n"},
        {"note": "m", "kind": "c"},  # same keys, other order: same run
        {"kind": "d", "source": "batch"},
    ]
    assert db.insert("events", records) == 4
    rows = db.fetch(
        "SELECT id, kind, source, note, at IS NOT NULL AS has_at FROM events ORDER BY id"
    )
    assert [(r["kind"], r["source"], r["note"], r["has_at"]) for r in rows] == [
        ("a", "api", None, True),
        ("b", "api", "n", True),
        ("c", "api", "m", True),
        ("d", "batch", None, True),
    ]
    assert [r["id"] for r in rows] == [1, 2, 3, 4]


def test_insert_quotes_identifiers(db: pg.PostgresDatabase) -> None:
    db.execute('CREATE TABLE "my ""odd"" table" ("the ""col""" text, "Mixed Case" int)')
    db.execute('CREATE SCHEMA staging; CREATE TABLE staging."Orders" (id int)')
    records = [{'the "col"': "x'); DROP TABLE t; --", "Mixed Case": 7}]
    assert db.insert(('my "odd" table',), records) == 1
    assert db.fetch('SELECT * FROM "my ""odd"" table"') == records
    assert db.insert("staging.Orders", [{"id": 1}, {"id": 2}]) == 2
    assert db.fetch('SELECT count(*) AS n FROM staging."Orders"') == [{"n": 2}]


def test_insert_rejects_bad_input(db: pg.PostgresDatabase) -> None:
    db.execute("CREATE TABLE t (id int)")
    assert db.insert("t", []) == 0
    with pytest.raises(ServiceError, match="wrap one record in a list"):
        db.insert("t", {"id": 1})  # type: ignore[arg-type]
    with pytest.raises(ServiceError, match="record 1 is a int"):
        db.insert("t", [{"id": 1}, 2])  # type: ignore[list-item]
    with pytest.raises(psycopg.errors.UndefinedTable):
        db.insert("missing", [{"id": 1}])
    with pytest.raises(psycopg.errors.UndefinedColumn):
        db.insert("t", [{"idd": 1}])
    # A failed insert inserts nothing: all runs are one transaction.
    with pytest.raises(psycopg.errors.InvalidTextRepresentation):
        db.insert("t", [{"id": 1}, {"id": "not a number"}])
    assert db.fetch("SELECT count(*) AS n FROM t") == [{"n": 0}]


def test_insert_many_rows_uses_copy(db: pg.PostgresDatabase) -> None:
    db.execute("CREATE TABLE big (id int, label text, payload jsonb)")
    records = [{"id": i, "label": f"r{i}", "payload": {"i": i}} for i in range(20_000)]
    assert db.insert("big", records) == 20_000
    assert db.fetch(
        "SELECT count(*) AS n, sum(id) AS s, max((payload->>'i')::int) AS m FROM big"
    ) == [{"n": 20_000, "s": sum(range(20_000)), "m": 19_999}]


def test_execute_runs_scripts_and_parameters(db: pg.PostgresDatabase) -> None:
    db.execute("CREATE TABLE t (v text); INSERT INTO t VALUES ('100%'); INSERT INTO t VALUES ('b')")
    db.execute("INSERT INTO t VALUES (%s)", ["c"])
    assert [r["v"] for r in db.fetch("SELECT v FROM t ORDER BY v")] == ["100%", "b", "c"]
    assert db.fetch("UPDATE t SET v = v") == []  # no result set
    with pytest.raises(psycopg.errors.SyntaxError):
        db.execute("SELEC 1")
    assert db.fetch("SELECT 1 AS ok") == [{"ok": 1}]  # the connection survived the error
