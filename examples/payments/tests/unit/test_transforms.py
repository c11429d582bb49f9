"""Unit layer: the pure transforms, against fixture files and seeded data. No servers."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest
from payments.transforms.payments import (
    normalise,
    parse_timestamp,
    to_minor_units,
    totals_by_merchant,
)

RAW = "payments/raw/events.jsonl"


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [
        (12.5, "EUR", 1250),
        ("3.10", "EUR", 310),
        (1999, "JPY", 1999),
        (2.675, "USD", 268),  # half to even, from the decimal 2.675 (not the float's 2.67499..)
        (2.665, "USD", 266),
        ("0.005", "CHF", 0),
    ],
)
def test_minor_units(amount: object, currency: str, minor: int) -> None:
    assert to_minor_units(amount, currency) == minor


@pytest.mark.parametrize(
    "amount", [True, "N/A", float("nan"), float("inf"), "1e999999999999", 10**40]
)
def test_minor_units_refuse_non_amounts(amount: object) -> None:
    with pytest.raises(ValueError):
        to_minor_units(amount, "EUR")


def test_timestamps_become_utc() -> None:
    assert parse_timestamp("2024-05-01T11:02:00+02:00") == datetime(2024, 5, 1, 9, 2, tzinfo=UTC)
    assert parse_timestamp("2024-05-01T09:15:00Z").tzinfo is UTC


@pytest.mark.parametrize("text", ["2024-05-01 12:31", "yesterday", 1714554000])
def test_timestamps_without_a_zone_are_refused(text: object) -> None:
    with pytest.raises(ValueError):
        parse_timestamp(text)


def test_normalise_matches_expected_file(load_fixture, assert_matches_fixture) -> None:
    split = normalise(load_fixture(RAW))
    assert_matches_fixture(split.valid, "payments/expected/normalised.jsonl")


def test_normalise_rejects_with_reasons_and_drops_redeliveries(load_fixture) -> None:
    split = normalise(load_fixture(RAW))
    assert {r["payment_id"]: r["error"] for r in split.rejected} == {
        "p-004": "bad amount 'N/A'",
        "p-005": "unknown currency XXX",
        "p-006": "missing merchant",
        "p-008": "bad created_at '2024-05-01 12:31'",
    }
    assert split.duplicates == 1  # the second p-001
    assert len(split.dlq_records) == 4


def test_normalise_does_not_mutate_its_input(load_fixture) -> None:
    events = load_fixture(RAW)
    before = [dict(event) for event in events]
    normalise(events)
    assert events == before


def test_every_generated_event_is_accounted_for(make_events) -> None:
    # Seeded: the same 5,000 events on every run; --pipeline-seed replays another set.
    events = make_events(5_000, bad_share=0.05, duplicate_share=0.02)
    split = normalise(events)
    assert len(split.valid) + len(split.rejected) + split.duplicates == len(events)
    assert split.rejected  # the generator really made both kinds
    assert split.duplicates
    assert len({r["payment_id"] for r in split.valid}) == len(split.valid)


def test_totals_match_expected_file(load_fixture, assert_matches_fixture) -> None:
    silver = load_fixture("payments/expected/silver.jsonl")
    assert_matches_fixture(totals_by_merchant(silver), "payments/expected/totals.csv")


def test_totals_do_not_depend_on_order(make_events) -> None:
    silver = normalise(make_events(2_000)).valid
    shuffled = silver[:]
    random.shuffle(shuffled)  # `random` is seeded with this test's seed by the plugin
    assert shuffled != silver
    assert totals_by_merchant(shuffled) == totals_by_merchant(silver)
