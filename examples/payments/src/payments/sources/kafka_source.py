"""Read micro-batches of payment events from a Kafka topic, at least once.

Offsets are committed only after the batch was written everywhere (:meth:`BatchReader.commit`),
so a crash between reading and writing replays the batch instead of losing it.
"""

from __future__ import annotations

import json
import time
from types import TracebackType
from typing import Any

from confluent_kafka import Consumer, KafkaError


def decode(value: bytes | None) -> dict[str, Any]:
    """A message value as an event; anything but a JSON object is kept whole under ``raw``."""
    text = (value or b"").decode("utf-8", "replace")
    try:
        event = json.loads(text)
    except ValueError:
        return {"raw": text}
    return event if isinstance(event, dict) else {"raw": text}


class BatchReader:
    """A consumer-group member that hands out batches and commits them when told."""

    def __init__(self, consumer_conf: dict[str, Any], topic: str) -> None:
        self.topic = topic
        self._consumer = Consumer({**consumer_conf, "enable.auto.commit": False})
        self._consumer.subscribe([topic])
        self._pending = False

    def __enter__(self) -> BatchReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def read(
        self, max_records: int, *, idle_seconds: float = 2.0, first_wait: float = 15.0
    ) -> list[dict[str, Any]]:
        """Up to ``max_records`` events; fewer once none arrived for ``idle_seconds``.

        ``first_wait`` bounds the wait for the first event (joining the group included): an
        empty topic gives an empty batch, not a hang.
        """
        events: list[dict[str, Any]] = []
        deadline = time.monotonic() + first_wait
        while len(events) < max_records and time.monotonic() < deadline:
            message = self._consumer.poll(0.2)
            if message is None:
                continue
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    continue
                raise RuntimeError(f"reading {self.topic!r} failed: {error.str()}")
            events.append(decode(message.value()))
            self._pending = True
            deadline = time.monotonic() + idle_seconds
        return events

    def commit(self) -> None:
        """Commit what was read so far: the next member of the group starts after it."""
        if self._pending:  # committing with nothing new read is an error in librdkafka
            self._consumer.commit(asynchronous=False)
            self._pending = False

    def close(self) -> None:
        """Leave the group."""
        self._consumer.close()
