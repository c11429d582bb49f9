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
import os
import re
import socket
import stat
import threading
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_pipeline import _safedir
from pytest_pipeline._optional import require
from pytest_pipeline.errors import PipelineWarning, ServiceError
from pytest_pipeline.records.tables import check_records
from pytest_pipeline.services.endpoints import PostgresEndpoint
from pytest_pipeline.services.namespace import Namespace
from pytest_pipeline.services.pg import first_line as _first_line
from pytest_pipeline.services.pg import psycopg as _psycopg
from pytest_pipeline.services.pg import sql as _sql

if TYPE_CHECKING:
    import pandas
    import psycopg

    from pytest_pipeline.services.schema import Schema

__all__ = [
    "SCHEMA_TEMPLATE_PREFIX",
    "TEMPLATE_DB",
    "PostgresDatabase",
    "close_admin_connections",
    "connect",
    "create_database",
    "database_name",
    "drop_database",
    "ensure_template",
    "template_name",
]

TEMPLATE_DB = "pytest_pipeline_template"
#: Templates holding the project's schema: this prefix and 12 hex digits of its content hash.
SCHEMA_TEMPLATE_PREFIX = "pytest_pipeline_tpl_"

# Postgres silently truncates identifiers longer than NAMEDATALEN - 1 bytes.
MAX_IDENTIFIER_BYTES = 63

# Names we never drop, whatever the caller passes.
_PROTECTED = frozenset({TEMPLATE_DB, "postgres", "template0", "template1"})

_NAME_OK = re.compile(r"[a-z0-9_][a-z0-9_-]*")
_NAME_BAD_CHARS = re.compile(r"[^a-z0-9_-]+")

# An arbitrary constant (fits a bigint) that serialises template creation across processes.
_TEMPLATE_LOCK_KEY = 0x70797465_7374_7070 & 0x7FFF_FFFF_FFFF_FFFF

# The template's comment records the version (xmin) of its pg_database row as it was made. The
# only way into the template is ALTER DATABASE (ALLOW_CONNECTIONS true), which writes a new row
# version, and a comment lives in another catalog: a mismatch means "changed since it was made",
# even when its flags were set back. Checked before every clone in one admin query, which also
# lists the roles that exist (see PostgresDatabase.close).
_TEMPLATE_MARK = "pytest-pipeline template; row version "
_CHECK_TEMPLATE = (
    "SELECT d.datallowconn, d.datistemplate, d.xmin::text, "
    "shobj_description(d.oid, 'pg_database'), ARRAY(SELECT oid::int8 FROM pg_roles){more} "
    "FROM (SELECT 1) AS one LEFT JOIN pg_database d ON d.datname = %(name)s"
)

_CONNECT_TIMEOUT = 10


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


def _admin(
    endpoint: PostgresEndpoint, query: Any, params: Any = None, *, bounded: bool = True
) -> list[Any]:
    """Run ``query`` on the server's admin database and return its rows.

    Uses one cached autocommit connection per server and process: creating and dropping a
    database per test would otherwise pay a new connection (~10 ms) twice per test.
    Reconnects once if the cached connection died (server restart, idle timeout).
    ``bounded``: a statement still running after ``endpoint.timeout`` (services.startup_timeout)
    is a :class:`ServiceError` (see :class:`_Deadline`), not retried.
    """
    psycopg = _psycopg()
    with _admin_lock:
        for attempt in (1, 2):
            conn = _admin_connections.get(endpoint)
            if conn is None or conn.closed:
                conn = _admin_connections[endpoint] = connect(endpoint, endpoint.dbname)
            deadline = _Deadline(conn, endpoint.timeout if bounded else None)
            try:
                with deadline:
                    cursor = conn.execute(query, params)
                    return list(cursor.fetchall()) if cursor.description else []
            except psycopg.Error as exc:
                broken = isinstance(exc, psycopg.OperationalError) and conn.broken
                if not (deadline.fired or broken) or (attempt == 2 and not deadline.fired):
                    raise
                del _admin_connections[endpoint]
                conn.close()
                if deadline.fired:
                    raise ServiceError(
                        f"pytest-pipeline: Postgres at {endpoint.host}:{endpoint.port} did not "
                        f"answer within services.startup_timeout ({endpoint.timeout:g} s): the "
                        "plugin's admin statement was given up and its connection closed. Check "
                        "the server (and any proxy or pooler in front of it); raise "
                        "services.startup_timeout if it is just slow."
                    ) from None
    raise AssertionError("unreachable")


