"""The payments pipeline: Kafka -> validate/normalise -> Postgres + S3, rejects -> DLQ."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from src.sinks.sinks import write_dlq, write_postgres, write_s3
from src.sources.kafka_source import read_batch
from src.transforms.payments import validate


@dataclass(frozen=True)
class RunResult:
    read: int
    records_written: int
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
) -> RunResult:
    events = read_batch(consumer_conf, source_topic, max_records)
    split = validate(events)
    written = write_postgres(dsn, split.valid)
    write_s3(s3_client, bucket, f"silver/payments/batch={batch_id}/part-0.jsonl", split.valid)
    rejected = write_dlq(producer_conf, dlq_topic, split.rejected)
    return RunResult(read=len(events), records_written=written, dlq_records=rejected)
