"""DLQ sink: rejected events to a Kafka topic, each with the reason in ``error``."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from confluent_kafka import Producer


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def encode(record: dict[str, Any]) -> bytes:
    """One DLQ message value: the rejected record as JSON."""
    return json.dumps(record, default=_default, sort_keys=True).encode()


def write_rejected(
    producer_conf: dict[str, Any], topic: str, rejected: list[dict[str, Any]]
) -> int:
    """Produce every rejected record and wait for delivery; a lost one raises.

    A DLQ that drops records silently is worse than none, so delivery is confirmed.
    """
    if not rejected:
        return 0
    failures: list[str] = []

    def on_delivery(error: Any, _message: Any) -> None:
        if error is not None:
            failures.append(str(error))

    producer = Producer({**producer_conf, "acks": "all"})
    for record in rejected:
        key = record.get("payment_id")
        producer.produce(
            topic,
            encode(record),
            key=str(key).encode() if key not in (None, "") else None,
            on_delivery=on_delivery,
        )
    left = producer.flush(30)
    if left or failures:
        raise RuntimeError(
            f"DLQ {topic!r}: {left} undelivered, {len(failures)} failed of {len(rejected)}"
            + (f": {failures[0]}" if failures else "")
        )
    return len(rejected)
