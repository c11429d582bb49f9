"""The ``expectations`` fixture and the quality lines of the end-of-run summary.

Importing this module imports neither Great Expectations nor pandas: the session's GE context
is created by the first quality test that validates something.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_pipeline import config as _config
from pytest_pipeline.errors import MissingDependencyError
from pytest_pipeline.report.channel import at_worker_end, channel_of, send, worker_id
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
        from pytest_pipeline.errors import QualityError

        try:
            return self._engine.suite(name)
        except QualityError as exc:
            raise exc.with_traceback(None) from None

    def validate(self, data: Any, suite: Any, *, rows: bool = False) -> QualityResult:
        """Validate ``data`` against ``suite``; the result is also recorded for the summary.

        ``rows=True`` also collects the positions of failing rows (slower on large frames).
        """
        __tracebackhide__ = True
        from pytest_pipeline.errors import QualityError

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
    hooks = QualityHooks(config)
    config.pluginmanager.register(hooks, "pipeline-quality-hooks")
    channel = channel_of(config)
    channel.on_report(hooks.send)
    channel.on_receive("quality", hooks.receive)
    _register_xdist_hooks(config)


class QualityHooks:
    """Carries each test's validations to the summary process and prints the quality lines."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.rows: list[dict[str, Any]] = []

    def send(self, item: pytest.Item, report: pytest.TestReport) -> None:
        """Report channel sender: GE's load notes, and the call's validations."""
        # Set by quality.great_expectations() (only imported once a test validated something).
        engine = sys.modules.get("pytest_pipeline.quality.engine")
        notes = engine.LOAD_NOTES if engine is not None else None
        results = item.stash.get(RESULTS_KEY, None) if report.when == "call" else None
        if not notes and not results:
            return
        data: dict[str, Any] = {}
        if notes:
            data["notes"] = list(notes)
            notes.clear()
        if results:
            data["rows"] = [
                {"test": item.nodeid, "test_passed": report.passed, **row} for row in results
            ]
        send(report, "quality", data)

    def receive(self, report: pytest.TestReport, data: dict[str, Any]) -> None:
        """Report channel receiver: print the notes; add the rows to the summary and report."""
        write_notes(self.config, data.get("notes", ()))
        rows = data.get("rows")
        if rows:
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


# --------------------------------------------------------------- pytest-xdist: one GE import

#: The xdist group of the quality tests under ``--dist loadgroup``.
XDIST_GROUP = "pytest-pipeline-quality"
#: A worker tells the controller whether its tests imported Great Expectations.
# The modes in which xdist spreads tests over workers by itself ("each" runs every test on
# every worker; "loadgroup" keeps the quality group together).
_SPREADING = frozenset({"load", "loadscope", "loadfile", "worksteal"})


def _register_xdist_hooks(config: pytest.Config) -> None:
    # xdist is not imported here: its settings are read off config.
    if worker_id(config) is not None:
        from pytest_pipeline.report.channel import from_controller

        group_dir = from_controller(config, "quality")
        if group_dir is not None:
            config.pluginmanager.register(QualityGroupIds(group_dir), "pipeline-quality-group")
        config.pluginmanager.register(QualityImportProbe(config), "pipeline-quality-probe")
        return
    if not getattr(config.option, "tx", None):
        return
    dist = getattr(config.option, "dist", "no")
    if dist == "loadgroup":
        scheduling = QualityScheduling()
        config.pluginmanager.register(scheduling, "pipeline-quality-scheduling")
        channel_of(config).to_workers("quality", scheduling.group_dir)
    elif dist in _SPREADING:
        hint = QualitySpreadHint()
        config.pluginmanager.register(hint, "pipeline-quality-spread")
        channel_of(config).on_worker_end("quality", hint.worker_ended)


def imports_great_expectations(item: pytest.Item) -> bool:
    """Whether ``item`` uses the ``expectations`` fixture or carries the ``quality`` marker."""
    fixtures = getattr(item, "fixturenames", ())
    return "_pipeline_quality_engine" in fixtures or item.get_closest_marker("quality") is not None


def quality_group(items: list[pytest.Item]) -> list[str]:
    """Node ids of the tests that go to one worker: those that import GE, except the tests
    that name their own ``xdist_group``."""
    return [
        item.nodeid
        for item in items
        if item.get_closest_marker("xdist_group") is None and imports_great_expectations(item)
    ]


