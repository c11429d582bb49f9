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
    Modules rewritten without the hook (an earlier run without this plugin) sit in pytest's
    ``.pyc`` cache; the cache name gets a suffix so that they are rewritten with it. The
    project's helper modules holding a DLQ-count assert are registered for rewriting.
    """
    from _pytest.assertion import rewrite

    if _pass_hook_refused(config):
        # The user's explicit choice stands; register() says what it costs the rule.
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


def register(config: pytest.Config, resolved: PipelineConfig) -> None:
    """Register the DLQ fixture and the rule's hooks (a refused pass hook stops the run)."""
    if config.stash.get(PASS_HOOK_REFUSED_KEY, False) and resolved.dlq_assertions != "off":
        raise pytest.UsageError(PASS_HOOK_MESSAGE.format(mode=resolved.dlq_assertions))
    config.pluginmanager.register(sys.modules[__name__], "pipeline-dlq-fixtures")
    config.pluginmanager.register(DlqHooks(config, resolved), "pipeline-dlq")


class DlqHooks:
    """Per-test tracking of the DLQ assertion, the rule's verdict and the run's DLQ summary."""

    def __init__(self, config: pytest.Config, resolved: PipelineConfig) -> None:
        self.config = config
        self.resolved = resolved
        self.summary = _dlq.DlqSummary()

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
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
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        outcome = getattr(report, "pipeline_dlq", None)
        if outcome is not None and report.when in ("call", "teardown"):
            self.summary.add(outcome)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        run_report(self.config).set("dlq", self.summary.as_dict())
        line = self.summary.line(self.resolved.dlq_assertions)
        if line:
            terminalreporter.write_line(line)


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
