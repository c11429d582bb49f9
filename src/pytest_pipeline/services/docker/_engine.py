"""Is a Docker engine there? Asked over its API with the standard library only.

``auto`` and the doctor ask this on every run, so it must be cheap: one HTTP request on the
engine's socket (``DOCKER_HOST`` or ``/var/run/docker.sock``), bounded to about a second, and
no import of the Docker SDK or testcontainers.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import urllib.parse
from dataclasses import dataclass

DEFAULT_SOCKET = "/var/run/docker.sock"
START_HINT = (
    "start Docker (systemctl start docker, or dockerd), set DOCKER_HOST to a reachable engine, "
    "or use another backend: --pipeline-backend local"
)


@dataclass(frozen=True)
class Engine:
    """The answer of one probe: where the engine is expected and whether it answered."""

    address: str
    ok: bool
    version: str = ""
    why_not: str = ""


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


def address() -> str:
    """The engine address testcontainers and the Docker CLI would use."""
    return os.environ.get("DOCKER_HOST") or f"unix://{DEFAULT_SOCKET}"


def _uses_tls(parsed: urllib.parse.ParseResult) -> bool:
    return parsed.scheme == "https" or bool(os.environ.get("DOCKER_TLS_VERIFY"))


def _connection(where: str, timeout: float) -> http.client.HTTPConnection:
    parsed = urllib.parse.urlparse(where)
    if parsed.scheme == "unix":
        return _UnixConnection(parsed.path, timeout)
    if _uses_tls(parsed):
        raise ValueError("a TLS engine is not asked over plain HTTP")
    if parsed.scheme in ("tcp", "http"):
        return http.client.HTTPConnection(parsed.hostname or "localhost", parsed.port, timeout)
    raise ValueError(f"unsupported DOCKER_HOST scheme {parsed.scheme!r}")


def request(path: str, timeout: float = 1.0) -> tuple[int, bytes]:
    """GET ``path`` from the engine API; raises OSError/ValueError when it cannot be asked."""
    conn = _connection(address(), timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    except http.client.HTTPException as exc:
        raise OSError(f"bad answer: {exc}") from exc
    finally:
        conn.close()


def probe(timeout: float = 1.0) -> Engine:
    """Ask the engine for its version; ``ok`` only if it answers within ``timeout`` seconds."""
    where = address()
    parsed = urllib.parse.urlparse(where)
    if parsed.scheme != "unix" and _uses_tls(parsed):
        # Its API needs the client certificates (Docker-in-Docker on 2376): a TCP answer is
        # enough to say it is there; the Docker SDK does the TLS part.
        try:
            socket.create_connection(
                (parsed.hostname or "localhost", parsed.port or 2376), timeout
            ).close()
        except OSError as exc:
            reason = exc.strerror or str(exc) or type(exc).__name__
            return Engine(where, False, why_not=f"no Docker engine answers at {where} ({reason})")
        return Engine(where, True, "unknown (TLS)")
    try:
        status, body = request("/version", timeout)
    except ValueError as exc:
        return Engine(where, False, why_not=f"cannot ask the engine at {where}: {exc}")
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        return Engine(where, False, why_not=f"no Docker engine answers at {where} ({reason})")
    if status != 200:
        return Engine(where, False, why_not=f"the engine at {where} answered HTTP {status}")
    try:
        version = str(json.loads(body).get("Version", "?"))
    except ValueError:
        version = "?"
    return Engine(where, True, version)


def image_present(image: str, timeout: float = 1.0) -> bool | None:
    """Whether the engine has ``image`` locally (None when it cannot be asked)."""
    try:
        status, _ = request(f"/images/{urllib.parse.quote(image, safe='')}/json", timeout)
    except (OSError, ValueError):
        return None
    return status == 200
