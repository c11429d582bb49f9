"""Synthetic-data benchmark: 100,000 records of a 10-column suite, per output form.

The suite mixes every kind of column the generator makes: a unique id in a range, a unique
regex, value sets, float and integer ranges, string lengths, exclusions, a nullable column.
Each figure is the median of ``ROUNDS`` calls (CPU time of the process, and wall time) after
one warm-up call (which pays the numpy
import); the generated records are checked against the suite once, with Great Expectations,
so a fast but wrong generator cannot report a figure. Run through ``python bench/run.py synth``
(writes docs/benchmarks.md) or directly (prints Markdown).
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

from pytest_pipeline.synth import synthesize

ROWS = 100_000
ROUNDS = 5
PAYMENTS = (
    Path(__file__).resolve().parents[1]
    / "examples/payments/src/payments/quality/expectations/silver_payments.json"
)


def _e(kind: str, **kwargs: Any) -> dict[str, Any]:
    return {"type": kind, "kwargs": kwargs}


SUITE: dict[str, Any] = {
    "name": "bench_ten_columns",
    "expectations": [
        _e(
            "expect_table_columns_to_match_ordered_list",
            column_list=[
                "id",
                "sku",
                "country",
                "status",
                "amount",
                "quantity",
                "note",
                "code",
                "rate",
                "merchant",
            ],
        ),
        _e("expect_column_values_to_be_unique", column="id"),
        _e("expect_column_values_to_be_between", column="id", min_value=1, max_value=10**9),
        _e("expect_column_values_to_not_be_null", column="id"),
        _e("expect_column_values_to_match_regex", column="sku", regex=r"^[A-Z]{3}-\d{6}$"),
        _e("expect_column_values_to_be_unique", column="sku"),
        _e("expect_column_values_to_be_in_set", column="country", value_set=["DE", "FR", "NL"]),
        _e("expect_column_values_to_be_in_set", column="status", value_set=["new", "paid"]),
        _e("expect_column_values_to_be_between", column="amount", min_value=0.0, max_value=1e4),
        _e("expect_column_values_to_be_between", column="quantity", min_value=1, max_value=1000),
        _e("expect_column_value_lengths_to_be_between", column="note", min_value=0, max_value=40),
        _e("expect_column_value_lengths_to_equal", column="code", value=8),
        _e("expect_column_values_to_not_be_in_set", column="code", value_set=["aaaaaaaa"]),
        _e("expect_column_values_to_be_between", column="rate", min_value=0.0, max_value=1.0),
        _e(
            "expect_column_values_to_match_regex",
            column="merchant",
            regex="^[a-z0-9][a-z0-9_-]{0,63}$",
        ),
    ],
}


def _median(call: Any) -> tuple[float, float]:
    """Median wall and CPU seconds of ``call``: CPU time is the steadier on a shared machine."""
    walls, cpus = [], []
    for _ in range(ROUNDS):
        wall, cpu = time.perf_counter(), time.process_time()
        call()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def _check(records: list[dict[str, Any]], suite: Any) -> None:
    from pytest_pipeline.quality.engine import build_suite, validate

    if isinstance(suite, dict):
        suite = build_suite(suite, "bench", default_name="bench")
    result = validate(records, suite if not isinstance(suite, Path) else str(suite))
    if not result.success:
        raise SystemExit(result.message())


def run() -> str:
    """Markdown table: milliseconds per call for each output form."""
    started = time.perf_counter()
    first = synthesize(SUITE, ROWS, seed=1)
    cold = time.perf_counter() - started
    _check(first, SUITE)
    _check(synthesize(PAYMENTS, ROWS, seed=1), PAYMENTS)
    rows = [
        ("10-column suite, records (list of dicts)", lambda: synthesize(SUITE, ROWS, seed=2)),
        (
            "10-column suite, pandas DataFrame",
            lambda: synthesize(SUITE, ROWS, seed=2, output="pandas"),
        ),
        ("10-column suite, pyarrow Table", lambda: synthesize(SUITE, ROWS, seed=2, output="arrow")),
        ("examples/payments silver suite (5 columns), records", lambda: synthesize(PAYMENTS, ROWS)),
    ]
    lines = [
        f"{ROWS:,} records per call; median of {ROUNDS} calls after a warm-up call (the first "
        f"call of a process, numpy's import included: {cold * 1000:,.0f} ms). The records of "
        "both suites were validated against them with Great Expectations: all passed.",
        "",
        "| suite, output | CPU ms per call | wall ms per call | records per CPU second |",
        "|---|---|---|---|",
    ]
    for label, call in rows:
        wall, cpu = _median(call)
        lines.append(f"| {label} | {cpu * 1000:,.0f} | {wall * 1000:,.0f} | {ROWS / cpu:,.0f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(run())
