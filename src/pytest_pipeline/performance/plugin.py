"""Performance budgets in a pytest run: the ``budget`` fixture and the :class:`PerfHooks` hooks.

A ``performance`` test is measured in one of these ways, and its budget is checked once:

* it uses ``budget``: ``budget.measure(records=N)`` / ``budget.run(fn, ...)`` time exactly the
  pipeline code and check the budget when the block ends;
* it uses pytest-benchmark's ``benchmark``: the benchmark's median feeds the budget — or, with
  ``budget`` inside the benchmarked calls, the median of ``budget``'s own times (pytest-benchmark
  also times the call into ``budget``) — and ``records``/``records_per_second`` land in the
  benchmark's ``extra_info``;
* neither, or ``budget`` requested but never called: the whole test call is measured.

In every way only the measured code runs between the two ``perf_counter`` reads; memory
readings and the xdist lock stay outside, and no garbage is collected, so the workload's own
collections run as they would bare (tests/performance/test_budgets_honest.py).

Rows reach the xdist controller as a plain attribute of the call report, as the DLQ data does.
"""

from __future__ import annotations

import contextlib
import os
import sys
from array import array
from collections.abc import Callable, Generator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from pytest_pipeline import _safedir
from pytest_pipeline.config import PipelineConfig
from pytest_pipeline.errors import CompareError, PipelineError, PipelineWarning
from pytest_pipeline.layers.markers import marker_names
from pytest_pipeline.report.channel import channel_of, from_controller, send, worker_id
from pytest_pipeline.report.collect import run_report

if TYPE_CHECKING:
    from pytest_pipeline.performance import budgets as _budgets

T = TypeVar("T")
RESULTS_KEY = pytest.StashKey["list[_budgets.Result]"]()
COUNT_KEY = pytest.StashKey[int]()  # measure blocks run inside a benchmark (one row: the median)
HOOKS_KEY = pytest.StashKey["PerfHooks"]()


def _limits(item: pytest.Item, resolved: PipelineConfig) -> _budgets.Limits:
    from pytest_pipeline.performance import budgets as _budgets

    mark = item.get_closest_marker("performance")
    return _budgets.resolve_limits(item.nodeid, mark.kwargs if mark else {}, resolved)


class Budget:
    """The ``budget`` fixture: measure pipeline code against this test's performance budget."""

    def __init__(self, item: pytest.Item, hooks: PerfHooks) -> None:
        self._item = item
        self._hooks = hooks
        self.limits = _limits(item, hooks.resolved)
        """The limits that apply (marker > first matching override > global budgets)."""
        # Inside pytest-benchmark's rounds: the median of the times measured here is checked
        # after the call (PerfHooks.pytest_runtest_call), and each call only times its block.
        self._defer = hooks.benchmark_used(item)
        self._first: _budgets.Result | None = None
        self._times: array[float] = array("d")
        self.result: _budgets.Result | None = None
        """The last measurement: ``seconds``, ``records_per_second``, ``peak_memory_mb``."""

    @contextlib.contextmanager
    def measure(self, records: int | None = None) -> Iterator[_budgets.Result]:
        """Measure the block; fail the test with one line per broken limit when it ends.

        ``records`` defaults to the budget's ``records`` (marker or override). The yielded
        result is filled in when the block ends. Inside pytest-benchmark, only the first call
        takes the peak memory (later calls carry it): the reading would run inside the
        benchmark's timed rounds.
        """
        from pytest_pipeline.performance import budgets as _budgets

        if records is None:
            records = self.limits.records
        probe = not self._defer or self._first is None
        with (
            self._hooks.serial(),
            _budgets.measure(records, memory=probe) as result,
        ):
            yield result
        self.result = result
        if self._defer:
            self._add_round(result)
            return
        self._item.stash.setdefault(RESULTS_KEY, []).append(result)
        _warn_unchecked(self._item, result, self.limits)
        problems = _budgets.breaches(result, self.limits)
        if problems:
            pytest.fail("\n".join(problems), pytrace=False)

    def _add_round(self, result: _budgets.Result) -> None:
        # A float per call, not a Result: pytest-benchmark may call the block a million times.
        self._times.append(result.seconds)
        if self._first is None:
            self._first = result
        else:
            result.peak_memory_mb = self._first.peak_memory_mb
            result.memory_method = self._first.memory_method

    def rounds(self) -> tuple[_budgets.Result, int] | None:
        """Inside pytest-benchmark: the median of the measured times, and how many there were."""
        if self._first is None:
            return None
        import statistics  # only benchmark users pay for it

        return replace(self._first, seconds=statistics.median(self._times)), len(self._times)

    def run(
        self, fn: Callable[..., T], /, *args: Any, records: int | None = None, **kwargs: Any
    ) -> T:
        """Call ``fn(*args, **kwargs)`` under :meth:`measure` and return its result.

        ``records=`` is the record count, never passed to ``fn``: when ``fn`` has a keyword of
        that name, use :meth:`timed`.
        """
        return self.timed(fn, records=records)(*args, **kwargs)

    def timed(self, fn: Callable[..., T], /, *, records: int | None = None) -> Callable[..., T]:
        """``fn`` wrapped so that each call runs under :meth:`measure`; every argument is fn's.

        ``budget.timed(load, records=n)(rows, records=rows)``: ``records=`` of ``timed`` is the
        record count, ``records=`` of the call goes to ``load``.
        """

        def call(*args: Any, **kwargs: Any) -> T:
            with self.measure(records=records):
                value = fn(*args, **kwargs)
            return value

        return call


