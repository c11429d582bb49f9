"""Performance budgets: limits resolution, breach messages, honest measurement, the fixture."""

from __future__ import annotations

import contextlib
import ctypes
import gc
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from pytest_pipeline.config import BudgetOverride, PipelineConfig, resolve
from pytest_pipeline.performance import budgets

# Each breach line as the issue words it; time and throughput share a line (one run).
SLOW_LINE = (
    "performance budget exceeded: 100,000 records in 12.31 s (max 10.00 s) = "
    "8,123 records/s (min 10,000/s)"
)


def _config(tmp_path: Path, **budget_values: Any) -> PipelineConfig:
    resolved = resolve(tmp_path, {})
    return replace(resolved, budgets=resolved.budgets._replace(**budget_values))


# --------------------------------------------------------------------------- limits


def test_limits_marker_then_first_matching_override_then_globals(tmp_path: Path) -> None:
    resolved = _config(
        tmp_path,
        max_seconds=10.0,
        max_memory_mb=500.0,
        min_records_per_second=None,
        overrides=(
            BudgetOverride(match="tests/perf/test_a.py::*", records=1000, max_seconds=5.0),
            BudgetOverride(match="tests/perf/*", max_seconds=7.0, max_memory_mb=50.0),
        ),
    )
    limits = budgets.resolve_limits("tests/perf/test_a.py::test_x[1]", {}, resolved)
    # The first matching override wins alone: the second's memory limit does not apply.
    assert (limits.records, limits.max_seconds, limits.max_memory_mb) == (1000, 5.0, 500.0)
    assert limits.source == "override 'tests/perf/test_a.py::*' + budgets"
    limits = budgets.resolve_limits(
        "tests/perf/test_a.py::test_x",
        {"max_seconds": 1, "records": 7},
        resolved,
    )
    assert (limits.records, limits.max_seconds) == (7, 1.0)
    limits = budgets.resolve_limits("tests/perf/test_b.py::test_y", {}, resolved)
    assert (limits.records, limits.max_seconds, limits.max_memory_mb) == (None, 7.0, 50.0)
    limits = budgets.resolve_limits("tests/unit/test_c.py::test_z", {}, resolved)
    assert (limits.max_seconds, limits.max_memory_mb, limits.source) == (10.0, 500.0, "budgets")


def test_time_scale_stretches_time_and_lowers_the_throughput_floor(tmp_path: Path) -> None:
    resolved = _config(tmp_path, max_seconds=10.0, min_records_per_second=1000.0, time_scale=2.0)
    limits = budgets.resolve_limits("t.py::t", {"max_memory_mb": 5}, resolved)
    assert (limits.max_seconds, limits.min_records_per_second, limits.max_memory_mb) == (
        20.0,
        500.0,
        5.0,
    )


# --------------------------------------------------------------------------- messages


def _limits(**values: float | int | None) -> budgets.Limits:
    base: dict[str, Any] = {
        "records": None,
        "max_seconds": None,
        "max_memory_mb": None,
        "min_records_per_second": None,
    }
    base.update(values)
    return budgets.Limits(**base)


def test_breach_line_for_time_and_throughput_matches_the_issue() -> None:
    result = budgets.Result(seconds=12.31, records=100_000)
    limits = _limits(max_seconds=10.0, min_records_per_second=10_000.0)
    assert budgets.breaches(result, limits) == [SLOW_LINE]


def test_breach_lines_name_only_the_broken_limits() -> None:
    result = budgets.Result(seconds=2.0, records=1000, peak_memory_mb=612.34)
    assert budgets.breaches(result, _limits(max_seconds=1.0)) == [
        "performance budget exceeded: 1,000 records in 2.00 s (max 1.00 s) = 500 records/s"
    ]
    assert budgets.breaches(result, _limits(min_records_per_second=800.0)) == [
        "performance budget exceeded: 1,000 records in 2.00 s = 500 records/s (min 800/s)"
    ]
    assert budgets.breaches(result, _limits(max_memory_mb=500.0, max_seconds=3.0)) == [
        "performance budget exceeded: 1,000 records with peak memory 612.3 MB (max 500.0 MB)"
    ]
    assert budgets.breaches(result, _limits(max_seconds=3.0, max_memory_mb=700.0)) == []
    scaled = budgets.Limits(None, 1.0, None, None, time_scale=2.0)
    assert budgets.breaches(budgets.Result(seconds=1.5), scaled) == [
        "performance budget exceeded: 1.50 s (max 1.00 s, time_scale 2)"
    ]