class _Deadline:
    """Cut a connection's socket if a statement on it is still running after ``seconds``.

    libpq's connect_timeout covers connecting only, and keepalives or tcp_user_timeout do not
    help against a peer (a hung server, a proxy) whose kernel still acknowledges every packet;
    a cancel request goes through the same peer. Shutting the socket down makes libpq's wait
    end at once with an error. ``None``: no deadline.
    """

    def __init__(self, conn: Any, seconds: float | None) -> None:
        self.fired = False
        self._fd: int = conn.fileno()
        self._lock = threading.Lock()
        self._done = False
        self._timer = None if seconds is None else threading.Timer(seconds, self._cut)

    def __enter__(self) -> None:
        if self._timer is not None:
            self._timer.daemon = True
            self._timer.start()

    def __exit__(self, *exc_info: object) -> None:
        with self._lock:  # after this, the timer never touches the descriptor
            self._done = True
        if self._timer is not None:
            self._timer.cancel()

    def _cut(self) -> None:
        with self._lock:
            if self._done:
                return
            self.fired = True
            with contextlib.suppress(OSError), socket.socket(fileno=os.dup(self._fd)) as sock:
                sock.shutdown(socket.SHUT_RDWR)


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


def close_admin_connections(endpoint: PostgresEndpoint | None = None) -> None:
    """Close the cached admin connections of this process (e.g. before stopping a server),
    or only the one to ``endpoint``."""
    with _admin_lock:
        for key in [endpoint] if endpoint is not None else list(_admin_connections):
            conn = _admin_connections.pop(key, None)
            if conn is not None:
                conn.close()
            _server_infos.pop(key, None)


#: Endpoints whose socket did not answer when TCP did: TCP for the rest of the process.
_socket_failed: set[PostgresEndpoint] = set()


def _socket_dir(endpoint: PostgresEndpoint) -> str | None:
    """The local server's private unix-socket directory, if the plugin may log in there
    without a password now: a real directory (no symlink), mode 0700, of ours (of the server
    user's when we are root: that user already owns the server and its data), inside a
    checked directory of ours (so no one else can have put it there). Else None: TCP."""
    if not endpoint.socket_dir or endpoint in _socket_failed:
        return None
    path = Path(endpoint.socket_dir)
    try:
        st = os.lstat(path)
    except OSError:
        return None
    ours = st.st_uid == os.geteuid() or os.geteuid() == 0
    if not (stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o700 and ours):
        return None
    return str(path) if _safedir.trusted(path.parent) else None


def connect(endpoint: PostgresEndpoint, dbname: str, **kwargs: Any) -> Any:
    """A new psycopg connection to ``dbname`` on ``endpoint`` (autocommit unless told), over
    the local server's private socket when it may (see ``_socket_dir``), else TCP; a
    ``ServiceError`` saying where and why when it cannot connect."""
    psycopg = _psycopg()
    kwargs.setdefault("autocommit", True)
    if "connect_timeout=" not in endpoint.query:  # an external URL's: services.startup_timeout
        kwargs.setdefault("connect_timeout", _CONNECT_TIMEOUT)
    sockdir = None if kwargs.keys() & {"host", "hostaddr"} else _socket_dir(endpoint)
    try:
        if sockdir is not None:
            conn = _via_socket(psycopg, endpoint.dsn(dbname), sockdir, kwargs)
            if conn is not None:
                return conn
        conn = psycopg.connect(endpoint.dsn(dbname), **kwargs)
        if sockdir is not None:
            _socket_failed.add(endpoint)  # TCP works where the socket did not: TCP from now on
        return conn
    except psycopg.OperationalError as exc:
        reason = _first_line(exc, endpoint)
        raise ServiceError(
            f"cannot connect to Postgres {_describe(endpoint, dbname)}: {reason}. Check that "
            "the server is running and reachable (`pytest-pipeline doctor` shows the backends)."
        ) from None


def _via_socket(psycopg: Any, dsn: str, sockdir: str, kwargs: dict[str, Any]) -> Any:
    """A connection through the local server's unix socket, or None if it did not answer
    there (the caller tries TCP, which tells whether the server is up at all).

    No scram on the socket (~2 ms a connection against ~5-9 ms); the password in the URL is
    not sent, the server does not ask for it there. A server that does not answer within
    ``connect_timeout`` would not over TCP either: that error is not waited for twice.
    """
    try:
        return psycopg.connect(dsn, host=sockdir, **kwargs)
    except getattr(psycopg.errors, "ConnectionTimeout", ()):
        raise
    except psycopg.OperationalError:
        return None


