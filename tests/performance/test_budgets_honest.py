"""The reported seconds are the workload's, in every way a performance test can be measured.

No timing asserts: the example project runs on a fake clock. ``time.perf_counter`` (what the
plugin reads) and pytest-benchmark's timer (``--benchmark-timer fakeclock.now``) only move when
the workload "runs" (exactly 0.125 s) or when bookkeeping happens that must stay outside every
timed section: each garbage collection and each file opened (``/proc`` reads, lock files, source
files) adds 1024 s. Both are powers of two, so the sums are exact and a reported figure is
either exactly the workload's 0.125 s or visibly includes bookkeeping.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

WORK = 0.125

_FAKECLOCK = """
import gc

WORK = 0.125
BOOKKEEPING = 1024.0
NOW = [0.0]
ARMED = [False]
COLLECTIONS = [0]


def now():
    return NOW[0]


def work(data):
    NOW[0] += WORK
    return sorted(data)


def on_gc(phase, info):
    if ARMED[0] and phase == "start":
        NOW[0] += BOOKKEEPING
        COLLECTIONS[0] += 1


def on_audit(event, args):
    if ARMED[0] and event == "open":
        NOW[0] += BOOKKEEPING
"""

_CONFTEST = """
import gc
import sys
import time

import pytest

import fakeclock

sys.addaudithook(fakeclock.on_audit)  # this run is a subprocess: the hook goes with it


@pytest.fixture(autouse=True)
def fake_time(monkeypatch):
    monkeypatch.setattr(time, "perf_counter", fakeclock.now)
    # Only explicit collections (the plugin's) may run: automatic ones would move the clock at
    # random inside the workload.
    enabled = gc.isenabled()
    gc.disable()
    gc.callbacks.append(fakeclock.on_gc)
    fakeclock.ARMED[0] = True
    yield
    fakeclock.ARMED[0] = False
    gc.callbacks.remove(fakeclock.on_gc)
    if enabled:
        gc.enable()
    # The plugin never collects garbage in a test: that would move the workload's collections.
    assert fakeclock.COLLECTIONS[0] == 0, "the plugin collected garbage during the test"
"""

_TESTS = """
import pytest

import fakeclock

DATA = list(range(5000, 0, -1))


@pytest.mark.performance(records=5000)
def test_measure(budget):
    with budget.measure() as result:
        fakeclock.work(DATA)
    assert result.seconds == fakeclock.WORK


@pytest.mark.performance(records=5000)
def test_run(budget):
    assert budget.run(fakeclock.work, DATA)[0] == 1
    assert budget.result.seconds == fakeclock.WORK


@pytest.mark.performance(records=5000)
def test_whole_call():
    fakeclock.work(DATA)


@pytest.mark.performance(records=5000)
def test_budget_requested_never_called(budget):
    fakeclock.work(DATA)


@pytest.mark.performance(records=5000, max_seconds=0.2)
def test_budget_never_called_over_budget(budget):
    fakeclock.work(DATA)
    fakeclock.work(DATA)


@pytest.mark.performance(records=5000)
def test_benchmark(benchmark):
    benchmark.pedantic(fakeclock.work, args=(DATA,), rounds=5)


@pytest.mark.performance(records=5000)
def test_benchmark_budget_run(benchmark, budget):
    benchmark.pedantic(budget.run, args=(fakeclock.work, DATA), rounds=5)
    assert budget.result.seconds == fakeclock.WORK


@pytest.mark.performance(records=5000)
def test_benchmark_budget_measure(benchmark, budget):
    def step():
        with budget.measure():
            fakeclock.work(DATA)

    benchmark.pedantic(step, rounds=5)


@pytest.mark.integration
@pytest.mark.performance(records=5000)
def test_integration_run(budget):
    result = budget.run(fakeclock.work, DATA)
    dlq_count = 0
    assert dlq_count == 0, result


@pytest.mark.integration
@pytest.mark.performance(records=5000)
def test_integration_whole_call():
    fakeclock.work(DATA)
    dlq_count = 0
    assert dlq_count == 0
