"""Where the pipeline writes: Postgres (silver table), S3 (silver files), Kafka (DLQ)."""

from __future__ import annotations

import json
from typing import Any

import psycopg
from confluent_kafka import Producer

SCHEMA = """
create table if not exists payments (
    payment_id text primary key,
    merchant text not null,
    currency char(3) not null,
    amount_minor bigint not null
)
"""


def write_postgres(dsn: str, records: list[dict[str, Any]]) -> int:
    with psycopg.connect(dsn) as conn:
        conn.execute(SCHEMA)
        with conn.cursor() as cur:
            cur.executemany(
                "insert into payments values (%(payment_id)s, %(merchant)s, %(currency)s,"
                " %(amount_minor)s) on conflict (payment_id) do nothing",
                records,
            )
    return len(records)


def write_s3(client: Any, bucket: str, key: str, records: list[dict[str, Any]]) -> None:
    body = "".join(json.dumps(record, sort_keys=True) + "\n" for record in records)
    client.put_object(Bucket=bucket, Key=key, Body=body.encode())


def write_dlq(producer_conf: dict[str, Any], topic: str, records: list[dict[str, Any]]) -> int:
    producer = Producer(producer_conf)
    for record in records:
        producer.produce(topic, json.dumps(record).encode())
    producer.flush(10)
    return len(records)
