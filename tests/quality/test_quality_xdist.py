"""Under pytest-xdist, quality tests share one worker so Great Expectations is imported once."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_pipeline.quality.plugin import quality_group

pytest.importorskip("xdist")

SUITE = {
    "name": "orders",
    "expectations": [{"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "id"}}],
}

# Each test records which process ran it. The modules do not import GE themselves: the
# expectations fixture (or validate()) does.
QUALITY_TESTS = """
    import os

    import pandas as pd
    import pytest

    LOG = {log!r}

    def _record(name):
        with open(LOG, "a") as log:
            log.write(f"{{name}} {{os.getpid()}}\\n")

    @pytest.mark.parametrize("n", range(3))
    def test_fixture_{file}(expectations, n):
        _record("fixture")
        expectations.assert_valid(pd.DataFrame({{"id": [1, 2]}}), "orders")

    @pytest.mark.quality
    def test_direct_{file}():
        # No fixture: grouped by its quality marker; validate() imports GE itself.
        from pytest_pipeline.quality import validate

        _record("direct")
        assert validate(pd.DataFrame({{"id": [1]}}), "orders", expectations_dir="suites").success

    @pytest.mark.parametrize("n", range(4))
    def test_plain_{file}(n):
        _record("plain")
"""

LOADED = re.compile(r"^quality: Great Expectations \S+ loaded in \d+\.\d\d s$", re.M)


@pytest.fixture
def xdist_project(
    pytester: pytest.Pytester, pipeline_toml: Callable[[str], None]
) -> Callable[..., tuple[pytest.RunResult, list[tuple[str, int]]]]:
    pipeline_toml('expectations_dir = "suites"\n')
    (pytester.path / "suites").mkdir()
    (pytester.path / "suites" / "orders.json").write_text(json.dumps(SUITE))
    log = pytester.path / "runs.log"
    for file in ("a", "b"):
        pytester.makepyfile(
            **{f"test_orders_{file}": QUALITY_TESTS.format(log=str(log), file=file)}
        )

    def run(*args: str) -> tuple[pytest.RunResult, list[tuple[str, int]]]:
        log.unlink(missing_ok=True)
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2", *args)
        rows = [line.split() for line in log.read_text().splitlines()]
        return result, [(kind, int(pid)) for kind, pid in rows]

    return run


def _quality_pids(runs: list[tuple[str, int]]) -> set[int]:
    return {pid for kind, pid in runs if kind != "plain"}


def test_loadgroup_keeps_quality_tests_on_one_worker(
    xdist_project: Callable[..., tuple[pytest.RunResult, list[tuple[str, int]]]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A temp root of this test's own: the run's group directory is created there.
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    result, runs = xdist_project("--dist", "loadgroup", "-v")
    result.assert_outcomes(passed=16)
    output = result.stdout.str()
    assert len(_quality_pids(runs)) == 1, runs
    # So GE is imported, and announced, once.
    assert len(LOADED.findall(output)) == 1, output
    # Only quality tests are grouped: the others still spread over both workers.
    assert len({pid for _, pid in runs}) == 2, runs
    # The tests keep their ids (xdist's own groups add "@group" to them).
    result.stdout.fnmatch_lines(["*PASSED test_orders_a.py::test_direct_a "])
    assert "::test_direct_a@" not in output
    assert "imported by" not in output
    # The workers' lists went in a directory of the run, removed at its end.
    runs_root = tmp_path / "tmp" / f"pytest-pipeline-{os.getuid()}"
    assert runs_root.is_dir()
    assert list(runs_root.glob("quality-*")) == []


def test_the_group_is_the_tests_that_import_ge_without_a_group_of_their_own(
    pytester: pytest.Pytester,
) -> None:
    items = pytester.getitems(
        """
        import pytest

        def test_fixture(expectations):
            pass

        @pytest.fixture
        def checked(expectations):
            return expectations

        def test_indirect(checked):
            pass

        @pytest.mark.quality
        def test_marked():
            pass

        @pytest.mark.xdist_group("mine")
        def test_own_group(expectations):
            pass

        def test_plain():
            pass
        """
    )
    assert [nodeid.split("::")[1] for nodeid in quality_group(items)] == [
        "test_fixture",
        "test_indirect",
        "test_marked",
    ]


def test_spread_quality_tests_get_a_hint(
    xdist_project: Callable[..., tuple[pytest.RunResult, list[tuple[str, int]]]],
) -> None:
    # The default --dist load spreads them (both workers import GE): the summary says so once.
    result, runs = xdist_project()
    result.assert_outcomes(passed=16)
    output = result.stdout.str()
    assert len(_quality_pids(runs)) == 2, runs
    assert len(LOADED.findall(output)) == 2, output
    result.stdout.fnmatch_lines(
        [
            "pytest-pipeline quality: Great Expectations was imported by 2 xdist workers; "
            "--dist loadgroup runs the quality tests on one worker and imports it once"
        ]
    )


def test_no_hint_without_xdist_or_with_an_explicit_mode(
    xdist_project: Callable[..., tuple[pytest.RunResult, list[tuple[str, int]]]],
) -> None:
    # --dist each runs every test on every worker: importing GE in each is the point.
    result, runs = xdist_project("--dist", "each")
    result.assert_outcomes(passed=32)
    assert len(_quality_pids(runs)) == 2, runs
    assert "imported by" not in result.stdout.str()
    result, runs = xdist_project("-n", "0")
    result.assert_outcomes(passed=16)
    assert "imported by" not in result.stdout.str()
