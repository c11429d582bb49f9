"""Unit layer: how records cross the wire (Kafka values in, Parquet and DLQ messages out)."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.parquet as pq
from payments.sinks.dlq import encode as encode_dlq
from payments.sinks.s3 import SILVER_SCHEMA, encode_parquet, silver_key
from payments.sources.kafka_source import decode

SILVER = {
    "payment_id": "p-001",
    "merchant": "bakery",
    "currency": "EUR",
    "amount_minor": 1250,
    "paid_at": datetime(2024, 5, 1, 9, 15, tzinfo=UTC),
}


def test_kafka_values_that_are_not_json_objects_are_kept_raw() -> None:
    assert decode(b'{"payment_id": "p-1"}') == {"payment_id": "p-1"}
    assert decode(b"not json") == {"raw": "not json"}
    assert decode(b"[1, 2]") == {"raw": "[1, 2]"}
    assert decode(None) == {"raw": ""}


def test_parquet_keeps_the_silver_types() -> None:
    table = pq.read_table(io.BytesIO(encode_parquet([SILVER])))
    assert table.schema.equals(SILVER_SCHEMA)
    assert table.schema.field("amount_minor").type == pa.int64()
    assert table.to_pylist() == [SILVER]


def test_an_empty_batch_is_a_valid_parquet_file() -> None:
    assert pq.read_table(io.BytesIO(encode_parquet([]))).num_rows == 0


def test_dlq_messages_are_json_with_the_reason() -> None:
    message = json.loads(encode_dlq({**SILVER, "error": "quality: ..."}))
    assert message["paid_at"] == "2024-05-01T09:15:00+00:00"
    assert message["error"] == "quality: ..."


def test_one_silver_object_per_batch() -> None:
    assert silver_key("b7") == "silver/payments/batch=b7/part-0.parquet"
