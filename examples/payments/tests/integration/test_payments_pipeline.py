from __future__ import annotations

from src.pipeline import run_batch


def _run(kafka, postgres, s3, events, batch_id="b1"):
    source, dead = kafka.topic("payments"), kafka.topic("payments-dlq")
    bucket = s3.bucket("silver")
    kafka.produce(source, events, key=lambda event: str(event.get("payment_id", "")))
    result = run_batch(
        consumer_conf=kafka.consumer_config(),
        producer_conf=kafka.producer_config(),
        source_topic=source,
        dlq_topic=dead,
        dsn=postgres.dsn,
        s3_client=s3.client,
        bucket=bucket,
        batch_id=batch_id,
        max_records=len(events),
    )
    return result, dead, bucket


def test_valid_and_invalid_events_land_where_they_belong(
    kafka, postgres, s3, dlq, load_fixture
) -> None:
    events = load_fixture("payments/raw/events.jsonl")
    result, dead, bucket = _run(kafka, postgres, s3, events)

    assert result.read == len(events)
    rows = postgres.fetch("select payment_id, amount_minor from payments order by payment_id")
    assert rows == [
        {"payment_id": "p-001", "amount_minor": 1250},
        {"payment_id": "p-002", "amount_minor": 310},
        {"payment_id": "p-003", "amount_minor": 1999},
        {"payment_id": "p-007", "amount_minor": 268},
    ]
    silver = s3.read_records(bucket, "silver/payments/batch=b1/")
    assert sorted(r["payment_id"] for r in silver) == ["p-001", "p-002", "p-003", "p-007"]
    rejected = kafka.consume(dead)
    assert {r["payment_id"] for r in rejected} == {"p-004", "p-005", "p-006"}
    dlq.assert_count(dead, 3)


def test_clean_batch_sends_nothing_to_the_dlq(kafka, postgres, s3, load_fixture) -> None:
    events = [e for e in load_fixture("payments/raw/events.jsonl") if e["payment_id"] == "p-001"]
    result, dead, _ = _run(kafka, postgres, s3, events)
    assert result.records_written == 1
    assert result.dlq_records == 0  # a plain assert on the DLQ count satisfies the rule
    assert kafka.count(dead) == 0
