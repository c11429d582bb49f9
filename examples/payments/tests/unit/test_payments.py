from __future__ import annotations

import random

import pytest

from src.transforms.payments import to_minor_units, totals_by_merchant, validate


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [(12.5, "EUR", 1250), ("3.10", "EUR", 310), (1999, "JPY", 1999), (2.675, "USD", 268)],
)
def test_minor_units(amount: object, currency: str, minor: int) -> None:
    assert to_minor_units(amount, currency) == minor


def test_validate_splits_bad_records(load_fixture) -> None:
    events = load_fixture("payments/raw/events.jsonl")
    split = validate(events)
    assert [r["payment_id"] for r in split.valid] == ["p-001", "p-002", "p-003", "p-007"]
    assert {r["payment_id"]: r["error"] for r in split.rejected} == {
        "p-004": "bad amount 'N/A'",
        "p-005": "unknown currency XXX",
        "p-006": "missing merchant",
    }


def test_validate_does_not_mutate_input(load_fixture) -> None:
    events = load_fixture("payments/raw/events.jsonl")
    before = [dict(event) for event in events]
    validate(events)
    assert events == before


def test_totals_match_expected_file(load_fixture, assert_matches_fixture) -> None:
    split = validate(load_fixture("payments/raw/events.jsonl"))
    assert_matches_fixture(totals_by_merchant(split.valid), "payments/expected/totals.csv")


def test_totals_ignore_order(pipeline_seed: int) -> None:
    # Shuffled with this test's seed: the same order on every run, reproducible on failure.
    records = [
        {"merchant": f"m{i % 3}", "currency": "USD", "amount_minor": i} for i in range(30)
    ]
    shuffled = records[:]
    random.shuffle(shuffled)
    assert totals_by_merchant(shuffled) == totals_by_merchant(records)
