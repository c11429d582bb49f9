"""Read one micro-batch of payment events from Kafka."""

from __future__ import annotations

import json
import time
from typing import Any

from confluent_kafka import Consumer


def read_batch(
    consumer_conf: dict[str, Any], topic: str, max_records: int, idle_seconds: float = 2.0
) -> list[dict[str, Any]]:
    """Up to ``max_records`` events, or fewer once the topic stays idle for ``idle_seconds``."""
    consumer = Consumer({**consumer_conf, "enable.auto.commit": False})
    consumer.subscribe([topic])
    events: list[dict[str, Any]] = []
    last_seen = time.monotonic()
    try:
        while len(events) < max_records:
            message = consumer.poll(0.2)
            if message is None or message.error():
                if events and time.monotonic() - last_seen > idle_seconds:
                    break
                continue
            last_seen = time.monotonic()
            try:
                events.append(json.loads(message.value()))
            except ValueError:
                events.append({"raw": message.value().decode("utf-8", "replace")})
        if events:
            consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    return events
