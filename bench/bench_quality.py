"""Quality benchmark: first and repeated suite validation on 10k and 1M rows.

``expectations.assert_valid(frame, suite)`` is ``QualityEngine.validate(frame, suite,
rows=False)`` plus the message, so the engine is timed directly. Each size runs in a fresh
Python process, so "first" includes what a test session pays once: importing Great
Expectations and creating its context. Run through ``python bench/run.py quality`` (writes
docs/benchmarks.md) or directly (prints Markdown).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

SIZES = (10_000, 1_000_000)
ROUNDS = 5

# Runs in a child process; prints one JSON object of timings in seconds.
_CHILD = textwrap.dedent(
    """
    import json, statistics, sys, time

    import numpy as np
    import pandas as pd

    from pytest_pipeline.quality import engine as quality

    rows, rounds = int(sys.argv[1]), int(sys.argv[2])
    rng = np.random.default_rng(1234)
    frame = pd.DataFrame({
        "order_id": np.arange(rows),
        "email": [f"user{i}@example.com" for i in range(rows)],
        "amount": rng.uniform(0, 100, rows).round(2),
        "country": rng.choice(["DE", "FR", "NL"], rows),
    })
    bad = frame.copy()
    every = 100  # 1% of the rows break one expectation each
    bad.loc[::every, "country"] = "XX"
    bad.loc[1::every, "amount"] = -1.0

    def timed(fn):
        started = time.perf_counter()
        result = fn()
        return time.perf_counter() - started, result

    started = time.perf_counter()
    gx = quality.great_expectations()
    import great_expectations.expectations as gxe
    import_s = time.perf_counter() - started
    suite = gx.ExpectationSuite(name="silver_orders", expectations=[
        gxe.ExpectColumnValuesToNotBeNull(column="order_id"),
        gxe.ExpectColumnValuesToBeUnique(column="order_id"),
        gxe.ExpectColumnValuesToBeBetween(column="amount", min_value=0, max_value=100),
        gxe.ExpectColumnValuesToBeInSet(column="country", value_set=["DE", "FR", "NL"]),
        gxe.ExpectColumnValuesToMatchRegex(column="email", regex=r"^[^@]+@[^@]+$"),
    ])
    engine = quality.QualityEngine()
    first_s, result = timed(lambda: engine.validate(frame, suite, rows=False))
    assert result.success, result.message()
    repeated = [timed(lambda: engine.validate(frame, suite, rows=False))[0]
                for _ in range(rounds)]
    failing = []
    for _ in range(rounds):
        seconds, result = timed(lambda: engine.validate(bad, suite, rows=False))
        result.message()
        failing.append(seconds)
    gate = []
    for _ in range(rounds):
        seconds, result = timed(lambda: quality.validate(bad, suite, rows=True))
        assert len(result.failed_rows) == 2 * len(range(0, rows, every)), result.failed_rows[:5]
        result.good_rows(bad)
        gate.append(seconds)
    print(json.dumps({
        "import": import_s,
        "first": first_s,
        "repeated": statistics.median(repeated),
        "failing": statistics.median(failing),
        "gate": statistics.median(gate),
    }))
    """
)


def _measure(rows: int) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(rows), str(ROUNDS)],
        capture_output=True,
        text=True,
        check=True,
        timeout=1800,
    )
    timings: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return timings


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f}"


def run() -> str:
    """Markdown table of validation costs (milliseconds) for each frame size."""
    lines = [
        "Suite: 5 expectations (not null, unique, between, in set, regex) on 4 columns. "
        f"First call in a fresh process; the others are medians of {ROUNDS} runs.",
        "",
        "| rows | import GE (once) | first `assert_valid` (context + validate) "
        "| repeated `assert_valid`, passing | repeated, 1% rows failing (with message) "
        "| production gate `validate(rows=True)`, 1% failing |",
        "|---|---|---|---|---|---|",
    ]
    for rows in SIZES:
        t = _measure(rows)
        lines.append(
            f"| {rows:,} | {_ms(t['import'])} ms | {_ms(t['first'])} ms "
            f"| {_ms(t['repeated'])} ms | {_ms(t['failing'])} ms | {_ms(t['gate'])} ms |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(run())
