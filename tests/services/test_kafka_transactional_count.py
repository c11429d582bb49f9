"""Kafka counts are records a read_committed consumer gets, not offsets (real local broker).

Transactional producers (Kafka Streams, Flink, confluent-kafka with ``transactional.id``) write
a commit or abort marker after each transaction, and the marker takes an offset: end minus
start offset counted 2 committed records as 3, and an aborted record as 2.
"""

from __future__ import annotations

import socket
import textwrap
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from pytest_pipeline.errors import ServiceError
from pytest_pipeline.services._kafka_batches import (
    ABORT,
    COMMIT,
    Batch,
    count_records,
    visible_count,
)
from pytest_pipeline.services.kafka import KafkaNamespace, count_topic

ck = pytest.importorskip("confluent_kafka")

TIMEOUT = 20.0


@pytest.fixture(scope="module")
def bootstrap(local_kafka: Any) -> str:
    servers: str = local_kafka.endpoint.bootstrap_servers
    return servers


@pytest.fixture
def ns(bootstrap: str) -> Iterator[KafkaNamespace]:
    namespace = KafkaNamespace(bootstrap, f"pp-test-{uuid.uuid4().hex[:10]}", timeout=TIMEOUT)
    yield namespace
    namespace.close()


def _transactional(ns: KafkaNamespace) -> Any:
    config = ns.producer_config(**{"transactional.id": f"pp-tx-{uuid.uuid4().hex}"})
    producer = ck.Producer(config)
    producer.init_transactions(TIMEOUT)
    return producer


def _transaction(
    producer: Any, topic: str, values: list[bytes], *, commit: bool, **kw: Any
) -> None:
    producer.begin_transaction()
    for value in values:
        producer.produce(topic, value, **kw)
    if commit:
        producer.commit_transaction(TIMEOUT)
    else:
        assert producer.flush(TIMEOUT) == 0  # the records reach the log, then get aborted
        producer.abort_transaction(TIMEOUT)


def _plain(ns: KafkaNamespace, topic: str, n: int, partition: int = 0) -> None:
    ns.produce(topic, [f"plain-{i}".encode() for i in range(n)], partition=partition)


def _values(ns: KafkaNamespace, topic: str) -> list[Any]:
    return ns.consume(topic, raw=True)


# --------------------------------------------------------------------------- the real broker


def test_committed_transaction_of_two_records_counts_two(
    ns: KafkaNamespace, bootstrap: str
) -> None:
    topic = ns.topic("dlq")
    _transaction(_transactional(ns), topic, [b"a", b"b"], commit=True)
    assert ns.count(topic) == 2  # was 3: the commit marker took an offset
    assert count_topic(bootstrap, topic, timeout=TIMEOUT) == 2


def test_aborted_transaction_counts_nothing(ns: KafkaNamespace) -> None:
    topic = ns.topic("dlq")
    _transaction(_transactional(ns), topic, [b"gone-1", b"gone-2"], commit=False)
    assert ns.count(topic) == 0  # was 3: two aborted records and the abort marker


def test_mixed_transactions_and_plain_records_on_two_partitions(ns: KafkaNamespace) -> None:
    topic = ns.topic("dlq", partitions=2)
    producer = _transactional(ns)
    _plain(ns, topic, 3, partition=0)
    _transaction(producer, topic, [b"c1", b"c2"], commit=True, partition=0)
    _transaction(producer, topic, [b"x1"], commit=False, partition=0)
    _transaction(producer, topic, [b"x2", b"x3"], commit=False, partition=1)
    _transaction(producer, topic, [b"c3"], commit=True, partition=1)
    _plain(ns, topic, 2, partition=1)
    _plain(ns, topic, 1, partition=0)
    # 3 + 2 + 1 plain on partition 0, 1 + 2 on partition 1; none of x1..x3.
    assert ns.count(topic) == 9


def test_interleaved_transactions_of_two_producers(ns: KafkaNamespace) -> None:
    topic = ns.topic("dlq")
    first, second = _transactional(ns), _transactional(ns)
    first.begin_transaction()
    second.begin_transaction()
    first.produce(topic, b"kept")
    assert first.flush(TIMEOUT) == 0
    second.produce(topic, b"dropped-1")
    second.produce(topic, b"dropped-2")
    assert second.flush(TIMEOUT) == 0
    first.produce(topic, b"kept-too")
    assert first.flush(TIMEOUT) == 0
    first.commit_transaction(TIMEOUT)  # its marker lands after the other one's records
    second.abort_transaction(TIMEOUT)
    assert ns.count(topic) == 2


