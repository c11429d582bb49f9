"""Integration layer: the pipeline end to end on real Kafka, Postgres and S3 servers.

Every test gets its own topics, database and bucket (the ``kafka``, ``postgres`` and ``s3``
fixtures), so tests do not see each other's data and may run in any order or in parallel.
Every test asserts its DLQ count: the plugin fails an integration test that does not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from payments.pipeline import BatchResult, run_batch
from payments.sinks.s3 import silver_key

RAW = "payments/raw/events.jsonl"


@dataclass
class Wiring:
    """One test's topics and bucket, and the pipeline's settings pointing at them."""

    kafka: Any
    postgres: Any
    s3: Any
    source: str
    dead: str
    bucket: str
    consumer_conf: dict[str, Any]

    def run(self, batch_id: str, max_records: int) -> BatchResult:
        return run_batch(
            consumer_conf=self.consumer_conf,
            producer_conf=self.kafka.producer_config(),
            source_topic=self.source,
            dlq_topic=self.dead,
            dsn=self.postgres.dsn,
            s3_client=self.s3.client,
            bucket=self.bucket,
            batch_id=batch_id,
            # Stop at the count the test produced: no idle wait for "more".
            max_records=max_records,
        )


@pytest.fixture
def wiring(kafka, postgres, s3) -> Wiring:
    return Wiring(
        kafka=kafka,
        postgres=postgres,
        s3=s3,
        source=kafka.topic("payments"),
        dead=kafka.topic("payments-dlq"),
        bucket=s3.bucket("lake"),
        # One named group: every run of this test's pipeline resumes where the last committed.
        consumer_conf=kafka.consumer_config(group="payments-pipeline"),
    )


def keys(wiring: Wiring) -> list[str]:
    """The objects in this test's bucket."""
    listing = wiring.s3.client.list_objects_v2(Bucket=wiring.bucket)
    return sorted(item["Key"] for item in listing.get("Contents", []))


def produce(wiring: Wiring, events: list[Any]) -> None:
    wiring.kafka.produce(
        wiring.source,
        events,
        key=lambda event: event.get("payment_id") if isinstance(event, dict) else None,
    )


def test_a_mixed_batch_lands_where_it_belongs(
    wiring, kafka, postgres, s3, dlq, load_fixture, assert_matches_fixture
) -> None:
    events = [*load_fixture(RAW), b"\x00 not json"]
    produce(wiring, events)

    result = wiring.run("b1", max_records=len(events))

    assert (result.read, result.duplicates, result.inserted) == (12, 1, 4)
    # No ORDER BY: rows come back in whatever order Postgres likes, matched by their key.
    rows = postgres.fetch(
        "select payment_id, merchant, currency, amount_minor, paid_at from payments"
    )
    assert_matches_fixture(rows, "payments/expected/silver.jsonl", key="payment_id")
    # The Parquet lands under batch=b1/: read_records gives that partition column too.
    silver = s3.read_records(wiring.bucket, "silver/payments/")
    assert {record["batch"] for record in silver} == {"b1"}
    assert_matches_fixture(silver, "payments/expected/silver.jsonl", ignore_columns=["batch"])
    assert keys(wiring) == [silver_key("b1")]
    reasons = {r.get("payment_id", "<raw>"): r["error"] for r in kafka.consume(wiring.dead)}
    assert sorted(reasons) == ["<raw>", "p-004", "p-005", "p-006", "p-008", "p-009", "p-010"]
    assert reasons["p-009"].startswith("quality: ")  # the gate's rejects share the DLQ
    dlq.assert_count(wiring.dead, 7)  # 4 from the transform, 2 from the gate, 1 not JSON
    assert result.dlq_records == 7


def test_a_clean_batch_sends_nothing_to_the_dlq(wiring, postgres, dlq, load_fixture) -> None:
    good = [e for e in load_fixture(RAW) if e["payment_id"] in ("p-001", "p-007")]
    produce(wiring, good)

    result = wiring.run("b1", max_records=len(good))

    assert result.inserted == 2
    assert postgres.fetch("select count(*) as n from payments") == [{"n": 2}]
    dlq.assert_count(wiring.dead, 0)


def test_the_next_batch_starts_after_the_committed_offsets(
    wiring, postgres, dlq, load_fixture
) -> None:
    events = {e["payment_id"]: e for e in load_fixture(RAW)}
    produce(wiring, [events["p-001"], events["p-002"]])
    first = wiring.run("b1", max_records=2)
    produce(wiring, [events["p-003"], events["p-004"], events["p-007"]])

    second = wiring.run("b2", max_records=3)

    assert (first.read, second.read) == (2, 3)  # nothing of batch 1 is read again
    assert postgres.fetch("select batch_id, count(*) as n from payments group by 1 order by 1") == [
        {"batch_id": "b1", "n": 2},
        {"batch_id": "b2", "n": 2},
    ]
    assert keys(wiring) == [silver_key("b1"), silver_key("b2")]
    dlq.assert_count(wiring.dead, 1)  # p-004, from batch 2


def test_a_failed_write_loses_nothing(wiring, postgres, dlq, load_fixture) -> None:
    events = load_fixture(RAW)[:5]  # p-001..p-005: 3 good, 2 rejected by the transform
    produce(wiring, events)
    # A table of the wrong shape (from an old release, say) makes the Postgres write fail.
    postgres.execute("create table payments (payment_id text primary key)")

    with pytest.raises(psycopg.errors.UndefinedColumn):
        wiring.run("b1", max_records=len(events))
    # Failed before any other sink and before the commit: nothing half-written.
    assert keys(wiring) == []
    dlq.assert_count(wiring.dead, 0)

    postgres.execute("drop table payments")
    retry = wiring.run("b1", max_records=len(events))

    assert retry.read == 5  # the same events, read again by the same consumer group
    assert retry.inserted == 3
    assert keys(wiring) == [silver_key("b1")]
    dlq.assert_count(wiring.dead, 2)
