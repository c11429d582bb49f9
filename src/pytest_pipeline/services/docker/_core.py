"""Start, wait for, stop and reap the docker backend's containers (through testcontainers).

Lifetimes. A container lives as long as the run's owner process (the single pytest process, or
the pytest-xdist controller), whichever process started it:

- our own teardown removes it when the run ends (``stop``);
- testcontainers' reaper (Ryuk) removes it when the owner dies without doing so (Ctrl-C twice,
  ``kill -9``): the owner holds the reaper's connection, and xdist workers label their
  containers with the owner's testcontainers session, so a worker that finishes early does not
  take the shared servers with it;
- if no reaper could run, the next run removes containers whose owner process is gone
  (``reap_stale``), by our own labels.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_pipeline._optional import require
from pytest_pipeline.config import SERVICE_ENV, ServiceConfig
from pytest_pipeline.errors import PipelineError, ServiceError
from pytest_pipeline.services import process
from pytest_pipeline.services.docker import _engine, _specs
from pytest_pipeline.services.endpoints import Endpoint, endpoint_from_dict, endpoint_to_dict

LABEL_RUN = "pytest-pipeline.run"
LABEL_OWNER = "pytest-pipeline.owner"
LABEL_SERVICE = "pytest-pipeline.service"
_PORT_ATTEMPTS = 4
_PORT_CONFLICT = re.compile(
    r"port is already allocated|address already in use|failed to bind|bind for", re.I
)
_OFFLINE_HINT = (
    "without a registry, build compatible images with scripts/docker-test-images --env "
    "(see docs/docker.md)"
)


@dataclass(frozen=True)
class ContainerRecord:
    """A started container: where it listens and how any process of the run removes it."""

    service: str
    endpoint: Endpoint
    description: str
    container_id: str
    started_in: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form (for the run's shared state file)."""
        return {
            "backend": "docker",
            "service": self.service,
            "endpoint": endpoint_to_dict(self.endpoint),
            "description": self.description,
            "container_id": self.container_id,
            "started_in": self.started_in,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ContainerRecord:
        """Rebuild a record written by :meth:`to_dict`."""
        return cls(
            data["service"],
            endpoint_from_dict(data["service"], data["endpoint"]),
            data["description"],
            data["container_id"],
            float(data["started_in"]),
        )


def _machine() -> str:
    """Where pids mean the same: host name, boot and pid namespace.

    Two CI jobs in separate pid namespaces may share one engine (and, with host networking,
    one host name); neither may take the other's containers for a dead run's.
    """
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8]
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        boot, namespace = "?", 0
    return f"{socket.gethostname()}:{boot}:{namespace}"


def owner_label(root_pid: int) -> str:
    """``machine/pid/start-time`` of the run owner: identifies it across pid reuse."""
    return f"{_machine()}/{root_pid}/{process.start_time(root_pid) or '?'}"


# --------------------------------------------------------------------------- testcontainers


def _testcontainers() -> Any:
    require("testcontainers", "docker", "the docker service backend")
    import testcontainers.core.container as container_module

    return container_module


def _client() -> Any:
    require("docker", "docker", "the docker service backend")
    import docker

    return docker.from_env(timeout=30)


_reaper_lock = threading.Lock()
_reaper_note: list[str] = []


def ensure_reaper(timeout: float = 60.0) -> str | None:
    """Start testcontainers' reaper in this (owner) process; a note if it cannot run.

    Its image is checked (and pulled) within ``timeout`` like a service's. Without a reaper,
    containers still go at the end of the run (our teardown) and, after a killed run, at the
    start of the next one.
    """
    with _reaper_lock:
        if _reaper_note:
            return _reaper_note[0] or None
        module = _testcontainers()
        from testcontainers.core.config import testcontainers_config

        note = ""
        if not testcontainers_config.ryuk_disabled:
            image = testcontainers_config.ryuk_image
            start = f"docker: testcontainers' reaper ({image}) did not start: "
            after = (
                "Containers are removed at the end of the run, or at the next run if this one "
                "is killed."
            )
            try:
                why = _obtain_image(_client(), pulled_name(image), time.monotonic() + timeout)
                if why is None:
                    module.Reaper.get_instance()
                else:
                    note = (
                        f"{start}the image is not on this engine and could not be pulled ({why}). "
                        f"{after} Pull it first (docker pull {pulled_name(image)}), or set "
                        "RYUK_CONTAINER_IMAGE to a reaper image the engine has (docker image ls); "
                        f"{_OFFLINE_HINT}."
                    )
            except Exception as exc:
                note = (
                    f"{start}{_first_line(exc)}. {after} Set RYUK_CONTAINER_IMAGE to a reaper "
                    f"image the engine has ({_OFFLINE_HINT})."
                )
            if note:
                # Do not let every container start try again (each try waits for the image).
                testcontainers_config.ryuk_disabled = True
        _reaper_note.append(note)
        return note or None


