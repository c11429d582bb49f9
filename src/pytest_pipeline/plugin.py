"""pytest hooks of pytest-pipeline (the ``pytest11`` entry point ``pipeline``).

Kept thin: each hook delegates to the module that owns the concern. Importing this module
imports no data or client library (pandas, pyarrow, psycopg, ...): they load when used.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from pytest_pipeline import config as _config
from pytest_pipeline import dlq as _dlq
from pytest_pipeline import fixtures as _fixtures
from pytest_pipeline import markers as _markers
from pytest_pipeline import perf_plugin as _perf
from pytest_pipeline import quality_plugin as _quality
from pytest_pipeline import seeding as _seeding
from pytest_pipeline.errors import PipelineWarning
from pytest_pipeline.reporting import run_report
from pytest_pipeline.services import fixtures as _service_fixtures
from pytest_pipeline.services.session import ServiceHooks

TRACKER_KEY = pytest.StashKey[_dlq.DlqTracker]()


def pytest_addoption(parser: pytest.Parser) -> None:
    _config.add_options(parser)


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> int | None:
    if not config.option.pipeline_doctor:
        return None
    from pytest_pipeline import doctor

    print(doctor.render(_config.from_pytest(config)))
    return 0


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    _markers.register(config)
    resolved = _config.from_pytest(config)  # a bad config stops the run before collection
    config.pluginmanager.register(_fixtures, "pipeline-fixtures")
    config.pluginmanager.register(_service_fixtures, "pipeline-services")
    config.pluginmanager.register(PipelineSession(config, resolved), "pipeline-session")
    config.pluginmanager.register(ServiceHooks(config, resolved), "pipeline-service-hooks")
    config.pluginmanager.register(_quality, "pipeline-quality")
    config.pluginmanager.register(_quality.QualityHooks(config), "pipeline-quality-hooks")
    config.pluginmanager.register(_perf, "pipeline-budget")
    config.pluginmanager.register(_perf.PerfHooks(config, resolved), "pipeline-performance")


class PipelineSession:
    """Per-session hooks: layer marking, seeding, the DLQ rule and the summary."""

    def __init__(self, config: pytest.Config, resolved: _config.PipelineConfig) -> None:
        self.config = config
        self.resolved = resolved
        self.dlq_summary = _dlq.DlqSummary()
        self.updated_fixtures: list[str] = []
        self._reported_updates = 0

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        # pytest-xdist controller: with seed = "random" each worker would draw its own.
        node.workerinput["pipeline_seed"] = self.resolved.seed

    def pytest_report_header(self) -> str:
        source = (
            f"[tool.pytest-pipeline] in {self.resolved.source.name}"
            if self.resolved.source
            else "no [tool.pytest-pipeline] section"
        )
        return f"pipeline: {self.resolved.describe()} ({source})"

    @pytest.hookimpl(wrapper=True)
    def pytest_collection_modifyitems(
        self, session: pytest.Session, items: list[pytest.Item]
    ) -> Generator[None, None, None]:
        # Before the other hooks, so `-m unit` selects tests marked by their directory.
        _markers.apply_layer_dirs(items, self.resolved.layer_dirs)
        yield
        bad: dict[str, list[str]] = {}
        for item in items:
            for violation in _markers.check_item(item, self.resolved.require_layer):
                bad.setdefault(violation.nodeid, []).append(violation.message)
        for nodeid, messages in bad.items():
            # A failed collect report is what pytest itself makes of a broken test module:
            # "ERROR collecting ...", and the run stops before running anything.
            report = pytest.CollectReport(nodeid, "failed", "\n".join(messages), result=[])
            session.ihook.pytest_collectreport(report=report)
        items[:] = [item for item in items if item.nodeid not in bad]

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        seed = _seeding.derive_seed(self.resolved.seed, item.nodeid)
        item.stash[_fixtures.SEED_KEY] = seed
        _seeding.seed_everything(seed)
        item.stash[TRACKER_KEY] = _dlq.begin(item.nodeid)

    def _rule_applies(self, item: pytest.Item) -> bool:
        return (
            self.resolved.dlq_assertions != "off"
            and item.get_closest_marker("integration") is not None
            and item.get_closest_marker("no_dlq") is None
        )

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, None, None]:
        tracker = item.stash.get(TRACKER_KEY, None)
        if tracker is None or not self._rule_applies(item):
            return (yield)
        with _dlq.PlainAssertWatcher(tracker, self.resolved.rootdir, Path(item.path)):
            result = yield  # a failing test raises here and the rule has nothing to add
        if not tracker.asserted:
            tracker.violated = True
            message = _dlq.violation_message(item.nodeid)
            if self.resolved.dlq_assertions == "strict":
                pytest.fail(message, pytrace=False)
            warnings.warn(PipelineWarning(message), stacklevel=1)
        return result

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> None:
        _dlq.end()

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        if report.when == "call" and item.get_closest_marker("integration") is not None:
            tracker = item.stash.get(TRACKER_KEY, None)
            # A plain attribute survives pytest-xdist's report serialisation to the controller.
            report.pipeline_dlq = _dlq.classify(  # type: ignore[attr-defined]
                exempt=item.get_closest_marker("no_dlq") is not None,
                asserted=bool(tracker and tracker.asserted),
                violated=bool(tracker and tracker.violated),
                outcome=report.outcome,
            )
        store = self.config.stash.get(_fixtures.STORE_KEY, None)
        if store is not None and len(store.updated) > self._reported_updates:
            # Plain attribute: reaches the xdist controller, which prints the summary.
            report.pipeline_updated = [  # type: ignore[attr-defined]
                os.path.relpath(path, self.resolved.rootdir)
                for path in store.updated[self._reported_updates :]
            ]
            self._reported_updates = len(store.updated)
        if report.failed and _fixtures.SEED_KEY in item.stash:
            base = self.resolved.seed
            report.sections.append(
                (
                    "pytest-pipeline seed",
                    f"test seed {item.stash[_fixtures.SEED_KEY]} (base seed {base}); "
                    f"reproduce with --pipeline-seed {base}",
                )
            )
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        outcome = getattr(report, "pipeline_dlq", None)
        if outcome is not None and report.when == "call":
            self.dlq_summary.add(outcome)
        self.updated_fixtures.extend(getattr(report, "pipeline_updated", ()))

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        run_report(self.config).set("dlq", self.dlq_summary.as_dict())
        line = self.dlq_summary.line(self.resolved.dlq_assertions)
        if line:
            terminalreporter.write_line(line)
        if self.updated_fixtures:
            terminalreporter.write_line(
                f"pytest-pipeline: --pipeline-update-fixtures wrote "
                f"{len(self.updated_fixtures)} fixture file(s); review them before committing:"
            )
            for path in self.updated_fixtures:
                terminalreporter.write_line(f"  {path}")
