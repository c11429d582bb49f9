"""Types shared by the local launchers and the per-service modules."""

from __future__ import annotations

import hashlib
import os
import signal
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pytest_pipeline import _safedir
from pytest_pipeline.services.backends import Availability as Availability
from pytest_pipeline.services.endpoints import (
    Endpoint,
    endpoint_from_dict,
    endpoint_to_dict,
)
from pytest_pipeline.services.local import _proc


@dataclass(frozen=True)
class ServerRecord:
    """A started local server: where it listens and how to stop it from any process."""

    service: str
    endpoint: Endpoint
    description: str
    watchdog_pid: int
    server_pid: int
    workdir: str
    started_in: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form (for the run's shared state file)."""
        return {
            "service": self.service,
            "endpoint": endpoint_to_dict(self.endpoint),
            "description": self.description,
            "watchdog_pid": self.watchdog_pid,
            "server_pid": self.server_pid,
            "workdir": self.workdir,
            "started_in": self.started_in,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ServerRecord:
        """Rebuild a record written by :meth:`to_dict` (possibly in another process)."""
        service = str(data["service"])
        return cls(
            service=service,
            endpoint=endpoint_from_dict(service, dict(data["endpoint"])),
            description=str(data["description"]),
            watchdog_pid=int(data["watchdog_pid"]),
            server_pid=int(data["server_pid"]),
            workdir=str(data["workdir"]),
            started_in=float(data["started_in"]),
        )


@dataclass
class LaunchPlan:
    """How to run one server process and how to tell it is ready."""

    cmd: list[str]
    endpoint: Endpoint
    description: str
    probe: Callable[[float], bool]
    port: int
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    cwd: Path | None = None
    term_signal: int = signal.SIGTERM
    grace: float = 5.0
    user: tuple[int, int] | None = None
    pidfile: Path | None = None


class Launcher(Protocol):
    """A prepared server of one kind; ``plan`` may be called again with new ports."""

    ports_needed: int

    def plan(self, ports: list[int]) -> LaunchPlan:
        """The command for a server listening on ``ports``."""
        ...


def _temp_root(tmp_root: Path | None) -> Path:
    return Path(tmp_root) if tmp_root is not None else Path(tempfile.gettempdir())


def state_dir(tmp_root: Path | None = None) -> Path:
    """Our per-user directory in the temp root (registry of servers, scratch data); created
    on first use, and checked (ours, no symlink, writable by us only) every time."""
    return _safedir.user_dir(_temp_root(tmp_root))


def registry_path(tmp_root: Path | None = None) -> Path:
    """Where each started server leaves a note until it is cleaned up (read by reap_stale).

    ``tmp_root`` is the temp directory, or our per-user directory in it.
    """
    root = _temp_root(tmp_root)
    mine = f"pytest-pipeline-{os.geteuid()}"
    return (root if root.name == mine else root / mine) / "servers"


def registry_entry(workdir: Path, tmp_root: Path | None = None) -> Path:
    """The registry note of the server whose work directory is ``workdir``."""
    digest = hashlib.sha256(str(workdir).encode()).hexdigest()[:24]
    return registry_path(tmp_root) / f"{digest}.json"


@dataclass
class Workspace:
    """The directories of one server start attempt and the note that lets us clean them."""

    service: str
    workdir: Path
    root_pid: int
    root_start: str
    deadline: float
    entry: Path
    cleanup: list[Path] = field(default_factory=list)

    @classmethod
    def create(
        cls, service: str, run_dir: Path, root_pid: int, root_start: str, deadline: float
    ) -> Workspace:
        """A fresh work directory in ``run_dir``, registered before anything else exists."""
        token = os.urandom(6).hex()
        workdir = run_dir / f"{service}-{token}"
        _safedir.private_dir(state_dir() / "servers", 0o700)
        ws = cls(service, workdir, root_pid, root_start, deadline, registry_entry(workdir))
        ws.save()
        workdir.mkdir(mode=0o700)
        return ws

    @property
    def marker(self) -> str:
        """The value of :data:`_proc.MARKER_ENV` in this server's environment."""
        return str(self.workdir)

    def remaining(self) -> float:
        """Seconds left before the start timeout."""
        return self.deadline - time.monotonic()

    def save(self) -> None:
        """Write the registry note (root pid, work directory, extra paths)."""
        _proc.write_json(
            self.entry,
            {
                "service": self.service,
                "workdir": str(self.workdir),
                "root_pid": self.root_pid,
                "root_start": self.root_start,
                "cleanup": [str(p) for p in self.cleanup],
                "created": time.time(),
            },
        )

    def claim_dir(self, parent: Path, label: str, owner: tuple[int, int] | None) -> Path:
        """Create a directory outside the work directory that is removed with it.

        It is recorded in the registry note before it exists, so a crash at any point leaves
        nothing :func:`reap_stale` cannot find. ``owner`` (uid, gid) hands it to the user
        the server runs as.
        """
        path = parent / f"{self.workdir.name}-{label}"
        self.cleanup.append(path)
        self.save()
        path.mkdir(mode=0o700)
        # Names the run, so a later run can remove it if this one is killed before its
        # watchdog exists (whatever that run's TMPDIR: see _safedir).
        _safedir.mark_owner(path, self.root_pid, self.root_start, workdir=str(self.workdir))
        if owner is not None:
            os.chown(path, *owner)
        return path


#: A service module's answer: what is available and, if it is, how to prepare a launcher.
Found = tuple[Availability, Callable[[Workspace], Launcher] | None]
