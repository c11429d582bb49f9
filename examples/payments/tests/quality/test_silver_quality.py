"""Quality layer: the silver data against its Great Expectations suite, and the production gate.

The suite is ``src/payments/quality/expectations/silver_payments.json`` (``expectations_dir``):
the same file the pipeline's gate reads at run time.
"""

from __future__ import annotations

import io

import pandas as pd
import pyarrow.parquet as pq
import pytest
from payments.quality.gate import QualityGateError, gate
from payments.sinks.s3 import SILVER_SCHEMA, encode_parquet
from payments.transforms.payments import normalise

SUITE = "silver_payments"
RAW = "payments/raw/events.jsonl"


def as_written(silver: list[dict]) -> pd.DataFrame:
    """The frame a reader of the S3 silver file gets: Parquet types, not Python ones."""
    return pq.read_table(io.BytesIO(encode_parquet(silver))).to_pandas()


def fixture_silver(load_fixture) -> pd.DataFrame:
    """The silver file the pipeline writes for the fixture batch, as read back."""
    return as_written(gate(normalise(load_fixture(RAW)).valid).passed)


def test_silver_of_the_fixture_batch_meets_the_suite(load_fixture, expectations) -> None:
    result = expectations.assert_valid(fixture_silver(load_fixture), SUITE)
    assert result.row_count == 4


def test_silver_of_a_seeded_day_of_traffic_meets_the_suite(make_events, expectations) -> None:
    silver = normalise(make_events(20_000)).valid
    result = expectations.assert_valid(as_written(silver), SUITE)
    assert result.row_count == len(silver) > 19_000


def test_gate_passes_every_synthetic_record_of_the_suite(synthetic) -> None:
    # Records made from the suite itself, boundary values first (amount_minor 1 and 5,000,000,
    # a 64-character merchant): the gate must let each one through.
    silver = synthetic.records("silver_payments", 5_000, schema=SILVER_SCHEMA)
    assert {1, 5_000_000} <= {record["amount_minor"] for record in silver[:3]}
    gated = gate(silver)
    assert gated.rejected == []
    assert len(gated.passed) == len(silver)


def test_the_suite_catches_each_broken_rule(load_fixture, expectations) -> None:
    frame = fixture_silver(load_fixture)
    frame.loc[0, "amount_minor"] = 0  # not a payment
    frame.loc[1, "merchant"] = "Bakery & Co"  # not a slug
    frame.loc[2, "payment_id"] = frame.loc[3, "payment_id"]  # not unique
    result = expectations.validate(frame, SUITE, rows=True)
    assert not result.success
    failed = {(f.expectation, f.columns) for f in result.failures}
    assert failed == {
        ("expect_column_values_to_be_between", ("amount_minor",)),
        ("expect_column_values_to_match_regex", ("merchant",)),
        ("expect_column_values_to_be_unique", ("payment_id",)),
    }
    assert result.failed_rows == [0, 1, 2, 3]


def test_gate_routes_failing_rows_to_the_dlq(load_fixture, dlq) -> None:
    # The production gate: gate() runs pytest_pipeline.quality.validate(rows=True) on the
    # normalised batch and turns the failed row positions into DLQ records with reasons.
    normalised = normalise(load_fixture(RAW)).valid
    gated = gate(normalised)

    assert [r["payment_id"] for r in gated.passed] == ["p-001", "p-002", "p-003", "p-007"]
    dlq.assert_count(gated.rejected, 2)
    reasons = {r["payment_id"]: r["error"] for r in gated.rejected}
    assert "expect_column_values_to_be_between" in reasons["p-009"]  # -15.00 EUR
    assert "amount_minor" in reasons["p-009"]
    assert "merchant" in reasons["p-010"]  # 'tea house' is not a slug...
    assert "amount_minor" in reasons["p-010"]  # ...and 80,000 GBP needs a review
    assert reasons["p-010"].startswith("quality: ")


def test_gate_stops_a_batch_whose_schema_drifted(load_fixture) -> None:
    silver = normalise(load_fixture(RAW)).valid[:2]
    drifted = [{**record, "fee_minor": 10} for record in silver]
    with pytest.raises(QualityGateError, match="expect_table_columns_to_match_set"):
        gate(drifted)


def test_gate_passes_an_empty_batch() -> None:
    gated = gate([])
    assert gated.passed == gated.rejected == []
