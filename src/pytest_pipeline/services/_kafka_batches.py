"""Kafka counts as a ``read_committed`` consumer sees them, from record batch headers.

End minus start offset overcounts topics written by transactional producers: each commit or
abort marker takes an offset, and an aborted transaction's records take offsets but are never
delivered. librdkafka shows neither markers nor batch attributes to the application, and some
Kafka-protocol brokers (tansu 0.6) leave the list of aborted transactions out of their fetch
responses, so there even a ``read_committed`` consumer delivers aborted records.

So a count asks the partition leader for the partitions' first and last offsets (ListOffsets
v2) and fetches the non-empty ones (Fetch v4; both versions are answered by every broker from
Kafka 0.11 to 4.x) and reads only the 61-byte header of each record batch, plus the key of
each control record (commit or abort): no record is decompressed or decoded. No request tells
whether a partition holds markers without reading it.
A record counts when a ``read_committed`` consumer would get it: it lies below the last stable
offset and is either not transactional or in a transaction whose marker is a commit.

Only the standard library is used.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from pytest_pipeline.errors import ServiceError

__all__ = ["Batch", "count_records", "parse_batches", "visible_count"]

_FETCH = 1
_LIST_OFFSETS = 2
_EARLIEST, _LATEST = -2, -1
_READ_UNCOMMITTED = 0
#: One response carries at most this much record data (tansu sends at most 5 MiB anyway).
_MAX_BYTES = 8 * 1024 * 1024
_BATCH_HEADER = struct.Struct(">qiibIhiqqqhii")  # 61 bytes: magic 2 record batch header
_TRANSACTIONAL = 0x10
_CONTROL = 0x20
_COMPRESSION = 0x07
#: Bytes as read from the socket.
Data = bytes | bytearray | memoryview
ABORT, COMMIT = 0, 1


class LegacyFormat(Exception):
    """The partition holds messages older than record batches (Kafka < 0.11 format)."""


@dataclass(frozen=True)
class Batch:
    """What a count needs from one record batch header."""

    base: int  # offset of the first record
    last: int  # offset of the last record
    records: int
    producer: int  # -1: no producer id
    transactional: bool
    marker: int | None = None  # a control batch: ABORT, COMMIT or another control type


def _varint(data: Data, pos: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return (result >> 1) ^ -(result & 1), pos
        shift += 7


def _marker(data: Data, pos: int, end: int) -> int:
    """The type of the control record at ``pos``: ABORT, COMMIT, or another control type."""
    _, pos = _varint(data, pos)  # record length
    pos += 1  # record attributes
    _, pos = _varint(data, pos)  # timestamp delta
    _, pos = _varint(data, pos)  # offset delta
    key_length, pos = _varint(data, pos)
    if key_length < 4 or pos + 4 > end:
        raise ValueError("control record without a key")
    _, kind = struct.unpack_from(">hh", data, pos)  # key: version, type
    return int(kind)


def parse_batches(data: Data) -> Iterator[Batch]:
    """The complete record batches in ``data`` (a fetch response's records), in order.

    A batch cut off at the end of ``data`` (the response size limit) is left out: the next
    fetch starts at its offset.
    """
    pos = 0
    while pos + _BATCH_HEADER.size <= len(data):
        (base, length, _epoch, magic, _crc, attributes, last_delta, _ts, _max_ts, producer, _,
         _, records) = _BATCH_HEADER.unpack_from(data, pos)  # fmt: skip
        end = pos + 12 + length
        if magic != 2:
            raise LegacyFormat  # internal: the caller falls back to offsets
        if end > len(data):
            return
        marker = None
        if attributes & _CONTROL:
            if attributes & _COMPRESSION or records != 1:
                raise ValueError(f"unreadable control batch at offset {base}")
            marker = _marker(data, pos + _BATCH_HEADER.size, end)
        yield Batch(
            base, base + last_delta, records, producer, bool(attributes & _TRANSACTIONAL), marker
        )
        pos = end


class _Tally:
    """Records a ``read_committed`` consumer reading from ``start`` gets, batch by batch.

    ``stable`` is the partition's last stable offset: nothing at or past it is delivered.
    Transactional records count once their producer's next marker is a commit; those of an
    aborted or still open transaction never do.
    """

    def __init__(self, start: int, stable: int) -> None:
        self.start = start
        self.stable = stable
        self.total = 0
        self.pending: dict[int, int] = {}  # producer id -> records of its open transaction

    def add(self, batch: Batch) -> None:
        if batch.marker is not None:
            if batch.transactional and batch.marker == COMMIT:
                self.total += self.pending.pop(batch.producer, 0)
            elif batch.transactional and batch.marker == ABORT:
                self.pending.pop(batch.producer, None)
            return
        if batch.base >= self.stable or batch.last < self.start:
            records = 0
        else:
            # Records before ``start`` were deleted (DeleteRecords inside this batch).
            records = batch.records - max(self.start - batch.base, 0)
        if batch.transactional:
            self.pending[batch.producer] = self.pending.get(batch.producer, 0) + records
        else:
            self.total += records


def visible_count(batches: Iterable[Batch], start: int, stable: int) -> int:
    """Records a ``read_committed`` consumer reading from ``start`` gets from ``batches``."""
    tally = _Tally(start, stable)
    for batch in batches:
        tally.add(batch)
    return tally.total


# --------------------------------------------------------------------------- the wire


class _FetchError(Exception):
    """The broker answered a partition's request with an error code."""


class _Reader:
    """Reads a response field by field."""

    def __init__(self, data: memoryview) -> None:
        self.data = data
        self.pos = 0

    def take(self, fmt: str) -> tuple[int, ...]:
        values = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return values

    def chunk(self, length: int) -> memoryview:
        data = self.data[self.pos : self.pos + max(length, 0)]
        self.pos += max(length, 0)
        return data

    def partitions(self, topic: str) -> Iterator[int]:
        """Walks ``[topic name, [partition ...]]`` and yields the partitions of ``topic``;
        the caller reads each partition's fields after its index."""
        (topics,) = self.take(">i")
        for _ in range(topics):
            (length,) = self.take(">h")
            name = bytes(self.chunk(length)).decode("utf-8", "replace")
            (count,) = self.take(">i")
            for _ in range(count):
                (partition,) = self.take(">i")
                if name != topic:
                    raise ValueError(f"an answer for topic {name!r}")
                yield partition


def _string(text: str) -> bytes:
    raw = text.encode("utf-8")
    return struct.pack(">h", len(raw)) + raw


class _Connection:
    """Requests and answers over one connection to a partition leader, within a deadline."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.sock = sock
        self.deadline = deadline
        self.correlation = 0

    def call(self, api: int, version: int, body: bytes) -> _Reader:
        if time.monotonic() > self.deadline:
            raise TimeoutError
        self.correlation += 1
        header = struct.pack(">hhi", api, version, self.correlation) + _string("pytest-pipeline")
        request = header + body
        self.sock.sendall(struct.pack(">i", len(request)) + request)
        (size,) = struct.unpack(">i", self._receive(4))
        reader = _Reader(self._receive(size))
        (answered,) = reader.take(">i")
        if answered != self.correlation:
            raise ValueError(f"correlation id {answered}, expected {self.correlation}")
        return reader

    def _receive(self, size: int) -> memoryview:
        # Into one buffer, without copies: an answer carries up to _MAX_BYTES of records.
        view = memoryview(bytearray(size))
        done = 0
        while done < size:
            self.sock.settimeout(max(self.deadline - time.monotonic(), 0.001))
            received = self.sock.recv_into(view[done:])
            if not received:
                raise ConnectionError("the broker closed the connection")
            done += received
        return view

    def offsets(self, topic: str, partitions: list[int], which: int) -> dict[int, int]:
        """The earliest or latest offset of each partition (ListOffsets v2, uncommitted)."""
        body = struct.pack(">ib", -1, _READ_UNCOMMITTED)
        body += struct.pack(">i", 1) + _string(topic) + struct.pack(">i", len(partitions))
        for partition in partitions:
            body += struct.pack(">iq", partition, which)
        reader = self.call(_LIST_OFFSETS, 2, body)
        reader.take(">i")  # throttle time
        found: dict[int, int] = {}
        for partition in reader.partitions(topic):
            error, _timestamp, offset = reader.take(">hqq")
            if error:
                raise _FetchError(f"partition {partition} answered ListOffsets with error {error}")
            found[partition] = offset
        return found

    def fetch(self, topic: str, positions: Mapping[int, int]) -> dict[int, _PartitionData]:
        """One Fetch v4 (uncommitted) of each partition from its position."""
        # max_wait_ms 1: the data is there; tansu answers nothing at all with 0.
        body = struct.pack(">iiiib", -1, 1, 1, _MAX_BYTES, _READ_UNCOMMITTED)
        body += struct.pack(">i", 1) + _string(topic) + struct.pack(">i", len(positions))
        for partition, offset in positions.items():
            body += struct.pack(">iqi", partition, offset, _MAX_BYTES)
        reader = self.call(_FETCH, 4, body)
        reader.take(">i")  # throttle time
        found: dict[int, _PartitionData] = {}
        for partition in reader.partitions(topic):
            error, high, stable, aborted = reader.take(">hqqi")
            reader.chunk(16 * max(aborted, 0))  # not every broker fills it: markers decide
            (length,) = reader.take(">i")
            if error:
                raise _FetchError(f"partition {partition} answered Fetch with error {error}")
            found[partition] = _PartitionData(high, stable, reader.chunk(length))
        return found


@dataclass(frozen=True)
class _PartitionData:
    high: int
    stable: int
    records: memoryview


def count_records(
    address: tuple[str, int], topic: str, partitions: list[int], deadline: float, where: str
) -> int:
    """Records a ``read_committed`` consumer gets from ``partitions`` (all led by ``address``).

    Reads every batch header from each partition's start up to its high watermark at the first
    fetch: records produced meanwhile are not counted.
    """
    try:
        timeout = max(deadline - time.monotonic(), 0.001)
        with socket.create_connection(address, timeout=timeout) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return _count(_Connection(sock, deadline), topic, partitions)
    except TimeoutError:
        why = "no answer from the partition leader in time"
    except _FetchError as exc:
        why = str(exc)
    except (OSError, ValueError, LookupError, struct.error) as exc:
        why = f"no readable answer from the partition leader ({exc})"
    leader = f"{address[0]}:{address[1]}"
    raise ServiceError(f"cannot count Kafka topic {topic!r} on {where} (leader {leader}): {why}")


def _count(connection: _Connection, topic: str, partitions: list[int]) -> int:
    starts = connection.offsets(topic, partitions, _EARLIEST)
    # Any end past the start means batches to read (tansu 0.6 answers the start of the
    # last batch plus one: enough to tell).
    ends = connection.offsets(topic, partitions, _LATEST)
    position = {p: starts[p] for p in partitions if ends[p] > starts[p]}
    tallies: dict[int, _Tally] = {}
    highs: dict[int, int] = {}  # the high watermark of the first fetch
    total = 0
    while position:
        for partition, data in connection.fetch(topic, position).items():
            if partition not in position:
                continue
            if partition not in tallies:
                highs[partition] = data.high
                stable = data.stable if data.stable >= 0 else data.high
                tallies[partition] = _Tally(starts[partition], stable)
            try:
                for batch in parse_batches(data.records):
                    tallies[partition].add(batch)
                    position[partition] = batch.last + 1
            except LegacyFormat:
                # Messages from before transactions existed: the offsets are exact.
                total += highs[partition] - starts[partition]
                del tallies[partition]
                del position[partition]
                continue
            if position[partition] >= highs[partition]:
                del position[partition]
    return total + sum(tally.total for tally in tallies.values())
