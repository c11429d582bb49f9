"""pytest hooks of pytest-pipeline (the ``pytest11`` entry point ``pipeline``).

Kept thin: each hook delegates to the module that owns the concern. Importing this module
imports no data or client library (pandas, pyarrow, psycopg, ...): they load when used.
"""

from __future__ import annotations

import inspect
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
from pytest_pipeline.contracts import plugin as _contracts
from pytest_pipeline.errors import PipelineWarning
from pytest_pipeline.pii import plugin as _pii
from pytest_pipeline.reporting import run_report
from pytest_pipeline.services import fixtures as _service_fixtures
from pytest_pipeline.services.session import ServiceHooks
from pytest_pipeline.synth import plugin as _synth

TRACKER_KEY = pytest.StashKey[_dlq.DlqTracker]()
# The rule's verdict waits for teardown: a project fixture may assert the count after its yield.
DLQ_DEFERRED_KEY = pytest.StashKey[str]()  # the call phase's outcome
PASS_HOOK_REFUSED_KEY = pytest.StashKey[bool]()  # enable_assertion_pass_hook = false was set


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    # Before conftest.py and test modules are imported (and their asserts rewritten).
    _enable_assertion_pass_hook(early_config)


def _enable_assertion_pass_hook(config: pytest.Config) -> None:
    """Turn on pytest's ``enable_assertion_pass_hook`` for the DLQ rule's plain asserts.

    Modules rewritten without the hook (an earlier run without this plugin) sit in pytest's
    ``.pyc`` cache; the cache name gets a suffix so that they are rewritten with it. The
    project's helper modules holding a DLQ-count assert are registered for rewriting.
    """
    from _pytest.assertion import rewrite

    if _pass_hook_refused(config):
        # The user's explicit choice stands; pytest_configure says what it costs the rule.
        config.stash[PASS_HOOK_REFUSED_KEY] = True
        return
    config._inicache["enable_assertion_pass_hook"] = True
    saved = rewrite.PYC_TAIL
    rewrite.PYC_TAIL = f".{rewrite.PYTEST_TAG}-pipeline-pass{rewrite.PYC_EXT}"
    config.add_cleanup(lambda: setattr(rewrite, "PYC_TAIL", saved))
    names = _dlq.helper_module_names(config.rootpath)
    if names:
        pytest.register_assert_rewrite(*names)


def _pass_hook_refused(config: pytest.Config) -> bool:
    """Whether the project set ``enable_assertion_pass_hook = false`` (ini file or ``-o``)."""
    value = getattr(config, "_inicfg", {}).get("enable_assertion_pass_hook")
    raw = getattr(value, "value", value)
    if raw is None:
        return False
    if isinstance(raw, bool):
        return not raw
    return str(raw).strip().lower() in ("false", "f", "no", "n", "off", "0")


