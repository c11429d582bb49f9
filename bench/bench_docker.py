"""Docker backend benchmark: container cold start per service, next to the local backend.

Needs a Docker engine and the images of ``eval "$(scripts/docker-test-images --env)"`` (or
images the engine can pull). Run through ``python bench/run.py docker`` (writes
docs/benchmarks.md) or directly (prints Markdown).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

from pytest_pipeline.config import SERVICE_ENV, ServiceConfig
from pytest_pipeline.constants import SERVICES
from pytest_pipeline.services import docker, local

ROUNDS = 3


def _service(name: str) -> ServiceConfig:
    return ServiceConfig(name=name, image=os.environ.get(SERVICE_ENV[(name, "image")]))


def _docker_start(name: str) -> float:
    service = _service(name)
    began = time.perf_counter()
    record = docker.start(
        service, host_network=False, timeout=120, labels={docker.LABEL_RUN: "bench"}
    )
    elapsed = time.perf_counter() - began
    docker.stop(record)
    return elapsed


def _local_start(name: str) -> float:
    with tempfile.TemporaryDirectory() as run_dir:
        os.chmod(run_dir, 0o755)
        began = time.perf_counter()
        record = local.start(name, Path(run_dir), root_pid=os.getpid(), timeout=120)
        elapsed = time.perf_counter() - began
        local.stop(record)
    return elapsed


def run() -> str:
    engine = docker.probe(2.0)
    if not engine.ok:
        raise SystemExit(f"bench docker: {engine.why_not}")
    docker.ensure_reaper()
    rows = [
        f"Container cold start (create, start, ready; then removed), median of {ROUNDS}, Docker "
        f"{engine.version}, bridge network; the local backend's start measured in the same run.",
        "",
        "| service | image | docker start s (min-max) | local start s | docker / local |",
        "|---|---|---|---|---|",
    ]
    for name in SERVICES:
        image = docker.image_of(_service(name))
        _docker_start(name)  # warm: the image's layers in the page cache
        in_docker = [_docker_start(name) for _ in range(ROUNDS)]
        on_host = [_local_start(name) for _ in range(ROUNDS)] if local.availability(name).ok else []
        d = statistics.median(in_docker)
        h = statistics.median(on_host) if on_host else float("nan")
        rows.append(
            f"| {name} | `{image}` | {d:.2f} ({min(in_docker):.2f}-{max(in_docker):.2f}) | "
            f"{h:.2f} | {d / h:.1f}x |"
        )
    rows += [
        "",
        "Postgres pays for initdb inside the container on every start, as the official image "
        "does; the local backend copies a cached initdb instead. Pulling an image is not "
        "included: the images are on the engine already.",
    ]
    return "\n".join(rows)


if __name__ == "__main__":
    print(run())