# --------------------------------------------------------------------------- template & databases


def template_name(endpoint: PostgresEndpoint, schema: Schema | None = None) -> str:
    """The template test databases are copied from: :data:`TEMPLATE_DB` without a schema,
    else named by the hash of the schema's content and the server's version."""
    if schema is None:
        return TEMPLATE_DB
    return SCHEMA_TEMPLATE_PREFIX + schema.key(_server_version(endpoint))


def ensure_template(endpoint: PostgresEndpoint, schema: Schema | None = None) -> str:
    """Create the template database on the server once, with ``schema`` applied.

    Returns a note when it built one (``""`` when the template was there already). A
    template that was changed since it was made (a test let connections in, or changed its
    flags or owner) is dropped and made again. Idempotent, and safe when several processes
    (pytest-xdist workers) call it at the same time: creation is serialised by an advisory
    lock, and losing a race is not an error. A schema is applied to a database of another
    name that becomes the template only once it is complete: a failure leaves nothing.
    """
    psycopg = _psycopg()
    target = template_name(endpoint, schema)
    if _check_template(endpoint, target)[0] == "ok":
        return ""
    # Unbounded: another process may hold it while it applies a long schema. A server that
    # hangs was found by the bounded check just before.
    _admin(endpoint, "SELECT pg_advisory_lock(%s)", (_TEMPLATE_LOCK_KEY,), bounded=False)
    state = "missing"
    try:
        state = _check_template(endpoint, target)[0]
        if state == "ok":
            return ""
        if state == "changed":
            _drop_template(endpoint, target)
        began = time.monotonic()
        if not _build_template(endpoint, target, schema):
            return ""
        if schema is None:
            return ""
        _drop_stale_templates(endpoint, target)
        took = time.monotonic() - began
        return f"schema {schema.digest[:12]} applied to the template in {took:.2f} s"
    except psycopg.Error as exc:
        if state == "changed":
            raise ServiceError(
                f"the template database {target!r} on {endpoint.host}:{endpoint.port} was "
                f"changed since it was made, and re-creating it failed: "
                f"{_first_line(exc, endpoint)}. Drop it as its owner or a superuser "
                f"(ALTER DATABASE {target} IS_TEMPLATE false; DROP DATABASE {target}); "
                "the next run makes it again."
            ) from None
        raise ServiceError(
            f"cannot create the template database {target!r} on {endpoint.host}:"
            f"{endpoint.port}: {_first_line(exc, endpoint)}. The user {endpoint.user!r} needs the "
            "CREATEDB privilege."
        ) from None
    finally:
        _admin(endpoint, "SELECT pg_advisory_unlock(%s)", (_TEMPLATE_LOCK_KEY,))


def _drop_template(endpoint: PostgresEndpoint, name: str) -> None:
    sql = _sql()
    _admin(endpoint, sql.SQL("ALTER DATABASE {} IS_TEMPLATE false").format(sql.Identifier(name)))
    _drop_now(endpoint, name)


