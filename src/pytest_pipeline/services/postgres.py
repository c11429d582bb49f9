"""Per-test Postgres databases, copied from a template database on the session's server.

A database per test (``CREATE DATABASE ... TEMPLATE``) isolates tests completely and costs a
few tens of milliseconds. The template is created once per server by :func:`ensure_template`,
guarded so that pytest-xdist workers racing to create it do not fail.

psycopg (and pandas for :meth:`PostgresDatabase.fetch_df`) are imported where they are used, so
importing this module costs only the standard library.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import threading
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pytest_pipeline._optional import require
from pytest_pipeline.errors import ServiceError
from pytest_pipeline.services.endpoints import PostgresEndpoint
from pytest_pipeline.services.external import mask_secrets

if TYPE_CHECKING:
    import pandas
    import psycopg

__all__ = [
    "TEMPLATE_DB",
    "PostgresDatabase",
    "close_admin_connections",
    "create_database",
    "database_name",
    "drop_database",
    "ensure_template",
]

TEMPLATE_DB = "pytest_pipeline_template"

# Postgres silently truncates identifiers longer than NAMEDATALEN - 1 bytes.
MAX_IDENTIFIER_BYTES = 63

# Names we never drop, whatever the caller passes.
_PROTECTED = frozenset({TEMPLATE_DB, "postgres", "template0", "template1"})

_NAME_OK = re.compile(r"[a-z0-9_][a-z0-9_-]*")
_NAME_BAD_CHARS = re.compile(r"[^a-z0-9_-]+")

# An arbitrary constant (fits a bigint) that serialises template creation across processes.
_TEMPLATE_LOCK_KEY = 0x70797465_7374_7070 & 0x7FFF_FFFF_FFFF_FFFF

_CONNECT_TIMEOUT = 10


def _psycopg() -> Any:
    return require("psycopg", "postgres", "The postgres fixture")


def _describe(endpoint: PostgresEndpoint, dbname: str | None = None) -> str:
    """Where a database lives, for messages: never includes the password."""
    name = dbname or endpoint.dbname
    return f"database {name!r} on {endpoint.host}:{endpoint.port} (user {endpoint.user!r})"


def database_name(name: str) -> str:
    """The database name actually used for ``name``.

    Names made of ``[a-z0-9_-]`` that fit in 63 bytes are kept; anything else is lowercased,
    cleaned and suffixed with a hash of the original, so distinct inputs stay distinct and no
    name is silently truncated by the server. Applying it twice changes nothing.
    """
    if _NAME_OK.fullmatch(name) and len(name) <= MAX_IDENTIFIER_BYTES:
        return name
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:8]
    base = _NAME_BAD_CHARS.sub("_", name.lower()).strip("_-")
    base = base[: MAX_IDENTIFIER_BYTES - len(digest) - 1].rstrip("_-")
    return f"{base}_{digest}" if base else f"db_{digest}"


# --------------------------------------------------------------------------- admin connections


_admin_lock = threading.Lock()
_admin_connections: dict[PostgresEndpoint, Any] = {}
_server_infos: dict[PostgresEndpoint, tuple[int, bool]] = {}


def _admin(endpoint: PostgresEndpoint, query: Any, params: Any = None) -> list[Any]:
    """Run ``query`` on the server's admin database and return its rows.

    Uses one cached autocommit connection per server and process: creating and dropping a
    database per test would otherwise pay a new connection (~10 ms) twice per test.
    Reconnects once if the cached connection died (server restart, idle timeout).
    """
    psycopg = _psycopg()
    with _admin_lock:
        for attempt in (1, 2):
            conn = _admin_connections.get(endpoint)
            if conn is None or conn.closed:
                conn = _admin_connections[endpoint] = _connect(endpoint, endpoint.dbname)
            try:
                cursor = conn.execute(query, params)
                return list(cursor.fetchall()) if cursor.description else []
            except psycopg.OperationalError:
                if attempt == 2 or not conn.broken:
                    raise
                del _admin_connections[endpoint]
                conn.close()
    raise AssertionError("unreachable")


def _server_version(endpoint: PostgresEndpoint) -> int:
    """``server_version_num`` of the server (e.g. 150018), cached per process."""
    return _server_info(endpoint)[0]


def _use_file_copy(endpoint: PostgresEndpoint) -> bool:
    """Whether ``CREATE DATABASE ... STRATEGY FILE_COPY`` is the faster choice on this server.

    Postgres 15 made WAL_LOG the default, the better strategy on a durable server (measured
    here: 135 ms against 180 ms); on a throwaway test server with ``fsync = off`` FILE_COPY is
    the faster one for a small template (21 ms against 75 ms). Older servers only copy files.
    """
    version, fsync_off = _server_info(endpoint)
    return version >= 150000 and fsync_off


def _server_info(endpoint: PostgresEndpoint) -> tuple[int, bool]:
    cached = _server_infos.get(endpoint)
    if cached is None:
        version, fsync = _admin(
            endpoint,
            "SELECT current_setting('server_version_num')::int, current_setting('fsync')",
        )[0]
        cached = _server_infos[endpoint] = (version, fsync == "off")
    return cached


def close_admin_connections() -> None:
    """Close the cached admin connections of this process (e.g. before stopping a server)."""
    with _admin_lock:
        for conn in _admin_connections.values():
            conn.close()
        _admin_connections.clear()
        _server_infos.clear()


def _connect(endpoint: PostgresEndpoint, dbname: str, **kwargs: Any) -> Any:
    psycopg = _psycopg()
    kwargs.setdefault("autocommit", True)
    kwargs.setdefault("connect_timeout", _CONNECT_TIMEOUT)
    try:
        return psycopg.connect(endpoint.dsn(dbname), **kwargs)
    except psycopg.OperationalError as exc:
        reason = _first_line(exc, endpoint)
        raise ServiceError(
            f"cannot connect to Postgres {_describe(endpoint, dbname)}: {reason}. Check that "
            "the server is running and reachable (`pytest-pipeline doctor` shows the backends)."
        ) from None


def _first_line(exc: BaseException, endpoint: PostgresEndpoint) -> str:
    """The first line of a psycopg error, with the password masked should libpq echo it."""
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return mask_secrets(line, (endpoint.password,))


def _sql() -> Any:
    return require("psycopg.sql", "postgres", "The postgres fixture")


# --------------------------------------------------------------------------- template & databases


def ensure_template(endpoint: PostgresEndpoint) -> None:
    """Create the template database :data:`TEMPLATE_DB` on the server, once.

    Idempotent, and safe when several processes (pytest-xdist workers) call it at the same
    time: creation is serialised by an advisory lock, and losing a race is not an error.
    """
    psycopg = _psycopg()
    sql = _sql()
    if _template_exists(endpoint):
        return
    _admin(endpoint, "SELECT pg_advisory_lock(%s)", (_TEMPLATE_LOCK_KEY,))
    try:
        if _template_exists(endpoint):
            return
        name = sql.Identifier(TEMPLATE_DB)
        # template0 is pristine (template1 may have been changed on a shared server); UTF8
        # whatever the server default, since initdb under a C locale defaults to SQL_ASCII.
        create = sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8'").format(name)
        try:
            try:
                _admin(endpoint, create)
            except psycopg.errors.InvalidParameterValue:
                # The server's locale does not fit UTF8: the C locale fits every encoding.
                _admin(endpoint, create + sql.SQL(" LC_COLLATE 'C' LC_CTYPE 'C'"))
        except (psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
            return  # another process without the lock (an older plugin version) won the race
        # No connections allowed: a stray one would make every CREATE DATABASE ... TEMPLATE fail.
        _admin(
            endpoint,
            sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false").format(name),
        )
    except psycopg.Error as exc:
        raise ServiceError(
            f"cannot create the template database {TEMPLATE_DB!r} on {endpoint.host}:"
            f"{endpoint.port}: {_first_line(exc, endpoint)}. The user {endpoint.user!r} needs the "
            "CREATEDB privilege."
        ) from None
    finally:
        _admin(endpoint, "SELECT pg_advisory_unlock(%s)", (_TEMPLATE_LOCK_KEY,))


def _template_exists(endpoint: PostgresEndpoint) -> bool:
    rows = _admin(endpoint, "SELECT 1 FROM pg_database WHERE datname = %s", (TEMPLATE_DB,))
    return bool(rows)


def create_database(endpoint: PostgresEndpoint, name: str) -> PostgresDatabase:
    """Create the database ``name`` (see :func:`database_name`) as a copy of the template.

    Creates the template first if it is missing, and retries briefly while another session
    holds the template open.
    """
    psycopg = _psycopg()
    sql = _sql()
    real = database_name(name)
    if real in _PROTECTED or real == endpoint.dbname:
        raise ServiceError(f"refusing to create a test database named {real!r}: reserved name")
    query = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
        sql.Identifier(real), sql.Identifier(TEMPLATE_DB)
    )
    if _use_file_copy(endpoint):
        query += sql.SQL(" STRATEGY FILE_COPY")
    deadline = time.monotonic() + 10
    template_checked = False
    while True:
        try:
            _admin(endpoint, query)
            return PostgresDatabase(endpoint, real)
        except psycopg.errors.InvalidCatalogName as exc:
            if template_checked:
                raise ServiceError(
                    f"cannot create test database {real!r} on {endpoint.host}:{endpoint.port}: "
                    f"{_first_line(exc, endpoint)}"
                ) from None
            ensure_template(endpoint)  # dropped behind our back, or never created
            template_checked = True
        except psycopg.errors.ObjectInUse as exc:
            # "source database is being accessed by other users": wait for them to leave.
            if time.monotonic() > deadline:
                raise ServiceError(
                    f"cannot create test database {real!r} on {endpoint.host}:{endpoint.port}: "
                    f"{_first_line(exc, endpoint)}. Close connections to {TEMPLATE_DB!r}."
                ) from None
            time.sleep(0.05)
        except psycopg.errors.DuplicateDatabase:
            raise ServiceError(
                f"test database {real!r} already exists on {endpoint.host}:{endpoint.port}; "
                "test database names must be unique per test (drop the stale one)."
            ) from None
        except psycopg.Error as exc:
            raise ServiceError(
                f"cannot create test database {real!r} on {endpoint.host}:{endpoint.port}: "
                f"{_first_line(exc, endpoint)}"
            ) from None


def drop_database(endpoint: PostgresEndpoint, name: str) -> None:
    """Drop the database ``name``, disconnecting its sessions; nothing happens if it is gone."""
    psycopg = _psycopg()
    sql = _sql()
    real = database_name(name)
    if real in _PROTECTED or real == endpoint.dbname:
        raise ServiceError(f"refusing to drop {real!r}: not a test database")
    try:
        if _server_version(endpoint) >= 130000:
            _admin(
                endpoint,
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(real)),
            )
            return
        # Before Postgres 13 there is no FORCE: stop new connections, end the open ones.
        exists = _admin(endpoint, "SELECT 1 FROM pg_database WHERE datname = %s", (real,))
        if not exists:
            return
        ident = sql.Identifier(real)
        _admin(endpoint, sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(ident))
        _admin(
            endpoint,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            (real,),
        )
        _admin(endpoint, sql.SQL("DROP DATABASE IF EXISTS {}").format(ident))
    except psycopg.Error as exc:
        raise ServiceError(
            f"cannot drop test database {real!r} on {endpoint.host}:{endpoint.port}: "
            f"{_first_line(exc, endpoint)}"
        ) from None


# --------------------------------------------------------------------------- the fixture object


class PostgresDatabase:
    """One test's database: what the ``postgres`` fixture gives.

    Connections made through it (including the one behind :meth:`execute`, :meth:`insert`,
    :meth:`fetch` and :meth:`fetch_df`) are closed by :meth:`close`.
    """

    def __init__(self, endpoint: PostgresEndpoint, name: str) -> None:
        self.endpoint = endpoint
        self.name = name
        self._connections: list[psycopg.Connection[Any]] = []
        self._shared: psycopg.Connection[Any] | None = None
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return (
            f"PostgresDatabase(name={self.name!r}, host={self.endpoint.host!r}, "
            f"port={self.endpoint.port}, user={self.endpoint.user!r})"
        )

    def __enter__(self) -> PostgresDatabase:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def dsn(self) -> str:
        """A libpq URL for this database (includes the password, if the server has one)."""
        return self.endpoint.dsn(self.name)

    def connect(self, **kwargs: Any) -> psycopg.Connection[Any]:
        """A new psycopg connection to this database, autocommit unless ``autocommit=False``.

        ``kwargs`` go to :func:`psycopg.connect`. The connection is closed by :meth:`close`.
        """
        conn = _connect(self.endpoint, self.name, **kwargs)
        with self._lock:
            self._connections = [c for c in self._connections if not c.closed]
            self._connections.append(conn)
        return conn  # type: ignore[no-any-return]

    def _conn(self) -> psycopg.Connection[Any]:
        with self._lock:
            if self._shared is None or self._shared.closed:
                self._shared = self.connect()
            return self._shared

    def execute(self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None) -> None:
        """Run ``sql`` in autocommit mode.

        Without ``params`` the text may hold several statements (a schema script).
        SQL errors are psycopg's own (``psycopg.errors.UniqueViolation``, ...).
        """
        with self._lock:
            self._conn().execute(sql, params)

    def insert(self, table: str | Sequence[str], records: Sequence[Mapping[str, Any]]) -> int:
        """Insert ``records`` into ``table`` with COPY; returns the number of rows inserted.

        ``table`` is ``"name"`` or ``"schema.name"``, or a tuple of parts taken verbatim
        (``("my.odd table",)``); names are quoted, hence case-sensitive. Columns are the
        records' keys in first-seen order. A record without some key gets that column's
        default (NULL when there is none), so serial and ``DEFAULT now()`` columns work.
        dict values, and any non-string value for a json/jsonb column, are sent as JSON.
        All rows go in one transaction.
        """
        sql = _sql()
        target = _table_identifier(table)
        rows = _check_records(records, f"insert into {_table_label(table)}")
        if not rows:
            return 0
        jsonb = require("psycopg.types.json", "postgres", "The postgres fixture").Jsonb
        with self._lock:
            conn = self._conn()
            json_columns = _json_columns(conn, target)
            with conn.transaction():
                cursor = conn.cursor()
                for columns, run in _runs_by_keys(rows):
                    query = sql.SQL("COPY {} ({}) FROM STDIN").format(
                        target, sql.SQL(", ").join(sql.Identifier(c) for c in columns)
                    )
                    if not columns:
                        query = sql.SQL("INSERT INTO {} DEFAULT VALUES").format(target)
                        for _ in run:
                            cursor.execute(query)
                        continue
                    wrap = [c in json_columns for c in columns]
                    with cursor.copy(query) as copy:
                        for record in run:
                            copy.write_row(
                                [
                                    _adapt(record[c], as_json, jsonb)
                                    for c, as_json in zip(columns, wrap, strict=True)
                                ]
                            )
        return len(rows)

    def fetch(
        self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """Run a query and return its rows as dicts (``[]`` for a statement with no result)."""
        rows = require("psycopg.rows", "postgres", "The postgres fixture")
        with self._lock, self._conn().cursor(row_factory=rows.dict_row) as cursor:
            cursor.execute(sql, params)
            return list(cursor.fetchall()) if cursor.description else []

    def fetch_df(
        self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None
    ) -> pandas.DataFrame:
        """Run a query and return a pandas DataFrame (columns kept even with no rows)."""
        pd = require("pandas", "postgres", "PostgresDatabase.fetch_df")
        with self._lock, self._conn().cursor() as cursor:
            cursor.execute(sql, params)
            frame: pandas.DataFrame
            if cursor.description is None:
                frame = pd.DataFrame()
            else:
                columns = [d.name for d in cursor.description]
                frame = pd.DataFrame.from_records(cursor.fetchall(), columns=columns)
            return frame

    def close(self, *, delete: bool = False) -> None:
        """Close every connection made through this object. Idempotent.

        ``delete=True`` also drops the database (see :func:`drop_database`); the ``postgres``
        fixture passes it unless ``--pipeline-keep-failed`` keeps a failed test's database.
        """
        with self._lock:
            for conn in self._connections:
                with contextlib.suppress(Exception):  # a broken connection is closed already
                    conn.close()
            self._connections.clear()
            self._shared = None
        if delete:
            drop_database(self.endpoint, self.name)


# --------------------------------------------------------------------------- insert helpers


def _table_identifier(table: str | Sequence[str]) -> Any:
    sql = _sql()
    parts = table.split(".") if isinstance(table, str) else list(table)
    if not parts or not all(isinstance(p, str) and p for p in parts) or len(parts) > 3:
        raise ServiceError(
            f"invalid table name {table!r}: use 'name', 'schema.name' or a tuple of name parts"
        )
    return sql.Identifier(*parts)


def _table_label(table: str | Sequence[str]) -> str:
    return table if isinstance(table, str) else ".".join(table)


def _check_records(records: Any, what: str) -> list[Mapping[str, Any]]:
    if isinstance(records, Mapping | str | bytes):
        raise ServiceError(
            f"{what}: records must be a sequence of mappings (a list of dicts), "
            f"got a single {type(records).__name__}; wrap one record in a list"
        )
    try:
        rows = list(records)
    except TypeError:
        raise ServiceError(
            f"{what}: records must be a sequence of mappings, got {type(records).__name__}"
        ) from None
    for index, record in enumerate(rows):
        if not isinstance(record, Mapping):
            raise ServiceError(
                f"{what}: record {index} is a {type(record).__name__}, not a mapping (dict)"
            )
        for key in record:
            if not isinstance(key, str):
                raise ServiceError(f"{what}: record {index} has a non-string key {key!r}")
    return rows


def _runs_by_keys(
    rows: Sequence[Mapping[str, Any]],
) -> list[tuple[tuple[str, ...], list[Mapping[str, Any]]]]:
    """Consecutive records with the same keys, so each run is one COPY and order is kept."""
    runs: list[tuple[tuple[str, ...], list[Mapping[str, Any]]]] = []
    current: frozenset[str] | None = None
    for record in rows:
        keys = frozenset(record)
        if keys == current:
            runs[-1][1].append(record)
        else:
            runs.append((tuple(record), [record]))
            current = keys
    return runs


def _json_columns(conn: Any, target: Any) -> frozenset[str]:
    """Names of json/jsonb columns of ``target``; also fails clearly if it does not exist."""
    query = (
        "SELECT a.attname FROM pg_attribute a "
        "WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped "
        "AND a.atttypid IN ('json'::regtype, 'jsonb'::regtype)"
    )
    rows = conn.execute(query, (target.as_string(conn),)).fetchall()
    return frozenset(row[0] for row in rows)


def _adapt(value: Any, as_json: bool, jsonb: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, dict) or (as_json and not isinstance(value, str)):
        return jsonb(value)
    return value
