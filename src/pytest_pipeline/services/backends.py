"""The seam between the service manager and the places servers come from.

A :class:`Backend` is where a service's server comes from: ``local`` (child processes under a
watchdog), ``docker`` (containers, through testcontainers) or ``external`` (a server someone
else runs, named by a URL). The manager picks one backend object per service and only calls
it through this protocol; what a start gives back is a :class:`Record`.

Only the standard library is imported here: each backend imports its own package (and the
client libraries) when it is first asked something.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from pytest_pipeline.services.endpoints import Endpoint, endpoint_from_dict, endpoint_to_dict

if TYPE_CHECKING:
    from pathlib import Path

    from pytest_pipeline.config import PipelineConfig
    from pytest_pipeline.services.docker import ContainerRecord, Engine
    from pytest_pipeline.services.local import ServerRecord
    from pytest_pipeline.services.manager import RunInfo

__all__ = [
    "Availability",
    "Backend",
    "DockerBackend",
    "ExternalBackend",
    "ExternalRecord",
    "LocalBackend",
    "Record",
]

#: How to get the docker backend going when no engine answers.
DOCKER_HINT = "start Docker, or use --pipeline-backend local"


@dataclass(frozen=True)
class Availability:
    """Whether a backend can provide ``service`` here, with what, and how to get it if not."""

    service: str
    ok: bool
    #: What would run (e.g. ``PostgreSQL 16.4 from /usr/lib/postgresql/16/bin``); "" if none.
    how: str
    #: Why it cannot ("" when it can): one line, for messages.
    why_not: str
    #: How to get it (an install command, a variable to set).
    hint: str


class Record(Protocol):
    """What a started server or container reports.

    Every process of the run finds it in the run's state file (:meth:`to_dict`). What only
    its own backend reads back -- the watchdog and server pids and work directory of a local
    server, the id of a container -- is in that dict too (see :meth:`Backend.load`).
    """

    @property
    def service(self) -> str:
        """``"postgres"``, ``"kafka"`` or ``"s3"``."""
        ...

    @property
    def endpoint(self) -> Endpoint:
        """Where it listens, with its credentials."""
        ...

    @property
    def description(self) -> str:
        """One secret-free line for the terminal (``local PostgreSQL 16.4 on 127.0.0.1:...``)."""
        ...

    @property
    def started_in(self) -> float | None:
        """Seconds its start took (None: this process did not start it)."""
        ...

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form, read back by :meth:`Backend.load`."""
        ...


class Backend(Protocol):
    """Where a service's server comes from, as the service manager uses it."""

    @property
    def name(self) -> str:
        """``"local"``, ``"docker"`` or ``"external"``: the ``*_service`` fixture's ``backend``."""
        ...

    @property
    def shared(self) -> bool:
        """True when it starts servers of the run's own: one per run, recorded in the run's
        state file for every process, stopped when the run ends. False when each process
        reaches a server that someone else runs (nothing to record or stop)."""
        ...

    def availability(self, service: str) -> Availability:
        """Whether it can provide ``service`` here; cheap (no server is started)."""
        ...

    def start(self, service: str) -> Record:
        """Start ``service``'s server (or reach an external one) and wait until it answers,
        within services.startup_timeout; raises a ``PipelineError`` saying why not."""
        ...

    def stop(self, record: Record) -> None:
        """Stop the server of ``record`` (from any process of the run); gone already is fine."""
        ...

    def load(self, data: dict[str, Any]) -> Record:
        """The record that :meth:`Record.to_dict` wrote (possibly in another process)."""
        ...

    def adopt(self, record: Record) -> None:
        """The run has recorded ``record``: its server now outlives the process that started
        it (an xdist worker), and is stopped when the run ends."""
        ...

    def reap_stale(self) -> list[str]:
        """Clean up after earlier runs of this user whose owner died (``kill -9``) before
        stopping their servers; one line per thing removed."""
        ...


class LocalBackend:
    """Real servers as child processes of the run, each under a watchdog (``services.local``)."""

    name = "local"
    shared = True

    def __init__(self, resolved: PipelineConfig, run: RunInfo, root: Callable[[], Path]) -> None:
        self._resolved = resolved
        self._run = run
        self._root = root  # where run directories live (manager.temp_root)

    def availability(self, service: str) -> Availability:
        from pytest_pipeline.services import local

        local.set_version_timeout(self._resolved.services.startup_timeout)  # a hung `--version`
        return local.availability(service)

    def start(self, service: str) -> Record:
        from pytest_pipeline.services import local

        if service == "postgres":
            from pytest_pipeline.services import schema

            # Its data directory comes from a cache holding the schema's template already.
            local.use_schema(schema.from_config(self._resolved))
        return local.start(
            service,
            self._run.run_dir,
            root_pid=self._run.root_pid,
            timeout=self._resolved.services.startup_timeout,
        )

    def stop(self, record: Record) -> None:
        from pytest_pipeline.services import local

        local.stop(_server_record(record))

    def load(self, data: dict[str, Any]) -> Record:
        from pytest_pipeline.services import local

        return local.ServerRecord.from_dict(data)

    def adopt(self, record: Record) -> None:
        from pytest_pipeline.services import local

        local.adopt(_server_record(record))

    def reap_stale(self) -> list[str]:
        from pytest_pipeline.services import local

        # Reaps only runs it can prove are ours and dead, so any process of a run may call it.
        reaped = local.reap_stale(self._root())
        return reaped + local.reap_leftovers()  # of runs with any TMPDIR (Postgres in /dev/shm)


