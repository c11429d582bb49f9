"""The payments pipeline, one micro-batch at a time.

Kafka topic -> ``normalise`` (transforms/) -> quality gate (quality/) -> Postgres and S3
(silver); events the transform rejects and records the gate rejects -> the DLQ topic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from payments.quality.gate import SILVER_SUITE, gate
from payments.sinks.dlq import write_rejected
from payments.sinks.postgres import write_payments
from payments.sinks.s3 import write_silver
from payments.sources.kafka_source import BatchReader
from payments.transforms.payments import normalise


@dataclass(frozen=True)
class BatchResult:
    """What one batch did; ``dlq_records`` is the number sent to the DLQ topic."""

    read: int
    duplicates: int
    inserted: int
    silver_key: str | None
    dlq_records: int


def run_batch(
    *,
    consumer_conf: dict[str, Any],
    producer_conf: dict[str, Any],
    source_topic: str,
    dlq_topic: str,
    dsn: str,
    s3_client: Any,
    bucket: str,
    batch_id: str,
    max_records: int = 10_000,
    idle_seconds: float = 2.0,
    suite: str | None = SILVER_SUITE,
) -> BatchResult:
    """Read one batch, write it to every sink, then commit the source offsets.

    ``suite=None`` turns the quality gate off. Nothing is committed when a sink fails, so
    the next run replays the batch; the sinks are idempotent per ``payment_id`` / batch.
    """
    with BatchReader(consumer_conf, source_topic) as reader:
        events = reader.read(max_records, idle_seconds=idle_seconds)
        if not events:
            return BatchResult(0, 0, 0, None, 0)
        split = normalise(events)
        silver, rejected = split.valid, list(split.rejected)
        if suite is not None:
            gated = gate(silver, suite)
            silver = gated.passed
            rejected += gated.rejected
        inserted = write_payments(dsn, silver, batch_id)
        key = write_silver(s3_client, bucket, batch_id, silver)
        sent = write_rejected(producer_conf, dlq_topic, rejected)
        reader.commit()
    return BatchResult(
        read=len(events),
        duplicates=split.duplicates,
        inserted=inserted,
        silver_key=key,
        dlq_records=sent,
    )
