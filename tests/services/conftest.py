"""Session-wide real servers started by the local backend (no Docker, no mocks).

``local_postgres``, ``local_kafka`` and ``local_s3`` each start one server for the whole test
session in a temporary run directory and stop it at the end. A service that cannot run on
this machine is skipped with the reason :func:`pytest_pipeline.services.local.availability`
gives.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_pipeline.services import local
from pytest_pipeline.services.local import ServerRecord

#: Generous: the first Postgres start on a machine runs initdb once to fill the cache.
START_TIMEOUT = 60.0


@pytest.fixture(scope="session")
def local_run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The run directory the session's local servers keep their work directories in."""
    return tmp_path_factory.mktemp("pipeline-run")


def needs(service: str) -> None:
    """Skip the calling test when the local backend cannot run ``service`` on this machine."""
    found = local.availability(service)
    if not found.ok:
        pytest.skip(f"no local {service} here: {found.why_not} ({found.hint})")


def _serve(service: str, run_dir: Path) -> Iterator[ServerRecord]:
    needs(service)
    record = local.start(service, run_dir, root_pid=os.getpid(), timeout=START_TIMEOUT)
    try:
        yield record
    finally:
        local.stop(record)


@pytest.fixture(scope="session")
def local_postgres(local_run_dir: Path) -> Iterator[ServerRecord]:
    """A local PostgreSQL server for the session; ``.endpoint`` is a ``PostgresEndpoint``."""
    yield from _serve("postgres", local_run_dir)


@pytest.fixture(scope="session")
def local_kafka(local_run_dir: Path) -> Iterator[ServerRecord]:
    """A local Kafka-protocol broker for the session; ``.endpoint`` is a ``KafkaEndpoint``."""
    yield from _serve("kafka", local_run_dir)


@pytest.fixture(scope="session")
def local_s3(local_run_dir: Path) -> Iterator[ServerRecord]:
    """A local S3-compatible server for the session; ``.endpoint`` is an ``S3Endpoint``."""
    yield from _serve("s3", local_run_dir)
