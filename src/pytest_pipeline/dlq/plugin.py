"""The pytest side of the DLQ rule: the ``dlq`` fixture and the hooks that enforce the rule.

Every ``integration`` test must assert the expected dead-letter-queue count. Plain asserts are
seen through pytest's ``pytest_assertion_pass`` hook, which the plugin turns on before the
project's conftest files and test modules are rewritten (docs/dlq-rule.md).
"""

from __future__ import annotations

import inspect
import os
import sys
import warnings
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

import pytest_pipeline
from pytest_pipeline.config import PipelineConfig
from pytest_pipeline.dlq import rule as _dlq
from pytest_pipeline.errors import PipelineWarning
from pytest_pipeline.layers.markers import marker_names
from pytest_pipeline.report.channel import channel_of, send
from pytest_pipeline.report.collect import run_report

TRACKER_KEY = pytest.StashKey[_dlq.DlqTracker]()
# The rule's verdict waits for teardown: a project fixture may assert the count after its yield.
DLQ_DEFERRED_KEY = pytest.StashKey[str]()  # the call phase's outcome
PASS_HOOK_REFUSED_KEY = pytest.StashKey[bool]()  # enable_assertion_pass_hook = false was set
# This plugin's own fixtures assert nothing after their yield.
_OWN_DIR = os.path.dirname(pytest_pipeline.__file__)

PASS_HOOK_MESSAGE = (
    "pytest-pipeline: enable_assertion_pass_hook = false is set, but the DLQ rule "
    "(dlq_assertions = {mode}) needs it to see plain `assert` statements. Remove the setting "
    '(the plugin turns it on), or set dlq_assertions = "off" in [tool.pytest-pipeline].'
)


@pytest.fixture
def dlq() -> _dlq.DlqFixture:
    """``dlq.assert_count(source, expected)``: the DLQ-count assertion of this test."""
    return _dlq.DlqFixture()


def enable_assertion_pass_hook(config: pytest.Config) -> None:
    """Turn on pytest's ``enable_assertion_pass_hook`` for the DLQ rule's plain asserts.

    Called before conftest.py and test modules are imported (and their asserts rewritten).
    Only modules that hold an assert which may check a DLQ count are rewritten with the hook:
    it makes pytest's rewrite of every other assert slower for nothing. When the project set
    the option to true itself (another plugin may want every event), every module gets it.
    Modules rewritten otherwise (an earlier run without this plugin) sit in pytest's ``.pyc``
    cache; the cache name gets a suffix so that they are rewritten again. The project's helper
    modules holding a DLQ-count assert are registered for rewriting.
    """
    from _pytest.assertion import rewrite

    if _pass_hook_refused(config):
        # The user's explicit choice stands; register() says what it costs the rule.
        config.stash[PASS_HOOK_REFUSED_KEY] = True
        return
    config._inicache["enable_assertion_pass_hook"] = True
    per_module = _pass_hook_setting(config) is None
    config.stash[PER_MODULE_KEY] = per_module
    tail = f"pipeline-dlq{_dlq.PASS_HOOK_RULES}" if per_module else "pipeline-pass"
    saved_tail, saved_rewrite = rewrite.PYC_TAIL, rewrite._rewrite_test
    rewrite.PYC_TAIL = f".{rewrite.PYTEST_TAG}-{tail}{rewrite.PYC_EXT}"
    config.add_cleanup(lambda: setattr(rewrite, "PYC_TAIL", saved_tail))
    if saved_rewrite is not _rewrite_test:  # an outer session (pytester) may have put it in
        _ORIGINAL_REWRITE.append(saved_rewrite)
        rewrite._rewrite_test = _rewrite_test

        def restore() -> None:
            rewrite._rewrite_test = saved_rewrite
            _ORIGINAL_REWRITE.pop()

        config.add_cleanup(restore)
    names = _dlq.helper_module_names(config.rootpath)
    if names:
        pytest.register_assert_rewrite(*names)


#: Whether the pass hook goes only to modules holding a DLQ-count assert (stashed per session).
PER_MODULE_KEY = pytest.StashKey[bool]()
_ORIGINAL_REWRITE: list[Any] = []


def _rewrite_test(fn: Path, config: pytest.Config) -> Any:
    """pytest's ``_rewrite_test``, with the pass hook on only where the session wants it."""
    original = _ORIGINAL_REWRITE[-1]
    if config is None or not config.stash.get(PER_MODULE_KEY, False):
        return original(fn, config)
    config._inicache["enable_assertion_pass_hook"] = _dlq.holds_dlq_assert(str(fn))
    try:
        return original(fn, config)
    finally:
        config._inicache["enable_assertion_pass_hook"] = True


def _pass_hook_setting(config: pytest.Config) -> object:
    """The project's own ``enable_assertion_pass_hook`` value (ini file or ``-o``), or None."""
    value = getattr(config, "_inicfg", {}).get("enable_assertion_pass_hook")
    return getattr(value, "value", value)


def _pass_hook_refused(config: pytest.Config) -> bool:
    """Whether the project set ``enable_assertion_pass_hook = false`` (ini file or ``-o``)."""
    raw = _pass_hook_setting(config)
    if raw is None:
        return False
    if isinstance(raw, bool):
        return not raw
    return str(raw).strip().lower() in ("false", "f", "no", "n", "off", "0")


