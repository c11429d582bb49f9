"""The DLQ rule: every passing integration test must have asserted its dead-letter-queue count.

Three things count as the DLQ assertion of a test:

* ``dlq.assert_count(source, expected)`` (the ``dlq`` fixture);
* :func:`assert_dlq_count` (importable, same behaviour);
* a plain ``assert`` whose expression compares something named like a DLQ
  (``dlq``, ``dead_letter``, ``deadletter``) with a count, e.g. ``assert result.dlq_records == 0``.

Plain asserts are found by reading the source of the files a test runs (once per file) and
watching, while the test runs, whether one of those assert lines executes. This needs no pytest
setting and does not depend on pytest's assertion-rewrite cache: rewritten or not, cached or not,
the line numbers of the statement are the same. Python 3.12+ uses ``sys.monitoring`` (only the
code objects holding such asserts emit line events); Python 3.11 uses a chained
``sys.settrace`` that returns no local tracer for code without them.
"""

from __future__ import annotations

import ast
import os
import re
import sys
import threading
from collections.abc import Callable, Iterator, Sized
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import CodeType, FrameType
from typing import Any, Literal

DLQ_NAME = re.compile(r"dlq|dead_?letter", re.IGNORECASE)
_COUNT_OPS = (ast.Eq, ast.Lt, ast.LtE, ast.Gt, ast.GtE)
_TraceEvent = Literal["call", "line", "return", "exception", "opcode"]

HOW_TO_FIX = (
    "Assert the expected dead-letter-queue count, e.g. dlq.assert_count(result, 0), "
    "assert_dlq_count(dlq_topic, 1) (from pytest_pipeline import assert_dlq_count), "
    "or a plain `assert result.dlq_records == 0`; if this test has no DLQ, mark it "
    '@pytest.mark.no_dlq(reason="...").'
)


@dataclass
class DlqTracker:
    """What one test did about its DLQ."""

    nodeid: str
    asserted: bool = False
    how: list[str] = field(default_factory=list)
    # Set by the kafka fixture: counts a topic of this test by offsets; None without Kafka.
    topic_counter: Callable[[str], int | None] | None = None
    # Set by the kafka fixture too: the name given to kafka.topic() and up to ``n`` records.
    topic_sampler: Callable[[str, int], tuple[str, list[Any]]] | None = None
    # True when the plugin failed (or warned about) this test for the rule itself.
    violated: bool = False

    def record(self, how: str) -> None:
        self.asserted = True
        if how not in self.how:
            self.how.append(how)


_current: DlqTracker | None = None
# Trackers of outer tests: a test may run a whole pytest session in-process (pytester).
_outer: list[DlqTracker | None] = []


def begin(nodeid: str) -> DlqTracker:
    """Start tracking the test ``nodeid`` (called by the plugin around each test)."""
    global _current
    _outer.append(_current)
    _current = DlqTracker(nodeid)
    return _current


def end() -> None:
    """Stop tracking (the test is over); an outer test's tracker, if any, is current again."""
    global _current
    _current = _outer.pop() if _outer else None


def current() -> DlqTracker | None:
    """The tracker of the running test, if any."""
    return _current


def violation_message(nodeid: str) -> str:
    """The failure (or warning) of an integration test that asserted no DLQ count."""
    return (
        f"{nodeid}: DLQ rule: this integration test passed without asserting the expected "
        f"dead-letter-queue record count. {HOW_TO_FIX}"
    )


def classify(*, exempt: bool, asserted: bool, violated: bool, outcome: str) -> str | None:
    """How an integration test stands with the DLQ rule: asserted, exempt, missing or None.

    Skipped tests, and tests that failed for a reason of their own before reaching a DLQ
    assertion, are left out of the summary: the rule says nothing about them.
    """
    if outcome == "skipped":
        return None
    if asserted:
        return "asserted"
    if exempt:
        return "exempt"
    if outcome == "failed" and not violated:
        return None
    return "missing"


