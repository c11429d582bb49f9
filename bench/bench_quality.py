"""Quality benchmark: first and repeated suite validation on 10k and 1M rows.

``expectations.assert_valid(frame, suite)`` is ``QualityEngine.validate(frame, suite,
rows=False)`` plus the message, so the engine is timed directly. Each size runs in a fresh
Python process, so "first" includes what a test session pays once: importing Great
Expectations and creating its context. Run through ``python bench/run.py quality`` (writes
docs/benchmarks.md) or directly (prints Markdown).
"""

from __future__ import annotations

import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

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
    lines += ["", "### Quality tests under pytest-xdist", "", run_xdist()]
    return "\n".join(lines)


# --------------------------------------------------------------------------- under pytest-xdist

XDIST_ROUNDS = 5
OTHER_CPU_S = 0.25
"""CPU seconds each of the other (non-quality) tests of the mixed project spends."""

_SUITE = {
    "name": "orders",
    "expectations": [{"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "id"}}],
}
_QUALITY_TESTS = textwrap.dedent(
    """
    import pandas as pd
    import pytest

    @pytest.mark.parametrize("n", range(4))
    def test_orders(expectations, n):
        expectations.assert_valid(pd.DataFrame({"id": [1, 2, 3]}), "orders")
    """
)
_OTHER_TESTS = textwrap.dedent(
    f"""
    import time

    import pytest

    @pytest.mark.parametrize("n", range(8))
    def test_transform(n):
        until = time.process_time() + {OTHER_CPU_S}
        while time.process_time() < until:
            pass
    """
)
_LOADED = re.compile(r"^quality: Great Expectations \S+ loaded in ", re.M)


def _xdist_project(root: Path, *, others: bool) -> None:
    (root / "pyproject.toml").write_text('[tool.pytest-pipeline]\nexpectations_dir = "suites"\n')
    (root / "suites").mkdir()
    (root / "suites" / "orders.json").write_text(json.dumps(_SUITE))
    for name in ("a", "b"):  # 8 quality tests in two files
        (root / f"test_quality_{name}.py").write_text(_QUALITY_TESTS)
        if others:  # and 16 others, 4 s of CPU in all
            (root / f"test_transform_{name}.py").write_text(_OTHER_TESTS)


def _xdist_run(root: Path, grouped: bool) -> tuple[float, float, int]:
    """Wall and CPU seconds (all processes) of ``pytest -n 2`` in ``root``, and how many
    times GE was imported."""
    dist = ["--dist", "loadgroup"] if grouped else []  # else xdist's default, --dist load
    args = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-n", "2", *dist]
    cpu_before = _children_cpu()
    started = time.perf_counter()
    done = subprocess.run(args, cwd=root, capture_output=True, text=True, timeout=600)
    seconds = time.perf_counter() - started
    cpu = _children_cpu() - cpu_before
    if done.returncode != 0:
        raise RuntimeError(f"pytest -n 2 failed in {root}:\n{done.stdout}\n{done.stderr}")
    return seconds, cpu, len(_LOADED.findall(done.stdout))


def _children_cpu() -> float:
    # The workers are waited for by pytest, which is waited for here: their CPU counts too.
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_xdist() -> str:
    """Markdown table: ``-n 2`` with the quality tests on one worker vs spread, side by side."""
    lines = [
        f"`pytest -n 2`, {XDIST_ROUNDS} interleaved rounds (medians; CPU of all processes): "
        "`--dist loadgroup` keeps the quality tests on one worker (the plugin schedules them "
        "as one group); xdist's default `--dist load` spreads them.",
        "",
        "| project | `--dist load`: wall s | CPU s | GE imports "
        "| `--dist loadgroup`: wall s | CPU s | GE imports | loadgroup vs load (wall) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    projects = {
        "8 quality tests (2 files)": False,
        f"8 quality tests + 16 other tests ({OTHER_CPU_S} s CPU each)": True,
    }
    loads = [os.getloadavg()[0]]
    for label, others in projects.items():
        with tempfile.TemporaryDirectory(prefix="bench-quality-xdist-") as tmp:
            root = Path(tmp)
            _xdist_project(root, others=others)
            walls: dict[bool, list[float]] = {False: [], True: []}
            cpus: dict[bool, list[float]] = {False: [], True: []}
            imports: dict[bool, set[int]] = {False: set(), True: set()}
            for _ in range(XDIST_ROUNDS):
                for grouped in (False, True):
                    seconds, cpu, count = _xdist_run(root, grouped)
                    walls[grouped].append(seconds)
                    cpus[grouped].append(cpu)
                    imports[grouped].add(count)
        load, group = statistics.median(walls[False]), statistics.median(walls[True])
        cpu_load, cpu_group = statistics.median(cpus[False]), statistics.median(cpus[True])
        lines.append(
            f"| {label} | {load:.2f} | {cpu_load:.2f} | {_counts(imports[False])} "
            f"| {group:.2f} | {cpu_group:.2f} | {_counts(imports[True])} | {group / load:.2f}x |"
        )
        loads.append(os.getloadavg()[0])
    lines += [
        "",
        "The CPU saved is one GE import per worker that no longer imports it. Wall time also "
        "depends on what else the machine runs: with idle cores the imports overlap (load "
        f"average here {min(loads):.1f}-{max(loads):.1f} on {os.cpu_count()} cores).",
    ]
    return "\n".join(lines)


def _counts(seen: set[int]) -> str:
    # The same count in every round is one figure; else the range seen.
    return f"{min(seen)}-{max(seen)}" if len(seen) > 1 else str(min(seen))


if __name__ == "__main__":
    # ``python bench/bench_quality.py xdist``: the xdist table only.
    print(run_xdist() if sys.argv[1:] == ["xdist"] else run())
