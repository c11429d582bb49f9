"""Performance-budget benchmarks: plugin overhead, timing fidelity, memory accuracy.

* plugin overhead: collecting and running 2,000 trivial tests, plugin on vs ``-p no:pipeline``
  (fresh pytest processes, alternated, medians; goal <= 1.02x), plus the plugin with only the
  budget hooks unregistered, which isolates their share. The lowest CPU time (user + system of
  the pytest process) over the rounds is the steadiest figure on a shared machine; median wall
  time is shown too;
* timing fidelity: an allocation-heavy workload (building a list of dict records) timed by
  ``budget``'s measurement vs bare ``perf_counter`` (alternated, medians; goal <= 1.05x), with
  tracemalloc for contrast (why timing never runs under it);
* reported vs bare seconds in a pytest run: a 200,000-record transform (a call per record) in
  real pytest processes, on each interpreter found (this one and the checkout's
  ``.venv-py3.12``, or ``PIPELINE_BENCH_PYTHONS``): the seconds the plugin reports for a
  performance test (``budget.run``, whole call), an integration + performance test (the DLQ
  watcher on) and ``benchmark.pedantic(budget.run, ...)``, each divided by the bare
  ``perf_counter`` figure of a plain test (pytest-benchmark rows: by pytest-benchmark's median
  of the bare workload). Tests interleaved, order alternated, medians; goal <= 1.02x;
* memory accuracy: 200 MiB of bytearrays and a 200 MiB numpy array, each in a fresh process,
  against the known size (goal within 10 %).

Run through ``python bench/run.py budgets`` (writes docs/benchmarks.md) or directly
(prints Markdown; ``python bench/bench_budgets.py pytest`` runs only that part).
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

from pytest_pipeline.performance import budgets

TRIVIAL_TESTS = 2000


def _pytest_cost(directory: Path, *extra: str, env: dict[str, str]) -> tuple[float, float]:
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
            "-p",
            "no:benchmark",
            *extra,
        ],
        cwd=directory,
        env={**env, "PYTHONPATH": str(directory)},
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


_IMPORT = textwrap.dedent(
    """
    import importlib, time
    from _pytest.config import default_plugins
    import pytest
    for name in default_plugins:  # what a pytest process has imported before its plugins
        importlib.import_module("_pytest." + name)
    import importlib.metadata  # pytest reads entry points with it before loading plugins
    began = time.perf_counter()
    import pytest_pipeline.plugin
    print(time.perf_counter() - began)
    """
)


def entry_import(rounds: int) -> list[float]:
    """Milliseconds to import the entry point in a fresh process that has loaded pytest."""
    # The bytecode cache on (and warmed by a first run): compiling the sources is not import.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    times = []
    for _ in range(rounds + 1):
        done = subprocess.run(
            [sys.executable, "-c", _IMPORT], capture_output=True, text=True, check=True, env=env
        )
        times.append(float(done.stdout) * 1000)
    return times[1:]


def overhead(rounds: int) -> list[str]:
    """2,000 trivial tests, plugin on and off (-p no:pipeline), and xdist's plugin for scale.

    Each variant runs once per round, the order alternating; a ratio is taken within each
    round (pairs run back to back) and the median of those ratios is reported. Run with the
    bytecode cache off (this machine's PYTHONDONTWRITEBYTECODE=1: every run rewrites the test
    modules' asserts) and on (what most machines do).
    """
    variants = {
        "plugin on": ("-p", "no:xdist"),
        "`-p no:pipeline`": ("-p", "no:pipeline", "-p", "no:xdist"),
        "`-p no:pipeline`, pytest-xdist loaded (reference)": ("-p", "no:pipeline"),
    }
    off = "`-p no:pipeline`"
    caches = {
        "bytecode cache off": {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        "bytecode cache on": {
            k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"
        },
    }
    rows = [
        f"| 2,000 trivial tests ({rounds} rounds) | wall s (median) | CPU s (median) "
        "| wall vs off (median of pair ratios) | CPU vs off (median of pair ratios) "
        "| CPU µs vs off per test (whole run / 2,000) |",
        "|---|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "pyproject.toml").write_text("[tool.pytest.ini_options]\n")
        for module in range(20):
            body = "\n".join(f"def test_{n}():\n    assert {n} == {n}\n" for n in range(100))
            (root / f"test_m{module}.py").write_text(body)
        for cache, env in caches.items():
            _pytest_cost(root, env=env)  # warm the file cache (and the .pyc files)
            walls: dict[str, list[float]] = {name: [] for name in variants}
            cpus: dict[str, list[float]] = {name: [] for name in variants}
            for index in range(rounds):
                # Alternate the order: a shared machine's load drifts during the run.
                order = list(variants) if index % 2 == 0 else list(reversed(variants))
                for name in order:
                    wall, cpu = _pytest_cost(root, *variants[name], env=env)
                    walls[name].append(wall)
                    cpus[name].append(cpu)
            for name in variants:
                pairs = list(zip(walls[name], walls[off], cpus[name], cpus[off], strict=True))
                wall_ratio = statistics.median(w / wo for w, wo, _c, _co in pairs)
                cpu_ratio = statistics.median(c / co for _w, _wo, c, co in pairs)
                per_test = statistics.median((c - co) / TRIVIAL_TESTS * 1e6 for *_, c, co in pairs)
                rows.append(
                    f"| {name}, {cache} | {statistics.median(walls[name]):.2f} "
                    f"| {statistics.median(cpus[name]):.2f} | {wall_ratio:.3f}x "
                    f"| {cpu_ratio:.3f}x | {per_test:+.0f} |"
                )
    imports = entry_import(max(rounds, 15))
    rows += [
        "",
        f"Importing the entry point `pytest_pipeline.plugin` in a fresh process that has "
        f"loaded pytest and its default plugins: median {statistics.median(imports):.1f} ms "
        f"(min {min(imports):.1f}, max {max(imports):.1f}; {len(imports)} processes, "
        "bytecode compiled).",
    ]
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
        # measure() collects garbage first (so freed garbage cannot hide the block's peak) and
        # then restores the collector's counters: a plain gc.collect() moves the workload's
        # own collections (contrast row).
        "bare perf_counter after a plain gc.collect() (contrast)": _bare_after_gc,
        "budget measurement (reported seconds)": _budget,
        "budget measurement (wall incl. set-up)": _budget_wall,
        "under tracemalloc (not used; contrast)": _traced,
    }
    samples: dict[str, list[float]] = {name: [] for name in ways}
    for fn in ways.values():
        fn()  # warm-up
    for index in range(rounds):
        # Alternate the order: a shared machine's load drifts during the run.
        for name, fn in list(ways.items())[:: 1 if index % 2 == 0 else -1]:
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


PYTEST_RECORDS = 200_000

_PIPELINE = f"""
RECORDS = {PYTEST_RECORDS}


def make_record(i):
    return {{"id": i, "name": f"user-{{i}}", "score": i * 0.5, "tags": [i, i + 1]}}


def transform(n):
    # A call per record, as in a real transform: what a tracer slows down most.
    return len([make_record(i) for i in range(n)])
"""

_HEADER = """
import json
import os
import time

import pytest

from pipeline import RECORDS, transform

ROUNDS = {rounds}


def _bare(name):
    started = time.perf_counter()
    transform(RECORDS)
    seconds = time.perf_counter() - started
    with open(os.environ["PIPELINE_BENCH_BARE"], "a") as out:
        out.write(json.dumps({{"variant": name, "seconds": seconds}}) + "\\n")
"""

_PERF = "@pytest.mark.performance(records=RECORDS)\n"
_INTEGRATION = "@pytest.mark.integration\n"
_DLQ = "    assert len(dlq_records) == 0\n"  # the DLQ rule's plain assert: the watcher is on

# variant -> (row label, test source; {r} is the repetition).
PYTEST_VARIANTS: dict[str, tuple[str, str]] = {
    "bare": (
        "bare `perf_counter` in a plain test (reference)",
        "def test_{r}_bare():\n    _bare('bare')\n",
    ),
    "perf_budget": (
        "performance test, `budget.run` (reported)",
        _PERF + "def test_{r}_perf_budget(budget):\n    budget.run(transform, RECORDS)\n",
    ),
    "perf_whole": (
        "performance test, whole call (reported)",
        _PERF + "def test_{r}_perf_whole():\n    transform(RECORDS)\n",
    ),
    "int_bare": (
        "bare `perf_counter` in an integration test (contrast: DLQ watcher on)",
        _INTEGRATION
        + "def test_{r}_int_bare():\n    dlq_records = []\n    _bare('int_bare')\n"
        + _DLQ,
    ),
    "int_budget": (
        "integration + performance test, `budget.run` (reported)",
        _INTEGRATION
        + _PERF
        + "def test_{r}_int_budget(budget):\n    dlq_records = []\n"
        + "    budget.run(transform, RECORDS)\n"
        + _DLQ,
    ),
    "int_whole": (
        "integration + performance test, whole call (reported)",
        _INTEGRATION
        + _PERF
        + "def test_{r}_int_whole():\n    dlq_records = []\n    transform(RECORDS)\n"
        + _DLQ,
    ),
    "bench_bare": (
        "pytest-benchmark median, bare workload (reference)",
        "def test_{r}_bench_bare(benchmark):\n"
        "    benchmark.pedantic(transform, args=(RECORDS,), rounds=ROUNDS, warmup_rounds=1)\n",
    ),
    "bench_budget": (
        "performance test, `benchmark.pedantic(budget.run, ...)` (reported)",
        _PERF + "def test_{r}_bench_budget(benchmark, budget):\n"
        "    benchmark.pedantic(budget.run, args=(transform, RECORDS), rounds=ROUNDS,"
        " warmup_rounds=1)\n",
    ),
}
# pytest-benchmark's own medians (its JSON), by test variant -> row.
_FROM_BENCHMARK = {"bench_bare": "bench_bare", "bench_budget": "bench_budget_own"}
_OWN_LABEL = "the same test, pytest-benchmark's own median (contrast)"
# The reference each row is divided by (default: bare perf_counter in a plain test).
_BARE_OF = dict.fromkeys(("bench_bare", "bench_budget", "bench_budget_own"), "bench_bare")


def _pythons() -> dict[str, str]:
    """``X.Y -> interpreter`` with this checkout's plugin and pytest-benchmark importable.

    This interpreter and ``.venv-py3.12`` of the checkout, or ``PIPELINE_BENCH_PYTHONS``
    (paths separated by ``os.pathsep``).
    """
    root = Path(__file__).resolve().parents[1]
    configured = os.environ.get("PIPELINE_BENCH_PYTHONS")
    candidates = (
        configured.split(os.pathsep)
        if configured
        else [sys.executable, str(root / ".venv-py3.12" / "bin" / "python")]
    )
    probe = (
        "import sys, pytest_benchmark, pytest_pipeline; "
        "print('%d.%d' % sys.version_info[:2], pytest_pipeline.__file__)"
    )
    found: dict[str, str] = {}
    for python in candidates:
        try:
            done = subprocess.run(
                [python, "-c", probe], capture_output=True, text=True, check=False, timeout=60
            )
        except OSError:
            continue
        if done.returncode != 0:
            continue
        version, location = done.stdout.split()
        # Another copy of the plugin would measure other code than this checkout's.
        if Path(location).resolve().is_relative_to(root / "src"):
            found.setdefault(version, python)
    return found


def _pytest_project(root: Path, repeats: int, rounds: int) -> None:
    (root / "pyproject.toml").write_text("[tool.pytest-pipeline.budgets]\nmax_seconds = 600.0\n")
    (root / "pipeline.py").write_text(_PIPELINE)
    tests = [_HEADER.format(rounds=rounds)]
    order = list(PYTEST_VARIANTS)
    for repeat in range(repeats):
        # Interleaved, alternating order: the machine's load drifts during the run.
        for name in order if repeat % 2 == 0 else reversed(order):
            tests.append(PYTEST_VARIANTS[name][1].format(r=f"{repeat:02d}"))
    (root / "test_bench.py").write_text("\n\n".join(tests))


def _pytest_samples(python: str, root: Path) -> dict[str, list[float]]:
    """One pytest process: the seconds each variant reported, by variant."""
    bare, report, bench = root / "bare.jsonl", root / "report.json", root / "bench.json"
    bare.unlink(missing_ok=True)
    done = subprocess.run(
        [
            python,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:randomly",
            "-p",
            "no:xdist",
            "--pipeline-report",
            str(report),
            "--benchmark-json",
            str(bench),
        ],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root), "PIPELINE_BENCH_BARE": str(bare)},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stdout[-3000:] + done.stderr[-2000:])
    samples: dict[str, list[float]] = {}
    for line in bare.read_text().splitlines():
        entry = json.loads(line)
        samples.setdefault(entry["variant"], []).append(entry["seconds"])
    for row in json.loads(report.read_text())["performance"]:
        variant = row["nodeid"].rsplit("::", 1)[1].split("_", 2)[2]
        samples.setdefault(variant, []).append(row["seconds"])
    for entry in json.loads(bench.read_text())["benchmarks"]:
        variant = entry["name"].split("_", 2)[2]
        samples.setdefault(_FROM_BENCHMARK[variant], []).append(entry["stats"]["median"])
    return samples


def in_pytest(processes: int, repeats: int, rounds: int) -> list[str]:
    """The workload in real pytest runs: reported seconds vs bare, on 3.11 and 3.12."""
    pythons = _pythons()
    labels = {name: label for name, (label, _) in PYTEST_VARIANTS.items()}
    labels["bench_budget_own"] = _OWN_LABEL
    samples: dict[str, dict[str, list[float]]] = {v: {n: [] for n in labels} for v in pythons}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _pytest_project(root, repeats, rounds)
        for python in pythons.values():
            # Warm-up: .pyc files and the page cache.
            subprocess.run(
                [python, "-m", "pytest", "-q", "--co", "-p", "no:cacheprovider"],
                cwd=root,
                env={**os.environ, "PYTHONPATH": str(root)},
                capture_output=True,
                check=True,
            )
        for index in range(processes):
            # Alternate the interpreters too.
            order = list(pythons) if index % 2 == 0 else list(reversed(pythons))
            for version in order:
                for name, values in _pytest_samples(pythons[version], root).items():
                    samples[version][name].extend(values)
    versions = sorted(pythons)
    # Minima too: other processes on a shared machine only ever add time.
    head = " | ".join(
        f"Python {v}: ms median (min-max) | vs bare (medians) | vs bare (minima)" for v in versions
    )
    rows = [
        f"| {PYTEST_RECORDS:,} records, a call per record ({processes} processes x {repeats} "
        f"tests; benchmarks: {rounds} rounds) | {head} |",
        "|---|" + "---|---|---|" * len(versions),
    ]
    for name, label in labels.items():
        cells = []
        for version in versions:
            values = samples[version][name]
            bare = samples[version][_BARE_OF.get(name, "bare")]
            median = statistics.median(values)
            cells.append(
                f"{median * 1000:.1f} ({min(values) * 1000:.1f}-{max(values) * 1000:.1f}) "
                f"| {median / statistics.median(bare):.3f}x | {min(values) / min(bare):.3f}x"
            )
        rows.append(f"| {label} | {' | '.join(cells)} |")
    missing = [v for v in ("3.11", "3.12") if v not in pythons]
    if missing:
        rows.append("")
        rows.append(
            f"Not run on Python {', '.join(missing)}: no interpreter with this checkout's "
            "plugin and pytest-benchmark (set PIPELINE_BENCH_PYTHONS)."
        )
    return rows


_MEMORY = textwrap.dedent(
    """
    import json, sys
    from pytest_pipeline.performance import budgets
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


PARTS: dict[str, tuple[str, Callable[[], list[str]]]] = {
    "overhead": ("Plugin overhead", lambda: overhead(rounds=7)),
    "fidelity": ("Timing fidelity", lambda: fidelity(rounds=15)),
    "pytest": (
        "Reported vs bare seconds in a pytest run",
        lambda: in_pytest(processes=3, repeats=4, rounds=3),
    ),
    "memory": ("Memory accuracy", lambda: memory(rounds=5)),
}


def run(parts: list[str] | None = None) -> str:
    """The budget benchmarks (all, or the ``parts`` named) as Markdown."""
    lines: list[str] = []
    for name in parts or list(PARTS):
        title, make = PARTS[name]
        lines += [f"### {title}", "", *make(), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    # `python bench/bench_budgets.py [PART ...]` prints without touching docs/benchmarks.md.
    print(run(sys.argv[1:]))