@dataclass
class DlqSummary:
    """Counts for the end-of-run line ``DLQ assertions: 12 of 12 integration tests``."""

    asserted: int = 0
    exempt: int = 0
    missing: int = 0

    def add(self, outcome: str) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)

    def as_dict(self) -> dict[str, int]:
        """The counts, for the JSON report."""
        return {"asserted": self.asserted, "exempt": self.exempt, "missing": self.missing}

    def line(self, mode: str) -> str | None:
        """The summary line; None without integration tests, and in ``off`` mode, where plain
        asserts are not watched and the counts would call asserted tests "without"."""
        total = self.asserted + self.exempt + self.missing
        if not total or mode == "off":
            return None
        text = f"DLQ assertions: {self.asserted} of {total} integration tests"
        details = []
        if self.exempt:
            details.append(f"{self.exempt} exempt with no_dlq")
        if self.missing:
            details.append(f"{self.missing} without a DLQ assertion")
        if mode != "strict":
            details.append(f"dlq_assertions = {mode}")
        return text + (f" ({', '.join(details)})" if details else "")


# --------------------------------------------------------------------------- explicit assertion


def count_of(source: Any) -> int:
    """The number of DLQ records ``source`` stands for.

    ``source`` may be an int, a sized collection, an object with ``.dlq_count`` or
    ``.dlq_records`` (an int or a collection), or the name of a Kafka topic created by this
    test's ``kafka`` fixture (counted by offsets).
    """
    __tracebackhide__ = True
    if isinstance(source, bool):
        raise TypeError("a DLQ count source cannot be a bool; pass an int, records or a topic")
    if isinstance(source, int):
        return source
    if isinstance(source, str):
        tracker = _current
        counted = tracker.topic_counter(source) if tracker and tracker.topic_counter else None
        if counted is None:
            raise TypeError(
                f"{source!r} is not a Kafka topic of this test: pass a topic returned by the "
                "kafka fixture's kafka.topic(name), or an int / collection / result object."
            )
        return counted
    for attribute in ("dlq_count", "dlq_records"):
        if hasattr(source, attribute):
            value = getattr(source, attribute)
            return value if isinstance(value, int) else count_of(value)
    if isinstance(source, Sized):
        return len(source)
    raise TypeError(
        f"cannot count DLQ records of {type(source).__name__}: pass an int, a sized collection, "
        "an object with .dlq_records or .dlq_count, or a Kafka topic of this test."
    )


def assert_dlq_count(source: Any, expected: int) -> None:
    """Assert that ``source`` holds exactly ``expected`` dead-letter records.

    Counts as the test's DLQ assertion for the DLQ rule (also when it fails).
    """
    __tracebackhide__ = True
    if _current is not None:
        _current.record("assert_dlq_count")
    if isinstance(expected, bool) or not isinstance(expected, int) or expected < 0:
        raise TypeError(
            f"the expected DLQ count must be a non-negative int, got {expected!r} "
            "(call it as assert_count(source, expected))"
        )
    actual = count_of(source)
    if actual != expected:
        label, sample = _label_and_sample(source, actual)
        message = f"DLQ count of {label}: expected {expected}, got {actual}"
        if sample:
            # What went to the DLQ is what one needs to see first.
            shown = "\n".join(f"  {_short(record)}" for record in sample)
            message += f"\nfirst {len(sample)} DLQ record(s):\n{shown}"
        raise AssertionError(message)


_SAMPLE = 3


def _short(record: Any, width: int = 200) -> str:
    text = repr(record)
    return text if len(text) <= width else text[: width - 3] + "..."


def _label_and_sample(source: Any, actual: int) -> tuple[str, list[Any]]:
    """How a failing assertion names ``source``, and up to 3 of its DLQ records."""
    if isinstance(source, str):
        sampler = _current.topic_sampler if _current is not None else None
        if sampler is None or actual == 0:
            return source, []
        try:
            name, records = sampler(source, min(actual, _SAMPLE))
        except Exception:  # the count stands; a sample is a courtesy
            return source, []
        label = source if name == source else f"{source} (kafka.topic({name!r}))"
        return label, records
    records = getattr(source, "dlq_records", source)
    if isinstance(records, (list, tuple)):
        return type(source).__name__, list(records[:_SAMPLE])
    return type(source).__name__, []


