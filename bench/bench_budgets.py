"""Performance-budget benchmarks: plugin overhead, timing fidelity, memory accuracy.

* plugin overhead: collecting and running 2,000 trivial tests, plugin on vs ``-p no:pipeline``
  (fresh pytest processes, alternated, medians; goal <= 1.02x), plus the plugin with only the
  budget hooks unregistered, which isolates their share. The lowest CPU time (user + system of
  the pytest process) over the rounds is the steadiest figure on a shared machine; median wall
  time is shown too;
* timing fidelity: an allocation-heavy workload (building a list of dict records) timed by
  ``budget``'s measurement vs bare ``perf_counter`` (alternated, medians; goal <= 1.05x), with
  tracemalloc for contrast (why timing never runs under it);
* memory accuracy: 200 MiB of bytearrays and a 200 MiB numpy array, each in a fresh process,
  against the known size (goal within 10 %).

Run through ``python bench/run.py budgets`` (writes docs/benchmarks.md) or directly
(prints Markdown).
"""

from __future__ import annotations

import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

from pytest_pipeline import budgets

TRIVIAL_TESTS = 2000


_WITHOUT_BUDGETS = textwrap.dedent(
    """
    import pytest

    @pytest.hookimpl(trylast=True)
    def pytest_configure(config):
        # The rest of the plugin stays on: this isolates what the budget hooks cost.
        for name in ("pipeline-performance", "pipeline-budget"):
            plugin = config.pluginmanager.get_plugin(name)
            if plugin is not None:
                config.pluginmanager.unregister(plugin)
    """
)


def _pytest_cost(directory: Path, *extra: str) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system) of one pytest process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:randomly",
            *extra,
        ],
        cwd=directory,
        env={**os.environ, "PYTHONPATH": str(directory)},
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(done.stdout[-2000:] + done.stderr[-2000:])
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def overhead(rounds: int) -> list[str]:
    """2,000 trivial tests: plugin on, plugin on without the budget hooks, plugin off."""
    variants = {
        "plugin on": (),
        "plugin on, budget hooks unregistered": ("-p", "without_budgets"),
        "`-p no:pipeline`": ("-p", "no:pipeline"),
    }
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "pyproject.toml").write_text("[tool.pytest.ini_options]\n")
        (root / "without_budgets.py").write_text(_WITHOUT_BUDGETS)
        for module in range(20):
            body = "\n".join(f"def test_{n}():\n    assert {n} == {n}\n" for n in range(100))
            (root / f"test_m{module}.py").write_text(body)
        _pytest_cost(root)  # warm the file cache and .pyc files
        walls: dict[str, list[float]] = {name: [] for name in variants}
        cpus: dict[str, list[float]] = {name: [] for name in variants}
        for index in range(rounds):
            # Alternate the order: a shared machine's load drifts during the run.
            order = list(variants) if index % 2 == 0 else list(reversed(variants))
            for name in order:
                wall, cpu = _pytest_cost(root, *variants[name])
                walls[name].append(wall)
                cpus[name].append(cpu)
    off = "`-p no:pipeline`"
    rows = [
        f"| 2,000 trivial tests ({rounds} rounds) | wall s (median) | CPU s (median) "
        "| CPU s (min) | CPU vs off (min) | wall vs off (median) |",
        "|---|---|---|---|---|---|",
    ]
    for name in variants:
        wall, cpu, low = (
            statistics.median(walls[name]),
            statistics.median(cpus[name]),
            min(cpus[name]),
        )
        rows.append(
            f"| {name} | {wall:.2f} | {cpu:.2f} | {low:.2f} | {low / min(cpus[off]):.3f}x "
            f"| {wall / statistics.median(walls[off]):.3f}x |"
        )
    return rows


def _workload() -> int:
    # Allocation-heavy, like a transform: many small dicts and strings.
    records = [
        {"id": i, "name": f"user-{i}", "score": i * 0.5, "tags": [i, i + 1]} for i in range(200_000)
    ]
    return len(records)


def _bare() -> float:
    started = time.perf_counter()
    _workload()
    return time.perf_counter() - started


def _bare_after_gc() -> float:
    gc.collect()
    return _bare()


def _budget() -> float:
    with budgets.measure(records=200_000) as result:
        _workload()
    return result.seconds


def _budget_wall() -> float:
    # The whole cost seen by the test, measurement set-up included (gc, /proc reads).
    started = time.perf_counter()
    with budgets.measure(records=200_000):
        _workload()
    return time.perf_counter() - started


def _traced() -> float:
    tracemalloc.start()
    try:
        return _bare()
    finally:
        tracemalloc.stop()


def fidelity(rounds: int) -> list[str]:
    """Seconds of the workload: bare vs budget vs tracemalloc (alternated rounds)."""
    ways: dict[str, Callable[[], float]] = {
        "bare perf_counter": _bare,
        # measure() collects garbage first (so freed garbage cannot hide the block's peak);
        # the GC state it leaves alone moves the workload's own collections by a few percent.
        "bare perf_counter after gc.collect()": _bare_after_gc,
        "budget measurement (reported seconds)": _budget,
        "budget measurement (wall incl. set-up)": _budget_wall,
        "under tracemalloc (not used; contrast)": _traced,
    }
    samples: dict[str, list[float]] = {name: [] for name in ways}
    for fn in ways.values():
        fn()  # warm-up
    for _ in range(rounds):
        for name, fn in ways.items():
            samples[name].append(fn())
    bare = statistics.median(samples["bare perf_counter"])
    rows = [
        f"| 200,000 dict records | median ms ({rounds} rounds) | vs bare |",
        "|---|---|---|",
    ]
    for name, values in samples.items():
        median = statistics.median(values)
        rows.append(f"| {name} | {median * 1000:.1f} | {median / bare:.3f}x |")
    return rows


_MEMORY = textwrap.dedent(
    """
    import json, sys
    from pytest_pipeline import budgets
    kind = sys.argv[1]
    size = 200 * budgets.MIB
    if kind == "numpy":
        import numpy
    with budgets.measure() as result:
        if kind == "bytearrays":
            data = [bytearray(size // 20) for _ in range(20)]
        else:
            data = numpy.ones(size // 8)
        del data
    print(json.dumps({"mb": result.peak_memory_mb, "method": result.memory_method}))
    """
)


def memory(rounds: int) -> list[str]:
    """Reported peak for a known 200 MiB allocation, each round in a fresh process."""
    rows = [
        "| known allocation | reported peak MiB (median, min-max) | error | method |",
        "|---|---|---|---|",
    ]
    for kind, label in (("bytearrays", "20 x 10 MiB bytearray"), ("numpy", "numpy.ones 200 MiB")):
        found = []
        method = ""
        for _ in range(rounds):
            done = subprocess.run(
                [sys.executable, "-c", _MEMORY, kind],
                capture_output=True,
                text=True,
                check=True,
            )
            data = json.loads(done.stdout)
            found.append(float(data["mb"]))
            method = data["method"]
        median = statistics.median(found)
        rows.append(
            f"| {label} | {median:.1f} ({min(found):.1f}-{max(found):.1f}) | "
            f"{(median - 200) / 200:+.1%} | {method} |"
        )
    return rows


def run() -> str:
    """All budget benchmarks as Markdown."""
    parts = [
        "### Plugin overhead",
        "",
        *overhead(rounds=7),
        "",
        "### Timing fidelity",
        "",
        *fidelity(rounds=15),
        "",
        "### Memory accuracy",
        "",
        *memory(rounds=5),
        "",
    ]
    return "\n".join(parts)


if __name__ == "__main__":
    print(run())
