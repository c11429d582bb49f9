"""One lifecycle for the three per-test namespaces (``services.namespace.Namespace``).

``with namespace:`` removes what it created when the block ends, as the fixtures do after a
test; ``close(delete=False)`` keeps it (``--pipeline-keep-failed``) and a later
``close(delete=True)`` still removes it. Against real servers (the local backend).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from pytest_pipeline.services.namespace import Namespace

#: For each service: (open a namespace, create one thing in it, whether that thing exists).
Kind = tuple[Callable[[], Namespace], Callable[[Any], str], Callable[[Any, str], bool]]


def _prefix() -> str:
    return f"pp-life-{uuid.uuid4().hex[:10]}"


def _postgres(request: pytest.FixtureRequest) -> Kind:
    psycopg = pytest.importorskip("psycopg")
    from pytest_pipeline.services import postgres as pg

    endpoint = request.getfixturevalue("local_postgres").endpoint
    pg.ensure_template(endpoint)

    def exists(db: Any, name: str) -> bool:
        with psycopg.connect(endpoint.dsn(), autocommit=True) as conn:
            query = "SELECT 1 FROM pg_database WHERE datname = %s"
            return conn.execute(query, (name,)).fetchone() is not None

    def make(db: Any) -> str:
        db.execute("CREATE TABLE t (id int)")
        return str(db.name)

    return (lambda: pg.create_database(endpoint, _prefix()), make, exists)


def _kafka(request: pytest.FixtureRequest) -> Kind:
    admin = pytest.importorskip("confluent_kafka.admin")
    from pytest_pipeline.services.kafka import KafkaNamespace

    bootstrap = request.getfixturevalue("local_kafka").endpoint.bootstrap_servers

    def exists(ns: Any, topic: str) -> bool:
        client = admin.AdminClient({"bootstrap.servers": bootstrap})
        return topic in client.list_topics(timeout=10).topics

    return (
        lambda: KafkaNamespace(bootstrap, _prefix(), timeout=20),
        lambda ns: ns.topic("t"),
        exists,
    )


def _s3(request: pytest.FixtureRequest) -> Kind:
    pytest.importorskip("boto3")
    from pytest_pipeline.services.s3 import S3Namespace

    endpoint = request.getfixturevalue("local_s3").endpoint

    def exists(ns: Any, bucket: str) -> bool:
        return bucket in {b["Name"] for b in ns.client.list_buckets()["Buckets"]}

    return (lambda: S3Namespace(endpoint, _prefix()), lambda ns: ns.bucket("b"), exists)


@pytest.fixture(params=["postgres", "kafka", "s3"])
def kind(request: pytest.FixtureRequest) -> Kind:
    opener: Callable[[pytest.FixtureRequest], Kind] = {
        "postgres": _postgres,
        "kafka": _kafka,
        "s3": _s3,
    }[request.param]
    return opener(request)


def test_with_removes_what_the_namespace_created(kind: Kind) -> None:
    open_namespace, make, exists = kind
    namespace = open_namespace()
    assert isinstance(namespace, Namespace)
    with namespace as entered:
        assert entered is namespace
        made = make(namespace)
        assert exists(namespace, made)
    assert not exists(namespace, made)
    namespace.close()  # idempotent


def test_a_kept_namespace_is_removed_by_a_later_delete(kind: Kind) -> None:
    open_namespace, make, exists = kind
    namespace = open_namespace()
    made = make(namespace)
    namespace.close(delete=False)  # what --pipeline-keep-failed does
    assert exists(namespace, made)
    namespace.close(delete=True)
    assert not exists(namespace, made)