class DlqFixture:
    """The ``dlq`` fixture: assert and read dead-letter counts of this test."""

    def assert_count(self, source: Any, expected: int) -> None:
        """Assert that ``source`` holds exactly ``expected`` DLQ records (see ``count_of``)."""
        __tracebackhide__ = True
        assert_dlq_count(source, expected)

    def count(self, source: Any) -> int:
        """The DLQ record count of ``source`` without asserting anything."""
        __tracebackhide__ = True
        return count_of(source)


# --------------------------------------------------------------------------- plain asserts


def _mentions_dlq(node: ast.AST) -> bool:
    for sub in ast.walk(node):
        name = None
        if isinstance(sub, ast.Name):
            name = sub.id
        elif isinstance(sub, ast.Attribute):
            name = sub.attr
        elif isinstance(sub, ast.Constant) and isinstance(sub.value, str):
            name = sub.value
        elif isinstance(sub, ast.keyword):
            name = sub.arg
        if name and DLQ_NAME.search(name):
            return True
    return False


def _is_dlq_count_assert(node: ast.Assert) -> bool:
    return any(
        isinstance(sub, ast.Compare)
        and all(isinstance(op, _COUNT_OPS) for op in sub.ops)
        and _mentions_dlq(sub)
        for sub in ast.walk(node.test)
    )


@lru_cache(maxsize=4096)
def dlq_assert_lines(filename: str) -> frozenset[int]:
    """Line numbers of the DLQ-count asserts in ``filename`` (every line each statement spans)."""
    try:
        source = Path(filename).read_text(encoding="utf-8")
        tree = ast.parse(source, filename)
    except (OSError, SyntaxError, ValueError):
        return frozenset()
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assert) and _is_dlq_count_assert(node):
            lines.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    return frozenset(lines)


@lru_cache(maxsize=8192)
def _watched(code: CodeType) -> frozenset[int]:
    """The DLQ-assert lines that belong to ``code`` itself (not to functions nested in it)."""
    filename = code.co_filename
    if not filename.endswith(".py") or "site-packages" in filename or filename.startswith("<"):
        return frozenset()
    lines = dlq_assert_lines(filename)
    if not lines:
        return lines
    return lines & {line for _start, _end, line in code.co_lines() if line is not None}


#: Folders no project's own DLQ assert lives in (virtualenvs are recognised by pyvenv.cfg).
_NOT_PROJECT_DIRS = frozenset({"site-packages", "node_modules", "__pycache__"})


@lru_cache(maxsize=64)
def plain_assert_files(root: str) -> frozenset[str]:
    """The files under ``root`` that hold a DLQ-count ``assert`` (read once per session)."""
    found: set[str] = set()
    for folder, dirs, files in os.walk(root):
        dirs[:] = [
            name
            for name in dirs
            if not name.startswith(".")
            and name not in _NOT_PROJECT_DIRS
            and not os.path.exists(os.path.join(folder, name, "pyvenv.cfg"))
        ]
        for name in files:
            if not name.endswith(".py"):
                continue
            path = os.path.join(folder, name)
            try:
                text = Path(path).read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            # Parse only files that could hold one.
            if "assert" in text and DLQ_NAME.search(text) and dlq_assert_lines(path):
                found.add(path)
    return frozenset(found)


