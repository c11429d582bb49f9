"""Process and port facts every backend needs (standard library only).

Both the local backend (its servers' processes) and the docker backend (the run owner a
container is tied to, the ports it publishes) ask these; each backend keeps its own helpers.
"""

from __future__ import annotations

import socket

from pytest_pipeline._safedir import start_time as start_time

__all__ = ["free_ports", "running", "start_time"]


def running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    return pid > 0 and start_time(pid) is not None


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct ports that were free a moment ago (the caller retries on a race)."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()