def test_headroom_is_the_smallest_margin() -> None:
    result = budgets.Result(seconds=5.0, records=1000, peak_memory_mb=450.0)
    limits = _limits(max_seconds=10.0, max_memory_mb=500.0)
    assert budgets.headroom(result, limits) == 10.0
    assert budgets.headroom(budgets.Result(seconds=1.0), _limits()) is None


# --------------------------------------------------------------------------- measurement


def test_this_machine_resets_the_high_water_mark() -> None:
    if not sys.platform.startswith("linux"):
        pytest.skip("the high-water-mark reset is Linux only")
    assert budgets.memory_method() == "hwm-reset"


def test_peak_memory_of_a_bytearray_and_numpy_within_generous_bounds() -> None:
    numpy = pytest.importorskip("numpy")
    # Memory the process freed earlier but still holds is reused by the block and not counted
    # (docs/performance.md): this worker's earlier garbage and the allocator's free heap go
    # first, so the figure is the block's own 80 MiB.
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    with budgets.measure(records=1) as result:
        chunks = [bytearray(10 * budgets.MIB) for _ in range(8)]  # 80 MiB, touched (zeroed)
        del chunks
    assert result.peak_memory_mb is not None
    assert 64 <= result.peak_memory_mb <= 110, result
    with budgets.measure() as result:
        array = numpy.ones(80 * budgets.MIB // 8)  # C allocation, invisible to tracemalloc
        del array
    assert result.peak_memory_mb is not None
    assert 64 <= result.peak_memory_mb <= 110, result


def test_memory_freed_before_the_block_is_not_counted() -> None:
    big = bytearray(60 * budgets.MIB)
    del big
    with budgets.measure() as result:
        small = bytearray(budgets.MIB)
        del small
    assert result.peak_memory_mb is not None
    assert result.peak_memory_mb < 20


def test_timing_is_the_blocks_own() -> None:
    with budgets.measure(records=50) as result:
        time.sleep(0.05)
    assert 0.045 <= result.seconds < 1.0
    assert result.records_per_second is not None
    assert 50 < result.records_per_second <= 50 / 0.045


def test_no_tracemalloc_during_measurement() -> None:
    import tracemalloc

    with budgets.measure():
        tracing = tracemalloc.is_tracing()
    assert not tracing


# --------------------------------------------------------------------------- in a pytest run


@pytest.fixture
def budgets_toml(pipeline_toml: Callable[[str], None]) -> Callable[..., None]:
    def write(extra: str = "") -> None:
        pipeline_toml(
            "[tool.pytest-pipeline.budgets]\nmax_seconds = 5.0\nmax_memory_mb = 500\n" + extra
        )

    return write


def test_within_budget_passes_and_result_is_exposed(
    pytester: pytest.Pytester, budgets_toml: Callable[..., None]
) -> None:
    budgets_toml()
    pytester.makepyfile(
        """
        import pytest

        def double(records):
            return [r * 2 for r in records]

        @pytest.mark.performance(records=10_000, min_records_per_second=1000)
        def test_run(budget):
            out = budget.run(double, list(range(10_000)))
            assert out[-1] == 19_998
            r = budget.result
            assert r.records == 10_000
            assert r.seconds > 0
            assert r.records_per_second > 1000
            assert r.peak_memory_mb is not None

        @pytest.mark.performance
        def test_measure(budget):
            with budget.measure(records=5) as result:
                sum(range(100))
            assert budget.result is result
            assert result.records == 5
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "*= pytest-pipeline performance =*",
            "test * records * seconds * records/s * peak MB * budget * headroom",
            "test_within_budget_passes_and_result_is_exposed.py::test_run * 10,000 *",
        ]
    )


def test_each_kind_of_breach_fails_with_its_line(
    pytester: pytest.Pytester, budgets_toml: Callable[..., None]
) -> None:
    budgets_toml()
    pytester.makepyfile(
        """
        import time
        import pytest

        @pytest.mark.performance(records=100, max_seconds=0.01)
        def test_slow(budget):
            with budget.measure():
                time.sleep(0.05)

        @pytest.mark.performance(records=100, min_records_per_second=100_000)
        def test_starved(budget):
            budget.run(time.sleep, 0.02)

        @pytest.mark.performance(max_memory_mb=20)
        def test_hungry(budget):
            with budget.measure(records=3):
                data = bytearray(40 * 1024 * 1024)
                del data
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines(
        [
            "performance budget exceeded: 100 records in 0.0* s (max 0.01 s from the marker) = "
            "* records/s",
            "performance budget exceeded: 100 records in 0.0* s = * records/s "
            "(min 100,000/s from the marker)",
            "performance budget exceeded: 3 records with peak memory *.* MB "
            "(max 20.0 MB from the marker)",
        ]
    )
    # pytrace=False: the line is the whole failure, no traceback into the plugin.
    assert "perf_plugin.py" not in result.stdout.str()


def test_budgets_only_in_pyproject_and_override_matching(
    pytester: pytest.Pytester, pipeline_toml: Callable[[str], None]
) -> None:
    pipeline_toml(
        """
        [tool.pytest-pipeline.budgets]
        max_seconds = 0.01
        max_memory_mb = 500

        [[tool.pytest-pipeline.budgets.override]]
        match = "test_budgets_only_in_pyproject_and_override_matching.py::test_relaxed*"
        records = 1000
        max_seconds = 5.0
        """
    )
    pytester.makepyfile(
        """
        import time
        import pytest

        @pytest.mark.performance
        def test_relaxed_transform(budget):
            with budget.measure() as result:
                time.sleep(0.03)
            assert result.records == 1000  # records from the override

        @pytest.mark.performance
        def test_strict_transform(budget):
            with budget.measure(records=10):
                time.sleep(0.03)

        @pytest.mark.performance
        def test_whole_call_without_fixture():
            time.sleep(0.03)
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*_ test_strict_transform _*",
            "performance budget exceeded: 10 records in 0.0* s "
            "(max 0.01 s from budgets.max_seconds) = * records/s",
            "*_ test_whole_call_without_fixture _*",
            "performance budget exceeded: 0.0* s (max 0.01 s from budgets.max_seconds)",
        ]
    )


def test_memory_hungry_numpy_transform_caught_by_pyproject_budget(
    pytester: pytest.Pytester, pipeline_toml: Callable[[str], None]
) -> None:
    pytest.importorskip("numpy")
    pipeline_toml("[tool.pytest-pipeline.budgets]\nmax_seconds = 30\nmax_memory_mb = 30\n")
    pytester.makepyfile(
        """
        import numpy
        import pytest

        def widen(n):
            return float(numpy.ones(n).sum())  # a C allocation of n * 8 bytes

        @pytest.mark.performance(records=8_000_000)
        def test_hungry(budget):
            assert budget.run(widen, 8_000_000) == 8_000_000.0  # 61 MiB

        @pytest.mark.performance(records=100_000)
        def test_lean(budget):
            assert budget.run(widen, 100_000) == 100_000.0
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "performance budget exceeded: 8,000,000 records with peak memory 6*.* MB "
            "(max 30.0 MB from budgets.max_memory_mb)"
        ]
    )


def test_time_scale_option_relaxes_time_budgets(
    pytester: pytest.Pytester, budgets_toml: Callable[..., None]
) -> None:
    budgets_toml()
    pytester.makepyfile(
        """
        import time
        import pytest

        @pytest.mark.performance(max_seconds=0.02)
        def test_t(budget):
            with budget.measure():
                time.sleep(0.03)
        """
    )
    pytester.runpytest().assert_outcomes(failed=1)
    pytester.runpytest("--pipeline-time-scale", "10").assert_outcomes(passed=1)
    result = pytester.runpytest("--pipeline-time-scale", "1.2")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["performance budget exceeded: 0.0* s (max 0.02 s from the marker, time_scale 1.2)"]
    )


