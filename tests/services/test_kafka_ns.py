"""The per-test Kafka namespace (``kafka`` fixture object), against a real broker."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
import uuid
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

from pytest_pipeline.errors import ServiceError
from pytest_pipeline.services.kafka import KafkaNamespace, count_topic, topic_name

ck = pytest.importorskip("confluent_kafka")
admin_module = pytest.importorskip("confluent_kafka.admin")


@pytest.fixture(scope="module")
def bootstrap(local_kafka: Any) -> str:
    servers: str = local_kafka.endpoint.bootstrap_servers
    return servers


def _prefix() -> str:
    return f"pp-test-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def ns(bootstrap: str) -> Iterator[KafkaNamespace]:
    namespace = KafkaNamespace(bootstrap, _prefix(), timeout=20)
    yield namespace
    namespace.close()


def _broker_topics(bootstrap: str) -> set[str]:
    admin = admin_module.AdminClient({"bootstrap.servers": bootstrap})
    return set(admin.list_topics(timeout=10).topics)


# --------------------------------------------------------------------------- topics


def test_topic_is_usable_as_soon_as_it_is_returned(ns: KafkaNamespace, bootstrap: str) -> None:
    real = ns.topic("orders", partitions=2)
    assert real == f"{ns.prefix}-orders"
    # A client that never saw the topic produces to every partition straight away.
    producer = ck.Producer({"bootstrap.servers": bootstrap})
    errors: list[Any] = []
    for partition in (0, 1):
        producer.produce(real, b"x", partition=partition, on_delivery=lambda e, m: errors.append(e))
    assert producer.flush(10) == 0
    assert errors == [None, None]
    assert ns.count(real) == 2


def test_topic_twice_returns_the_same_topic(ns: KafkaNamespace) -> None:
    first = ns.topic("events", partitions=3)
    assert ns.topic("events", partitions=3) == first
    assert ns.topic(first, partitions=3) == first  # the real name works too
    assert ns.topics == [first]
    with pytest.raises(ServiceError, match="already exists in this test with 3 partitions"):
        ns.topic("events", partitions=1)


def test_topic_names_are_sanitized_unique_and_valid(ns: KafkaNamespace) -> None:
    odd = ns.topic("orders/dlq v2:ü")
    long = ns.topic("x" * 400)
    for name in (odd, long):
        assert re.fullmatch(r"[A-Za-z0-9._-]+", name)
        assert len(name) <= 249
        assert name.startswith(ns.prefix + "-")
    assert topic_name(ns.prefix, "a b") != topic_name(ns.prefix, "a-b")
    assert topic_name(ns.prefix, "x" * 400) != topic_name(ns.prefix, "x" * 401)
    with pytest.raises(ServiceError, match="cannot be empty"):
        ns.topic("")


# --------------------------------------------------------------------------- produce / consume


def test_produce_and_consume_json_and_bytes(ns: KafkaNamespace) -> None:
    topic = ns.topic("mixed")
    records: list[Any] = [{"id": 1, "tags": ["a"]}, [1, 2], "text", 3.5, True, None, b"\x00raw"]
    assert ns.produce(topic, records) == len(records)
    assert ns.consume(topic) == records
    raw = ns.consume(topic, raw=True)
    assert raw[0] == b'{"id":1,"tags":["a"]}'
    assert raw[2] == b'"text"'
    assert raw[-1] == b"\x00raw"


def test_produce_serializes_dates_and_decimals(ns: KafkaNamespace) -> None:
    import datetime as dt
    from decimal import Decimal

    topic = ns.topic("typed")
    ns.produce(topic, [{"at": dt.date(2024, 1, 2), "amount": Decimal("1.10")}])
    assert ns.consume(topic) == [{"at": "2024-01-02", "amount": "1.10"}]
    with pytest.raises(ServiceError, match="record 0 cannot be serialized as JSON"):
        ns.produce(topic, [{"bad": object()}])


def test_produce_rejects_a_single_record(ns: KafkaNamespace) -> None:
    topic = ns.topic("single")
    with pytest.raises(ServiceError, match="wrap one record in a list"):
        ns.produce(topic, {"id": 1})


def test_keys_fixed_and_per_record(ns: KafkaNamespace) -> None:
    topic = ns.topic("keyed", partitions=4)
    ns.produce(topic, [{"id": 1}], key="fixed")
    ns.produce(topic, [{"id": 2}], key=b"\x01bytes")
    ns.produce(
        topic, [{"id": i, "user": f"u{i % 3}"} for i in range(3, 30)], key=lambda r: r["user"]
    )
    ns.produce(topic, [{"id": 99}])  # no key
    messages = ns.messages(topic)
    keys = {m.value["id"]: m.key for m in messages}
    assert keys[1] == b"fixed"
    assert keys[2] == b"\x01bytes"
    assert keys[99] is None
    assert keys[4] == b"u1"
    # The same key always lands in the same partition.
    partitions_by_user: dict[bytes, set[int]] = {}
    for message in messages:
        if message.key and message.key.startswith(b"u"):
            partitions_by_user.setdefault(message.key, set()).add(message.partition)
    assert all(len(parts) == 1 for parts in partitions_by_user.values())
    # Ordered by partition, then offset.
    assert [(m.partition, m.offset) for m in messages] == sorted(
        (m.partition, m.offset) for m in messages
    )


def test_consume_reads_only_what_is_there_at_call_time(ns: KafkaNamespace) -> None:
    topic = ns.topic("growing")
    ns.produce(topic, [{"n": 1}, {"n": 2}])
    assert ns.consume(topic) == [{"n": 1}, {"n": 2}]
    assert ns.consume(topic) == [{"n": 1}, {"n": 2}]  # no group: every call reads from start
    ns.produce(topic, [{"n": 3}])
    assert ns.consume(topic) == [{"n": 1}, {"n": 2}, {"n": 3}]
    empty = ns.topic("empty")
    assert ns.consume(empty) == []


def test_consume_n_waits_for_records_produced_later(ns: KafkaNamespace, bootstrap: str) -> None:
    topic = ns.topic("late")

    def produce_later() -> None:
        time.sleep(0.3)
        producer = ck.Producer({"bootstrap.servers": bootstrap})
        for n in range(3):
            producer.produce(topic, b'{"n": %d}' % n)
        producer.flush(10)

    thread = threading.Thread(target=produce_later)
    thread.start()
    try:
        assert ns.consume(topic, n=3, timeout=20) == [{"n": 0}, {"n": 1}, {"n": 2}]
    finally:
        thread.join()
    assert ns.consume(topic, n=2) == [{"n": 0}, {"n": 1}]  # the first n


def test_consume_n_times_out_with_a_clear_message(ns: KafkaNamespace) -> None:
    topic = ns.topic("short")
    ns.produce(topic, [{"n": 1}, {"n": 2}])
    started = time.monotonic()
    with pytest.raises(ServiceError) as info:
        ns.consume(topic, n=5, timeout=0.5)
    assert time.monotonic() - started < 10
    message = str(info.value)
    assert topic in message
    assert "expected 5 records" in message
    assert "only 2 arrived" in message


def test_consume_unknown_topic_is_a_clear_error(ns: KafkaNamespace) -> None:
    with pytest.raises(ServiceError, match="does not exist"):
        ns.consume(f"{ns.prefix}-never-created")


# --------------------------------------------------------------------------- counts


def test_count_by_offsets_on_a_multi_partition_topic(ns: KafkaNamespace, bootstrap: str) -> None:
    topic = ns.topic("dlq", partitions=3)
    assert ns.count(topic) == 0
    # Batched produces (several records per request) are counted right, too.
    assert ns.produce(topic, [{"i": i} for i in range(30)], key=lambda r: str(r["i"])) == 30
    assert ns.count(topic) == 30
    assert count_topic(bootstrap, topic) == 30
    producer = ck.Producer({"bootstrap.servers": bootstrap, "linger.ms": 50})
    for i in range(7):
        producer.produce(topic, b"{}", partition=i % 3)
    assert producer.flush(10) == 0
    assert ns.count(topic) == 37
    assert ns.count("dlq") == 37  # the name given to topic() works too
    assert ns.count(topic) == 37  # counting reads nothing away
    assert len(ns.consume(topic)) == 37


# --------------------------------------------------------------------------- ownership & cleanup


def test_close_deletes_only_its_own_topics(bootstrap: str) -> None:
    mine = KafkaNamespace(bootstrap, _prefix())
    other = KafkaNamespace(bootstrap, _prefix())
    try:
        a, b = mine.topic("a"), mine.topic("b", partitions=2)
        kept = other.topic("a")
        mine.produce(a, [{"x": 1}])
        assert mine.owns(a)
        assert mine.owns("a")
        assert not mine.owns(kept)
        assert not other.owns(a)
        # Another test's topic may be read (a pipeline's output), but is not ours to delete.
        assert mine.count(kept) == 0
        mine.close()
        deadline = time.monotonic() + 10
        while {a, b} & _broker_topics(bootstrap) and time.monotonic() < deadline:
            time.sleep(0.1)
        remaining = _broker_topics(bootstrap)
        assert a not in remaining
        assert b not in remaining
        assert kept in remaining
        mine.close()  # idempotent
        with pytest.raises(ServiceError, match="closed"):
            mine.topic("c")
    finally:
        other.close()


def test_close_without_delete_keeps_the_topics(bootstrap: str) -> None:
    namespace = KafkaNamespace(bootstrap, _prefix())
    real = namespace.topic("kept")
    namespace.produce(real, [{"x": 1}])
    namespace.close(delete=False)  # what --pipeline-keep-failed does
    assert real in _broker_topics(bootstrap)
    assert count_topic(bootstrap, real) == 1
    admin = admin_module.AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.delete_topics([real]).values():
        future.result(10)


def test_close_of_a_topic_deleted_elsewhere_is_quiet(bootstrap: str) -> None:
    namespace = KafkaNamespace(bootstrap, _prefix(), timeout=5)
    real = namespace.topic("gone")
    admin = admin_module.AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.delete_topics([real]).values():
        future.result(10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        namespace.close()


def test_cleanup_errors_become_warnings() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{sock.getsockname()[1]}"
    namespace = KafkaNamespace(dead, _prefix(), timeout=1)
    namespace._partition_counts["pp-test-never-created"] = 1  # as if topic() had made it
    with pytest.warns(UserWarning, match="could not delete Kafka topic"):
        namespace.close()


def _run_consumer(config: dict[str, Any], topic: str, want: int) -> list[Any]:
    """Read up to ``want`` records as a pipeline would, committing what it read."""
    from confluent_kafka import Consumer

    consumer = Consumer({**config, "enable.auto.commit": False})
    consumer.subscribe([topic])
    seen: list[Any] = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(seen) < want:
        message = consumer.poll(0.2)
        if message is not None and message.error() is None:
            seen.append(json.loads(message.value()))
    if seen:
        consumer.commit(asynchronous=False)
    consumer.close()
    return seen


def test_consumer_config_keeps_one_group_per_test(ns: KafkaNamespace) -> None:
    first, again = ns.consumer_config(), ns.consumer_config()
    assert first["group.id"] == again["group.id"] == topic_name(ns.prefix, "pipeline")
    assert ns.consumer_config(group="audit")["group.id"] == topic_name(ns.prefix, "audit")
    # A pipeline run twice resumes where the first run committed, as in production.
    topic = ns.topic("in")
    ns.produce(topic, [{"n": 1}, {"n": 2}])
    assert _run_consumer(ns.consumer_config(), topic, want=2) == [{"n": 1}, {"n": 2}]
    ns.produce(topic, [{"n": 3}])
    # Re-reading from the start would give {"n": 1} first.
    assert _run_consumer(ns.consumer_config(), topic, want=1) == [{"n": 3}]
