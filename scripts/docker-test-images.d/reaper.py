"""A reaper for the offline test images that speaks testcontainers' Ryuk protocol.

Clients connect on port 8080 and send filter lines such as
``label=org.testcontainers.session-id=ID`` (several joined by ``&``); each line is answered
with ``ACK``. Once every client has disconnected and none reconnects within
``RYUK_RECONNECTION_TIMEOUT``, every container, network and volume matching a filter is
removed through the Docker socket, and the reaper exits. With no client at all within
``RYUK_CONNECTION_TIMEOUT`` it exits too.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import sys
import threading
import time
import urllib.parse

DOCKER_SOCKET = "/var/run/docker.sock"


def seconds(value: str, default: float) -> float:
    value = value.strip()
    units = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    for suffix in ("ms", "s", "m", "h"):
        if value.endswith(suffix):
            try:
                return float(value[: -len(suffix)]) * units[suffix]
            except ValueError:
                return default
    try:
        return float(value)
    except ValueError:
        return default


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=30)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


def docker(method: str, path: str) -> object:
    conn = UnixHTTPConnection(DOCKER_SOCKET)
    try:
        conn.request(method, path)
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    return json.loads(body) if body.strip().startswith((b"[", b"{")) else None


class State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.filters: set[tuple[tuple[str, str], ...]] = set()
        self.clients = 0
        self.seen_client = False
        self.last_change = time.monotonic()


def serve_client(conn: socket.socket, state: State) -> None:
    with state.lock:
        state.clients += 1
        state.seen_client = True
        state.last_change = time.monotonic()
    try:
        buffer = b""
        while True:
            data = conn.recv(4096)
            if not data:
                break
            buffer += data
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                text = line.decode(errors="replace").strip()
                if not text:
                    continue
                pairs = tuple(sorted(urllib.parse.parse_qsl(text, keep_blank_values=True)))
                with state.lock:
                    state.filters.add(pairs)
                print(f"adding filter {text}", flush=True)
                conn.sendall(b"ACK\n")
    except OSError:
        pass
    finally:
        conn.close()
        with state.lock:
            state.clients -= 1
            state.last_change = time.monotonic()


def prune(filters: set[tuple[tuple[str, str], ...]]) -> None:
    for pairs in filters:
        query: dict[str, list[str]] = {}
        for key, value in pairs:
            query.setdefault(key, []).append(value)
        encoded = urllib.parse.quote(json.dumps(query))
        for kind, list_path, delete in (
            ("container", "/containers/json?all=1&filters=", "/containers/{}?force=1&v=1"),
            ("network", "/networks?filters=", "/networks/{}"),
            ("volume", "/volumes?filters=", "/volumes/{}?force=1"),
        ):
            try:
                found = docker("GET", list_path + encoded)
                if isinstance(found, dict):  # volumes come wrapped
                    found = found.get("Volumes") or []
                for entry in found or []:
                    ident = entry.get("Id") or entry.get("Name")
                    docker("DELETE", delete.format(ident))
                    print(f"removed {kind} {ident}", flush=True)
            except (OSError, ValueError) as exc:  # keep pruning the other filters
                print(f"could not prune {kind}s: {exc}", file=sys.stderr, flush=True)


def main() -> None:
    connect_timeout = seconds(os.environ.get("RYUK_CONNECTION_TIMEOUT", "60s"), 60.0)
    reconnect_timeout = seconds(os.environ.get("RYUK_RECONNECTION_TIMEOUT", "10s"), 10.0)
    state = State()

    def on_signal(signum: int, frame: object) -> None:
        # PID 1 in a container ignores SIGTERM unless handled: `docker stop` would wait 10 s.
        with state.lock:
            filters = set(state.filters)
        prune(filters)
        sys.exit(0)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("0.0.0.0", int(os.environ.get("RYUK_PORT", "8080"))))
    server.listen()
    server.settimeout(0.2)
    started = time.monotonic()
    print("pytest-pipeline test reaper Started!", flush=True)
    while True:
        try:
            conn, _ = server.accept()
            threading.Thread(target=serve_client, args=(conn, state), daemon=True).start()
        except TimeoutError:
            pass
        with state.lock:
            idle = state.clients == 0
            since = time.monotonic() - state.last_change
            seen = state.seen_client
            filters = set(state.filters)
        if not seen and time.monotonic() - started > connect_timeout:
            print("no client connected in time; exiting", flush=True)
            return
        if seen and idle and since > reconnect_timeout:
            prune(filters)
            return


if __name__ == "__main__":
    main()