def test_plain_records_count_as_before(ns: KafkaNamespace, bootstrap: str) -> None:
    topic = ns.topic("dlq", partitions=3)
    assert ns.count(topic) == 0
    for partition in range(3):
        _plain(ns, topic, 4 + partition, partition=partition)
    ns.produce(topic, [{"i": i} for i in range(500)])  # batched by the client
    assert ns.count(topic) == 4 + 5 + 6 + 500
    assert count_topic(bootstrap, topic, timeout=TIMEOUT) == 515
    assert len(_values(ns, topic)) == 515


def test_dlq_fixture_and_kafka_count_agree_on_a_transactional_topic(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyprojecttoml("[tool.pytest-pipeline]\n")
    pytester.makepyfile(
        test_dlq=textwrap.dedent(
            """
            import uuid
            import pytest
            from confluent_kafka import Producer

            pytestmark = pytest.mark.integration

            def test_counts(kafka, dlq):
                topic = kafka.topic("payments-dlq")
                producer = Producer(kafka.producer_config(**{"transactional.id": uuid.uuid4().hex}))
                producer.init_transactions(20)
                producer.begin_transaction()
                producer.produce(topic, b'{"bad": 1}')
                producer.produce(topic, b'{"bad": 2}')
                producer.commit_transaction(20)
                producer.begin_transaction()
                producer.produce(topic, b'{"retried": 1}')
                producer.flush(20)
                producer.abort_transaction(20)
                assert kafka.count(topic) == 2
                assert dlq.count(topic) == 2
                dlq.assert_count(topic, 2)

            def test_wrong_expectation(kafka, dlq):
                topic = kafka.topic("payments-dlq")
                producer = Producer(kafka.producer_config(**{"transactional.id": uuid.uuid4().hex}))
                producer.init_transactions(20)
                producer.begin_transaction()
                producer.produce(topic, b'{"bad": 1}')
                producer.commit_transaction(20)
                dlq.assert_count(topic, 2)
            """
        )
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*DLQ count of pp-*-payments-dlq *: expected 2, got 1"])


def test_an_unreachable_partition_leader_is_a_clear_error() -> None:
    with socket.socket() as closed:  # bound, never listening: connections are refused
        closed.bind(("127.0.0.1", 0))
        address = closed.getsockname()
        with pytest.raises(ServiceError) as raised:
            count_records(address, "dlq", [0], time.monotonic() + TIMEOUT, "the broker")
    assert str(raised.value).startswith(
        f"cannot count Kafka topic 'dlq' on the broker (leader 127.0.0.1:{address[1]}): "
        "no readable answer from the partition leader"
    )


def test_a_partition_leader_that_never_answers_is_bounded_by_the_deadline() -> None:
    with socket.socket() as silent:  # accepts connections (backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        address = silent.getsockname()
        with pytest.raises(ServiceError, match="no answer from the partition leader in time"):
            count_records(address, "dlq", [0], time.monotonic() + 0.5, "the broker")


# --------------------------------------------------------------------------- the fold itself


def _data(base: int, records: int, producer: int = -1) -> Batch:
    return Batch(base, base + records - 1, records, producer, transactional=producer >= 0)


def _marker(offset: int, producer: int, kind: int) -> Batch:
    return Batch(offset, offset, 1, producer, transactional=True, marker=kind)


def test_records_before_the_last_stable_offset_count_when_their_marker_comes_later() -> None:
    # Producer 1's data at 0, producer 2 opens a transaction at 1 (the last stable offset),
    # producer 1's commit marker at 2: a read_committed consumer gets offset 0 only.
    batches = [_data(0, 1, producer=1), _data(1, 1, producer=2), _marker(2, 1, COMMIT)]
    assert visible_count(batches, start=0, stable=1) == 1
    # Once producer 2 aborts, everything is stable and its record never counts.
    assert visible_count([*batches, _marker(3, 2, ABORT)], start=0, stable=4) == 1


def test_open_transactions_and_records_past_the_stable_offset_do_not_count() -> None:
    batches = [_data(0, 3), _data(3, 2, producer=7), _data(5, 2)]
    assert visible_count(batches, start=0, stable=3) == 3


def test_records_deleted_inside_a_batch_do_not_count() -> None:
    assert visible_count([_data(0, 10), _data(10, 5)], start=4, stable=15) == 11