def register(config: pytest.Config, resolved: PipelineConfig) -> None:
    """Register the DLQ fixture and the rule's hooks (a refused pass hook stops the run)."""
    if config.stash.get(PASS_HOOK_REFUSED_KEY, False) and resolved.dlq_assertions != "off":
        raise pytest.UsageError(PASS_HOOK_MESSAGE.format(mode=resolved.dlq_assertions))
    config.pluginmanager.register(sys.modules[__name__], "pipeline-dlq-fixtures")
    hooks = DlqHooks(config, resolved)
    config.pluginmanager.register(hooks, "pipeline-dlq")
    config.pluginmanager.register(DlqTestHooks(hooks), "pipeline-dlq-tests")
    channel = channel_of(config)
    channel.on_report(hooks.send)
    channel.on_receive("dlq", hooks.receive)


def _may_assert_a_dlq(item: pytest.Item) -> bool:
    """Whether the rule or a DLQ count may concern ``item``: an integration test, or a test
    using the ``dlq`` or ``kafka`` fixture (``dlq.assert_count(topic, n)`` counts its topics)."""
    names = getattr(item, "fixturenames", ())
    return "integration" in marker_names(item) or "dlq" in names or "kafka" in names


class DlqHooks:
    """The rule's verdict on each report, and the run's DLQ summary."""

    def __init__(self, config: pytest.Config, resolved: PipelineConfig) -> None:
        self.config = config
        self.resolved = resolved
        self.root = str(config.rootpath)
        self.summary = _dlq.DlqSummary()

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        # Per-test work only where it can matter: a run without integration tests (a unit
        # job, `-m unit`) drops the per-test hooks; their modules' asserts then cost nothing.
        if not any(_may_assert_a_dlq(item) for item in items):
            per_test = self.config.pluginmanager.get_plugin("pipeline-dlq-tests")
            if per_test is not None:
                self.config.pluginmanager.unregister(per_test)

    def send(self, item: pytest.Item, report: pytest.TestReport) -> None:
        """Report channel sender: an integration test's DLQ outcome, once it is decided."""
        tracker = item.stash.get(TRACKER_KEY, None)
        if tracker is None or not tracker.integration:
            return
        deferred = item.stash.get(DLQ_DEFERRED_KEY, None)
        if report.when == ("teardown" if deferred else "call"):
            outcome = _dlq.classify(
                exempt=tracker.exempt,
                asserted=tracker.asserted,
                violated=tracker.violated,
                # Deferred: the call passed; a teardown error of its own is the test's failure.
                outcome="failed" if report.failed else (deferred or report.outcome),
            )
            if outcome is not None:
                send(report, "dlq", outcome)

    def receive(self, report: pytest.TestReport, outcome: str) -> None:
        """Report channel receiver: count the outcome in the run's DLQ summary."""
        self.summary.add(outcome)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        run_report(self.config).set("dlq", self.summary.as_dict())
        line = self.summary.line(self.resolved.dlq_assertions)
        if line:
            terminalreporter.write_line(line)


class DlqTestHooks:
    """Per-test tracking of the DLQ assertion (dropped when no collected test needs it)."""

    def __init__(self, rule: DlqHooks) -> None:
        self.rule = rule

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        tracker = item.stash[TRACKER_KEY] = _dlq.begin(item.nodeid)
        markers = marker_names(item)
        tracker.integration = "integration" in markers
        tracker.exempt = "no_dlq" in markers
        impls = item.ihook.pytest_assertion_pass.get_hookimpls()
        if all(impl.plugin is self for impl in impls):  # else other plugins need every event
            _dlq.install_gate(tracker, self.rule.root, listening=self._rule_applies(tracker))

    def pytest_assertion_pass(self, item: pytest.Item, orig: str, expl: str) -> None:
        """A rewritten assert passed: it is the DLQ assertion if it checked a DLQ count."""
        tracker = item.stash.get(TRACKER_KEY, None)
        if tracker is None or tracker.asserted or tracker.paused:
            return
        if _dlq.checks_dlq_count(orig, expl):
            tracker.record("plain assert")
            _dlq.retire_gate(tracker)

    def _rule_applies(self, tracker: _dlq.DlqTracker) -> bool:
        return (
            self.rule.resolved.dlq_assertions != "off"
            and tracker.integration
            and not tracker.exempt
        )

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, None, None]:
        tracker = item.stash.get(TRACKER_KEY, None)
        if tracker is None or not self._rule_applies(tracker):
            return (yield)
        result = yield  # a failing test raises here and the rule has nothing to add
        if not tracker.asserted:
            if _has_project_teardown(item, self.rule.resolved.rootdir):
                item.stash[DLQ_DEFERRED_KEY] = "passed"
            else:
                self._violation(item, tracker)
        return result

    def _violation(self, item: pytest.Item, tracker: _dlq.DlqTracker) -> None:
        tracker.violated = True
        message = _dlq.violation_message(
            item.nodeid, plain_asserts_seen=self.rule.config.getoption("assertmode") != "plain"
        )
        if self.rule.resolved.dlq_assertions == "strict":
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


def _has_project_teardown(item: pytest.Item, rootdir: Path) -> bool:
    """Whether ``item`` uses a yield fixture of the project that may assert the DLQ count after
    its ``yield`` (its code mentions the DLQ)."""
    info = getattr(item, "_fixtureinfo", None)
    root = str(rootdir)
    for defs in getattr(info, "name2fixturedefs", {}).values():
        for fixturedef in defs:
            func = fixturedef.func
            code = getattr(func, "__code__", None)
            if (
                code is not None
                and inspect.isgeneratorfunction(func)
                and code.co_filename.startswith(root)
                and not code.co_filename.startswith(_OWN_DIR)
                and "site-packages" not in code.co_filename
                and _dlq.mentions_dlq(code)
            ):
                return True
    return False