def owner_session() -> str:
    """This owner's testcontainers session id, for its xdist workers to label containers with."""
    _testcontainers()
    from testcontainers.core import labels

    return str(labels.SESSION_ID)


def adopt_session(session_id: str | None) -> None:
    """In an xdist worker: label containers with the owner's session; the owner reaps them.

    Without one (the owner could not load testcontainers), the worker still starts no reaper
    of its own: it would take the shared containers along when this worker finishes.
    """
    _testcontainers()
    from testcontainers.core import labels
    from testcontainers.core.config import testcontainers_config

    if session_id is not None:
        labels.SESSION_ID = session_id
    testcontainers_config.ryuk_disabled = True


# --------------------------------------------------------------------------- start / stop


def _first_line(exc: BaseException, limit: int = 300) -> str:
    # The Docker SDK's APIError carries the engine's own explanation; str() adds the URL.
    text = str(getattr(exc, "explanation", None) or exc).strip() or type(exc).__name__
    line = text.splitlines()[0]
    if len(line) <= limit:
        return line
    # Cut between words and say so: a sentence cut mid-word reads as a different one.
    return line[:limit].rsplit(" ", 1)[0] + " ..."


def _setting_names(service: str) -> str:
    if service == "reaper":
        return "RYUK_CONTAINER_IMAGE"
    variable = SERVICE_ENV[(service, "image")]
    return f"services.{service}.image in [tool.pytest-pipeline] or {variable}"


def pulled_name(image: str) -> str:
    """The name testcontainers creates a container of ``image`` from (a registry mirror's
    prefix added), as the engine must have it."""
    try:
        from testcontainers.core.config import testcontainers_config
    except ImportError:  # the doctor, without the docker extra
        return image
    return testcontainers_config.hub_image_name_prefix + image


def check_images(services: list[ServiceConfig], timeout: float) -> dict[str, _engine.ImageCheck]:
    """For each service, whether the engine has its image or its registry would give it.

    Asked over the engine API without pulling (see :func:`_engine.check_image`); registry
    questions share ``timeout`` seconds in all.
    """
    deadline = time.monotonic() + timeout
    return {
        service.name: _engine.check_image(
            pulled_name(_specs.image_of(service)), max(0.2, deadline - time.monotonic()), timeout
        )
        for service in services
    }


def _ensure_image(client: Any, service: str, image: str, deadline: float) -> None:
    image = pulled_name(image)
    why = _obtain_image(client, image, deadline)
    if why is not None:
        raise ServiceError(
            f"docker {service}: image {image} is not on this engine and could not be pulled "
            f"({why}). Pull it first (docker pull {image}), or set {_setting_names(service)} "
            f"to an image the engine has (docker image ls); {_OFFLINE_HINT}."
        )


def _obtain_image(client: Any, image: str, deadline: float) -> str | None:
    """Pull ``image`` unless the engine has it, by ``deadline``; why it could not, or None."""
    import docker.errors

    try:
        client.images.get(image)
        return None
    except docker.errors.ImageNotFound:
        pass
    except docker.errors.DockerException as exc:
        raise ServiceError(f"docker: cannot ask the engine for image {image}: {exc}") from None
    problem: list[BaseException] = []

    def pull() -> None:
        try:
            client.images.pull(image)
        except Exception as exc:  # reported below
            problem.append(exc)

    # A registry that does not answer would hold the pull far beyond startup_timeout.
    puller = threading.Thread(target=pull, daemon=True)
    puller.start()
    puller.join(max(1.0, deadline - time.monotonic()))
    if puller.is_alive() or problem:
        return _first_line(problem[0]) if problem else "the pull did not finish in time"
    return None


def start(
    service: ServiceConfig, *, host_network: bool, timeout: float, labels: dict[str, str]
) -> ContainerRecord:
    """Start ``service``'s container and wait (at most ``timeout`` s) until it answers."""
    try:
        return _start(service, host_network=host_network, timeout=timeout, labels=labels)
    except PipelineError:
        raise
    except Exception as exc:
        # The Docker SDK's own failures (a lost connection, a read timeout): one readable line.
        raise ServiceError(
            f"docker {service.name}: talking to the engine failed: {_first_line(exc)} "
            f"({type(exc).__name__}). Check the engine (docker info) and its log."
        ) from None


