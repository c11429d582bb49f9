"""The ``expectations`` fixture and the quality lines of the end-of-run summary.

Importing this module imports neither Great Expectations nor pandas: the session's GE context
is created by the first quality test that validates something.
"""

from __future__ import annotations

import sys
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import pytest

from pytest_pipeline import config as _config
from pytest_pipeline.errors import MissingDependencyError
from pytest_pipeline.report.collect import run_report, write_notes

if TYPE_CHECKING:
    from pytest_pipeline.quality.engine import QualityEngine, QualityResult

RESULTS_KEY = pytest.StashKey[list[dict[str, Any]]]()


class Expectations:
    """What the ``expectations`` fixture gives: suites from ``expectations_dir``, validation.

    ``data`` may be a pandas DataFrame, a pyarrow Table, or the name of a fixture file in
    ``fixtures_dir``; a suite may be a suite name, a GE ``ExpectationSuite`` or a list of GE
    expectation objects.
    """

    def __init__(self, engine: QualityEngine, request: pytest.FixtureRequest) -> None:
        self._engine = engine
        self._request = request

    def suite(self, name: str) -> Any:
        """The GE ``ExpectationSuite`` saved as ``<expectations_dir>/<name>.json`` (fresh)."""
        __tracebackhide__ = True
        from pytest_pipeline.quality.engine import QualityError

        try:
            return self._engine.suite(name)
        except QualityError as exc:
            raise exc.with_traceback(None) from None

    def validate(self, data: Any, suite: Any, *, rows: bool = False) -> QualityResult:
        """Validate ``data`` against ``suite``; the result is also recorded for the summary.

        ``rows=True`` also collects the positions of failing rows (slower on large frames).
        """
        __tracebackhide__ = True
        from pytest_pipeline.quality.engine import QualityError

        try:
            if isinstance(data, str):
                store = self._request.getfixturevalue("_pipeline_fixture_store")
                data = store.load_dataframe(data)
            result = self._engine.validate(data, suite, rows=rows)
        except QualityError as exc:
            raise exc.with_traceback(None) from None
        self._request.node.stash.setdefault(RESULTS_KEY, []).append(result.as_dict())
        return result

    def assert_valid(self, data: Any, suite_or_expectations: Any) -> QualityResult:
        """Fail the test, one line per failed expectation, unless ``data`` meets the suite."""
        __tracebackhide__ = True
        result = self.validate(data, suite_or_expectations)
        if not result.success:
            raise AssertionError(result.message())
        return result


@pytest.fixture(scope="session")
def _pipeline_quality_engine(pipeline_config: _config.PipelineConfig) -> QualityEngine:
    # One engine (one GE context, created on first validation) per session.
    from pytest_pipeline.quality.engine import QualityEngine, SuiteLibrary, great_expectations

    __tracebackhide__ = True
    try:
        great_expectations()  # a missing extra fails the test's setup with the install command
    except MissingDependencyError as exc:
        raise exc.with_traceback(None) from None
    library = SuiteLibrary(pipeline_config.expectations_dir, rootdir=pipeline_config.rootdir)
    return QualityEngine(library)


@pytest.fixture
def expectations(
    _pipeline_quality_engine: QualityEngine, request: pytest.FixtureRequest
) -> Expectations:
    """``expectations.suite(name)``, ``.validate(data, suite)``, ``.assert_valid(data, suite)``."""
    return Expectations(_pipeline_quality_engine, request)


def register(config: pytest.Config, resolved: _config.PipelineConfig) -> None:
    """Register the ``expectations`` fixture and the quality summary hooks."""
    config.pluginmanager.register(sys.modules[__name__], "pipeline-quality")
    config.pluginmanager.register(QualityHooks(config), "pipeline-quality-hooks")


class QualityHooks:
    """Carries each test's validations to the summary process and prints the quality lines."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.rows: list[dict[str, Any]] = []

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        # Set by quality.great_expectations() (only imported once a test validated something).
        quality = sys.modules.get("pytest_pipeline.quality.engine")
        if quality is not None and quality.LOAD_NOTES:
            report.pipeline_quality_notes = list(quality.LOAD_NOTES)  # type: ignore[attr-defined]
            quality.LOAD_NOTES.clear()
        if report.when == "call":
            results = item.stash.get(RESULTS_KEY, None)
            if results:
                # Plain data on the report reaches the pytest-xdist controller.
                report.pipeline_quality = [  # type: ignore[attr-defined]
                    {"test": item.nodeid, "test_passed": report.passed, **row} for row in results
                ]
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        write_notes(self.config, getattr(report, "pipeline_quality_notes", ()))
        rows = getattr(report, "pipeline_quality", None)
        if rows and report.when == "call":
            self.rows.extend(rows)
            # Added as they arrive, so the report has them whenever it is written.
            run_report(self.config).add("quality", list(rows))

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.rows:
            return
        failing = [row for row in self.rows if not row["success"]]
        # A passing test that shows the suite catches bad data fails a validation on purpose:
        # counted apart, not listed with the real failures.
        failed = [row for row in failing if not row.get("test_passed")]
        expected = len(failing) - len(failed)
        suites = len({row["suite"] for row in self.rows})
        terminalreporter.write_line(
            f"pytest-pipeline quality: {len(self.rows)} validation(s) of {suites} suite(s), "
            f"{len(failed)} failed"
            + (f"; {expected} more failed in tests that passed (expected)" if expected else "")
        )
        for row in failed:
            columns = list(dict.fromkeys(c for f in row["failed"] for c in f["columns"]))
            terminalreporter.write_line(
                f"  {row['test']}: suite {row['suite']!r} on {row['rows']} rows, "
                f"{len(row['failed'])} of {row['evaluated']} expectations failed"
                + (f" (columns: {', '.join(columns)})" if columns else "")
            )
