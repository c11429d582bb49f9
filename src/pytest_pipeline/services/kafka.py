"""Per-test Kafka namespaces: uniquely named topics on the session's broker.

Reads never join a consumer group: they assign partitions with explicit offsets, which is
immediate (no group rebalance) and reads exactly the range asked for. Counts are the records
a read_committed consumer would read, from the record batch headers between each partition's
start and end offsets (``_kafka_batches``), never from polling until a read comes back empty.

confluent-kafka is imported where it is used, so importing this module costs only the
standard library.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pytest_pipeline._optional import require
from pytest_pipeline.errors import PipelineWarning, ServiceError
from pytest_pipeline.records.values import WIRE_JSON, dumps
from pytest_pipeline.services import _kafka_batches
from pytest_pipeline.services.namespace import Namespace

__all__ = ["KafkaNamespace", "KafkaRecord", "count_topic", "topic_name"]

MAX_TOPIC_LENGTH = 249

_TOPIC_OK = re.compile(r"[A-Za-z0-9._-]+")
_TOPIC_BAD_CHARS = re.compile(r"[^A-Za-z0-9._-]+")

_log = logging.getLogger("pytest_pipeline.kafka")

Key = str | bytes | Callable[[Any], str | bytes | None] | None


def _ck() -> Any:
    return require("confluent_kafka", "kafka", "The kafka fixture")


def topic_name(prefix: str, name: str) -> str:
    """The real topic name for ``name`` in the namespace ``prefix``.

    ``prefix-name`` when ``name`` is made of ``[A-Za-z0-9._-]`` and fits in 249 characters;
    otherwise invalid characters become ``-`` and a hash of ``name`` is appended, so distinct
    names never share a topic.
    """
    prefix = _TOPIC_BAD_CHARS.sub("-", prefix).strip("-") or "pp"
    if not name:
        raise ServiceError("a Kafka topic name cannot be empty")
    candidate = f"{prefix}-{name}"
    if _TOPIC_OK.fullmatch(name) and len(candidate) <= MAX_TOPIC_LENGTH:
        return candidate
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:8]
    base = _TOPIC_BAD_CHARS.sub("-", name).strip("-.")
    room = MAX_TOPIC_LENGTH - len(prefix) - len(digest) - 2
    base = base[: max(room, 0)].rstrip("-.")
    return f"{prefix}-{base}-{digest}" if base else f"{prefix}-{digest}"


@dataclass(frozen=True)
class KafkaRecord:
    """One record read back from a topic (see :meth:`KafkaNamespace.messages`)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: Any
    headers: tuple[tuple[str, bytes | None], ...] = ()
    timestamp_ms: int | None = None


# --------------------------------------------------------------------------- serialisation


