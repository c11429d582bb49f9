"""The performance table, the ``--pipeline-report`` JSON and ``--pipeline-compare``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pytest_pipeline.performance import regressions
from pytest_pipeline.report import document as perf_report

PERF_TESTS = """
import time
import pytest

@pytest.mark.performance(records=1000)
def test_transform(budget):
    with budget.measure():
        time.sleep(0.02)

@pytest.mark.integration
def test_dlq(dlq):
    dlq.assert_count([], 0)
"""


@pytest.fixture
def project(pytester: pytest.Pytester, pipeline_toml: Callable[[str], None]) -> pytest.Pytester:
    pipeline_toml("[tool.pytest-pipeline.budgets]\nmax_seconds = 5.0\nmax_memory_mb = 500\n")
    pytester.makepyfile(test_perf=PERF_TESTS)
    return pytester


def _write_baseline(path: Path, rows: list[dict[str, Any]], **hardware: Any) -> None:
    document = perf_report.build_report({"performance": rows}, [], [])
    document["hardware"].update(hardware)
    perf_report.write_report(path, document)


def test_report_json_shape(project: pytest.Pytester) -> None:
    out = project.path / "reports" / "run.json"
    result = project.runpytest("-p", "no:randomly", "--pipeline-report", str(out))
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines([f"pytest-pipeline: report written to {out}"])
    data = json.loads(out.read_text())
    assert data["pytest_pipeline_report"] == perf_report.REPORT_VERSION
    hardware = data["hardware"]
    for key in (*perf_report.HARDWARE_CLASS, "python", "os_release", "libraries"):
        assert key in hardware, key
    assert hardware["cpu_count"] >= 1
    assert hardware["libraries"]["pytest"]
    assert data["dlq"]["asserted"] == 1
    assert data["services"] == []
    (row,) = data["performance"]
    assert row["nodeid"] == "test_perf.py::test_transform"
    assert row["records"] == 1000
    assert row["outcome"] == "passed"
    assert 0.015 < row["seconds"] < 2
    assert row["records_per_second"] > 0
    assert row["peak_memory_mb"] >= 0
    assert row["memory_method"] == "hwm-reset"
    assert row["limits"]["max_seconds"] == 5.0
    assert row["limits"]["max_memory_mb"] == 500.0
    assert 50 < row["headroom_pct"] <= 100


def test_no_performance_tests_still_writes_the_report(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile("def test_plain(): pass")
    out = pytester.path / "r.json"
    result = pytester.runpytest("--pipeline-report", str(out))
    result.assert_outcomes(passed=1)
    assert "pytest-pipeline performance" not in result.stdout.str()
    assert json.loads(out.read_text())["performance"] == []


def test_compare_across_hardware_classes_is_refused(project: pytest.Pytester) -> None:
    baseline = project.path / "baseline.json"
    _write_baseline(baseline, [], cpu_model="Some Other CPU", cpu_count=128)
    result = project.runpytest("--pipeline-compare", str(baseline))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            f"ERROR: pytest-pipeline: --pipeline-compare refused: {baseline} was made on a "
            "different hardware class (cpu_model: 'Some Other CPU' vs * here; cpu_count: 128 vs "
            "* here). Performance figures are only comparable on the same hardware class*"
        ]
    )


def test_compare_with_a_missing_or_foreign_file(project: pytest.Pytester) -> None:
    result = project.runpytest("--pipeline-compare", "nope.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--pipeline-compare: no such report file: nope.json*"])
    (project.path / "other.json").write_text('{"benchmarks": []}')
    result = project.runpytest("--pipeline-compare", "other.json")
    result.stderr.fnmatch_lines(["*other.json is not a pytest-pipeline report*"])


def test_regression_detected_against_a_faster_baseline(project: pytest.Pytester) -> None:
    baseline = project.path / "baseline.json"
    row = {
        "nodeid": "test_perf.py::test_transform",
        "seconds": 0.002,
        "records_per_second": 500_000.0,
        "peak_memory_mb": 0.0,
    }
    _write_baseline(baseline, [row])
    out = project.path / "now.json"
    result = project.runpytest(
        "-p", "no:randomly", "--pipeline-compare", str(baseline), "--pipeline-report", str(out)
    )
    result.assert_outcomes(passed=2)  # reported, not failed
    result.stdout.fnmatch_lines(
        [
            "*pytest-pipeline performance regressions*",
            f"2 regression(s) beyond 10% against {baseline}:",
            "  test_perf.py::test_transform: seconds 0.002 s -> 0.02* s (+*% worse)",
            "  test_perf.py::test_transform: records_per_second 5e+05 records/s -> * (+*% worse)",
        ]
    )
    comparison = json.loads(out.read_text())["comparison"]
    assert comparison["threshold"] == 0.1
    assert len(comparison["regressions"]) == 2


def test_no_regression_within_threshold(project: pytest.Pytester) -> None:
    baseline = project.path / "baseline.json"
    row = {"nodeid": "test_perf.py::test_transform", "seconds": 0.021, "peak_memory_mb": 0.0}
    _write_baseline(baseline, [row])
    result = project.runpytest(
        "--pipeline-compare", str(baseline), "--pipeline-compare-threshold", "5"
    )
    result.stdout.fnmatch_lines(["pytest-pipeline: no performance regression beyond 500% *"])


def test_compare_ignores_noise_and_improvements() -> None:
    earlier = [{"nodeid": "a", "seconds": 0.001, "peak_memory_mb": 0.1, "records_per_second": 10}]
    now = [{"nodeid": "a", "seconds": 0.003, "peak_memory_mb": 0.9, "records_per_second": 20}]
    assert regressions.compare(earlier, now) == []
    now = [{"nodeid": "a", "seconds": 0.5, "peak_memory_mb": 50.0, "records_per_second": 5}]
    assert {c.metric for c in regressions.compare(earlier, now)} == {
        "seconds",
        "peak_memory_mb",
        "records_per_second",
    }


def test_table_columns() -> None:
    lines = perf_report.table(
        [
            {
                "nodeid": "t.py::a",
                "records": 100_000,
                "seconds": 1.5,
                "records_per_second": 66_666.7,
                "peak_memory_mb": 12.34,
                "limits": {"max_seconds": 10.0, "max_memory_mb": 500.0},
                "headroom_pct": 85.0,
            }
        ]
    )
    assert lines[0].split() == [
        "test",
        "records",
        "seconds",
        "records/s",
        "peak",
        "MB",
        "budget",
        "headroom",
    ]
    assert lines[1].split() == [
        "t.py::a",
        "100,000",
        "1.500",
        "66,667",
        "12.3",
        "10.00",
        "s,",
        "500",
        "MB",
        "+85%",
    ]


def test_xdist_measures_serially_and_says_so(project: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    project.makepyfile(
        test_more="""
        import pytest

        @pytest.mark.parametrize("n", range(4))
        @pytest.mark.performance(records=10)
        def test_p(budget, n):
            budget.run(sum, range(1000))
        """
    )
    out = project.path / "x.json"
    result = project.runpytest_subprocess("-n", "2", "--pipeline-report", str(out))
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines(
        [
            "*= pytest-pipeline performance =*",
            "note: performance tests ran under pytest-xdist (* worker(s) measured): measured "
            "sections were serialised across workers*-p no:xdist`.",
        ]
    )
    data = json.loads(out.read_text())
    assert len(data["performance"]) == 5
    assert {row["worker"] for row in data["performance"]} <= {"gw0", "gw1"}
    assert "pytest-xdist" in data["notes"][0]