def _start(
    service: ServiceConfig, *, host_network: bool, timeout: float, labels: dict[str, str]
) -> ContainerRecord:
    began = time.monotonic()
    deadline = began + timeout
    name = service.name
    engine = _engine.probe(min(2.0, timeout))
    if not engine.ok:
        raise ServiceError(f"docker {name}: {engine.why_not}. {_engine.START_HINT}.")
    module = _testcontainers()
    import docker.errors

    client = _client()
    image = _specs.image_of(service)
    _ensure_image(client, name, image, deadline)
    network = "host network" if host_network else "bridge network, ports on 127.0.0.1"
    for attempt in range(1, _PORT_ATTEMPTS + 1):
        spec = _specs.build(
            service, process.free_ports(_specs.PORTS_NEEDED[name]), host_network=host_network
        )
        container = module.DockerContainer(spec.image, command=spec.command, env=spec.env)
        options: dict[str, Any] = {"labels": {**labels, LABEL_SERVICE: name}}
        if host_network:
            options["network"] = "host"
        container.with_kwargs(**options)
        for port in spec.published:
            # Same number inside and out: Kafka advertises it to clients.
            container.ports[f"{port}/tcp"] = (_specs.LOOPBACK, port)
        try:
            container.start()
        except docker.errors.APIError as exc:
            _remove_quietly(container)
            if _PORT_CONFLICT.search(str(exc)) and attempt < _PORT_ATTEMPTS:
                continue
            raise ServiceError(
                f"docker {name}: the engine could not start {image}: {_first_line(exc)}. "
                + (
                    "A port could not be published: free it, or use host networking "
                    '(services.network = "host" or --pipeline-network host).'
                    if _PORT_CONFLICT.search(str(exc))
                    else "Check the image and the engine's log."
                )
            ) from None
        except BaseException:
            _remove_quietly(container)  # created, perhaps started: not ours to leave behind
            raise
        try:
            _await_ready(container, spec, deadline, timeout)
        except BaseException:
            _remove_quietly(container)
            raise
        wrapped = container.get_wrapped_container()
        return ContainerRecord(
            name,
            spec.endpoint,
            f"docker {image} ({network}, container {wrapped.short_id})",
            wrapped.id,
            time.monotonic() - began,
        )
    raise AssertionError("unreachable")  # the loop returns or raises


def _await_ready(
    container: Any, spec: _specs.ContainerSpec, deadline: float, timeout: float
) -> None:
    wrapped = container.get_wrapped_container()
    pause = 0.02
    while True:
        if spec.ready(0.5):
            return
        wrapped.reload()
        if wrapped.status in ("exited", "dead"):
            raise ServiceError(
                f"docker {spec.service}: the {spec.image} container stopped before it was "
                f"ready (exit code {wrapped.attrs.get('State', {}).get('ExitCode')}). Its last "
                f"log lines:\n{_log_tail(wrapped)}"
            )
        if time.monotonic() > deadline:
            raise ServiceError(
                f"docker {spec.service}: {spec.image} was not ready within {timeout:g} s "
                "(services.startup_timeout in [tool.pytest-pipeline]). Its last log lines:\n"
                f"{_log_tail(wrapped)}"
            )
        time.sleep(pause)
        pause = min(pause * 1.5, 0.25)


def _log_tail(wrapped: Any, lines: int = 15) -> str:
    try:
        text = wrapped.logs(tail=lines).decode(errors="replace").rstrip()
    except Exception as exc:  # the container may be gone already
        return f"    (no log: {_first_line(exc)})"
    return "\n".join("    " + line for line in text.splitlines()) or "    (empty log)"


def _remove_quietly(container: Any) -> None:
    with contextlib.suppress(Exception):
        container.stop()


def stop(record: ContainerRecord) -> None:
    """Remove the container of ``record`` (and its anonymous volumes); gone already is fine."""
    import docker.errors

    with contextlib.suppress(docker.errors.NotFound):
        _client().containers.get(record.container_id).remove(force=True, v=True)


def reap_stale() -> list[str]:
    """Remove our containers whose run owner (on this host) is gone; names what it removed."""
    if not _engine.probe(1.0).ok:
        return []
    import docker.errors

    machine = _machine()
    removed: list[str] = []
    try:
        containers = _client().containers.list(all=True, filters={"label": LABEL_OWNER})
    except docker.errors.DockerException:
        return []
    for container in containers:
        owner_machine, _, rest = container.labels.get(LABEL_OWNER, "").partition("/")
        pid_text, _, started = rest.partition("/")
        # Only where the owner's pid can be judged: this machine, and a known start time.
        if owner_machine != machine or "?" in owner_machine or not pid_text.isdigit():
            continue
        if started == "?" or process.start_time(int(pid_text)) == started:
            continue  # the owner still runs (or cannot be told apart from a new process)
        with contextlib.suppress(docker.errors.DockerException):
            container.remove(force=True, v=True)
            removed.append(container.short_id)
    return removed
