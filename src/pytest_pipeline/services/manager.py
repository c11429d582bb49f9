"""Which server each service uses, started once per run and shared by pytest-xdist workers.

The run owner (the single pytest process, or the xdist controller) decides a run directory
and passes it, with its pid, to the workers. Any process that first needs a service starts it
under a file lock and records it in ``state.json`` there; the others read it back. The run
owner stops every recorded server when the run ends; the local servers' watchdogs stop them
if the run owner dies without doing so (Ctrl-C, ``kill -9``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_pipeline.config import PipelineConfig
from pytest_pipeline.constants import SERVICES
from pytest_pipeline.errors import ServiceError, ServiceUnavailable
from pytest_pipeline.services.backends import (
    Availability,
    Backend,
    DockerBackend,
    ExternalBackend,
    LocalBackend,
    Record,
)
from pytest_pipeline.services.endpoints import (
    Endpoint,
    KafkaEndpoint,
    PostgresEndpoint,
    S3Endpoint,
    endpoint_from_dict,
    endpoint_to_dict,
)

if TYPE_CHECKING:
    from pytest_pipeline.services.docker import Engine, ImageCheck

#: How long ``auto`` waits (at most, and never beyond services.startup_timeout) for the engine
#: to ask registries whether images it has not got exist: an offline engine answers at once.
AUTO_REGISTRY_WAIT = 5.0

# How to point the tests at a running server instead (shown when no backend can provide one).
EXTERNAL_HINT = {
    "postgres": "PYTEST_PIPELINE_POSTGRES_URL",
    "kafka": "PYTEST_PIPELINE_KAFKA_BOOTSTRAP",
    "s3": "PYTEST_PIPELINE_S3_ENDPOINT (+ _ACCESS_KEY, _SECRET_KEY)",
}


def temp_root() -> Path:
    """Where run directories live: one folder per user, so runs of two users never mix."""
    return Path(tempfile.gettempdir()) / f"pytest-pipeline-{os.getuid()}"


@dataclass(frozen=True)
class RunInfo:
    """What every process of one run shares: its directory, owner pid and id."""

    run_dir: Path
    root_pid: int
    run_id: str
    worker: str

    @classmethod
    def new(cls) -> RunInfo:
        run_id = secrets.token_hex(3)
        return cls(temp_root() / f"run-{run_id}", os.getpid(), run_id, "main")

    def to_workerinput(self) -> dict[str, Any]:
        return {"run_dir": str(self.run_dir), "root_pid": self.root_pid, "run_id": self.run_id}

    @classmethod
    def from_workerinput(cls, data: dict[str, Any], worker: str) -> RunInfo:
        return cls(Path(data["run_dir"]), int(data["root_pid"]), str(data["run_id"]), worker)

    @property
    def is_owner(self) -> bool:
        return os.getpid() == self.root_pid


@dataclass(frozen=True)
class Service:
    """A running server, as the ``*_service`` session fixtures give it."""

    name: str
    backend: str
    description: str
    endpoint: Endpoint
    started_in: float | None = None

    @property
    def dsn(self) -> str:
        """Postgres: the admin-database URL (contains the password if there is one)."""
        assert isinstance(self.endpoint, PostgresEndpoint), f"{self.name} has no dsn"
        return self.endpoint.dsn()

    @property
    def bootstrap_servers(self) -> str:
        """Kafka: the bootstrap servers."""
        assert isinstance(self.endpoint, KafkaEndpoint), f"{self.name} has no bootstrap servers"
        return self.endpoint.bootstrap_servers

    @property
    def endpoint_url(self) -> str:
        """S3: the endpoint URL."""
        assert isinstance(self.endpoint, S3Endpoint), f"{self.name} has no endpoint URL"
        return self.endpoint.endpoint_url

    def start_line(self) -> str:
        """The terminal line announcing the service: ``postgres: local ... ready in 0.42 s``."""
        timing = f" ready in {self.started_in:.2f} s" if self.started_in is not None else " ready"
        return f"{self.name}: {self.description}{timing}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "backend": self.backend,
            "description": self.description,
            "endpoint": endpoint_to_dict(self.endpoint),
            "started_in": self.started_in,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Service:
        return cls(
            data["name"],
            data["backend"],
            data["description"],
            endpoint_from_dict(data["name"], data["endpoint"]),
            data.get("started_in"),
        )


@dataclass(frozen=True)
class AutoChoice:
    """What ``services.backend = "auto"`` means in a run: docker or local, and why."""

    docker: bool
    why: str
    #: Local although Docker answers, because an image cannot be had (said once in the run).
    fallback: bool = False


@dataclass(frozen=True)
class Choice:
    """The backend a session uses for a service, and whether it can provide it here."""

    backend: Backend
    availability: Availability
    #: Chosen by ``services.backend = "auto"`` (not configured for this run).
    auto: bool


class ServiceManager:
    """Gives each process of a run the shared server of a service, starting it on first use."""

    def __init__(self, resolved: PipelineConfig, run: RunInfo) -> None:
        self.resolved = resolved
        self.run = run
        self._services: dict[str, Service] = {}
        self._counter = 0
        self._reaped = False
        self._expected: set[str] = set()
        self._failed: dict[str, BaseException] = {}
        self._engine_answer: Engine | None = None
        self._image_checks: dict[str, ImageCheck] | None = None
        self._auto: AutoChoice | None = None
        # Set in xdist workers: the controller's reading of `auto` (a worker's own probe might
        # answer differently under load).
        self.auto_docker: bool | None = None
        # Lines for the terminal, carried to the xdist controller on the next test report.
        self.notes: list[str] = []
        self.kept: list[str] = []
        self._local = LocalBackend(resolved, run, temp_root)
        self._docker = DockerBackend(resolved, run, self.engine, self.notes)
        self._external = ExternalBackend(resolved)
        # By the name services.backend and the state file use.
        self._backends: dict[str, Backend] = {
            backend.name: backend for backend in (self._local, self._docker, self._external)
        }

    @property
    def containers_started(self) -> bool:
        """Whether this process started a container: carried to the xdist controller, which
        then shows its reaper's note (if any) once."""
        return self._docker.started

    @containers_started.setter
    def containers_started(self, value: bool) -> None:
        self._docker.started = value

    @property
    def docker_session(self) -> str | None:
        """In an xdist worker: the owner's testcontainers session (see services.docker)."""
        return self._docker.session

    @docker_session.setter
    def docker_session(self, value: str | None) -> None:
        self._docker.session = value

    # -- names -----------------------------------------------------------------------------
    def unique_prefix(self) -> str:
        """A prefix unique to one test: run id, worker and a per-process counter."""
        self._counter += 1
        return f"pp-{self.run.run_id}-{self.run.worker}-{self._counter}"

    # -- backends --------------------------------------------------------------------------
    def backend(self, name: str) -> Backend:
        """The external backend when a URL is configured for ``name``, else the configured one.

        ``auto`` is docker when the docker extra is installed, an engine answers within about a
        second and it has (or its registry has) the image of every service the run manages,
        else local: see :meth:`auto_choice`.
        """
        if self.resolved.services[name].is_external:
            return self._external
        if self.resolved.services.backend == "auto":
            return self._docker if self.auto_picks_docker() else self._local
        return self._backends[self.resolved.services.backend]

    def backend_for(self, name: str) -> str:
        """The name of :meth:`backend`: ``"local"``, ``"docker"`` or ``"external"``."""
        return self.backend(name).name

    def choice(self, name: str) -> Choice:
        """The backend the session uses for ``name`` and whether it can provide it here
        (what ``pytest-pipeline doctor`` tells)."""
        backend = self.backend(name)
        auto = backend.shared and self.resolved.services.backend == "auto"
        return Choice(backend, backend.availability(name), auto)

    def engine(self) -> Engine:
        """The Docker engine's answer, asked once per process (auto and the doctor share it)."""
        if self._engine_answer is None:
            from pytest_pipeline.services import docker

            self._engine_answer = docker.probe(1.0)
        return self._engine_answer

    def image_checks(self) -> dict[str, ImageCheck]:
        """Whether the engine has, or can pull, each managed service's image (asked once)."""
        if self._image_checks is None:
            from pytest_pipeline.services import docker

            managed = [s for s in self.resolved.services.values() if not s.is_external]
            wait = min(self.resolved.services.startup_timeout, AUTO_REGISTRY_WAIT)
            self._image_checks = docker.check_images(managed, wait)
        return self._image_checks

    def auto_picks_docker(self) -> bool:
        """Whether ``auto`` means docker in this run (decided once, by the run's owner)."""
        return self.auto_choice().docker

    def auto_choice(self) -> AutoChoice:
        """What ``auto`` means in this run and why (decided once per process; xdist workers
        take the controller's decision, as a worker's own probe might answer differently)."""
        if self._auto is None:
            if self.auto_docker is not None:
                self._auto = AutoChoice(self.auto_docker, "the run's controller decided")
            else:
                self._auto = self._choose_auto()
                if self._auto.fallback:
                    self.notes.append(
                        'pytest-pipeline: services.backend = "auto" uses the local servers, not '
                        f"Docker: {self._auto.why}. Pull or build the image (docker pull), or "
                        'set services.backend = "docker" to use Docker only (it never falls back).'
                    )
        return self._auto

    def _choose_auto(self) -> AutoChoice:
        import importlib.util

        # Someone who installed only the local extra gets local servers, Docker running or not.
        if importlib.util.find_spec("testcontainers") is None:
            return AutoChoice(False, "the docker extra is not installed")
        engine = self.engine()
        if not engine.ok:
            return AutoChoice(False, engine.why_not)
        missing = {
            name: check for name, check in self.image_checks().items() if check.state == "missing"
        }
        if not missing:
            return AutoChoice(True, "the engine answers and has, or can pull, every image")
        why = "; ".join(
            f"the engine has not got {check.image} ({name}) and cannot pull it ({check.why})"
            for name, check in missing.items()
        )
        if not all(self._local.availability(name).ok for name in self.image_checks()):
            # Nothing to fall back on: the docker backend's own error says what to pull.
            return AutoChoice(True, f"{why}; the local backend cannot provide every service")
        return AutoChoice(False, why, fallback=True)

    def uses_docker(self) -> bool:
        """Whether any service of this session would run in a container."""
        return any(self.backend(name) is self._docker for name in SERVICES)

    def get(self, name: str) -> Service:
        """The running service ``name``, started (once per run) if needed."""
        if name not in self._services:
            self._services[name] = self._obtain(name)
        return self._services[name]

    def _obtain(self, name: str) -> Service:
        backend = self.backend(name)
        if backend.shared:
            return self._managed(name, backend)
        # A server someone else runs: every process reaches it itself.
        record = backend.start(name)
        description = record.description
        if isinstance(record.endpoint, PostgresEndpoint):
            description += self._schema_template(record.endpoint)
        return Service(name, backend.name, description, record.endpoint)

    def expect(self, names: set[str]) -> None:
        """Services the collected tests use: the first local start starts them all at once."""
        self._expected = set(names)

    def _managed(self, name: str, backend: Backend) -> Service:
        """A server this run starts itself (local process or container), shared by its workers."""
        why_not = self._why_unavailable(name, backend)
        if why_not:
            raise ServiceUnavailable(why_not)
        if name in self._failed:
            raise self._failed.pop(name)
        with self._locked_state() as state:  # raise only after the state is written
            if name not in state:
                # Servers start in parallel (each mostly waits on its own process), so a
                # suite using all three pays for the slowest, not for the sum.
                others = sorted(
                    other
                    for other in self._expected - {name}
                    if other not in state
                    and self.backend(other) is backend
                    and not self._why_unavailable(other, backend)
                )
                self._start_many([name, *others], backend, state)
            entry = state.get(name)
        if entry is None:
            raise self._failed.pop(name)
        service = Service.from_dict(entry["service"])
        if entry.get("starter_pid") != os.getpid():
            # Started by another process of the run: that one announced it.
            service = Service(
                service.name, service.backend, service.description, service.endpoint, None
            )
        return service

    def _why_unavailable(self, name: str, backend: Backend) -> str:
        """Why ``backend`` cannot provide ``name`` here (empty when it can)."""
        found = backend.availability(name)
        if found.ok:
            return ""
        why, hint = f"{backend.name}: {found.why_not}", found.hint
        return (
            f"pytest-pipeline: no backend can provide {name} here: {why}. Get it with: {hint}; "
            f"or point the tests at a running server with {EXTERNAL_HINT[name]}. "
            'Set services.missing = "skip" to skip such tests instead.'
        )

    def _start_many(self, names: list[str], backend: Backend, state: dict[str, Any]) -> None:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=len(names)) as pool:
            futures = {name: pool.submit(self._start, backend, name) for name in names}
        for name, future in futures.items():
            try:
                record = future.result()
            except Exception as exc:  # raised to the tests that need this service
                self._failed[name] = exc
                continue
            service = Service(
                name, backend.name, record.description, record.endpoint, record.started_in
            )
            state[name] = {
                "service": service.to_dict(),
                "record": record.to_dict(),
                "starter_pid": os.getpid(),
            }

    def _start(self, backend: Backend, name: str) -> Record:
        """Start ``name``'s server; Postgres: then build the template every test database is
        copied from."""
        record = backend.start(name)
        if isinstance(record.endpoint, PostgresEndpoint):
            try:
                self._schema_template(record.endpoint)
            except BaseException:
                backend.stop(record)
                raise
        return record

    def _schema_template(self, endpoint: PostgresEndpoint) -> str:
        """Build the template (with services.postgres.schema applied) unless it is there;
        returns what to add to the service's description."""
        from pytest_pipeline.services import schema
        from pytest_pipeline.services.postgres import ensure_template

        loaded = schema.from_config(self.resolved)
        note = ensure_template(endpoint, loaded)
        if loaded is None:
            return ""
        if note:
            self.notes.append(f"postgres: {note}")
        return f", schema {loaded.digest[:12]}"

    @contextmanager
    def _locked_state(self) -> Iterator[dict[str, Any]]:
        run_dir = self.run.run_dir
        from pytest_pipeline import _safedir

        # Ours, no symlink, writable by us only: checked before anything in it is read.
        _safedir.user_dir(temp_root().parent)
        if not self._reaped:
            # Leftovers of runs whose owner died (kill -9 before the watchdogs could act):
            # servers and their data first, then run directories that hold nothing.
            self._reaped = True
            self._local.reap_stale()
            _reap_dead_runs(temp_root())
        run_dir.mkdir(exist_ok=True)
        _safedir.check(run_dir, 0o755)  # servers may run as an unprivileged user inside it
        (run_dir / "root.json").write_text(json.dumps({"root_pid": self.run.root_pid}))
        state_file = run_dir / "state.json"
        with open(run_dir / "state.lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                state = json.loads(state_file.read_text()) if state_file.exists() else {}
                try:
                    yield state
                finally:
                    # Also when the body raised: servers it started must be found to be stopped.
                    # Holds endpoints with passwords: readable by this user only.
                    tmp = state_file.with_suffix(".tmp")
                    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                    with os.fdopen(fd, "w") as handle:
                        json.dump(state, handle)
                    tmp.replace(state_file)
                    # Recorded: servers this process (maybe an xdist worker) started now
                    # outlive it; until here its death stops them (no second set later).
                    for entry in state.values():
                        if entry.get("starter_pid") == os.getpid() and "record" in entry:
                            backend = self._backends[entry["service"]["backend"]]
                            backend.adopt(backend.load(entry["record"]))
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    # -- shutdown --------------------------------------------------------------------------
    def shutdown(self) -> list[str]:
        """Stop every server of this run (run owner only) and remove the run directory.

        Returns problems worth a warning; nothing here raises, so the run's own result stands.
        """
        if not self.run.is_owner or not self.run.run_dir.exists():
            return []
        problems: list[str] = []
        state_file = self.run.run_dir / "state.json"
        try:
            state = json.loads(state_file.read_text()) if state_file.exists() else {}
        except (OSError, ValueError) as exc:
            # The watchdogs still stop the servers when this process exits.
            problems.append(f"cannot read {state_file}: {exc}")
            state = {}
        for name in SERVICES:
            entry = state.get(name)
            if entry is None or "record" not in entry:
                continue
            try:
                backend = self._backends[entry["service"]["backend"]]
                backend.stop(backend.load(entry["record"]))
            except Exception as exc:  # keep stopping the others
                problems.append(f"{name}: could not stop its server: {exc}")
        from pytest_pipeline import _safedir

        with contextlib.suppress(ServiceError):  # not ours after all: left alone
            _safedir.remove(self.run.run_dir, [self.run.run_dir.parent])
        return problems


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _reap_dead_runs(root: Path) -> None:
    """Remove run directories of ours whose owner is gone and that hold no server.

    reap_stale() handles runs with servers; this catches a run killed before any server
    started (or after every start failed). A live pid, even a reused one, keeps its run.
    """
    from pytest_pipeline import _safedir

    if not _safedir.check(root):  # raises naming it if another user could have planted it
        return
    for run_dir in root.glob("run-*"):
        try:
            if run_dir.stat().st_uid != os.getuid():
                continue
            owner = json.loads((run_dir / "root.json").read_text())
            dead = not _pid_alive(int(owner["root_pid"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if dead and not any(child.is_dir() for child in run_dir.iterdir()):
            _safedir.remove(run_dir, [root])
