"""Pure transforms of the payments pipeline: raw events -> silver records, and totals.

No I/O here: every function takes records and returns records, so the unit and performance
layers test them without any server.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

# Minor units per currency (ISO 4217 exponent); other currencies are rejected.
EXPONENT = {"USD": 2, "EUR": 2, "GBP": 2, "JPY": 0, "CHF": 2}
REQUIRED = ("payment_id", "merchant", "amount", "currency", "created_at")
SILVER_COLUMNS = ("payment_id", "merchant", "currency", "amount_minor", "paid_at")


@dataclass
class Split:
    """Silver records go on; rejected events carry an ``error`` and go to the DLQ."""

    valid: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    duplicates: int = 0
    """Events dropped because an earlier event of the batch had the same ``payment_id``."""

    @property
    def dlq_records(self) -> list[dict[str, Any]]:
        """What the DLQ receives (the name the ``dlq`` fixture understands)."""
        return self.rejected


def to_minor_units(amount: Any, currency: str) -> int:
    """``12.345 EUR`` -> ``1234`` (banker's rounding), ``500 JPY`` -> ``500``.

    ``ValueError`` for anything but a finite amount of at most 28 digits. Floats go through
    ``str`` so that ``2.675`` is the decimal 2.675, not its binary neighbour 2.67499999...
    """
    if isinstance(amount, bool):  # bool is an int: True must not become 1 cent
        raise ValueError("a boolean is not an amount")
    try:
        value = Decimal(str(amount))
        if not value.is_finite():
            raise ValueError(f"{amount!r} is not a finite amount")
        minor = value.scaleb(EXPONENT[currency]).quantize(Decimal(1), ROUND_HALF_EVEN)
    except ArithmeticError:  # decimal's InvalidOperation, Overflow: not a usable amount
        raise ValueError(f"{amount!r} is not an amount") from None
    return int(minor)


def parse_timestamp(text: Any) -> datetime:
    """An ISO 8601 timestamp with an offset (``Z`` or ``+02:00``) as an aware UTC datetime."""
    if not isinstance(text, str):
        raise ValueError(f"{text!r} is not a timestamp string")
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        # A local time without its zone cannot be placed on the timeline: reject, not guess.
        raise ValueError(f"{text!r} has no UTC offset")
    return moment.astimezone(UTC)


def normalise_event(event: dict[str, Any]) -> dict[str, Any]:
    """One raw event as a silver record; ``ValueError`` says why it cannot be one."""
    missing = [key for key in REQUIRED if event.get(key) in (None, "")]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    currency = str(event["currency"]).strip().upper()
    if currency not in EXPONENT:
        raise ValueError(f"unknown currency {currency}")
    try:
        minor = to_minor_units(event["amount"], currency)
    except ValueError:
        raise ValueError(f"bad amount {event['amount']!r}") from None
    try:
        paid_at = parse_timestamp(event["created_at"])
    except ValueError:
        raise ValueError(f"bad created_at {event['created_at']!r}") from None
    return {
        "payment_id": str(event["payment_id"]),
        "merchant": str(event["merchant"]).strip().lower(),
        "currency": currency,
        "amount_minor": minor,
        "paid_at": paid_at,
    }


def normalise(events: list[dict[str, Any]]) -> Split:
    """Split a batch of raw events into silver records and rejected events.

    Kafka delivers at least once: a ``payment_id`` seen earlier in the batch is a redelivery
    and is dropped (counted in ``duplicates``), not sent to the DLQ. The input is not mutated.
    """
    split = Split()
    seen: set[str] = set()
    for event in events:
        payment_id = event.get("payment_id")
        if payment_id not in (None, ""):
            if str(payment_id) in seen:
                split.duplicates += 1
                continue
            seen.add(str(payment_id))
        try:
            split.valid.append(normalise_event(event))
        except ValueError as exc:
            split.rejected.append({**event, "error": str(exc)})
    return split


def totals_by_merchant(silver: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Sum of minor units and payment count per (merchant, currency), sorted."""
    sums: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for record in silver:
        entry = sums[(record["merchant"], record["currency"])]
        entry[0] += record["amount_minor"]
        entry[1] += 1
    return [
        {"merchant": merchant, "currency": currency, "amount_minor": total, "payments": count}
        for (merchant, currency), (total, count) in sorted(sums.items())
    ]
