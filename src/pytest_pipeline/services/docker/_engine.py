"""Is a Docker engine there? Asked over its API with the standard library only.

``auto`` and the doctor ask this on every run, so it must be cheap: one HTTP request on the
engine's socket (``DOCKER_HOST`` or ``/var/run/docker.sock``), bounded to about a second, and
no import of the Docker SDK or testcontainers. ``auto`` then asks, the same way, whether the
engine has (or its registry has) each image it needs (:func:`check_image`).
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


@dataclass(frozen=True)
class ImageCheck:
    """Whether the engine can run ``image`` without us waiting on a pull to find out.

    ``state`` is ``present`` (on the engine), ``pullable`` (its registry, asked by the
    engine, has it), ``missing`` (neither; ``why`` says what the engine answered) or
    ``unknown`` (the engine cannot be asked over plain HTTP, e.g. a TLS engine).
    """

    image: str
    state: str
    why: str = ""


def check_image(image: str, timeout: float, budget: float | None = None) -> ImageCheck:
    """Ask the engine whether it has ``image``, else whether its registry has it.

    The second question is the engine API's distribution lookup: the engine fetches only
    the image's manifest from the registry, with its own network and mirrors, no layers. An
    offline engine fails it at once; one behind a silent firewall is given ``timeout`` s
    (what is left of a ``budget`` shared by several images, the wait a timeout names).
    """
    budget = timeout if budget is None else budget
    present = image_present(image, min(timeout, 1.0))
    if present is None:
        return ImageCheck(image, "unknown", "the engine cannot be asked over plain HTTP")
    if present:
        return ImageCheck(image, "present")
    try:
        path = f"/distribution/{urllib.parse.quote(image, safe='/:@')}/json"
        status, body = request(path, timeout)
    except (OSError, ValueError) as exc:
        if isinstance(exc, TimeoutError):
            return ImageCheck(image, "missing", f"its registry did not answer within {budget:g} s")
        return ImageCheck(image, "unknown", f"the engine did not answer: {exc}")
    if status == 200:
        return ImageCheck(image, "pullable")
    try:
        message = str(json.loads(body).get("message", "")).strip()
    except (ValueError, AttributeError):
        message = ""
    return ImageCheck(image, "missing", message.splitlines()[0] if message else f"HTTP {status}")