"""

# test -> (reported seconds, timing, measurements)
EXPECTED = {
    "test_measure": (WORK, "perf_counter", 1),
    "test_run": (WORK, "perf_counter", 1),
    "test_whole_call": (WORK, "perf_counter", 1),
    "test_budget_requested_never_called": (WORK, "perf_counter", 1),
    "test_budget_never_called_over_budget": (2 * WORK, "perf_counter", 1),
    "test_benchmark": (WORK, "benchmark-median", 1),
    "test_benchmark_budget_run": (WORK, "benchmark-median", 5),
    "test_benchmark_budget_measure": (WORK, "benchmark-median", 5),
    "test_integration_run": (WORK, "perf_counter", 1),
    "test_integration_whole_call": (WORK, "perf_counter", 1),
}


def test_reported_seconds_exclude_the_plugins_bookkeeping_in_every_mode(
    pytester: pytest.Pytester,
    pipeline_toml: Callable[[str], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("pytest_benchmark")
    # pytest-benchmark disables itself inside an xdist worker (this suite may run under -n).
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    # A 5 s budget: one collection or file open inside a timed section (1024 s) breaks it.
    pipeline_toml("[tool.pytest-pipeline.budgets]\nmax_seconds = 5.0\n")
    pytester.makepyfile(fakeclock=_FAKECLOCK, conftest=_CONFTEST, test_modes=_TESTS)
    report, bench = pytester.path / "report.json", pytester.path / "bench.json"
    result = pytester.runpytest_subprocess(
        "-p",
        "no:randomly",
        "-p",
        "no:cacheprovider",
        "--benchmark-timer",
        "fakeclock.now",
        "--benchmark-json",
        str(bench),
        "--pipeline-report",
        str(report),
    )
    result.assert_outcomes(passed=len(EXPECTED) - 1, failed=1)
    # A test that requests `budget` but never calls it is measured whole, and checked.
    result.stdout.fnmatch_lines(
        [
            "*_ test_budget_never_called_over_budget _*",
            "performance budget exceeded: 5,000 records in 0.25 s (max 0.20 s*) = 20,000 records/s",
        ]
    )
    rows = json.loads(report.read_text())["performance"]
    assert {
        row["nodeid"].split("::")[-1]: (row["seconds"], row["timing"], row["measurements"])
        for row in rows
    } == EXPECTED
    # pytest-benchmark's own medians: only the first round carries the memory probe.
    benchmarks = json.loads(bench.read_text())["benchmarks"]
    assert {b["name"]: b["stats"]["median"] for b in benchmarks} == {
        name: WORK for name in EXPECTED if name.startswith("test_benchmark")
    }


_SCHEDULE = """
import gc
import sys

from pytest_pipeline.performance import budgets

FULL = [0]
ARMED = [False]


def on_gc(phase, info):
    if ARMED[0] and phase == "start" and info["generation"] == 2:
        FULL[0] += 1


def work(n):
    return [{"id": i, "x": [i]} for i in range(n)]


KEEP = work(100_000)  # a loaded fixture: long-lived objects the collector tracks
gc.callbacks.append(on_gc)
if sys.argv[1] == "bare":
    ARMED[0] = True
    work(25_000)
    ARMED[0] = False
else:
    with budgets.measure(records=25_000):
        ARMED[0] = True
        work(25_000)
        ARMED[0] = False
print(FULL[0])
"""


def _full_collections_inside(tmp_path: Path, variant: str) -> int:
    script = tmp_path / "schedule.py"
    script.write_text(_SCHEDULE)
    done = subprocess.run(
        [sys.executable, str(script), variant], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return int(done.stdout)


def test_the_block_runs_the_full_collections_it_runs_bare(tmp_path: Path) -> None:
    # A gc.collect() before the block resets the collector's count of long-lived objects, which
    # Python cannot restore: the block's full collections then come at other points (a block
    # over a loaded heap read 4x its bare time). Same process state, same workload: the block
    # must run exactly the full collections it runs bare, on every Python version.
    bare = _full_collections_inside(tmp_path, "bare")
    assert bare == 1  # the premise: over this heap, the workload runs one full collection
    assert _full_collections_inside(tmp_path, "measure") == bare
