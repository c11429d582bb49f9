"""The production quality gate: silver records that break the suite go to the DLQ, not the sinks.

The suite is ``src/payments/quality/expectations/silver_payments.json``, the same file the quality
tests load through ``expectations_dir``. Great Expectations is imported on the first call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from payments.transforms.payments import SILVER_COLUMNS
from pytest_pipeline.quality import validate

EXPECTATIONS_DIR = Path(__file__).parent / "expectations"
SILVER_SUITE = "silver_payments"


class QualityGateError(RuntimeError):
    """The batch as a whole broke the suite (e.g. its schema): no row can be blamed."""


@dataclass
class Gated:
    """Records that passed the suite, and the ones routed to the DLQ with the reason."""

    passed: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)


def warm_up(suite: str = SILVER_SUITE, *, expectations_dir: str | Path = EXPECTATIONS_DIR) -> None:
    """Import Great Expectations and load ``suite`` now, so the first batch does not wait.

    Both take seconds, once per process: a long-running consumer calls this at start-up.
    """
    import pandas as pd

    validate(pd.DataFrame(columns=list(SILVER_COLUMNS)), suite, expectations_dir=expectations_dir)


def gate(
    silver: list[dict[str, Any]],
    suite: str = SILVER_SUITE,
    *,
    expectations_dir: str | Path = EXPECTATIONS_DIR,
) -> Gated:
    """Validate ``silver`` against ``suite``; split it into passing and rejected records.

    A rejected record keeps its fields and gains ``error``: ``quality: <expectation>, ...``.
    Raises :class:`QualityGateError` when an expectation fails without naming rows (a table-
    level one such as the column set): writing such a batch anywhere would be wrong.
    """
    if not silver:
        return Gated()
    import pandas as pd

    # Fixed columns: a missing key becomes a null the suite reports, not a shifted frame.
    frame = pd.DataFrame(silver, columns=list(SILVER_COLUMNS))
    extra = sorted({key for record in silver for key in record} - set(SILVER_COLUMNS))
    for column in extra:
        frame[column] = [record.get(column) for record in silver]
    result = validate(frame, suite, expectations_dir=expectations_dir, rows=True)
    if result.success:
        return Gated(passed=list(silver))
    reasons: dict[int, list[str]] = {}
    for failure in result.failures:
        if not failure.rows:
            raise QualityGateError(result.message())
        for position in failure.rows:
            reasons.setdefault(position, []).append(
                f"{failure.describe()} on {', '.join(failure.columns)}"
            )
    gated = Gated()
    for position, record in enumerate(silver):
        if position in reasons:
            gated.rejected.append({**record, "error": "quality: " + "; ".join(reasons[position])})
        else:
            gated.passed.append(record)
    return gated