class QualityGroupIds:
    """In an xdist worker under ``--dist loadgroup``: tells the controller's scheduler which of
    the collected tests are quality tests (a file in the run's private directory)."""

    def __init__(self, group_dir: str) -> None:
        self.group_dir = Path(group_dir)

    # tryfirst: before xdist's worker sends the collected ids, which starts the scheduling.
    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        from pytest_pipeline import _safedir

        if not _safedir.check(self.group_dir):
            return
        worker = worker_id(session.config)
        path = self.group_dir / f"{worker}.json"
        # O_EXCL | O_NOFOLLOW: a name already there (or a symlink) is not ours to write; the
        # scheduler reads any worker's list (they all collected the same tests).
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileExistsError:
            return
        with os.fdopen(fd, "w") as out:
            json.dump({"ids": quality_group(session.items)}, out)


class QualityScheduling:
    """In the xdist controller under ``--dist loadgroup``: schedules the quality tests as one
    group, so one worker imports Great Expectations.

    Membership comes from the workers' collection, not from node ids: the tests keep their ids
    (no ``@group`` suffix), and it works where xdist's own ``xdist_group`` suffix does not
    (pytest 9.2 with pytest-xdist 3.8 drops it).
    """

    def __init__(self) -> None:
        self._dir: Path | None = None

    def group_dir(self) -> str:
        """The run's private directory for the workers' lists (created for the first worker)."""
        if self._dir is None:
            from pytest_pipeline import _safedir

            self._dir = _safedir.scratch_dir("quality")
        return str(self._dir)

    def group_ids(self) -> frozenset[str]:
        """The quality tests' ids that the workers wrote (all workers collect the same)."""
        from pytest_pipeline import _safedir

        ids: set[str] = set()
        if self._dir is not None and _safedir.check(self._dir):
            for path in sorted(self._dir.glob("*.json")):
                listed = (_safedir.read_json(path) or {}).get("ids")
                ids.update(str(nodeid) for nodeid in listed or ())
        return frozenset(ids)

    @pytest.hookimpl(wrapper=True, optionalhook=True)
    def pytest_xdist_make_scheduler(
        self, config: pytest.Config, log: Any
    ) -> Generator[None, Any, Any]:
        scheduler = yield
        from xdist.scheduler import LoadGroupScheduling

        if type(scheduler) is not LoadGroupScheduling:
            return scheduler  # a scheduler of the user's own (a conftest hook) stays
        group_ids = self.group_ids

        class QualityGroupScheduling(LoadGroupScheduling):  # type: ignore[misc]
            quality: frozenset[str] | None = None

            def _split_scope(self, nodeid: str) -> str:
                # First called once every worker has collected (and written its list).
                if self.quality is None:
                    self.quality = group_ids()
                if nodeid in self.quality:
                    return XDIST_GROUP
                return str(super()._split_scope(nodeid))

        return QualityGroupScheduling(config, log)

    def pytest_unconfigure(self) -> None:
        if self._dir is not None:
            from pytest_pipeline import _safedir

            _safedir.remove(self._dir, [self._dir.parent])
            self._dir = None


class QualityImportProbe:
    """In an xdist worker: whether its tests imported Great Expectations, told at session end."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.before_tests = True

    def pytest_collection_finish(self) -> None:
        # A test module importing GE itself loads it in every worker, whatever the grouping.
        self.before_tests = "great_expectations" in sys.modules

    def pytest_sessionfinish(self) -> None:
        imported = not self.before_tests and "great_expectations" in sys.modules
        at_worker_end(self.config, "quality", imported)


class QualitySpreadHint:
    """In the xdist controller under a spreading ``--dist``: one summary line when several
    workers imported Great Expectations, naming the mode that imports it once."""

    def __init__(self) -> None:
        self.workers = 0

    def worker_ended(self, imported_ge: bool) -> None:
        """Report channel: a worker ended, and said whether its tests imported GE."""
        if imported_ge:
            self.workers += 1

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.workers > 1:
            terminalreporter.write_line(
                f"pytest-pipeline quality: Great Expectations was imported by {self.workers} "
                "xdist workers; --dist loadgroup runs the quality tests on one worker and "
                "imports it once"
            )
