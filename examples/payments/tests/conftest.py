"""Seeded payment events for the unit, quality and performance layers.

The generator takes its seed from ``pipeline_seed``: the same events on every run of a test.
``pytest --pipeline-seed N`` changes the base seed, and so every test's events; a failure
report prints the base seed that reproduces it.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

Events = list[dict[str, Any]]

KINDS = ("bakery", "books", "cafe", "garage", "pharmacy")
MERCHANTS = [f"{kind}-{n}" for kind in KINDS for n in range(40)]
CURRENCIES = ["EUR", "USD", "GBP", "JPY", "CHF"]
WEIGHTS = [45, 30, 12, 8, 5]
OFFSETS = ["Z", "+00:00", "+02:00", "-05:00", "+09:00"]
START = datetime(2024, 5, 1, tzinfo=UTC)
# One broken field per bad event, each of a kind the transform must reject.
BROKEN = [("amount", "N/A"), ("currency", "XYZ"), ("merchant", ""), ("created_at", "soon")]


def generate_events(
    rng: random.Random, n: int, *, bad_share: float, duplicate_share: float
) -> Events:
    """``n`` raw events like the topic carries: mostly valid, some broken, some redelivered."""
    currencies = rng.choices(CURRENCIES, WEIGHTS, k=n)  # one call: far faster than n calls
    events: Events = []
    for i, currency in enumerate(currencies):
        if events and rng.random() < duplicate_share:
            events.append(dict(events[rng.randrange(len(events))]))  # a redelivery
            continue
        if currency == "JPY":
            amount: Any = rng.randint(100, 200_000)
        else:
            cents = rng.randint(50, 250_000)
            amount = cents / 100 if rng.random() < 0.7 else f"{cents / 100:.2f}"
        moment = START + timedelta(seconds=rng.randrange(30 * 86_400))
        event: dict[str, Any] = {
            "payment_id": f"p-{i:07d}",
            "merchant": MERCHANTS[rng.randrange(len(MERCHANTS))],
            "amount": amount,
            "currency": currency.lower() if rng.random() < 0.1 else currency,
            "created_at": moment.isoformat()[:19] + OFFSETS[rng.randrange(len(OFFSETS))],
        }
        if rng.random() < bad_share:
            broken = BROKEN[rng.randrange(len(BROKEN))]
            event[broken[0]] = broken[1]
        events.append(event)
    return events


@pytest.fixture
def make_events(pipeline_seed: int) -> Callable[..., Events]:
    """``make_events(n, bad_share=0.02, duplicate_share=0.01)``: seeded raw events."""

    def make(n: int, *, bad_share: float = 0.02, duplicate_share: float = 0.01) -> Events:
        rng = random.Random(pipeline_seed)
        return generate_events(rng, n, bad_share=bad_share, duplicate_share=duplicate_share)

    return make