class PlainAssertWatcher:
    """Watches, while a test runs, whether a DLQ-count ``assert`` line executes.

    On Python 3.11 the watch is a ``sys.settrace`` hook, which slows every Python call in the
    test (importing a large library inside it takes about 3x as long). It is set only when a
    file under ``rootdir`` (or the test's own file) holds such an assert at all: a project that
    counts its DLQ with
    ``dlq.assert_count`` pays nothing.
    """

    TOOL_NAME = "pytest-pipeline"

    def __init__(
        self, tracker: DlqTracker, rootdir: Path | None = None, test_file: Path | None = None
    ) -> None:
        self.tracker = tracker
        self.rootdir = rootdir
        self.test_file = test_file
        self._previous: Any = None
        self._previous_threading: Any = None
        self._tool: int | None = None
        self._global: Any = None

    def _hit(self) -> None:
        self.tracker.record("plain assert")

    # Python 3.12+ ----------------------------------------------------------------------
    def _start_monitoring(self) -> bool:
        monitoring = getattr(sys, "monitoring", None)
        if monitoring is None:
            return False
        for tool in (3, 4):  # ids not reserved for debuggers, coverage, profilers, optimizer
            if monitoring.get_tool(tool) is None:
                break
        else:
            return False
        monitoring.use_tool_id(tool, self.TOOL_NAME)
        self._tool = tool
        events = monitoring.events

        def on_start(code: CodeType, offset: int) -> Any:
            lines = _watched(code)
            if lines:
                monitoring.set_local_events(tool, code, events.LINE)
            return monitoring.DISABLE

        def on_line(code: CodeType, line: int) -> Any:
            if line in _watched(code):
                self._hit()
            # Each line location reports at most once per test (restart_events re-arms them).
            return monitoring.DISABLE

        monitoring.register_callback(tool, events.PY_START, on_start)
        monitoring.register_callback(tool, events.LINE, on_line)
        monitoring.set_events(tool, events.PY_START)
        return True

    def _stop_monitoring(self) -> None:
        monitoring = sys.monitoring  # type: ignore[attr-defined,unused-ignore]
        tool = self._tool
        assert tool is not None
        monitoring.set_events(tool, 0)
        monitoring.register_callback(tool, monitoring.events.PY_START, None)
        monitoring.register_callback(tool, monitoring.events.LINE, None)
        monitoring.free_tool_id(tool)
        # DISABLE is remembered per code location until restarted; the next test needs fresh
        # events, and other tools are unaffected by a restart that only re-enables events.
        monitoring.restart_events()
        self._tool = None

    # Python 3.11 -----------------------------------------------------------------------
    def _start_tracing(self) -> None:
        previous = sys.gettrace()
        self._previous = previous
        self._previous_threading = threading.gettrace()

        def global_trace(frame: FrameType, event: _TraceEvent, arg: Any) -> Any:
            chained = previous(frame, event, arg) if previous is not None else None
            lines = _watched(frame.f_code)
            if not lines:
                return chained

            def local_trace(frame: FrameType, event: _TraceEvent, arg: Any) -> Any:
                nonlocal chained
                if event == "line" and frame.f_lineno in lines:
                    self._hit()
                if chained is not None:
                    chained = chained(frame, event, arg)
                return local_trace

            return local_trace

        self._global = global_trace
        sys.settrace(global_trace)
        # Threads the test starts (a pipeline's worker thread may hold the assert) too.
        threading.settrace(global_trace)
        _tracing.append(self)

    def __enter__(self) -> PlainAssertWatcher:
        if not self._start_monitoring() and self._may_hold_plain_asserts():
            self._start_tracing()
        return self

    def _may_hold_plain_asserts(self) -> bool:
        if self.rootdir is None:
            return True
        # The test's own file counts even when it lives outside the rootdir.
        in_test = self.test_file is not None and bool(dlq_assert_lines(str(self.test_file)))
        return in_test or bool(plain_assert_files(str(self.rootdir)))

    def __exit__(self, *exc_info: object) -> None:
        if self._tool is not None:
            self._stop_monitoring()
        elif self._global is not None:
            sys.settrace(self._previous)
            threading.settrace(self._previous_threading)
            if self in _tracing:
                _tracing.remove(self)


# Watchers currently line-tracing (Python 3.11 path), innermost last.
_tracing: list[PlainAssertWatcher] = []


@contextmanager
def paused_watcher() -> Iterator[None]:
    """Suspend the DLQ watcher's ``sys.settrace`` hook inside the block (performance timing).

    Only on the Python 3.11 path and only while the watcher's hook is the active one; any tracer
    it chains to (coverage, a debugger) stays active. A DLQ assert executed inside the block is
    not seen (performance budgets measure the pipeline; the assert belongs after it). On 3.12+
    ``sys.monitoring`` disables each code location after its first event: nothing to pause.
    """
    watcher = _tracing[-1] if _tracing else None
    if watcher is None or sys.gettrace() is not watcher._global:
        yield
        return
    sys.settrace(watcher._previous)
    threading.settrace(watcher._previous_threading)
    try:
        yield
    finally:
        sys.settrace(watcher._global)
        threading.settrace(watcher._global)