def test_without_pytest_benchmark(
    pytester: pytest.Pytester, budgets_toml: Callable[..., None]
) -> None:
    budgets_toml()
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.performance(records=100)
        def test_t(budget):
            assert budget.run(sorted, [3, 1, 2]) == [1, 2, 3]
        """
    )
    result = pytester.runpytest("-p", "no:benchmark")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*test_t * 100 *"])


def test_benchmark_median_feeds_the_budget_and_extra_info(
    pytester: pytest.Pytester, budgets_toml: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("pytest_benchmark")
    # pytest-benchmark disables itself inside an xdist worker (this suite may run under -n).
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    budgets_toml()
    pytester.makepyfile(
        """
        import time
        import pytest

        @pytest.mark.performance(records=1000, max_seconds=5)
        def test_fast(benchmark):
            benchmark.pedantic(sum, args=(range(1000),), rounds=5)

        @pytest.mark.performance(records=10, max_seconds=0.001)
        def test_slow(benchmark):
            benchmark.pedantic(time.sleep, args=(0.01,), rounds=3)
        """
    )
    result = pytester.runpytest(
        "-p", "no:randomly", "--benchmark-json", str(pytester.path / "bench.json")
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            # sleep(0.01) reads 0.01-0.02 s on a loaded machine
            "performance budget exceeded: 10 records in 0.0* s (max 0.00 s from the marker) = "
            "* records/s "
            "[[]pytest-benchmark median[]]"
        ]
    )
    import json

    data = json.loads((pytester.path / "bench.json").read_text())
    extra = {b["name"]: b["extra_info"] for b in data["benchmarks"]}
    assert extra["test_fast"]["records"] == 1000
    assert extra["test_fast"]["records_per_second"] > 0
    # Disabled benchmarks run once without statistics: the whole call is timed instead.
    result = pytester.runpytest("-p", "no:randomly", "--benchmark-disable")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "performance budget exceeded: 10 records in 0.0* s (max 0.00 s from the marker) = "
            "* records/s"
        ]
    )
    assert "[pytest-benchmark median]" not in result.stdout.str()


def test_budget_inside_benchmark_is_checked_once_with_the_median(
    pytester: pytest.Pytester, budgets_toml: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("pytest_benchmark")
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    budgets_toml()
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.performance(records=500)
        def test_both(benchmark, budget):
            benchmark.pedantic(budget.run, args=(sorted, list(range(500))), rounds=3)
            assert budget.result.peak_memory_mb is not None
        """
    )
    out = pytester.path / "r.json"
    result = pytester.runpytest("-p", "no:randomly", "--pipeline-report", str(out))
    result.assert_outcomes(passed=1)
    import json

    (row,) = json.loads(out.read_text())["performance"]
    assert row["timing"] == "benchmark-median"
    assert row["records"] == 500
    assert row["memory_method"] != "none"