PASS_HOOK_MESSAGE = (
    "pytest-pipeline: enable_assertion_pass_hook = false is set, but the DLQ rule "
    "(dlq_assertions = {mode}) needs it to see plain `assert` statements. Remove the setting "
    '(the plugin turns it on), or set dlq_assertions = "off" in [tool.pytest-pipeline].'
)


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
    if config.stash.get(PASS_HOOK_REFUSED_KEY, False) and resolved.dlq_assertions != "off":
        raise pytest.UsageError(PASS_HOOK_MESSAGE.format(mode=resolved.dlq_assertions))
    config.pluginmanager.register(_fixtures, "pipeline-fixtures")
    config.pluginmanager.register(_service_fixtures, "pipeline-services")
    config.pluginmanager.register(PipelineSession(config, resolved), "pipeline-session")
    config.pluginmanager.register(ServiceHooks(config, resolved), "pipeline-service-hooks")
    config.pluginmanager.register(_quality, "pipeline-quality")
    config.pluginmanager.register(_quality.QualityHooks(config), "pipeline-quality-hooks")
    config.pluginmanager.register(_synth, "pipeline-synth")
    config.pluginmanager.register(_perf, "pipeline-budget")
    config.pluginmanager.register(_contracts, "pipeline-contracts")
    config.pluginmanager.register(_perf.PerfHooks(config, resolved), "pipeline-performance")
    config.pluginmanager.register(_pii.PiiHooks(config, resolved), "pipeline-fixtures-pii")


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

    def pytest_report_header(self) -> list[str]:
        source = (
            f"[tool.pytest-pipeline] in {self.resolved.source.name}"
            if self.resolved.source
            else "no [tool.pytest-pipeline] section"
        )
        lines = [f"pipeline: {self.resolved.describe()} ({source})"]
        dropped = self.config.stash.get(_config.DROPPED_KEY, None)
        if dropped:  # before the tests, not only in the warnings summary at the end
            lines.append(f"pipeline: WARNING {dropped.removeprefix('pytest-pipeline: ')}")
        return lines

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
        tracker = item.stash[TRACKER_KEY] = _dlq.begin(item.nodeid)
        impls = item.ihook.pytest_assertion_pass.get_hookimpls()
        if all(impl.plugin is self for impl in impls):  # else other plugins need every event
            root = str(self.config.rootpath)
            _dlq.install_gate(tracker, root, listening=self._rule_applies(item))

    def pytest_assertion_pass(self, item: pytest.Item, orig: str, expl: str) -> None:
        """A rewritten assert passed: it is the DLQ assertion if it checked a DLQ count."""
        tracker = item.stash.get(TRACKER_KEY, None)
        if tracker is None or tracker.asserted or tracker.paused:
            return
        if _dlq.checks_dlq_count(orig, expl):
            tracker.record("plain assert")
            _dlq.retire_gate(tracker)

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
        result = yield  # a failing test raises here and the rule has nothing to add
        if not tracker.asserted:
            if _has_project_teardown(item, self.resolved.rootdir):
                item.stash[DLQ_DEFERRED_KEY] = "passed"
            else:
                self._violation(item, tracker)
        return result

    def _violation(self, item: pytest.Item, tracker: _dlq.DlqTracker) -> None:
        tracker.violated = True
        message = _dlq.violation_message(
            item.nodeid, plain_asserts_seen=self.config.getoption("assertmode") != "plain"
        )
        if self.resolved.dlq_assertions == "strict":
            pytest.fail(message, pytrace=False)
        warnings.warn(PipelineWarning(message), stacklevel=1)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> Generator[None, None, None]:
        try:
            result = yield  # fixture finalizers run here: one may assert the DLQ count
            tracker = item.stash.get(TRACKER_KEY, None)
            if item.stash.get(DLQ_DEFERRED_KEY, None) and tracker and not tracker.asserted:
                self._violation(item, tracker)
            return result
        finally:
            _dlq.end()

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        deferred = item.stash.get(DLQ_DEFERRED_KEY, None)
        decided_at = "teardown" if deferred else "call"
        if report.when == decided_at and item.get_closest_marker("integration") is not None:
            tracker = item.stash.get(TRACKER_KEY, None)
            # A plain attribute survives pytest-xdist's report serialisation to the controller.
            report.pipeline_dlq = _dlq.classify(  # type: ignore[attr-defined]
                exempt=item.get_closest_marker("no_dlq") is not None,
                asserted=bool(tracker and tracker.asserted),
                violated=bool(tracker and tracker.violated),
                # Deferred: the call passed; a teardown error of its own is the test's failure.
                outcome="failed" if report.failed else (deferred or report.outcome),
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
        if outcome is not None and report.when in ("call", "teardown"):
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


def _has_project_teardown(item: pytest.Item, rootdir: Path) -> bool:
    """Whether ``item`` uses a yield fixture of the project that may assert the DLQ count after
    its ``yield`` (its code mentions the DLQ)."""
    info = getattr(item, "_fixtureinfo", None)
    root = str(rootdir)
    own = os.path.dirname(_dlq.__file__)  # this plugin's fixtures assert nothing after yield
    for defs in getattr(info, "name2fixturedefs", {}).values():
        for fixturedef in defs:
            func = fixturedef.func
            code = getattr(func, "__code__", None)
            if (
                code is not None
                and inspect.isgeneratorfunction(func)
                and code.co_filename.startswith(root)
                and not code.co_filename.startswith(own)
                and "site-packages" not in code.co_filename
                and _dlq.mentions_dlq(code)
            ):
                return True
    return False
