"""The local service backend: real Postgres, Kafka-protocol and S3 servers as child processes.

No Docker needed. Each server runs under a small watchdog process that stops it and removes
its directories when the pytest run's root process ends, even if it is killed with SIGKILL.
Only the standard library is imported here; client libraries are never needed to start or
probe a server.
"""

from __future__ import annotations

from pytest_pipeline.services.backends import Availability
from pytest_pipeline.services.local._common import ServerRecord
from pytest_pipeline.services.local._core import (
    adopt,
    availability,
    died,
    reap_leftovers,
    reap_stale,
    start,
    stop,
)
from pytest_pipeline.services.local._postgres import use_schema
from pytest_pipeline.services.local._proc import set_version_timeout

__all__ = [
    "Availability",
    "ServerRecord",
    "adopt",
    "availability",
    "died",
    "reap_leftovers",
    "reap_stale",
    "set_version_timeout",
    "start",
    "stop",
    "use_schema",
]