def test_integration_and_performance_pauses_the_dlq_tracer(
    pytester: pytest.Pytester, budgets_toml: Callable[..., None]
) -> None:
    budgets_toml()
    pytester.makepyfile(
        """
        import sys
        import pytest

        def pipeline():
            return sys.gettrace()

        @pytest.mark.integration
        @pytest.mark.performance(records=1)
        def test_both(budget):
            outer = sys.gettrace()
            inner = budget.run(pipeline)
            dlq_records = []
            assert len(dlq_records) == 0
            # The DLQ rule sets no tracer (pytest_assertion_pass): none outside, none inside.
            assert outer is None
            assert inner is None
        """
    )
    result = pytester.runpytest("-p", "no:randomly", "-p", "no:cov")
    result.assert_outcomes(passed=1)


def test_a_floor_without_a_record_count_is_named_not_skipped_silently(
    pytester: pytest.Pytester, pipeline_toml: Callable[[str], None]
) -> None:
    pipeline_toml("[tool.pytest-pipeline.budgets]\nmin_records_per_second = 1000\n")
    pytester.makepyfile(
        test_perf="""
        import pytest

        @pytest.mark.performance
        def test_no_count(budget):
            with budget.measure():
                sum(range(1000))

        @pytest.mark.performance
        def test_with_count(budget):
            with budget.measure(records=1000):
                sum(range(1000))
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, warnings=1)
    result.stdout.fnmatch_lines(
        [
            "*PipelineWarning: test_perf.py::test_no_count: min_records_per_second = 1,000 was "
            "not checked: the measurement has no record count. Pass records= to budget.measure()*"
        ]
    )