class DockerBackend:
    """Each service in a container (``services.docker``), tied to the run's owner process."""

    name = "docker"
    shared = True

    def __init__(
        self,
        resolved: PipelineConfig,
        run: RunInfo,
        engine: Callable[[], Engine],
        notes: list[str],
    ) -> None:
        self._resolved = resolved
        self._run = run
        self._engine = engine  # the manager's probe, asked once per process
        self._notes = notes  # lines for the terminal (the reaper's, if it cannot run)
        #: In an xdist worker: the owner's testcontainers session, to label containers with.
        self.session: str | None = None
        #: Set once this process starts a container (the controller then shows the reaper's
        #: note, if any, once).
        self.started = False
        self._ready = False
        self._lock = threading.Lock()

    def availability(self, service: str) -> Availability:
        engine = self._engine()
        how = f"{engine.address} (Docker {engine.version})" if engine.ok else ""
        return Availability(service, engine.ok, how, engine.why_not, DOCKER_HINT)

    def start(self, service: str) -> Record:
        from pytest_pipeline.services import docker

        self._prepare()
        labels = {
            docker.LABEL_RUN: self._run.run_id,
            docker.LABEL_OWNER: docker.owner_label(self._run.root_pid),
        }
        return docker.start(
            self._resolved.services[service],
            host_network=self._resolved.services.network == "host",
            timeout=self._resolved.services.startup_timeout,
            labels=labels,
        )

    def _prepare(self) -> None:
        """Once per process: reap containers of dead runs; tie new ones to the run's owner."""
        from pytest_pipeline.services import docker

        with self._lock:  # services start in parallel threads
            self.started = True
            if self._ready:
                return
            with contextlib.suppress(Exception):  # what it cannot reap now, the next run will
                self.reap_stale()
            if self._run.is_owner:
                note = docker.ensure_reaper(timeout=self._resolved.services.startup_timeout)
                if note:
                    self._notes.append(note)
            else:
                docker.adopt_session(self.session)
            self._ready = True

    def stop(self, record: Record) -> None:
        from pytest_pipeline.services import docker

        docker.stop(_container_record(record))

    def load(self, data: dict[str, Any]) -> Record:
        from pytest_pipeline.services import docker

        return docker.ContainerRecord.from_dict(data)

    def adopt(self, record: Record) -> None:
        """Nothing to do: a container is tied to the run's owner from its start (labels)."""

    def reap_stale(self) -> list[str]:
        from pytest_pipeline.services import docker

        return docker.reap_stale()


@dataclass(frozen=True)
class ExternalRecord:
    """An external server, checked and reached once by this process."""

    service: str
    endpoint: Endpoint
    description: str
    started_in: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form (not written anywhere: each process reaches it itself)."""
        return {
            "service": self.service,
            "endpoint": endpoint_to_dict(self.endpoint),
            "description": self.description,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExternalRecord:
        """Rebuild a record written by :meth:`to_dict`."""
        service = str(data["service"])
        return cls(service, endpoint_from_dict(service, data["endpoint"]), str(data["description"]))


class ExternalBackend:
    """A server someone else runs, named by a URL (``services.external``)."""

    name = "external"
    shared = False

    def __init__(self, resolved: PipelineConfig) -> None:
        self._resolved = resolved

    def availability(self, service: str) -> Availability:
        if self._resolved.services[service].is_external:
            return Availability(service, True, "a URL is configured", "", "")
        # The session's fixture fails with the ConfigError of external.endpoint.
        why = f"services.backend = external, but no URL is configured for {service}"
        return Availability(service, False, "", why, "")

    def start(self, service: str) -> Record:
        from pytest_pipeline.services import external

        timeout, allowed = self._resolved.services.startup_timeout, self._resolved.allowed_hosts
        endpoint = external.endpoint(self._resolved.services[service], allowed, timeout)
        # Once per session (the service fixture keeps its error): see check_reachable.
        external.check_reachable(endpoint, allowed, timeout)
        return ExternalRecord(service, endpoint, external.describe(endpoint))

    def stop(self, record: Record) -> None:
        """Nothing to do: not ours to stop."""

    def load(self, data: dict[str, Any]) -> Record:
        return ExternalRecord.from_dict(data)

    def adopt(self, record: Record) -> None:
        """Nothing to do: the run does not own it."""

    def reap_stale(self) -> list[str]:
        """Nothing to do: the run starts no server of its own there."""
        return []


def _server_record(record: Record) -> ServerRecord:
    from pytest_pipeline.services import local

    if not isinstance(record, local.ServerRecord):
        raise TypeError(f"not a local server's record: {type(record).__name__}")
    return record


def _container_record(record: Record) -> ContainerRecord:
    from pytest_pipeline.services import docker

    if not isinstance(record, docker.ContainerRecord):
        raise TypeError(f"not a container's record: {type(record).__name__}")
    return record
