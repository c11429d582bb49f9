"""``--pipeline-compare``: regressions of this run's performance rows against an earlier report.

Two reports are compared only when their hardware class is the same: timings from different
machines say nothing about a code change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_pipeline.constants import DEFAULT_COMPARE_THRESHOLD
from pytest_pipeline.errors import CompareError
from pytest_pipeline.report.document import hardware_class_differences, hardware_fingerprint

_NOISE_FLOOR = {"seconds": 0.005, "records_per_second": 0.0, "peak_memory_mb": 1.0}


def check_same_hardware(path: Path, earlier: Mapping[str, Any]) -> None:
    """Refuse a comparison across hardware classes, naming what differs."""
    differences = hardware_class_differences(earlier.get("hardware", {}), hardware_fingerprint())
    if differences:
        raise CompareError(
            f"--pipeline-compare refused: {path} was made on a different hardware class "
            f"({'; '.join(differences)}). Performance figures are only comparable on the same "
            "hardware class; make the baseline report on this kind of machine."
        )


@dataclass(frozen=True)
class Change:
    """One measured figure of one test, earlier and now."""

    nodeid: str
    metric: str
    earlier: float
    now: float
    worse_by: float
    """Fraction by which it got worse (0.25 = 25 % worse); negative when it improved."""

    def line(self) -> str:
        unit = {"seconds": " s", "records_per_second": " records/s", "peak_memory_mb": " MB"}
        return (
            f"{self.nodeid}: {self.metric} {self.earlier:,.3g}{unit[self.metric]} -> "
            f"{self.now:,.3g}{unit[self.metric]} ({self.worse_by:+.0%} worse)"
        )


def compare(
    earlier_rows: Sequence[Mapping[str, Any]],
    rows: Sequence[Mapping[str, Any]],
    threshold: float = DEFAULT_COMPARE_THRESHOLD,
) -> list[Change]:
    """Regressions worse than ``threshold`` for tests present in both reports."""
    before = {row["nodeid"]: row for row in earlier_rows}
    regressions = []
    for row in rows:
        old = before.get(row["nodeid"])
        if old is None:
            continue
        for metric, higher_is_worse in (
            ("seconds", True),
            ("records_per_second", False),
            ("peak_memory_mb", True),
        ):
            a, b = old.get(metric), row.get(metric)
            if not a or b is None:
                continue
            if abs(b - a) < _NOISE_FLOOR[metric]:
                continue  # tiny absolute changes of tiny figures are noise, not regressions
            worse = (b - a) / a if higher_is_worse else (a - b) / a
            if worse > threshold:
                regressions.append(Change(row["nodeid"], metric, float(a), float(b), worse))
    return regressions
