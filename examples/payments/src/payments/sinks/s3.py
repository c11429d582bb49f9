"""S3 sink: silver payments as one Parquet object per batch."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

SILVER_SCHEMA = pa.schema(
    [
        pa.field("payment_id", pa.string(), nullable=False),
        pa.field("merchant", pa.string(), nullable=False),
        pa.field("currency", pa.string(), nullable=False),
        pa.field("amount_minor", pa.int64(), nullable=False),
        pa.field("paid_at", pa.timestamp("us", tz="UTC"), nullable=False),
    ]
)


def silver_key(batch_id: str) -> str:
    """Where a batch's silver file lives: one prefix per batch, so a replay overwrites it."""
    return f"silver/payments/batch={batch_id}/part-0.parquet"


def encode_parquet(silver: list[dict[str, Any]]) -> bytes:
    """Silver records as Parquet bytes with the fixed silver schema (types do not drift)."""
    table = pa.Table.from_pylist(silver, schema=SILVER_SCHEMA)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    return bytes(sink.getvalue().to_pybytes())


def write_silver(client: Any, bucket: str, batch_id: str, silver: list[dict[str, Any]]) -> str:
    """Upload the batch's silver file (also when empty: readers see the batch happened)."""
    key = silver_key(batch_id)
    client.put_object(Bucket=bucket, Key=key, Body=encode_parquet(silver))
    return key
