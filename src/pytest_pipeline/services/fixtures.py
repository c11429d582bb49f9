"""The service fixtures: ``*_service`` (the session's server) and the per-test namespaces.

Both kinds come from two small factories, one per kind, so the three services share one
code path for startup errors, ``services.missing``, cleanup and ``--pipeline-keep-failed``.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import pytest

from pytest_pipeline import dlq as _dlq
from pytest_pipeline.config import SERVICES, PipelineConfig
from pytest_pipeline.errors import PipelineError
from pytest_pipeline.services.external import mask_secrets
from pytest_pipeline.services.manager import Service, ServiceManager, ServiceUnavailable

if TYPE_CHECKING:
    from pytest_pipeline.services.kafka import KafkaNamespace
    from pytest_pipeline.services.postgres import PostgresDatabase
    from pytest_pipeline.services.s3 import S3Namespace

MANAGER_KEY = pytest.StashKey[ServiceManager]()
CALL_FAILED_KEY = pytest.StashKey[bool]()


def services_of(item: pytest.Item) -> list[str]:
    """The services a test asks for, through ``<name>`` or ``<name>_service``."""
    names = set(getattr(item, "fixturenames", ()))
    return [name for name in SERVICES if name in names or f"{name}_service" in names]


def manager_of(config: pytest.Config) -> ServiceManager:
    """The service manager of this session (created by the plugin at configure time)."""
    return config.stash[MANAGER_KEY]


def _fail_cleanly(exc: PipelineError, secrets: tuple[str, ...] = ()) -> None:
    """Report a service problem as one readable message, without our internals' traceback."""
    __tracebackhide__ = True
    pytest.fail(mask_secrets(str(exc), secrets), pytrace=False)


def _service_fixture(name: str) -> Any:
    @pytest.fixture(scope="session", name=f"{name}_service")
    def service_fixture(request: pytest.FixtureRequest) -> Service:
        manager = manager_of(request.config)
        try:
            service = manager.get(name)
        except PipelineError as exc:
            # Failed outside the except block: pytest would print the message twice, as a
            # chained exception.
            problem: PipelineError = exc
        else:
            if service.started_in is not None:
                manager.notes.append(service.start_line())
            return service
        if isinstance(problem, ServiceUnavailable) and manager.resolved.missing == "skip":
            pytest.skip(str(problem))
        _fail_cleanly(problem)
        raise problem  # unreachable: pytest.fail raised

    service_fixture.__doc__ = f"The session's {name} server (started on first use, shared)."
    return service_fixture


class _Namespace(Protocol):
    def close(self, *, delete: bool = True) -> None: ...


@dataclass(frozen=True)
class _NamespaceKind:
    """How one service opens a test's namespace and says what it kept."""

    open: Callable[[Service, str, PipelineConfig], Any]
    kept: Callable[[Any], str]


def _namespace_fixture(name: str, kind: _NamespaceKind) -> Any:
    @pytest.fixture(name=name)
    def namespace_fixture(request: pytest.FixtureRequest) -> Generator[Any, None, None]:
        service: Service = request.getfixturevalue(f"{name}_service")
        manager = manager_of(request.config)
        problem: PipelineError | None = None
        try:
            namespace = kind.open(service, manager.unique_prefix(), manager.resolved)
        except PipelineError as exc:
            problem = exc
        if problem is not None:
            _fail_cleanly(problem)
        yield namespace
        keep = manager.resolved.keep_failed and request.node.stash.get(CALL_FAILED_KEY, False)
        namespace.close(delete=not keep)
        if keep:
            manager.kept.append(f"{request.node.nodeid}: {kind.kept(namespace)}")

    namespace_fixture.__doc__ = f"This test's own {name} namespace, dropped after the test."
    return namespace_fixture


# --------------------------------------------------------------------------- per service


def _open_postgres(service: Service, prefix: str, resolved: PipelineConfig) -> PostgresDatabase:
    from pytest_pipeline.services.postgres import create_database

    assert service.endpoint.__class__.__name__ == "PostgresEndpoint"
    return create_database(service.endpoint, prefix)  # type: ignore[arg-type]


def _open_kafka(service: Service, prefix: str, resolved: PipelineConfig) -> KafkaNamespace:
    from pytest_pipeline.services import kafka

    # tansu holds a group join for half the session timeout: its consumers get a short one.
    tansu = "tansu" in service.description
    namespace = kafka.KafkaNamespace(
        service.bootstrap_servers,
        prefix,
        timeout=resolved.startup_timeout,
        group_settings=kafka.TANSU_GROUP_SETTINGS if tansu else kafka.STANDARD_GROUP_SETTINGS,
    )
    tracker = _dlq.current()
    if tracker is not None:
        # Lets dlq.assert_count(topic, n) count this test's topics by offsets.
        tracker.topic_counter = lambda topic: (
            namespace.count(topic) if namespace.owns(topic) else None
        )
        tracker.topic_sampler = lambda topic, n: (
            namespace.given_name(topic),
            namespace.consume(topic, n=n, timeout=5),
        )
    return namespace


def _open_s3(service: Service, prefix: str, resolved: PipelineConfig) -> S3Namespace:
    from pytest_pipeline.services.s3 import S3Namespace

    return S3Namespace(service.endpoint, prefix)  # type: ignore[arg-type]


def _kept_postgres(db: PostgresDatabase) -> str:
    return f"postgres database {db.name}: psql {mask_secrets(db.dsn, ())}"


def _kept_kafka(namespace: KafkaNamespace) -> str:
    topics = ", ".join(namespace.topics) or "(no topics)"
    return f"kafka topics {topics} on {namespace.bootstrap_servers}"


def _kept_s3(namespace: S3Namespace) -> str:
    buckets = ", ".join(namespace.buckets) or "(no buckets)"
    return f"s3 buckets {buckets} at {namespace.endpoint_url}"


postgres_service = _service_fixture("postgres")
kafka_service = _service_fixture("kafka")
s3_service = _service_fixture("s3")
postgres = _namespace_fixture("postgres", _NamespaceKind(_open_postgres, _kept_postgres))
kafka = _namespace_fixture("kafka", _NamespaceKind(_open_kafka, _kept_kafka))
s3 = _namespace_fixture("s3", _NamespaceKind(_open_s3, _kept_s3))
