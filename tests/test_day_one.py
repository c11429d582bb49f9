"""Issue 13 section 6: what new users hit on their first day.

A config dropped by a rootdir chosen from an option's path, a misspelt table name,
``pytest-pipeline --version``, an extra for s3fs, ``budget.run`` keywords meant for the function,
``--pipeline-compare-fail`` and where each budget limit came from.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from pytest_pipeline import _optional
from pytest_pipeline.cli import main as cli
from pytest_pipeline.config import read_pyproject
from pytest_pipeline.errors import ConfigError
from pytest_pipeline.report import document as perf_report

REPO = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- rootdir


def _baseline(path: Path, rows: list[dict[str, Any]]) -> Path:
    perf_report.write_report(path, perf_report.build_report({"performance": rows}, [], []))
    return path


def test_a_config_dropped_by_the_rootdir_is_named(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `--pipeline-compare PATH` (space) with PATH outside the project: pytest takes PATH for a
    # test path while choosing the rootdir, so the rootdir becomes a common parent folder.
    project = pytester.mkdir("project")
    (project / "pyproject.toml").write_text('[tool.pytest-pipeline]\ndlq_assertions = "off"\n')
    (project / "test_a.py").write_text("def test_a():\n    pass\n")
    baseline = _baseline(pytester.mkdir("elsewhere") / "base.json", [])
    monkeypatch.chdir(project)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--pipeline-compare", baseline)
    result.assert_outcomes(passed=1)
    rootdir = pytester.path
    result.stdout.fnmatch_lines(
        [
            f"*PipelineWarning: pytest-pipeline: the rootdir {rootdir} has no "
            f"[[]tool.pytest-pipeline[]], so the one in {project / 'pyproject.toml'} is NOT "
            f"used. Pass options that take a path with '=' (--pipeline-compare=PATH), or run "
            f"with --rootdir={project}.",
        ]
    )
    # With '=' the rootdir is the project's and nothing is said.
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", f"--pipeline-compare={baseline}"
    )
    result.assert_outcomes(passed=1)
    assert "is NOT used" not in result.stdout.str()
    result.stdout.fnmatch_lines(["pipeline: *dlq_assertions=off*"])


def test_a_dropped_config_is_in_the_header_and_the_warning_points_at_it(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = pytester.mkdir("project")
    pyproject = project / "pyproject.toml"
    pyproject.write_text('[project]\nname = "p"\n\n[tool.pytest-pipeline]\nseed = 3\n')
    (project / "test_a.py").write_text("def test_a():\n    pass\n")
    baseline = _baseline(pytester.mkdir("elsewhere") / "base.json", [])
    monkeypatch.chdir(project)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--pipeline-compare", baseline)
    result.assert_outcomes(passed=1)
    # Before the tests run, not only in the summary at the end.
    header = result.stdout.str().split("collected")[0]
    assert f"the one in {pyproject} is NOT used" in header
    result.stdout.fnmatch_lines(
        [f"*{pyproject}:4: PipelineWarning: *", "*[[]tool.pytest-pipeline[]]"]
    )
    assert "config.py" not in result.stdout.str()
    assert "issue_config_time_warning" not in result.stdout.str()


def test_no_warning_without_a_pipeline_table_anywhere(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = pytester.mkdir("project")
    (project / "pyproject.toml").write_text("[tool.other]\nx = 1\n")
    (project / "test_a.py").write_text("def test_a():\n    pass\n")
    baseline = _baseline(pytester.mkdir("elsewhere") / "base.json", [])
    monkeypatch.chdir(project)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--pipeline-compare", baseline)
    result.assert_outcomes(passed=1)
    assert "NOT used" not in result.stdout.str()


# --------------------------------------------------------------------------- table name


@pytest.mark.parametrize(
    ("table", "body"),
    [
        ("pytest_pipeline", "seed = 7\n"),
        ("pytest-pipelines", "seed = 7\n"),
        ("pytest_pipeline.performance.budgets", "max_seconds = 2\n"),
        ("pipeline", 'dlq_assertions = "warn"\n'),
    ],
)
def test_a_misspelt_table_name_is_an_error(
    pytester: pytest.Pytester, assert_usage_error: Callable[..., None], table: str, body: str
) -> None:
    pytester.makepyprojecttoml(f"[tool.{table}]\n{body}")
    pytester.makepyfile("def test_a(): pass")
    shown = table.split(".", 1)[0]
    assert_usage_error(
        pytester.runpytest(),
        f"*pytest-pipeline: [[]tool.{shown}[]] in {pytester.path / 'pyproject.toml'} is not "
        "read: the table is [[]tool.pytest-pipeline[]] (with a hyphen). Rename it.",
    )


def test_another_tools_pipeline_table_is_left_alone(tmp_path: Path) -> None:
    # [tool.pipeline] of some other tool (none of our keys in it) is not ours to judge.
    path = tmp_path / "pyproject.toml"
    path.write_text('[tool.pipeline]\nstages = ["a", "b"]\n')
    assert read_pyproject(path) == {}
    # With the right table present, a near-miss beside it is not reported either.
    path.write_text("[tool.pytest-pipeline]\nseed = 1\n[tool.pipeline]\nseed = 2\n")
    assert read_pyproject(path) == {"seed": 1}
    path.write_text("[tool.pytest_pipeline]\n")
    with pytest.raises(ConfigError, match=r"\[tool.pytest_pipeline\] in .* is not read"):
        read_pyproject(path)


# --------------------------------------------------------------------------- --version


def test_version_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"pytest-pipeline {metadata.version('pytest-pipeline')}\n"


def test_the_console_script_reads_metadata_only_for_version(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Reading the installed distributions' metadata is slow in a big venv: only --version may.
    def refuse(name: str) -> str:
        raise AssertionError(f"metadata.version({name!r}) read without --version")

    monkeypatch.setattr(metadata, "version", refuse)
    args = cli.build_parser().parse_args(["report", "reports/"])
    assert args.command == "report"
    with pytest.raises(AssertionError, match="read without --version"):
        cli.main(["--version"])


def test_version_of_the_console_script() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest_pipeline.cli.main", "--version"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert done.stdout == f"pytest-pipeline {metadata.version('pytest-pipeline')}\n"


# --------------------------------------------------------------------------- s3fs extra


def _extras() -> dict[str, list[str]]:
    data = tomllib.loads((REPO / "pyproject.toml").read_text())
    extras: dict[str, list[str]] = data["project"]["optional-dependencies"]
    return extras


def test_an_extra_installs_s3fs_for_storage_options() -> None:
    extras = _extras()
    assert any(dep.startswith("s3fs") for dep in extras["s3fs"]), extras["s3fs"]
    # Not in `all`: resolving s3fs's botocore pin against boto3's newest backtracks for minutes.
    assert "s3fs" not in extras["all"][0]
    line = _optional.requirement("local,s3fs")
    assert line == "pytest-pipeline[local,s3fs]>=1.0"
    assert f'pip install "{line}"' in (REPO / "docs" / "services.md").read_text()


def test_pandas_reads_the_s3_fixture_through_storage_options(pytester: pytest.Pytester) -> None:
    pytest.importorskip("s3fs")
    pytester.makepyfile(
        """
        import pandas as pd
        import pytest

        @pytest.mark.integration
        @pytest.mark.no_dlq(reason="a file round trip; no pipeline, no DLQ")
        def test_round_trip(s3):
            url = f"s3://{s3.bucket('orders')}/in.csv"
            frame = pd.DataFrame({"id": [1, 2], "amount": [3.5, 4.0]})
            frame.to_csv(url, index=False, storage_options=s3.storage_options)
            back = pd.read_csv(url, storage_options=s3.storage_options)
            assert back.to_dict("list") == {"id": [1, 2], "amount": [3.5, 4.0]}
        """
    )
    pytester.runpytest("--pipeline-backend=local").assert_outcomes(passed=1)


# --------------------------------------------------------------------------- budget.run


def test_budget_timed_passes_every_keyword_to_the_function(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        def load(rows, *, records, fn="f"):
            return (rows, records, fn)

        @pytest.mark.performance(max_seconds=5)
        def test_timed(budget):
            # records= and fn= are the function's own keywords here.
            timed = budget.timed(load, records=3)
            assert timed("r", records=[1, 2, 3], fn="g") == ("r", [1, 2, 3], "g")
            assert budget.result.records == 3

        def echo(*args, **kwargs):
            return args, kwargs

        @pytest.mark.performance(max_seconds=5)
        def test_run_keeps_working(budget):
            # run() keeps records= for itself; a keyword named fn now reaches the function.
            assert budget.run(echo, 1, records=10, fn="x") == ((1,), {"fn": "x"})
            assert budget.result.records == 10
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=2)


# --------------------------------------------------------------------------- compare-fail


COMPARED = """
import time
import pytest

