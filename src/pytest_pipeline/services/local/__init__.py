"""The local service backend: real Postgres, Kafka-protocol and S3 servers as child processes.

No Docker needed. Each server runs under a small watchdog process that stops it and removes
its directories when the pytest run's root process ends, even if it is killed with SIGKILL.
Only the standard library is imported here; client libraries are never needed to start or
probe a server.
"""

from __future__ import annotations

from pytest_pipeline.services.local._common import Availability, ServerRecord
from pytest_pipeline.services.local._core import (
    adopt,
    availability,
    died,
    reap_leftovers,
    reap_stale,
    start,
    stop,
)

__all__ = [
    "Availability",
    "ServerRecord",
    "adopt",
    "availability",
    "died",
    "reap_leftovers",
    "reap_stale",
    "start",
    "stop",
]