@pytest.fixture
def budget(request: pytest.FixtureRequest) -> Budget:
    """Measure code against the test's performance budget (``budget.measure``/``budget.run``)."""
    return Budget(request.node, request.config.stash[HOOKS_KEY])


def register(config: pytest.Config, resolved: PipelineConfig) -> None:
    """Register the ``budget`` fixture and the hooks that measure and check budgets."""
    config.pluginmanager.register(sys.modules[__name__], "pipeline-budget")
    hooks = PerfHooks(config, resolved)
    config.pluginmanager.register(hooks, "pipeline-performance")
    config.pluginmanager.register(PerfCallHooks(hooks), "pipeline-performance-calls")
    channel = channel_of(config)
    channel.on_report(hooks.send)
    channel.on_receive("performance", hooks.receive)
    channel.to_workers("performance", hooks.lock_for_worker)


class PerfHooks:
    """Per-session hooks: whole-call and benchmark measurement, report rows, table, JSON."""

    def __init__(self, config: pytest.Config, resolved: PipelineConfig) -> None:
        self.config = config
        self.resolved = resolved
        config.stash[HOOKS_KEY] = self
        # Detected once: -p no:benchmark or an uninstalled pytest-benchmark both mean "absent".
        self.has_benchmark = config.pluginmanager.hasplugin("benchmark")
        self.rows: list[dict[str, Any]] = []
        self.is_worker = worker_id(config) is not None
        self._lock_path: str | None = from_controller(config, "performance")
        self._lock_dir: str | None = None
        self._lock_depth = 0
        self.compare_path = resolved.compare
        self.threshold = resolved.compare_threshold
        self.baseline: dict[str, Any] | None = None
        self._found: list[Any] | None = None  # regressions against the baseline (_regressions)
        if self.compare_path and not self.is_worker:
            # Imported when used: the report module pulls in json, platform, importlib.metadata.
            from pytest_pipeline.performance import regressions
            from pytest_pipeline.report import document as _report

            # Refused before any test runs: a wrong baseline wastes the whole run otherwise.
            path = Path(self.compare_path)
            try:
                self.baseline = _report.load_report(path)
                regressions.check_same_hardware(path, self.baseline)
            except CompareError as error:
                raise pytest.UsageError(f"pytest-pipeline: {error}") from None

    # -- xdist ------------------------------------------------------------------------------
    def lock_for_worker(self) -> str:
        """Controller: one lock file shared by the workers serialises measured sections."""
        if self._lock_dir is None:
            # In our checked per-user temp directory, marked with this process: if it is
            # killed, a later run (any TMPDIR) removes it.
            self._lock_dir = str(_safedir.scratch_dir("perf"))
        return os.path.join(self._lock_dir, "measure.lock")

    @contextlib.contextmanager
    def serial(self) -> Iterator[None]:
        """Under pytest-xdist, hold the run's measurement lock (waiting is not timed)."""
        if self._lock_path is None or self._lock_depth:
            # Reentrant: budget.measure inside a measured benchmark call already holds it.
            self._lock_depth += 1
            try:
                yield
            finally:
                self._lock_depth -= 1
            return
        try:
            import fcntl
        except ImportError:  # Windows: no lock; the summary still says measurements ran in parallel
            yield
            return
        with open(self._lock_path, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            self._lock_depth += 1
            try:
                yield
            finally:
                self._lock_depth -= 1
                fcntl.flock(handle, fcntl.LOCK_UN)

    # -- measuring --------------------------------------------------------------------------
    def benchmark_used(self, item: pytest.Item) -> bool:
        """Whether ``item`` uses pytest-benchmark's ``benchmark`` fixture (and it is loaded)."""
        return self.has_benchmark and "benchmark" in getattr(item, "fixturenames", ())

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        # Per-test work only where it can matter: without a performance test or a `budget`
        # user among the collected tests, the call wrapper is dropped.
        if not any(
            "performance" in marker_names(item) or "budget" in getattr(item, "fixturenames", ())
            for item in items
        ):
            calls = self.config.pluginmanager.get_plugin("pipeline-performance-calls")
            if calls is not None:
                self.config.pluginmanager.unregister(calls)

    def measure_call(self, item: pytest.Item) -> Generator[None, None, None]:
        """The body of the call wrapper (:class:`PerfCallHooks`): measure a performance test's
        call and check its budget."""
        budget = getattr(item, "funcargs", {}).get("budget")
        budget = budget if isinstance(budget, Budget) else None
        uses_benchmark = self.benchmark_used(item)
        if item.get_closest_marker("performance") is None and not (budget and uses_benchmark):
            return (yield)
        from pytest_pipeline.performance import budgets as _budgets

        limits = _limits(item, self.resolved)
        # An integration test's own plain DLQ assert stays visible to the DLQ rule when its pass
        # alone proves the count (a cached per-location lookup, no explanation formatted): see
        # docs/performance.md. Otherwise the rule does no work inside the measurement.
        pause = item.get_closest_marker("integration") is None
        from pytest_pipeline.dlq.rule import whole_call_watcher

        # Always measured: a test that requests `budget` but never calls it is measured whole,
        # like one without it.
        with (
            self.serial(),
            contextlib.nullcontext() if pause else whole_call_watcher(),
            _budgets.measure(limits.records, pause_dlq=pause) as whole,
        ):
            outcome = yield
        rounds = budget.rounds() if budget is not None else None
        if rounds is None and item.stash.get(RESULTS_KEY, None):
            return outcome  # the budget fixture measured and checked the code it was given
        result = whole
        if rounds is not None:
            result, item.stash[COUNT_KEY] = rounds
        if uses_benchmark:
            self._from_benchmark(item, result, budget_timed=rounds is not None)
        item.stash[RESULTS_KEY] = [result]
        _warn_unchecked(item, result, limits)
        problems = _budgets.breaches(result, limits)
        if problems:
            pytest.fail("\n".join(problems), pytrace=False)
        return outcome

    def _from_benchmark(
        self, item: pytest.Item, result: _budgets.Result, budget_timed: bool
    ) -> None:
        # budget_timed: `result` is the median of budget's own times over the benchmark's
        # rounds; pytest-benchmark's median would include budget's calls and bookkeeping.
        fixture = getattr(item, "funcargs", {}).get("benchmark")
        stats = getattr(getattr(fixture, "stats", None), "stats", None)
        median = getattr(stats, "median", None)
        if median is not None:
            if not budget_timed:
                result.seconds = float(median)
            result.timing = "benchmark-median"
        extra = getattr(fixture, "extra_info", None)
        if isinstance(extra, dict):
            extra["records"] = result.records
            extra["records_per_second"] = result.records_per_second

    # -- report rows ------------------------------------------------------------------------
    def send(self, item: pytest.Item, report: pytest.TestReport) -> None:
        """Report channel sender: the call's measurement and budget, as one report row."""
        if report.when != "call":
            return
        results = item.stash.get(RESULTS_KEY, None)
        if results:
            from pytest_pipeline.performance import budgets as _budgets

            result = results[-1]
            limits = _limits(item, self.resolved)
            row = result.as_dict()
            row.update(
                nodeid=item.nodeid,
                outcome=report.outcome,
                limits=limits.as_dict(),
                headroom_pct=_budgets.headroom(result, limits),
                worker=worker_id(self.config) or "main",
                measurements=item.stash.get(COUNT_KEY, len(results)),
            )
            send(report, "performance", row)

    def receive(self, report: pytest.TestReport, row: dict[str, Any]) -> None:
        """Report channel receiver: a row of the performance table and report."""
        self.rows.append(row)

    # -- summary ----------------------------------------------------------------------------
    def _notes(self) -> list[str]:
        notes = []
        workers = sorted({row["worker"] for row in self.rows} - {"main"})
        if workers:
            notes.append(
                f"performance tests ran under pytest-xdist ({len(workers)} worker(s) measured): "
                "measured sections were serialised across workers, but other tests kept running "
                "in parallel, so figures are noisier; for reference figures run "
                "`pytest -m performance -p no:xdist`."
            )
        if any(row.get("memory_method") == "maxrss" for row in self.rows):
            notes.append(
                "peak memory from getrusage (no /proc/self/clear_refs here): an upper bound, "
                "exact only when the test set a new process peak."
            )
        return notes

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        report = run_report(self.config)
        report.add("performance", self.rows)
        if self.is_worker or not (self.rows or self.baseline is not None):
            return
        from pytest_pipeline.report import document as _report

        notes = self._notes()
        report.notes.extend(notes)
        if self.rows:
            terminalreporter.section("pytest-pipeline performance")
            for line in _report.table(self.rows):
                terminalreporter.write_line(line)
            for note in notes:
                terminalreporter.write_line(f"note: {note}")
        if self.baseline is not None:
            self._compare(terminalreporter, report.sections)

    def _compare(self, terminalreporter: Any, sections: dict[str, Any]) -> None:
        assert self.baseline is not None
        regressions = self._regressions()
        sections["comparison"] = {
            "baseline": str(self.compare_path),
            "threshold": self.threshold,
            "regressions": [vars(change) for change in regressions],
        }
        if not regressions:
            terminalreporter.write_line(
                f"pytest-pipeline: no performance regression beyond {self.threshold:.0%} "
                f"against {self.compare_path}"
            )
            return
        terminalreporter.section("pytest-pipeline performance regressions", red=True)
        terminalreporter.write_line(
            f"{len(regressions)} regression(s) beyond {self.threshold:.0%} against "
            f"{self.compare_path}:"
        )
        for change in regressions:
            terminalreporter.write_line(f"  {change.line()}")
        if self.resolved.compare_fail:
            terminalreporter.write_line(
                f"pytest-pipeline: run failed: {len(regressions)} performance regression(s) "
                f"beyond {self.threshold:.0%} (compare_fail is on)",
                red=True,
            )

    def _regressions(self) -> list[Any]:
        """The regressions against ``--pipeline-compare``'s baseline (computed once)."""
        from pytest_pipeline.performance import regressions

        if self._found is None:
            earlier = (self.baseline or {}).get("performance", [])
            self._found = regressions.compare(earlier, self.rows, self.threshold)
        return self._found

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        # Before the terminal summary (it runs inside the terminal reporter's wrapper of this
        # hook), and the exit status set here is the one pytest returns.
        if self.is_worker or self.baseline is None or not self.resolved.compare_fail:
            return
        if self._regressions() and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_unconfigure(self) -> None:
        if self._lock_dir is not None:
            lock_dir = Path(self._lock_dir)
            with contextlib.suppress(PipelineError):  # not ours after all: left alone
                _safedir.remove(lock_dir, [lock_dir.parent])


def _warn_unchecked(item: pytest.Item, result: _budgets.Result, limits: _budgets.Limits) -> None:
    from pytest_pipeline.performance import budgets as _budgets

    why = _budgets.unchecked_floor(result, limits)
    if why:
        item.warn(PipelineWarning(f"{item.nodeid}: {why}"))


class PerfCallHooks:
    """The call wrapper that measures performance tests (dropped when none was collected)."""

    def __init__(self, perf: PerfHooks) -> None:
        self.perf = perf

    # trylast: innermost wrapper, so other plugins' wrappers stay outside the timed section.
    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, None, None]:
        return (yield from self.perf.measure_call(item))