def _build_template(endpoint: PostgresEndpoint, target: str, schema: Schema | None) -> bool:
    """Make the template ``target`` (False: another process made it meanwhile).

    With a schema, it is built under a staging name and renamed when complete; the mark that
    :func:`_check_template` trusts is written last, after the schema is in.
    """
    psycopg = _psycopg()
    sql = _sql()
    building = target if schema is None else target + "_building"
    if schema is not None:
        _drop_now(endpoint, building)  # left by a run killed while building: we hold the lock
    # template0 is pristine (template1 may have been changed on a shared server); UTF8
    # whatever the server default, since initdb under a C locale defaults to SQL_ASCII.
    ident = sql.Identifier(building)
    create = sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8'").format(ident)
    try:
        try:
            _admin(endpoint, create)
        except psycopg.errors.InvalidParameterValue:
            # The server's locale does not fit UTF8: the C locale fits every encoding.
            _admin(endpoint, create + sql.SQL(" LC_COLLATE 'C' LC_CTYPE 'C'"))
    except (psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
        return False  # another process without the lock (an older plugin version) won the race
    name = sql.Identifier(target)
    if schema is not None:
        try:
            schema.apply(endpoint, building)
            _forget_connections(endpoint, building)
            _admin(endpoint, sql.SQL("ALTER DATABASE {} RENAME TO {}").format(ident, name))
        except BaseException:
            with contextlib.suppress(Exception):  # the schema's error is the one to show
                _drop_now(endpoint, building)
            raise
    # A first session writes the relcache init file (pg_internal.init) into the template; a
    # FILE_COPY clone copies it, so a test's first connection skips rebuilding it (~1.3 ms).
    # (A server start removes init files: a schema template cached in a local data directory
    # is not warm.)
    with contextlib.suppress(ServiceError):
        connect(endpoint, target).close()
    # No connections allowed: a stray one would make every CREATE DATABASE ... TEMPLATE fail.
    _admin(
        endpoint,
        sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false").format(name),
    )
    query = "SELECT xmin::text FROM pg_database WHERE datname = %s"
    version = _admin(endpoint, query, (target,))[0][0]
    mark = sql.Literal(_TEMPLATE_MARK + version)
    _admin(endpoint, sql.SQL("COMMENT ON DATABASE {} IS {}").format(name, mark))
    return True


def _forget_connections(endpoint: PostgresEndpoint, dbname: str) -> None:
    """End sessions a schema hook or command left open on ``dbname`` (a rename needs none)."""
    _admin(
        endpoint,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = %s AND pid <> pg_backend_pid()",
        (dbname,),
    )


def _drop_stale_templates(endpoint: PostgresEndpoint, keep: str) -> None:
    """Drop the templates of earlier schemas (not in use at this moment) from the server."""
    psycopg = _psycopg()
    pattern = SCHEMA_TEMPLATE_PREFIX.replace("_", r"\_") + "%"
    rows = _admin(
        endpoint,
        "SELECT datname FROM pg_database WHERE datname LIKE %s AND datname <> %s",
        (pattern, keep),
    )
    for (stale,) in rows:
        with contextlib.suppress(psycopg.Error):  # in use by another run: left for later
            _drop_template(endpoint, stale)


def _check_template(
    endpoint: PostgresEndpoint, name: str = TEMPLATE_DB
) -> tuple[str, frozenset[int]]:
    """The template's state (``ok``, ``missing`` or ``changed``) and the oids of all roles."""
    return _template_state(_admin(endpoint, _CHECK_TEMPLATE.format(more=""), {"name": name})[0])


def _template_state(row: Sequence[Any]) -> tuple[str, frozenset[int]]:
    allow, is_template, version, comment, roles = row[:5]
    if version is None:
        state = "missing"
    elif allow is False and is_template is True and comment == _TEMPLATE_MARK + version:
        state = "ok"
    else:
        state = "changed"
    return state, frozenset(roles)


def _reserved(endpoint: PostgresEndpoint, real: str) -> bool:
    return real in _PROTECTED or real == endpoint.dbname or real.startswith(SCHEMA_TEMPLATE_PREFIX)


def create_database(
    endpoint: PostgresEndpoint, name: str, schema: Schema | None = None
) -> PostgresDatabase:
    """Create the database ``name`` (see :func:`database_name`) as a copy of the template
    (the one holding ``schema``, when given).

    Checks the template first and (re-)creates it if it is missing or was changed, and retries
    briefly while another session holds the template open.
    """
    psycopg = _psycopg()
    real = database_name(name)
    if _reserved(endpoint, real):
        raise ServiceError(f"refusing to create a test database named {real!r}: reserved name")
    try:
        template = template_name(endpoint, schema)
        state, roles, settings = _hand_out(endpoint, template, real)
    except psycopg.Error as exc:
        raise ServiceError(
            f"cannot create test database {real!r} on {endpoint.host}:{endpoint.port}: "
            f"{_first_line(exc, endpoint)}"
        ) from None
    try:
        if state != "ok":
            ensure_template(endpoint, schema)
        clone = _clone(endpoint, real, template, schema)
    except BaseException:
        with contextlib.suppress(Exception):  # the clone's error is the one to show
            _admin(endpoint, _END_OF_TEST.format(settings="NULL", conf="NULL"), _lock_params(real))
        raise
    return PostgresDatabase(endpoint, clone, roles_before=roles, settings_before=settings)


def _clone(
    endpoint: PostgresEndpoint,
    real: str,
    template: str = TEMPLATE_DB,
    schema: Schema | None = None,
) -> str:
    """``CREATE DATABASE real TEMPLATE template``, without checking the template first."""
    psycopg = _psycopg()
    sql = _sql()
    query = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
        sql.Identifier(real), sql.Identifier(template)
    )
    if _use_file_copy(endpoint):
        query += sql.SQL(" STRATEGY FILE_COPY")
    deadline = time.monotonic() + 10
    template_checked = False
    while True:
        try:
            _admin(endpoint, query)
            return real
        except psycopg.errors.InvalidCatalogName as exc:
            if template_checked:
                raise ServiceError(
                    f"cannot create test database {real!r} on {endpoint.host}:{endpoint.port}: "
                    f"{_first_line(exc, endpoint)}"
                ) from None
            ensure_template(endpoint, schema)  # dropped behind our back, or never created
            template_checked = True
        except psycopg.errors.ObjectInUse as exc:
            # "source database is being accessed by other users": wait for them to leave.
            if time.monotonic() > deadline:
                raise ServiceError(
                    f"cannot create test database {real!r} on {endpoint.host}:{endpoint.port}: "
                    f"{_first_line(exc, endpoint)}. Close connections to {template!r}."
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
    real = database_name(name)
    if _reserved(endpoint, real):
        raise ServiceError(f"refusing to drop {real!r}: not a test database")
    try:
        _drop_now(endpoint, real)
    except psycopg.Error as exc:
        raise ServiceError(
            f"cannot drop test database {real!r} on {endpoint.host}:{endpoint.port}: "
            f"{_first_line(exc, endpoint)}"
        ) from None


def _drop_now(endpoint: PostgresEndpoint, real: str) -> None:
    """Drop the database ``real`` (no name checks), ending its sessions; psycopg errors."""
    sql = _sql()
    ident = sql.Identifier(real)
    if _server_version(endpoint) >= 130000:
        _admin(endpoint, sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
        return
    # Before Postgres 13 there is no FORCE: stop new connections, end the open ones.
    exists = _admin(endpoint, "SELECT 1 FROM pg_database WHERE datname = %s", (real,))
    if not exists:
        return
    _admin(endpoint, sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(ident))
    _admin(
        endpoint,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
        (real,),
    )
    _admin(endpoint, sql.SQL("DROP DATABASE IF EXISTS {}").format(ident))


# --------------------------------------------------------------------------- roles

# Roles are server-wide, so a test's roles outlive its database unless dropped. Dropped after
# a test: the roles it named with PostgresDatabase.role(), and the roles that did not exist
# when its database was handed out and that Postgres ties to that database alone (they own an
# object, hold a privilege or have a setting there, and nothing elsewhere depends on them).
# Under pytest-xdist another worker's test creates its roles at the same moment; those are
# tied to *its* database, so they are never taken for ours. A role with nothing anywhere
# cannot be told apart from another worker's, and is left (docs/services.md).
_ROLES_TO_DROP = """
WITH db AS (SELECT oid FROM pg_database WHERE datname = %(db)s),
deps AS (
    SELECT s.refobjid AS role,
           s.dbid = db.oid OR (s.classid = 'pg_database'::regclass AND s.objid = db.oid) AS here
    FROM pg_shdepend s, db WHERE s.refclassid = 'pg_authid'::regclass
    UNION ALL
    SELECT r.setrole, r.setdatabase = db.oid FROM pg_db_role_setting r, db
    WHERE r.setdatabase <> 0
)
SELECT r.rolname FROM pg_roles r
WHERE (%(tied)s AND r.oid::int8 <> ALL(%(before)s::int8[])
       AND EXISTS (SELECT 1 FROM deps WHERE deps.role = r.oid AND deps.here)
       AND NOT EXISTS (SELECT 1 FROM deps WHERE deps.role = r.oid AND NOT deps.here))
   OR r.rolname = ANY(%(named)s::text[])
ORDER BY r.rolname
"""


def _test_roles(
    endpoint: PostgresEndpoint, db: str, before: frozenset[int] | None, named: Sequence[str]
) -> list[str]:
    """The roles to drop with the test database ``db`` (query it before dropping ``db``)."""
    tied = before is not None
    params = {"db": db, "tied": tied, "before": sorted(before or ()), "named": list(named)}
    return [row[0] for row in _admin(endpoint, _ROLES_TO_DROP, params)]


def _drop_roles(endpoint: PostgresEndpoint, roles: Sequence[str], db: str) -> None:
    """Drop ``roles`` (after their test database is gone); a failure is a warning."""
    psycopg = _psycopg()
    sql = _sql()
    for role in roles:
        try:
            _admin(endpoint, sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
        except psycopg.Error as exc:
            warnings.warn(
                PipelineWarning(
                    f"could not drop role {role!r} of the test database {db!r} on "
                    f"{endpoint.host}:{endpoint.port}: {_first_line(exc, endpoint)}. Drop it by "
                    f"hand: DROP OWNED BY in each database that names it, then DROP ROLE."
                ),
                stacklevel=3,
            )


# --------------------------------------------------------------------------- server-wide settings

# Settings of the admin role (ALTER ROLE CURRENT_USER SET), of every role (ALTER ROLE ALL SET)
# and of other databases (ALTER DATABASE postgres SET, ALTER ROLE ... IN DATABASE) apply to
# every later connection, and outlive the run on an external server. Taken when a database is
# handed out, set back after its test. Keys: (setdatabase, setrole) oids, 0 for "all";
# values: the "name=value" entries. The test database's own rows go with it.
ServerSettings = dict[tuple[int, int], tuple[str, ...]]

_SETTINGS = (
    "(SELECT coalesce(json_agg(json_build_array(s.setdatabase::int8, s.setrole::int8, "
    "s.setconfig)), '[]') FROM pg_db_role_setting s "
    "WHERE s.setrole IN (0, (SELECT oid FROM pg_roles WHERE rolname = current_user)) "
    "AND (s.setdatabase = 0 OR s.setdatabase IN "
    "(SELECT oid FROM pg_database WHERE datname <> %(db)s)))"
)

# A test holds this shared advisory lock (on its process's admin connection) while it runs:
# pg_locks tells a teardown whether a test of another xdist worker, or of another run with the
# same role, is running too and may have made a change it sees. A killed process's lock goes
# with its session.
_IN_TEST_LOCK = (0x70797465, 0x73747331)
_HAND_OUT = _CHECK_TEMPLATE.format(
    more=f", {_SETTINGS}, (SELECT rolsuper FROM pg_roles WHERE rolname = current_user), "
    "pg_advisory_lock_shared(%(k1)s::int4, %(k2)s::int4), {conf}"
)
_END_OF_TEST = (
    "SELECT {settings}, (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
    "AND classid::int8 = %(k1)s AND objid::int8 = %(k2)s AND objsubid = 2 AND granted "
    "AND pid <> pg_backend_pid()), pg_advisory_unlock_shared(%(k1)s::int4, %(k2)s::int4), "
    "{conf}"
)
# Readable by superusers only; once known, a superuser's queries read it in the same round trip.
_READ_CONF = "pg_read_file('postgresql.auto.conf', 0, 1048576, true)"
_superusers: dict[PostgresEndpoint, bool] = {}

# Values of these list settings are stored quoted item by item; they are set back item by item.
_QUOTED_LISTS = frozenset(
    {"search_path", "temp_tablespaces", "local_preload_libraries", "session_preload_libraries"}
)

# Changes seen while another test was running, not set back yet: key -> the value before.
_pending: dict[PostgresEndpoint, ServerSettings] = {}
_pending_lock = threading.Lock()
# ALTER SYSTEM is a superuser's: postgresql.auto.conf as it was at hand-out, per database.
_auto_conf: dict[tuple[PostgresEndpoint, str], str] = {}


def _lock_params(db: str) -> dict[str, Any]:
    return {"db": db, "k1": _IN_TEST_LOCK[0], "k2": _IN_TEST_LOCK[1]}


def _as_settings(rows: Any) -> ServerSettings:
    return {(int(d), int(r)): tuple(config or ()) for d, r, config in rows or ()}


def _hand_out(
    endpoint: PostgresEndpoint, template: str, real: str
) -> tuple[str, frozenset[int], ServerSettings]:
    """Check the template, list the roles and take the server-wide settings, in one query;
    marks a test as running until :func:`_settle_settings` (psycopg errors)."""
    known = _superusers.get(endpoint, False)
    query = _HAND_OUT.format(conf=_READ_CONF if known else "NULL")
    row = _admin(endpoint, query, {"name": template, **_lock_params(real)})[0]
    state, roles = _template_state(row)
    if row[6]:  # a superuser: ALTER SYSTEM is possible
        _superusers[endpoint] = True
        conf = row[8] if known else _admin(endpoint, f"SELECT {_READ_CONF}")[0][0]
        _auto_conf[(endpoint, real)] = conf or ""
    return state, roles, _as_settings(row[5])


def _settle_settings(endpoint: PostgresEndpoint, db: str, before: ServerSettings) -> None:
    """Set back the server-wide settings that changed since ``db`` was handed out.

    When no other test is running, every change is this test's (or a finished test's): set
    back now, with those an earlier teardown had to leave. Else the change may be the other
    running test's, which may rely on it: left, and remembered for a later teardown.
    """
    psycopg = _psycopg()
    conf_before = _auto_conf.pop((endpoint, db), None)
    try:
        conf = "NULL" if conf_before is None else _READ_CONF
        query = _END_OF_TEST.format(settings=_SETTINGS, conf=conf)
        row = _admin(endpoint, query, _lock_params(db))[0]
        now, others = _as_settings(row[0]), int(row[1])
        changed = {k: before.get(k, ()) for k in before.keys() | now.keys()}
        changed = {k: old for k, old in changed.items() if now.get(k, ()) != old}
        with _pending_lock:
            pending = _pending.setdefault(endpoint, {})
            if others:
                for key, old in changed.items():
                    pending.setdefault(key, old)  # the oldest value known wins
                changed = {}
            else:
                changed.update(pending)
                pending.clear()
        for key, old in sorted(changed.items()):
            if now.get(key, ()) != old:
                _set_back(endpoint, key, now.get(key, ()), old)
        if conf_before is not None:
            _check_auto_conf(endpoint, db, conf_before, row[3] or "", others)
    except psycopg.Error as exc:
        warnings.warn(
            PipelineWarning(
                f"could not set back the server-wide settings changed during the test of "
                f"database {db!r} on {endpoint.host}:{endpoint.port}: "
                f"{_first_line(exc, endpoint)}. Check them with: SELECT * FROM "
                "pg_db_role_setting; undo with ALTER ROLE ... RESET."
            ),
            stacklevel=3,
        )


def _set_back(
    endpoint: PostgresEndpoint, key: tuple[int, int], now: tuple[str, ...], old: tuple[str, ...]
) -> None:
    """``ALTER ROLE {name|ALL} [IN DATABASE db] SET/RESET`` each entry back to ``old``."""
    sql = _sql()
    database, role = key
    query = "SELECT (SELECT rolname FROM pg_roles WHERE oid = %s), "
    query += "(SELECT datname FROM pg_database WHERE oid = %s)"
    role_name, db_name = _admin(endpoint, query, (role, database))[0]
    if (role and role_name is None) or (database and db_name is None):
        return  # dropped since: its settings went with it
    target = sql.SQL("ALTER ROLE ") + (sql.Identifier(role_name) if role else sql.SQL("ALL"))
    if database:
        target += sql.SQL(" IN DATABASE ") + sql.Identifier(db_name)
    was = dict(entry.split("=", 1) for entry in old)
    current = dict(entry.split("=", 1) for entry in now)
    for name in sorted(current.keys() - was.keys()):
        _admin(endpoint, target + sql.SQL(" RESET {}").format(sql.Identifier(*name.split("."))))
    for name, value in sorted(was.items()):
        if current.get(name) != value:
            items = _list_items(value) if name in _QUOTED_LISTS else [value]
            values = sql.SQL(", ").join(sql.Literal(item) for item in items)
            setting = sql.Identifier(*name.split("."))
            _admin(endpoint, target + sql.SQL(" SET {} = {}").format(setting, values))


def _list_items(value: str) -> list[str]:
    """The items of a stored list setting: ``"$user", public`` -> ``["$user", "public"]``."""
    items: list[str] = []
    rest = value.strip()
    while rest:
        if rest.startswith('"'):
            end = 1
            while end < len(rest):
                if rest[end] == '"':
                    if rest[end + 1 : end + 2] != '"':
                        break
                    end += 1  # a doubled quote stands for one
                end += 1
            items.append(rest[1:end].replace('""', '"'))
            rest = rest[end + 1 :].strip().removeprefix(",").strip()
        else:
            item, _, rest = rest.partition(",")
            items.append(item.strip())
            rest = rest.strip()
    return items


def _check_auto_conf(
    endpoint: PostgresEndpoint, db: str, before: str, after: str, others: int
) -> None:
    """Warn when ``postgresql.auto.conf`` changed (ALTER SYSTEM): not undone, but said."""
    if after == before:
        return
    lines = set(before.splitlines()) ^ set(after.splitlines())
    names = sorted({line.split("=", 1)[0].strip() for line in lines if "=" in line})
    who = " (or by a test running at the same time)" if others else ""
    warnings.warn(
        PipelineWarning(
            f"postgresql.auto.conf of the server on {endpoint.host}:{endpoint.port} changed "
            f"during the test of database {db!r}{who} (ALTER SYSTEM): "
            f"{', '.join(names) or 'comments only'}. The plugin does not undo it: as a "
            "superuser, ALTER SYSTEM RESET <name>; SELECT pg_reload_conf(). A local server "
            "is thrown away at the end of the run."
        ),
        stacklevel=3,
    )


# --------------------------------------------------------------------------- the fixture object


class PostgresDatabase(Namespace):
    """One test's database: what the ``postgres`` fixture gives.

    Connections made through it (including the one behind :meth:`execute`, :meth:`insert`,
    :meth:`fetch` and :meth:`fetch_df`) are closed by :meth:`close`; using it again opens new
    ones (a kept database stays usable). ``with db:`` drops it when the block ends.
    """

    noun = "Postgres database"

    def __init__(
        self,
        endpoint: PostgresEndpoint,
        name: str,
        *,
        roles_before: frozenset[int] | None = None,
        settings_before: ServerSettings | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.name = name
        # Oids of the roles that existed when the database was handed out (None: unknown).
        self._roles_before = roles_before
        # Server-wide settings then; None: not taken, or set back already (see close()).
        self._settings_before = settings_before
        self._roles: dict[str, str] = {}  # name given to role() -> real name
        self._connections: list[psycopg.Connection[Any]] = []
        self._shared: psycopg.Connection[Any] | None = None
        super().__init__(name)

    def _shown(self) -> dict[str, object]:
        ep = self.endpoint
        return {"name": self.name, "host": ep.host, "port": ep.port, "user": ep.user}

    @property
    def dsn(self) -> str:
        """A libpq URL for this database (includes the password, if the server has one).

        A ``str`` that clients use as is; its ``repr`` — what pytest shows for ``-l`` locals,
        ``-vv`` and assertion diffs — masks the password.
        """
        return self.endpoint.dsn(self.name)

    def role(self, name: str) -> str:
        """A role name of this test's own, e.g. ``pp_1a2b3c_gw0_4_app_user`` for ``app_user``.

        Create it yourself (``CREATE ROLE ... LOGIN``, with whatever options the test needs);
        it is dropped with the database. Unique per test, so tests on several pytest-xdist
        workers never collide; the same ``name`` gives the same role within a test.
        """
        if not isinstance(name, str) or not name:
            raise ServiceError(f"postgres.role() needs a non-empty name, got {name!r}")
        real = self._roles.get(name)
        if real is None:
            real = self._roles[name] = database_name(f"{self.name.replace('-', '_')}_{name}")
        return real

    def connect(self, **kwargs: Any) -> psycopg.Connection[Any]:
        """A new psycopg connection to this database, autocommit unless ``autocommit=False``.

        ``kwargs`` go to :func:`psycopg.connect`. The connection is closed by :meth:`close`.
        """
        conn = connect(self.endpoint, self.name, **kwargs)
        with self._lock:
            self._closed = False  # open again: the next close() closes this connection too
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
        where = f"insert into {_table_label(table)}"
        rows = check_records(records, where, ServiceError, str_keys=True)
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

        ``delete=True`` also drops the database (see :func:`drop_database`) and the roles the
        test created for it (see :meth:`role`); the ``postgres`` fixture passes it unless
        ``--pipeline-keep-failed`` keeps a failed test's database.
        """
        super().close(delete=delete)

    def _close(self, *, delete: bool) -> None:
        for conn in self._connections:
            with contextlib.suppress(Exception):  # a broken connection is closed already
                conn.close()
        self._connections.clear()
        self._shared = None
        before, self._settings_before = self._settings_before, None
        try:
            if delete:
                self._drop_with_roles()
        except BaseException:
            if before is not None:
                with contextlib.suppress(Exception):  # the drop's error is the one to show
                    _settle_settings(self.endpoint, self.name, before)
            raise
        if before is not None:  # also for a kept database: these are server-wide
            _settle_settings(self.endpoint, self.name, before)

    def _drop_with_roles(self) -> None:
        psycopg = _psycopg()
        problem = ""
        try:  # before the database goes: its dependencies tell which roles are the test's
            named = list(self._roles.values())
            roles = _test_roles(self.endpoint, self.name, self._roles_before, named)
        except psycopg.Error as exc:
            roles, problem = [], _first_line(exc, self.endpoint)
        drop_database(self.endpoint, self.name)  # says it first if the server is gone
        if problem:
            raise ServiceError(
                f"cannot list the roles of test database {self.name!r} on "
                f"{self.endpoint.host}:{self.endpoint.port}: {problem}"
            )
        _drop_roles(self.endpoint, roles, self.name)


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