@pytest.mark.performance(records=1000, max_seconds=5)
def test_transform(budget):
    with budget.measure():
        time.sleep(0.02)
"""
FAST_ROW = {
    "nodeid": "test_perf.py::test_transform",
    "seconds": 0.002,
    "records_per_second": 500_000.0,
    "peak_memory_mb": 0.0,
}


@pytest.mark.parametrize(
    ("how", "fails"),
    [((), False), (("--pipeline-compare-fail",), True), (("env",), True), (("toml",), True)],
)
def test_compare_fail_turns_a_regression_into_a_failed_run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, how: tuple[str, ...], fails: bool
) -> None:
    pytester.makepyprojecttoml(
        "[tool.pytest-pipeline]\n" + ("compare_fail = true\n" if how == ("toml",) else "")
    )
    pytester.makepyfile(test_perf=COMPARED)
    baseline = _baseline(pytester.path / "baseline.json", [FAST_ROW])
    if how == ("env",):
        monkeypatch.setenv("PYTEST_PIPELINE_COMPARE_FAIL", "1")
    options = [o for o in how if o.startswith("--")]
    result = pytester.runpytest(f"--pipeline-compare={baseline}", *options)
    result.assert_outcomes(passed=1)
    if fails:
        assert result.ret == pytest.ExitCode.TESTS_FAILED
        result.stdout.fnmatch_lines(
            ["*run failed: 2 performance regression(s) beyond 10% (compare_fail is on)*"]
        )
    else:
        assert result.ret == pytest.ExitCode.OK
        result.stdout.fnmatch_lines(["2 regression(s) beyond 10% against *"])


def test_compare_fail_passes_a_run_without_regression(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_perf=COMPARED)
    baseline = _baseline(pytester.path / "baseline.json", [{**FAST_ROW, "seconds": 0.021}])
    result = pytester.runpytest(
        f"--pipeline-compare={baseline}",
        "--pipeline-compare-fail",
        "--pipeline-compare-threshold=50",
    )
    assert result.ret == pytest.ExitCode.OK


# --------------------------------------------------------------------------- breach sources


def test_breach_lines_say_where_each_limit_came_from(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml(
        """
        [tool.pytest-pipeline.budgets]
        max_seconds = 0.001
        max_memory_mb = 0.001

        [[tool.pytest-pipeline.budgets.override]]
        match = "test_perf.py::test_over*"
        min_records_per_second = 1e12
        """
    )
    pytester.makepyfile(
        test_perf="""
        import time
        import pytest

        @pytest.mark.performance(records=10, max_seconds=0.002)
        def test_override(budget):
            with budget.measure():
                time.sleep(0.01)
                bytearray(20_000_000)

        @pytest.mark.performance
        def test_globals(budget):
            with budget.measure():
                time.sleep(0.01)
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "*performance budget exceeded: 10 records in 0.0* s (max 0.00 s from the marker) = "
            "* records/s (min 1,000,000,000,000/s from override 'test_perf.py::test_over*')",
            "*peak memory *.* MB (max 0.0 MB from budgets.max_memory_mb)",
            "*performance budget exceeded: 0.0* s (max 0.00 s from budgets.max_seconds)",
        ]
    )