def encode_value(value: Any) -> bytes:
    """Bytes are sent as they are; anything else as compact JSON under the wire rules
    (:data:`~pytest_pipeline.records.values.WIRE_JSON`: dates as ISO text, Decimals as their
    exact text, NaN as null)."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    return dumps(value, WIRE_JSON, compact=True).encode("utf-8")


def decode_value(value: bytes | None) -> Any:
    """JSON-decoded value, or the bytes themselves when they are not JSON."""
    if value is None:
        return None
    try:
        return json.loads(value)
    except ValueError:  # also UnicodeDecodeError
        return value


def _encode_key(key: Any) -> bytes | None:
    if key is None or isinstance(key, bytes):
        return key
    if isinstance(key, str):
        return key.encode("utf-8")
    if isinstance(key, bytearray | memoryview):
        return bytes(key)
    if isinstance(key, int | uuid.UUID) and not isinstance(key, bool):
        return str(key).encode("utf-8")
    raise ServiceError(f"a Kafka key must be str, bytes or None, got {type(key).__name__}")


# --------------------------------------------------------------------------- offsets & reads


def _client_config(bootstrap_servers: str, errors: list[str]) -> dict[str, Any]:
    def error_cb(error: Any) -> None:
        errors.append(str(error))
        del errors[:-5]  # keep the last few, for messages

    return {
        "bootstrap.servers": bootstrap_servers,
        "logger": _log,  # into logging (captured by pytest), not onto stderr
        "error_cb": error_cb,
        "socket.connection.setup.timeout.ms": 10_000,
        # Small request/response exchanges otherwise wait on delayed ACKs: ~50 ms before a
        # new client's first answer instead of ~2 ms.
        "socket.nagle.disable": True,
        # Connect to the brokers at once rather than on first use: lazily, a new client's
        # first request to the partition leader waited up to ~50 ms (median 31 ms vs 5 ms).
        "enable.sparse.connections": False,
    }


def _reader(bootstrap_servers: str, errors: list[str], group: str) -> Any:
    config = _client_config(bootstrap_servers, errors)
    config.update(
        {
            # Required by the client, never joined: reads use assign().
            "group.id": group,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            # An end-of-partition event tells where a partition ends when its last offset
            # holds no record (a transaction marker), without polling until reads are empty.
            "enable.partition.eof": True,
            "auto.offset.reset": "earliest",
            "fetch.wait.max.ms": 5,  # that event comes after one empty fetch
            "isolation.level": "read_committed",
        }
    )
    return _ck().Consumer(config)


def _metadata(consumer: Any, topic: str, timeout: float, where: str) -> tuple[Any, Any]:
    """The topic's metadata (partitions and leaders) and the cluster's brokers."""
    ck = _ck()
    try:
        metadata = consumer.list_topics(topic, timeout=timeout)
    except ck.KafkaException as exc:
        raise ServiceError(f"cannot read metadata of topic {topic!r} from {where}: {exc}") from None
    info = metadata.topics.get(topic)
    if info is None or info.error is not None or not info.partitions:
        reason = f" ({info.error.str()})" if info is not None and info.error is not None else ""
        raise ServiceError(
            f"Kafka topic {topic!r} does not exist on {where}{reason}; create it with "
            "kafka.topic(name) and use the name it returns"
        )
    return info, metadata.brokers


def _partitions(consumer: Any, topic: str, timeout: float, where: str) -> list[int]:
    info, _ = _metadata(consumer, topic, timeout, where)
    return sorted(info.partitions)


def _offset_ranges(
    consumer: Any, topic: str, partitions: list[int], deadline: float, where: str
) -> dict[int, tuple[int, int]]:
    """``{partition: (start, end)}`` from the broker's offsets.

    The end offsets from ListOffsets are checked against the high watermark of a fetch of
    each non-empty partition's last offset: some Kafka-protocol brokers (tansu 0.6) answer
    ListOffsets with the base offset of the last record batch plus one, which undercounts
    every partition whose last produce sent more than one record.
    """
    ck = _ck()
    ranges: dict[int, tuple[int, int]] = {}
    for partition in partitions:
        try:
            low, high = consumer.get_watermark_offsets(
                ck.TopicPartition(topic, partition), timeout=max(deadline - time.monotonic(), 1)
            )
        except ck.KafkaException as exc:
            raise ServiceError(
                f"cannot read offsets of {topic!r} partition {partition} from {where}: {exc}"
            ) from None
        ranges[partition] = (low, high)
    nonempty = {p: r for p, r in ranges.items() if r[1] > r[0]}
    if not nonempty:
        return ranges
    ends = _fetched_ends(
        consumer, topic, {p: high for p, (_, high) in nonempty.items()}, deadline, where
    )
    for partition, end in ends.items():
        low, high = ranges[partition]
        ranges[partition] = (low, max(high, end))
    return ranges


def _fetched_ends(
    consumer: Any, topic: str, highs: Mapping[int, int], deadline: float, where: str
) -> dict[int, int]:
    """The high watermark each partition's leader reports in a fetch from ``high - 1``.

    The first record (or end-of-partition event) of a partition is enough: the client
    records the fetch response's high watermark before it hands out the records.
    """
    ck = _ck()
    ends: dict[int, int] = {}
    consumer.assign([ck.TopicPartition(topic, p, high - 1) for p, high in highs.items()])
    try:
        while len(ends) < len(highs):
            if time.monotonic() > deadline:
                missing = sorted(set(highs) - set(ends))
                raise ServiceError(
                    f"timed out reading the end offsets of topic {topic!r} on {where} "
                    f"(partitions {missing})"
                )
            for message in consumer.consume(1000, 0.005):
                partition = message.partition()
                if partition not in highs or partition in ends:
                    continue
                error = message.error()
                if error is not None and error.code() != ck.KafkaError._PARTITION_EOF:
                    raise ServiceError(f"cannot read topic {topic!r} on {where}: {error.str()}")
                _, cached = consumer.get_watermark_offsets(
                    ck.TopicPartition(topic, partition), cached=True
                )
                # An end-of-partition event's offset is the end; a record's is inside it.
                seen = message.offset() if error is not None else message.offset() + 1
                ends[partition] = max(highs[partition], cached, seen)
    finally:
        consumer.unassign()
    return ends


def _read(
    consumer: Any, topic: str, ranges: Mapping[int, tuple[int, int]], deadline: float, where: str
) -> list[Any]:
    """The messages of each partition from offset ``start`` up to (not including) ``end``."""
    ck = _ck()
    collected: list[Any] = []
    pending = {p: end for p, (start, end) in ranges.items() if end > start}
    if not pending:
        return collected
    consumer.assign([ck.TopicPartition(topic, p, ranges[p][0]) for p in pending])
    try:
        while pending:
            if time.monotonic() > deadline:
                raise ServiceError(
                    f"timed out reading topic {topic!r} on {where}: partitions "
                    f"{sorted(pending)} did not reach their end offsets"
                )
            for message in consumer.consume(10_000, 0.005):
                partition = message.partition()
                end = pending.get(partition)
                if end is None:
                    continue
                offset = message.offset()
                error = message.error()
                if error is not None:
                    if error.code() != ck.KafkaError._PARTITION_EOF:
                        raise ServiceError(f"cannot read topic {topic!r} on {where}: {error.str()}")
                    # Past the end without a record at end - 1: a transaction marker was there.
                    if offset >= end:
                        del pending[partition]
                    continue
                if offset < end:
                    collected.append(message)
                if offset >= end - 1:
                    del pending[partition]
    finally:
        consumer.unassign()
    return collected


def _to_record(message: Any, raw: bool) -> KafkaRecord:
    value = message.value()
    _, timestamp = message.timestamp()
    return KafkaRecord(
        topic=message.topic(),
        partition=message.partition(),
        offset=message.offset(),
        key=message.key(),
        value=value if raw else decode_value(value),
        headers=tuple(message.headers() or ()),
        timestamp_ms=timestamp if timestamp >= 0 else None,
    )


class _Clients:
    """The Kafka clients of one namespace, created on first use."""

    def __init__(self, bootstrap_servers: str, timeout: float, group: str) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.timeout = timeout
        self.group = group
        self.errors: list[str] = []
        self.lock = threading.RLock()
        self._admin: Any = None
        self._producer: Any = None
        self._consumer: Any = None

    def where(self) -> str:
        """The broker, with the last client error if any, for messages."""
        last = f" (last client error: {self.errors[-1]})" if self.errors else ""
        return f"{self.bootstrap_servers}{last}"

    def admin(self) -> Any:
        if self._admin is None:
            admin = require("confluent_kafka.admin", "kafka", "The kafka fixture")
            self._admin = admin.AdminClient(_client_config(self.bootstrap_servers, self.errors))
        return self._admin

    def producer(self) -> Any:
        if self._producer is None:
            config = _client_config(self.bootstrap_servers, self.errors)
            config.update(
                {
                    "acks": "all",
                    # Fail a delivery within our timeout rather than librdkafka's 5 minutes.
                    "message.timeout.ms": int(self.timeout * 1000),
                    "linger.ms": 5,
                }
            )
            self._producer = _ck().Producer(config)
        return self._producer

    def reader(self) -> Any:
        if self._consumer is None:
            self._consumer = _reader(self.bootstrap_servers, self.errors, self.group)
        return self._consumer

    def close_reader(self) -> None:
        """Close the consumer: afterwards no fetch of ours is in flight."""
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            consumer.close()

    def close(self) -> None:
        try:
            self.close_reader()
        finally:
            producer, self._producer, self._admin = self._producer, None, None
            if producer is not None:
                # produce() waited for every delivery and reported failures: drop leftovers.
                producer.purge(blocking=False)
                close = getattr(producer, "close", None)  # missing in older confluent-kafka
                if close is not None:
                    close()


def count_topic(bootstrap_servers: str, topic: str, timeout: float = 30.0) -> int:
    """Records in ``topic`` now, as a ``read_committed`` consumer would read them.

    Transaction markers and aborted transactions' records are not counted (see ``_count``).
    """
    clients = _Clients(bootstrap_servers, timeout, f"pytest-pipeline-count-{uuid.uuid4().hex}")
    try:
        return _count(clients, topic, timeout)
    finally:
        clients.close()


def _count(clients: _Clients, topic: str, timeout: float) -> int:
    """The one count of a topic's records: ``kafka.count``, ``dlq.count``, ``count_topic``.

    Offsets alone overcount transactional topics (each commit or abort marker takes an
    offset; aborted records take offsets too), and no request tells whether a partition holds
    markers without reading it. So each non-empty partition is read batch header by batch
    header from its leader (see ``_kafka_batches``): for a small topic, in as many round trips
    as the offsets-only count took.
    """
    deadline = time.monotonic() + timeout
    where = clients.where()
    info, brokers = _metadata(clients.reader(), topic, timeout, where)
    leaders: dict[tuple[str, int], list[int]] = {}
    for partition, meta in sorted(info.partitions.items()):
        broker = brokers.get(meta.leader)
        if broker is None:
            raise ServiceError(
                f"cannot count Kafka topic {topic!r} on {where}: partition {partition} "
                "has no leader in the broker's metadata"
            )
        leaders.setdefault((broker.host, broker.port), []).append(partition)
    return sum(
        _kafka_batches.count_records(address, topic, partitions, deadline, where)
        for address, partitions in leaders.items()
    )


# --------------------------------------------------------------------------- the fixture object

#: Group timings for Apache Kafka and Redpanda (6 s is Kafka's smallest session by default).
STANDARD_GROUP_SETTINGS: Mapping[str, Any] = {
    "session.timeout.ms": 6000,
    "heartbeat.interval.ms": 1000,
}
#: tansu answers a JoinGroup only after half the session timeout: keep the session short.
TANSU_GROUP_SETTINGS: Mapping[str, Any] = {
    "session.timeout.ms": 1000,
    "heartbeat.interval.ms": 300,
}


#: librdkafka settings the Python-protocol clients have no counterpart for (kafka-python sets
#: TCP_NODELAY itself, asyncio sets it on every TCP connection).
_LIBRDKAFKA_ONLY: Mapping[str, Any] = {
    "socket.nagle.disable": True,
    "enable.sparse.connections": False,
}
#: Clients ``consumer_config`` / ``producer_config`` speak: keyword names are the librdkafka
#: names with ``_`` for ``.`` (bootstrap_servers, group_id, session_timeout_ms, ...).
KAFKA_CLIENTS = ("confluent-kafka", "kafka-python", "aiokafka")


def client_settings(settings: Mapping[str, Any], client: str) -> dict[str, Any]:
    """``settings`` (librdkafka names) in ``client``'s names (one of :data:`KAFKA_CLIENTS`)."""
    if client == "confluent-kafka":
        return {**settings, **_LIBRDKAFKA_ONLY}
    if client in KAFKA_CLIENTS:
        return {key.replace(".", "_"): value for key, value in settings.items()}
    raise ServiceError(
        f"kafka client settings: unknown client {client!r}; use one of {', '.join(KAFKA_CLIENTS)}"
    )


