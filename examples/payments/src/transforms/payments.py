"""Pure transforms of the payments pipeline: validate, normalise to minor units, aggregate."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

# Minor units per currency (ISO 4217 exponent); unknown currencies are rejected.
EXPONENT = {"USD": 2, "EUR": 2, "GBP": 2, "JPY": 0, "CHF": 2}
REQUIRED = ("payment_id", "merchant", "amount", "currency")


@dataclass
class Split:
    """Valid records go on; rejected ones carry the reason and go to the DLQ."""

    valid: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)

    @property
    def dlq_records(self) -> list[dict[str, Any]]:
        return self.rejected


def to_minor_units(amount: Any, currency: str) -> int:
    """``12.345 EUR`` -> ``1234`` (banker's rounding), ``500 JPY`` -> ``500``."""
    exponent = EXPONENT[currency]
    value = Decimal(str(amount)).scaleb(exponent).quantize(Decimal(1), ROUND_HALF_EVEN)
    return int(value)


def validate(records: list[dict[str, Any]]) -> Split:
    """Split raw payment events into normalised valid records and rejected ones."""
    split = Split()
    for record in records:
        missing = [key for key in REQUIRED if record.get(key) in (None, "")]
        if missing:
            split.rejected.append({**record, "error": f"missing {', '.join(missing)}"})
            continue
        currency = str(record["currency"]).upper()
        if currency not in EXPONENT:
            split.rejected.append({**record, "error": f"unknown currency {currency}"})
            continue
        try:
            minor = to_minor_units(record["amount"], currency)
        except (InvalidOperation, ValueError):
            split.rejected.append({**record, "error": f"bad amount {record['amount']!r}"})
            continue
        split.valid.append(
            {
                "payment_id": str(record["payment_id"]),
                "merchant": str(record["merchant"]),
                "currency": currency,
                "amount_minor": minor,
            }
        )
    return split


def totals_by_merchant(valid: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Sum of minor units and payment count per (merchant, currency), sorted."""
    sums: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for record in valid:
        entry = sums[(record["merchant"], record["currency"])]
        entry[0] += record["amount_minor"]
        entry[1] += 1
    return [
        {"merchant": m, "currency": c, "amount_minor": total, "payments": count}
        for (m, c), (total, count) in sorted(sums.items())
    ]
