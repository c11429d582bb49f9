"""What container each service runs: image, command, environment, ports and readiness.

The defaults follow each image's documented contract, so any image honouring the same
contract can replace them by configuration (``services.<name>.image``):

- Postgres: the official image's ``POSTGRES_USER`` / ``POSTGRES_PASSWORD`` / ``POSTGRES_DB``
  and ``postgres ARGS`` as command.
- Kafka: apache/kafka's ``KAFKA_*`` variables for a single-node KRaft broker.
- S3: MinIO's ``server DIR --address HOST:PORT`` and its health endpoint; the command and the
  health path are settings, for other S3-compatible images.

Every server listens on a port picked on the host beforehand: published on 127.0.0.1 under
the same number (bridge network), or bound to 127.0.0.1 directly (host network). Kafka must
advertise the address clients reach it on, so the number has to be known before it starts.
"""

from __future__ import annotations

import os
import secrets
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field

from pytest_pipeline.config import ServiceConfig
from pytest_pipeline.errors import ConfigError
from pytest_pipeline.services import probes
from pytest_pipeline.services.endpoints import (
    Endpoint,
    KafkaEndpoint,
    PostgresEndpoint,
    S3Endpoint,
)

DEFAULT_IMAGES = {
    "postgres": "postgres:16-alpine",
    "kafka": "apache/kafka:4.1.1",
    # Pinned: MinIO's community images are no longer published on Docker Hub.
    "s3": "quay.io/minio/minio:RELEASE.2025-09-07T16-13-09Z",
}
DEFAULT_REAPER_IMAGE = "testcontainers/ryuk:0.8.1"
# The console gets a loopback port too: with host networking it would listen everywhere.
DEFAULT_S3_COMMAND = "server /data --address {host}:{port} --console-address {host}:{console_port}"
DEFAULT_S3_HEALTH = "/minio/health/live"
#: How many host ports each service needs (Kafka: the broker and its KRaft controller).
PORTS_NEEDED = {"postgres": 1, "kafka": 2, "s3": 2}
LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class ContainerSpec:
    """One container to start, and how to tell it is ready."""

    service: str
    image: str
    command: list[str] | None
    env: dict[str, str]
    published: list[int]  # ports published on 127.0.0.1 (bridge network only)
    endpoint: Endpoint
    ready: Callable[[float], bool] = field(compare=False)


def reaper_image() -> str:
    """The reaper image testcontainers would start (read like testcontainers reads it)."""
    return os.environ.get("RYUK_CONTAINER_IMAGE", DEFAULT_REAPER_IMAGE)


def image_of(service: ServiceConfig) -> str:
    """The image a service runs: its configured one, else the default."""
    return service.image or DEFAULT_IMAGES[service.name]


def build(service: ServiceConfig, ports: list[int], *, host_network: bool) -> ContainerSpec:
    """The container of ``service`` listening on ``ports`` (see :data:`PORTS_NEEDED`)."""
    return _BUILDERS[service.name](service, ports, host_network)


def _postgres(service: ServiceConfig, ports: list[int], host_network: bool) -> ContainerSpec:
    (port,) = ports
    user, password = "postgres", secrets.token_urlsafe(18)
    # Test data only: durability settings off, as for the local backend.
    command = ["postgres", "-p", str(port), "-c", "fsync=off", "-c", "synchronous_commit=off"]
    command += ["-c", "full_page_writes=off", "-c", "max_connections=200"]
    if host_network:
        command += ["-c", f"listen_addresses={LOOPBACK}"]
    endpoint = PostgresEndpoint(LOOPBACK, port, user, password, "postgres")
    return ContainerSpec(
        "postgres",
        image_of(service),
        command,
        # PGPORT: the official entrypoint's init-time server and psql use the same port.
        {"POSTGRES_USER": user, "POSTGRES_PASSWORD": password, "POSTGRES_DB": "postgres"}
        | {"PGPORT": str(port)},
        [] if host_network else [port],
        endpoint,
        lambda timeout: probes.postgres_ready(LOOPBACK, port, user, "postgres", timeout),
    )


def _kafka(service: ServiceConfig, ports: list[int], host_network: bool) -> ContainerSpec:
    broker, controller = ports
    bind = LOOPBACK if host_network else "0.0.0.0"
    controller_host = LOOPBACK if host_network else "localhost"
    env = {
        "KAFKA_NODE_ID": "1",
        "KAFKA_PROCESS_ROLES": "broker,controller",
        "KAFKA_LISTENERS": f"PLAINTEXT://{bind}:{broker},CONTROLLER://{controller_host}:"
        f"{controller}",
        "KAFKA_ADVERTISED_LISTENERS": f"PLAINTEXT://{LOOPBACK}:{broker}",
        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
        "KAFKA_CONTROLLER_QUORUM_VOTERS": f"1@{controller_host}:{controller}",
        "KAFKA_INTER_BROKER_LISTENER_NAME": "PLAINTEXT",
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
        # Consumer groups join at once instead of waiting 3 s for more members.
        "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
        "KAFKA_NUM_PARTITIONS": "1",
        "KAFKA_AUTO_CREATE_TOPICS_ENABLE": "false",
    }
    return ContainerSpec(
        "kafka",
        image_of(service),
        None,
        env,
        [] if host_network else [broker],
        KafkaEndpoint(f"{LOOPBACK}:{broker}"),
        lambda timeout: probes.kafka_ready(LOOPBACK, broker, timeout),
    )


def _s3(service: ServiceConfig, ports: list[int], host_network: bool) -> ContainerSpec:
    port, console_port = ports
    template = service.command or DEFAULT_S3_COMMAND
    try:
        command = shlex.split(
            template.format(
                host=LOOPBACK if host_network else "0.0.0.0", port=port, console_port=console_port
            )
        )
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(
            f"pytest-pipeline: services.s3.command {template!r} is not a valid command "
            f"template ({exc}); use {{host}} and {{port}} for the address the server must "
            f"listen on (and {{console_port}} for a second port), e.g. {DEFAULT_S3_COMMAND!r}."
        ) from None
    access_key, secret_key = "pytest-pipeline", secrets.token_urlsafe(18)
    health = service.health_path or DEFAULT_S3_HEALTH
    return ContainerSpec(
        "s3",
        image_of(service),
        command,
        {"MINIO_ROOT_USER": access_key, "MINIO_ROOT_PASSWORD": secret_key},
        [] if host_network else [port],
        S3Endpoint(f"http://{LOOPBACK}:{port}", access_key, secret_key),
        lambda timeout: probes.http_ready(LOOPBACK, port, health, timeout, want_200=True),
    )


_BUILDERS: dict[str, Callable[[ServiceConfig, list[int], bool], ContainerSpec]] = {
    "postgres": _postgres,
    "kafka": _kafka,
    "s3": _s3,
}