class KafkaNamespace(Namespace):
    """One test's topics on a shared broker: what the ``kafka`` fixture gives.

    ``topic(name)`` creates ``<prefix>-<name>`` and returns that real name; the other methods
    take the real name (or the name given to ``topic()``). ``close()`` (and the end of a
    ``with`` block) deletes the topics this namespace created, and only those.
    """

    noun = "Kafka namespace"

    def __init__(
        self,
        bootstrap_servers: str,
        prefix: str,
        *,
        timeout: float = 30.0,
        group_settings: Mapping[str, Any] | None = None,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.prefix = prefix
        self.timeout = timeout
        # Consumer-group timings suited to the broker (see consumer_config).
        self._group_settings = dict(group_settings or STANDARD_GROUP_SETTINGS)
        self._topics: dict[str, str] = {}  # name given to topic() -> real name
        self._partition_counts: dict[str, int] = {}  # real name -> partitions
        self._clients = _Clients(bootstrap_servers, timeout, f"{prefix}-reader")
        # Requests and close() take the clients' lock: no fetch of ours outlives close().
        super().__init__(prefix, self._clients.lock)

    def _shown(self) -> dict[str, object]:
        return {
            "bootstrap_servers": self.bootstrap_servers,
            "prefix": self.prefix,
            "topics": self.topics,
        }

    # -- client configuration for the code under test

    def producer_config(
        self, *, client: str = "confluent-kafka", **overrides: Any
    ) -> dict[str, Any]:
        """Producer settings for this broker, for the pipeline under test.

        In ``client``'s own names (see :meth:`consumer_config`); ``overrides`` use them too.
        """
        settings = {"bootstrap.servers": self.bootstrap_servers}
        return {**client_settings(settings, client), **overrides}

    def consumer_config(
        self, group: str | None = None, *, client: str = "confluent-kafka", **overrides: Any
    ) -> dict[str, Any]:
        """Consumer settings for the pipeline under test.

        The group id is unique to this test and the same on every call (``group`` names
        another one): a pipeline run twice in one test resumes from its committed offsets, as
        in production. Consumers start from the earliest offset; the group timings join fast on
        this broker (tansu holds a join for half the session timeout, so its consumers get a
        1 s session).

        ``client`` names the library the settings are for: ``"confluent-kafka"`` (librdkafka
        keys, ``Consumer(config)``), ``"kafka-python"`` (``KafkaConsumer(topic, **config)``)
        or ``"aiokafka"`` (``AIOKafkaConsumer(topic, **config)``). ``overrides`` are given in
        that client's names.
        """
        group = group or "pipeline"
        settings = {
            "bootstrap.servers": self.bootstrap_servers,
            "group.id": topic_name(self.prefix, group),
            "auto.offset.reset": "earliest",
            **self._group_settings,
        }
        return {**client_settings(settings, client), **overrides}

    # -- names

    def real_name(self, name: str) -> str:
        """The real topic name ``topic(name)`` creates (without creating it)."""
        return topic_name(self.prefix, name)

    def _resolve(self, topic: str) -> str:
        if topic in self._partition_counts:
            return topic
        return self._topics.get(topic, topic)

    def owns(self, topic: str) -> bool:
        """Whether ``topic`` (a real name, or a name given to :meth:`topic`) is one of ours."""
        return topic in self._partition_counts or topic in self._topics

    def given_name(self, topic: str) -> str:
        """The name ``topic`` (a real name) was created with through :meth:`topic`."""
        for name, real in self._topics.items():
            if real == topic:
                return name
        return topic

    @property
    def topics(self) -> list[str]:
        """Real names of the topics this namespace created, in creation order."""
        return list(self._partition_counts)

    # -- topics

    def topic(self, name: str, partitions: int = 1) -> str:
        """Create the topic ``name`` of this test and return its unique real name.

        Returns once the topic is usable: every partition has a leader that answers offset
        requests. Calling it again with the same name returns the same topic.
        """
        ck = _ck()
        clients = self._clients
        with clients.lock:
            self._check_open()
            if isinstance(partitions, bool) or not isinstance(partitions, int) or partitions < 1:
                raise ServiceError(f"topic {name!r}: partitions must be an int >= 1")
            real = self._resolve(name)
            if real in self._partition_counts:
                if self._partition_counts[real] != partitions:
                    raise ServiceError(
                        f"topic {name!r} already exists in this test with "
                        f"{self._partition_counts[real]} partitions, not {partitions}"
                    )
                return real
            real = self.real_name(name)
            admin = require("confluent_kafka.admin", "kafka", "The kafka fixture")
            # replication_factor -1: the broker's default, so that clusters requiring several
            # in-sync replicas accept our produces.
            new_topic = admin.NewTopic(real, num_partitions=partitions, replication_factor=-1)
            futures = clients.admin().create_topics(
                [new_topic], operation_timeout=self.timeout, request_timeout=self.timeout
            )
            try:
                futures[real].result(timeout=self.timeout + 5)
            except ck.KafkaException as exc:
                error = exc.args[0]
                if error.code() != ck.KafkaError.TOPIC_ALREADY_EXISTS:
                    raise ServiceError(
                        f"cannot create Kafka topic {real!r} on {clients.where()}: {error.str()}"
                    ) from None
            except Exception as exc:  # concurrent.futures.TimeoutError
                raise ServiceError(
                    f"cannot create Kafka topic {real!r} on {clients.where()}: timed out after "
                    f"{self.timeout:g}s ({type(exc).__name__})"
                ) from None
            self._topics[name] = real
            self._partition_counts[real] = partitions
            self._wait_usable(real, partitions)
            return real

    def _wait_usable(self, real: str, partitions: int) -> None:
        ck = _ck()
        consumer = self._clients.reader()
        deadline = time.monotonic() + self.timeout
        problem = "no metadata yet"
        while True:
            try:
                metadata = consumer.list_topics(real, timeout=max(deadline - time.monotonic(), 1))
                info = metadata.topics.get(real)
                if info is None or info.error is not None:
                    problem = info.error.str() if info is not None else "topic not in metadata"
                elif len(info.partitions) < partitions:
                    problem = f"{len(info.partitions)} of {partitions} partitions in metadata"
                elif any(p.leader < 0 or p.error is not None for p in info.partitions.values()):
                    problem = "a partition has no leader yet"
                else:
                    # Offsets answered by each partition's leader: it serves the partition,
                    # so a produce would succeed.
                    for partition in range(partitions):
                        consumer.get_watermark_offsets(
                            ck.TopicPartition(real, partition), timeout=5
                        )
                    return
            except ck.KafkaException as exc:
                problem = exc.args[0].str() if exc.args else str(exc)
            if time.monotonic() > deadline:
                raise ServiceError(
                    f"Kafka topic {real!r} was created on {self._clients.where()} but is not "
                    f"usable after {self.timeout:g}s: {problem}"
                )
            time.sleep(0.05)

    # -- produce

    def produce(
        self,
        topic: str,
        records: Iterable[Any],
        key: Key = None,
        *,
        partition: int | None = None,
        headers: Mapping[str, str | bytes] | None = None,
    ) -> int:
        """Send ``records`` to ``topic`` and wait until all are delivered; returns their count.

        Bytes are sent as they are, anything else as JSON. ``key`` is one key for every
        record, or a function of the record returning its key. Raises :class:`ServiceError`
        naming the topic if any record is not delivered.
        """
        ck = _ck()
        if isinstance(records, Mapping | str | bytes | bytearray):
            raise ServiceError(
                f"produce to {topic!r}: records must be an iterable of records, got a single "
                f"{type(records).__name__}; wrap one record in a list"
            )
        clients = self._clients
        with clients.lock:
            self._check_open()
            real = self._resolve(topic)
            producer = clients.producer()
            failures: list[str] = []

            def on_delivery(error: Any, _message: Any) -> None:
                if error is not None:
                    failures.append(error.str())

            sent = 0
            extra: dict[str, Any] = {}
            if partition is not None:
                extra["partition"] = partition
            if headers:
                extra["headers"] = list(headers.items())
            for index, record in enumerate(records):
                try:
                    value = encode_value(record)
                except (TypeError, ValueError) as exc:
                    raise ServiceError(
                        f"produce to {real!r}: record {index} cannot be serialized as JSON: "
                        f"{exc}; pass bytes to send your own encoding"
                    ) from None
                record_key = _encode_key(key(record) if callable(key) else key)
                while True:
                    try:
                        producer.produce(
                            real, value=value, key=record_key, on_delivery=on_delivery, **extra
                        )
                        break
                    except BufferError:
                        producer.poll(0.1)  # local queue full: let deliveries drain it
                    except ck.KafkaException as exc:
                        raise ServiceError(
                            f"produce to {real!r} failed at record {index}: {exc.args[0].str()}"
                        ) from None
                sent += 1
                producer.poll(0)
            remaining = producer.flush(self.timeout + 5)
            if remaining:
                raise ServiceError(
                    f"produce to {real!r}: {remaining} of {sent} records not delivered within "
                    f"{self.timeout:g}s on {clients.where()}"
                )
            if failures:
                raise ServiceError(
                    f"produce to {real!r}: {len(failures)} of {sent} records failed on "
                    f"{clients.where()}: {failures[0]}"
                )
            return sent

    # -- read

    def messages(
        self, topic: str, n: int | None = None, timeout: float = 10.0, *, raw: bool = False
    ) -> list[KafkaRecord]:
        """Like :meth:`consume`, with each record's key, partition, offset and headers."""
        clients = self._clients
        with clients.lock:
            self._check_open()
            real = self._resolve(topic)
            consumer = clients.reader()
            where = clients.where()
            if n is None:
                deadline = time.monotonic() + max(timeout, self.timeout)
                partitions = _partitions(consumer, real, self.timeout, where)
                ranges = _offset_ranges(consumer, real, partitions, deadline, where)
                return self._read_ranges(real, ranges, deadline, raw)
            if isinstance(n, bool) or not isinstance(n, int) or n < 0:
                raise ServiceError(f"consume from {real!r}: n must be an int >= 0 or None")
            deadline = time.monotonic() + timeout
            pause = 0.02
            while True:
                partitions = _partitions(consumer, real, self.timeout, where)
                # Reading may run past `timeout` when the records arrived in time.
                read_deadline = max(deadline, time.monotonic() + self.timeout)
                ranges = _offset_ranges(consumer, real, partitions, read_deadline, where)
                arrived = sum(high - low for low, high in ranges.values())
                if arrived >= n:
                    # Offsets also count transaction markers: read to be sure.
                    found = self._read_ranges(real, ranges, read_deadline, raw)
                    arrived = len(found)
                    if arrived >= n:
                        return found[:n]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ServiceError(
                        f"expected {n} records on Kafka topic {real!r} within {timeout:g}s, "
                        f"but only {arrived} arrived"
                    )
                time.sleep(min(pause, left))
                pause = min(pause * 2, 0.25)

    def _read_ranges(
        self, real: str, ranges: Mapping[int, tuple[int, int]], deadline: float, raw: bool
    ) -> list[KafkaRecord]:
        consumer = self._clients.reader()
        collected = _read(consumer, real, ranges, deadline, self._clients.where())
        records = [_to_record(m, raw) for m in collected]
        records.sort(key=lambda r: (r.partition, r.offset))
        return records

    def consume(
        self, topic: str, n: int | None = None, timeout: float = 10.0, *, raw: bool = False
    ) -> list[Any]:
        """Read the values in ``topic``, ordered by partition then offset.

        ``n=None``: everything there when called. ``n`` given: wait up to ``timeout`` seconds
        until ``n`` records are there and return the first ``n``; fewer is a
        :class:`ServiceError` naming the topic, ``n`` and how many arrived. Values are
        JSON-decoded (bytes that are not JSON stay bytes) unless ``raw=True``.
        No consumer group is joined and no offsets are committed.
        """
        return [record.value for record in self.messages(topic, n, timeout, raw=raw)]

    def count(self, topic: str) -> int:
        """Records in ``topic`` that a ``read_committed`` consumer reads (no markers, no
        aborted records)."""
        with self._clients.lock:
            self._check_open()
            return _count(self._clients, self._resolve(topic), self.timeout)

    # -- cleanup

    def _close(self, *, delete: bool) -> None:
        """Delete the topics this namespace created (only those) and close its clients.

        Problems while cleaning up are reported as warnings, not raised.
        """
        clients = self._clients
        try:
            # First, so that no fetch of ours is in flight for a topic being deleted
            # (tansu answers such a fetch with another topic's id, crashing librdkafka).
            clients.close_reader()
        except Exception as exc:
            warnings.warn(
                PipelineWarning(f"closing a Kafka consumer failed: {exc!r}"), stacklevel=3
            )
        try:
            if delete:
                self._delete_topics()
        finally:
            clients.close()

    def _delete_topics(self) -> None:
        ck = _ck()
        clients = self._clients
        owned = self.topics
        if owned:
            try:
                futures = clients.admin().delete_topics(
                    owned, operation_timeout=self.timeout, request_timeout=self.timeout
                )
            except Exception as exc:
                warnings.warn(
                    PipelineWarning(
                        f"could not delete Kafka topics {owned} on {clients.where()}: {exc}"
                    ),
                    stacklevel=4,
                )
                return
            for real, future in futures.items():
                try:
                    future.result(timeout=self.timeout + 5)
                except ck.KafkaException as exc:
                    if exc.args[0].code() != ck.KafkaError.UNKNOWN_TOPIC_OR_PART:
                        warnings.warn(
                            PipelineWarning(
                                f"could not delete Kafka topic {real!r} on {clients.where()}: "
                                f"{exc.args[0].str()}"
                            ),
                            stacklevel=4,
                        )
                except Exception as exc:
                    warnings.warn(
                        PipelineWarning(
                            f"could not delete Kafka topic {real!r} on {clients.where()}: {exc!r}"
                        ),
                        stacklevel=4,
                    )
