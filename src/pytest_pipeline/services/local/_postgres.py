"""Local PostgreSQL: a copy of a cached, pristine initdb'd data directory per run.

initdb takes over a second, so it runs once per (PostgreSQL build, user) and its result is
kept under the user's cache directory; each start copies it (about 25 MB), preferably to a
RAM-backed /dev/shm. The ``postgres`` binary is started directly (not through ``pg_ctl``,
which daemonizes out of the watchdog's reach) with durability switched off.
"""

from __future__ import annotations

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
from dataclasses import dataclass
from pathlib import Path

from pytest_pipeline.errors import ServiceError
from pytest_pipeline.services import probes as _probes
from pytest_pipeline.services.endpoints import PostgresEndpoint
from pytest_pipeline.services.local import _proc
from pytest_pipeline.services.local._common import (
    Availability,
    Found,
    LaunchPlan,
    Workspace,
    cache_root,
    state_dir,
)

_WHEEL = "the pgserver wheel"
HINT = 'apt-get install postgresql, or pip install "pytest-pipeline[local]" (pgserver wheel)'
SUPERUSER = "postgres"
#: Bump when the initdb options change, so old cached templates are not reused.
_TEMPLATE_FORMAT = "2"
#: Use /dev/shm for data only when it is this roomy (Docker's default is 64 MB).
_TMPFS_MIN_FREE = 2 * 1024**3
#: Set to 0 to keep Postgres data on disk, in the run directory or the temp directory.
TMPFS_ENV = "PYTEST_PIPELINE_LOCAL_TMPFS"

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
    spec = importlib.util.find_spec("pgserver")
    for location in (spec.submodule_search_locations or []) if spec else []:
        for sub in ("bin", "pginstall/bin"):
            wheel_bin = Path(location, sub)
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
    the pgserver wheel's binaries. PostgreSQL finds its lib and share directories relative to
    its binary, so a copy of the install tree elsewhere runs as is.
    """
    install = postgres.resolve().parent.parent  # .../site-packages/pgserver/pginstall
    # The wheel's binaries load their libraries from $ORIGIN/../../../pgserver.libs
    # (auditwheel): the copy keeps that layout.
    libs = install.parent.parent / "pgserver.libs"
    st = postgres.stat()
    # Keyed by the build, not the path: every venv holding this wheel shares one copy.
    key = hashlib.sha256(f"{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:12]
    shared_root = Path(tempfile.gettempdir()) / "pytest-pipeline-shared"
    target = shared_root / f"pgserver-{key}"
    bindir = target / "pg" / "pginstall" / "bin"
    if not (bindir / postgres.name).exists():
        try:
            shared_root.mkdir(mode=0o755, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f".pgserver-{key}-", dir=shared_root))
            for part in ("bin", "lib", "share"):
                if (install / part).is_dir():
                    shutil.copytree(
                        install / part, staging / "pg" / "pginstall" / part, symlinks=True
                    )
            if libs.is_dir():
                shutil.copytree(libs, staging / "pgserver.libs", symlinks=True)
            for dirpath, _dirnames, _filenames in os.walk(staging):
                os.chmod(dirpath, 0o755)
            os.chmod(staging, 0o755)
            try:
                staging.rename(target)  # atomic: a concurrent run either wins or reuses ours
            except OSError:
                shutil.rmtree(staging, ignore_errors=True)
        except OSError:
            return None
    return bindir / postgres.name, bindir / initdb.name


def _password_file(template: Path) -> Path:
    return template.with_name(template.name + ".password")


def find() -> Found:
    """Locate PostgreSQL: PATH, then /usr/lib/postgresql/*/bin (newest), then pgserver."""
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
                origin = f"{_WHEEL} (shared copy in {shared[0].parents[2]})"
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
            "or in an installed pgserver wheel",
            HINT,
        ),
        None,
    )


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
        template = self._template()
        # TCP logins need this password (scram-sha-256): other users of the machine cannot
        # connect as superuser to a test server listening on 127.0.0.1.
        self.password = _password_file(template).read_text(encoding="utf-8").strip()
        self.datadir = self._reachable_dir("pgdata") / "data"
        self.datadir.mkdir(mode=0o700)
        _copy_tree(template, self.datadir, self.owner)

    def _reachable_dir(self, label: str) -> Path:
        """A new directory the server user can reach (it may not be us), removed with the
        work directory."""
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
                if self.owner is not None:
                    os.chown(path, *self.owner)
                return path
            parent = state_dir(base) if kind == "shm" else base
            return self.ws.claim_dir(parent, label, self.owner)
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
        if (final / "PG_VERSION").is_file():
            return final
        cache.mkdir(parents=True, exist_ok=True)
        with _proc.file_lock(
            cache / f"{final.name}.lock", self.ws.deadline, "building the PostgreSQL template"
        ):
            if (final / "PG_VERSION").is_file():  # built by a concurrent run meanwhile
                return final
            scratch = self._reachable_dir("initdb")
            password = secrets.token_hex(16)
            pwfile = scratch / "pwfile"
            pwfile.write_text(password + "\n", encoding="utf-8")
            os.chmod(pwfile, 0o600)
            if self.owner is not None:
                os.chown(pwfile, *self.owner)
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
                shutil.rmtree(staging, ignore_errors=True)
                shutil.rmtree(scratch, ignore_errors=True)
        return final

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
        env.update(LANG="C", LC_ALL="C")
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

    def plan(self, ports: list[int]) -> LaunchPlan:
        (port,) = ports
        cmd = [str(self.install.postgres), "-D", str(self.datadir), "-p", str(port)]
        for name, value in _SETTINGS.items():
            cmd += ["-c", f"{name}={value}"]
        endpoint = PostgresEndpoint(
            host="127.0.0.1", port=port, user=SUPERUSER, password=self.password
        )

        def probe(timeout: float) -> bool:
            return _probes.postgres_ready("127.0.0.1", port, SUPERUSER, "postgres", timeout)

        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(LANG="C", LC_ALL="C")
        return LaunchPlan(
            cmd=cmd,
            env=env,
            endpoint=endpoint,
            description=f"local PostgreSQL {self.install.version}",
            probe=probe,
            port=port,
            # Immediate shutdown: the data is thrown away, so no checkpoint is worth waiting for.
            term_signal=signal.SIGQUIT,
            grace=5.0,
            user=self.owner,
            pidfile=self.datadir / "postmaster.pid",
        )
