"""The DLQ rule: every passing integration test must have asserted its dead-letter-queue count.

Three things count as the DLQ assertion of a test, each only once its check *passed*:

* ``dlq.assert_count(source, expected)`` (the ``dlq`` fixture);
* :func:`assert_dlq_count` (importable, same behaviour);
* a plain ``assert`` that compared a DLQ count with an expected value (``==`` or an upper bound),
  e.g. ``assert result.dlq_count == 0`` or ``assert len(dlq_records) <= 3``.

Plain asserts are seen through pytest's own ``pytest_assertion_pass`` hook (the plugin turns on
``enable_assertion_pass_hook``): pytest calls it for each assert that passed, with its source and
an explanation of what was evaluated, so an assert in a branch not taken, or the unevaluated
side of an ``or``, never counts. One code path on every Python version; no tracer.
"""

from __future__ import annotations

import ast
import os
import re
import stat
import sys
import textwrap
from collections.abc import Callable, Iterator, Mapping, Sized
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from types import CodeType
from typing import Any, NamedTuple

DLQ_NAME = re.compile(r"dlq|dead_?letter", re.IGNORECASE)

HOW_TO_FIX = (
    "Assert the expected dead-letter-queue count, e.g. dlq.assert_count(result, 0), "
    "assert_dlq_count(dlq_topic, 1) (from pytest_pipeline import assert_dlq_count), "
    "or a plain `assert result.dlq_count == 0` / `assert len(result.dlq_records) == 0`; if "
    "this test has no DLQ, mark it "
    '@pytest.mark.no_dlq(reason="...").'
)


class DlqTracker:
    """What one test did about its DLQ (a plain class: made for every test, defined at import)."""

    def __init__(self, nodeid: str) -> None:
        self.nodeid = nodeid
        self.asserted = False
        self.how: list[str] = []
        # Set by the kafka fixture: counts a topic of this test by offsets; None without Kafka.
        self.topic_counter: Callable[[str], int | None] | None = None
        # Set by the kafka fixture too: the name given to kafka.topic() and up to ``n`` records.
        self.topic_sampler: Callable[[str, int], tuple[str, list[Any]]] | None = None
        # True when the plugin failed (or warned about) this test for the rule itself.
        self.violated = False
        # Inside budget.measure blocks (nested): passing asserts are not looked at.
        self.paused = 0
        # Inside a whole-call measurement: only asserts decided by their source are recorded.
        self.lazy = 0
        # Read once at setup from the test's markers (``integration``, ``no_dlq``).
        self.integration = False
        self.exempt = False

    def __repr__(self) -> str:
        return f"DlqTracker({self.nodeid!r}, asserted={self.asserted}, how={self.how})"

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


def violation_message(nodeid: str, *, plain_asserts_seen: bool = True) -> str:
    """The failure (or warning) of an integration test that asserted no DLQ count."""
    message = (
        f"{nodeid}: DLQ rule: this integration test passed without asserting the expected "
        f"dead-letter-queue record count. {HOW_TO_FIX}"
    )
    if not plain_asserts_seen:
        message += (
            " (pytest runs with --assert=plain: plain `assert` statements are not rewritten, "
            "so the DLQ rule cannot see them; use dlq.assert_count or assert_dlq_count)"
        )
    return message


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


class DlqSummary:
    """Counts for the end-of-run line ``DLQ assertions: 12 of 12 integration tests``."""

    def __init__(self) -> None:
        self.asserted = 0
        self.exempt = 0
        self.missing = 0

    def __repr__(self) -> str:
        return f"DlqSummary({self.as_dict()})"

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
    _refuse_mock(source)
    if isinstance(source, Mapping):
        # A result dict: its DLQ keys, like a result object's attributes; never len(dict).
        for key in ("dlq_count", "dlq_records"):
            if key in source:
                return _count_value(source[key], f"[{key!r}]", source)
        raise TypeError(
            f"cannot count DLQ records of a {type(source).__name__} without a 'dlq_count' or "
            "'dlq_records' key: pass the DLQ records or count itself, e.g. "
            "dlq.assert_count(result['dlq_count'], 0)"
        )
    for attribute in ("dlq_count", "dlq_records"):
        if hasattr(source, attribute):
            return _count_value(getattr(source, attribute), f".{attribute}", source)
    if isinstance(source, Sized) and not isinstance(source, (bytes, bytearray, memoryview)):
        return len(source)
    raise TypeError(
        f"cannot count DLQ records of {type(source).__name__}: pass an int, a collection of "
        "records, a mapping or object with dlq_records / dlq_count, or a Kafka topic of this test."
    )


def _refuse_mock(source: Any) -> None:
    # A mock has every attribute and a length: it would "count" anything (or recurse forever).
    mock = sys.modules.get("unittest.mock")
    if mock is not None and isinstance(source, mock.NonCallableMock):
        raise TypeError(
            f"a mock is not a DLQ count source ({type(source).__name__}): pass the records, "
            "the result object or the Kafka topic the pipeline really wrote"
        )


def _count_value(value: Any, where: str, owner: Any) -> int:
    """``owner<where>`` (``.dlq_count``, ``['dlq_records']``) as a count: an int, or a
    collection of records (not a mapping, string or bytes)."""
    __tracebackhide__ = True
    _refuse_mock(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, Sized) and not isinstance(value, (str, bytes, bytearray, Mapping)):
        return len(value)
    raise TypeError(
        f"{where} of {type(owner).__name__} is {type(value).__name__}: it must be an int "
        "or a collection of DLQ records"
    )


def assert_dlq_count(source: Any, expected: int) -> None:
    """Assert that ``source`` holds exactly ``expected`` dead-letter records.

    Counts as the test's DLQ assertion for the DLQ rule once the check has passed (a failing or
    invalid check caught by ``pytest.raises`` or ``except`` does not).
    """
    __tracebackhide__ = True
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
    if _current is not None:
        _current.record("assert_dlq_count")
        retire_gate(_current)


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

#: A DLQ count is named with a DLQ word *and* a count word (``dlq_count``, ``n_dead_letters``,
#: ``dlqRecords``); anything else DLQ-named (``dlq_topic``, ``dlq_max_retries``,
#: ``dlq_reason``) is not a count.
_DLQ_WORDS = frozenset({"dlq", "dlqs", "deadletter", "deadletters"})
#: Words of a collection of DLQ records: ``len(<it>)``, ``<it> == []``, ``not <it>``.
_RECORDS_WORDS = frozenset({"records", "messages", "msgs", "rows", "events", "entries", "items"})
_COUNT_WORDS = _RECORDS_WORDS | {"count", "counts", "size", "total", "n", "num", "number", "len"}
#: Words of an expected value (``expected_dlq_count``): the side a count is compared with.
_EXPECTED_WORDS = frozenset({"expected", "expect", "exp", "want", "wanted", "target"})
#: Bare names of DLQ records (``len(dlq)``, ``dead_letters == []``).
_BARE_RECORDS = frozenset({"dlq", "dlqs", "deadletters"})
#: Counting calls whatever their owner: ``count_of(x)`` and ``count_topic(servers, topic)``.
_COUNT_FUNCTIONS = frozenset({"count_of", "count_topic"})
#: Fixtures whose ``.count(x)`` counts records (``list.count`` does not count a DLQ).
_COUNT_SOURCES = frozenset({"dlq", "kafka"})
#: An upper bound this high holds for any real DLQ (documented in docs/dlq-rule.md).
MAX_UPPER_BOUND = 10**9
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


@lru_cache(maxsize=2048)
def _words(name: str) -> tuple[str, ...]:
    """``n_dead_letters`` -> ``("n", "deadletters")``; ``dlqCount`` -> ``("dlq", "count")``."""
    raw = [w.lower() for w in _CAMEL.sub("_", name).split("_") if w]
    words: list[str] = []
    for word in raw:
        if words and words[-1] == "dead" and word in ("letter", "letters"):
            words[-1] += word
        else:
            words.append(word)
    return tuple(words)


def _dlq_word(name: str) -> bool:
    return any(word in _DLQ_WORDS for word in _words(name))


def _count_name(name: str | None) -> bool:
    """A name of a DLQ count: a DLQ word and a count word, and no word of an expected value."""
    if not name:
        return False
    words = set(_words(name))
    return bool(words & _DLQ_WORDS and words & _COUNT_WORDS and not words & _EXPECTED_WORDS)


def _records_name(name: str | None) -> bool:
    """A name of a collection of DLQ records: ``dlq``, ``dead_letters``, ``dlq_records``."""
    if not name:
        return False
    words = set(_words(name))
    if "".join(_words(name)) in _BARE_RECORDS:
        return True
    return bool(words & _DLQ_WORDS and words & _RECORDS_WORDS and not words & _EXPECTED_WORDS)


def _name_of(node: ast.expr) -> str | None:
    """The name, attribute or string key ``node`` reads: ``x``, ``r.x``, ``r["x"]``."""
    if isinstance(node, ast.NamedExpr):
        node = node.value
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Subscript):
        key = node.slice
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            return key.value
    return None


def _is_dlq_count(node: ast.expr) -> bool:
    """``node`` evaluates to a DLQ count: a count name, ``len(<DLQ records>)`` or a counting
    call (``dlq.count(x)``, ``count_of(x)``, ``kafka.count(<DLQ topic>)``, ``get_dlq_count()``)."""
    if isinstance(node, ast.NamedExpr):
        node = node.value
    if not isinstance(node, ast.Call):
        return _count_name(_name_of(node))
    func = node.func
    name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
    if name == "len":
        return len(node.args) == 1 and _records_name(_name_of(node.args[0]))
    if name in _COUNT_FUNCTIONS or _count_name(name):
        return True
    owner = func.value if isinstance(func, ast.Attribute) else None
    if name != "count" or not isinstance(owner, ast.Name) or owner.id not in _COUNT_SOURCES:
        return False
    if owner.id == "dlq":
        return True  # the dlq fixture counts whatever it is given
    return len(node.args) == 1 and _dlq_word(ast.unparse(node.args[0]))


def _number(node: ast.expr) -> float | None:
    """The value of a constant number expression (``3``, ``-1``, ``10**9``, ``2.5e9``)."""
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        return float(value) if abs(value) < 10**300 else float("inf")
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        inner = _number(node.operand)
        return None if inner is None else (-inner if isinstance(node.op, ast.USub) else inner)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mult, ast.Pow)):
        left, right = _number(node.left), _number(node.right)
        if left is None or right is None:
            return None
        try:
            if isinstance(node.op, ast.Pow):
                return float("inf") if abs(right) > 1000 else float(left**right)
            return left + right if isinstance(node.op, ast.Add) else left * right
        except (OverflowError, ZeroDivisionError, TypeError):
            return float("inf")
    return None


#: Names of values any count compares true with: ``ANY``, ``sys.maxsize``, ``math.inf``.
_UNBOUNDED = frozenset({"ANY", "maxsize", "inf", "infinity", "INFINITY", "nan"})


def _is_expected(node: ast.expr, count: ast.expr, *, upper: bool) -> bool:
    """``node`` can be the expected value of ``count``: not a string, bool or None (names and
    flags), not ``count`` itself or another DLQ count, not ``ANY`` or an unbounded limit."""
    if isinstance(node, ast.JoinedStr) or ast.dump(node) == ast.dump(count):
        return False
    if isinstance(node, ast.Constant) and not isinstance(node.value, (int, float)):
        return False
    if isinstance(node, ast.Constant) and isinstance(node.value, bool):
        return False
    if _is_dlq_count(node) or _name_of(node) in _UNBOUNDED:
        return False
    if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "float":
        return False  # float("inf"); a finite float("3") is no count either
    number = _number(node)
    return not (upper and number is not None and number >= MAX_UPPER_BOUND)


def _single(node: ast.expr) -> ast.expr | None:
    """The one element of ``(x,)``, ``[x]`` or ``{x}`` (``count in (0,)`` is ``count == 0``)."""
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)) and len(node.elts) == 1:
        element = node.elts[0]
        return None if isinstance(element, ast.Starred) else element
    return None


def _pairs(compare: ast.Compare) -> Iterator[tuple[int, ast.expr, ast.cmpop, ast.expr]]:
    operands = [compare.left, *compare.comparators]
    for index, (left, op, right) in enumerate(
        zip(operands, compare.ops, operands[1:], strict=False)
    ):
        yield index, left, op, right


class _Pair(NamedTuple):
    """The pair of a comparison that checks a DLQ count."""

    position: int  # which pair of a chain (``0 <= count <= 3``: 1)
    expected: ast.expr
    upper: bool  # an upper bound, not ``==``
    count_left: bool  # the count is the left operand


_UPPER_OPS: dict[bool, tuple[type[ast.cmpop], ...]] = {
    True: (ast.Lt, ast.LtE),
    False: (ast.Gt, ast.GtE),
}


def _counting_pair(compare: ast.Compare) -> _Pair | None:
    """The pair of ``compare`` that checks a DLQ count: ``==`` (or ``in`` one value), or an upper
    bound (``count <= 3``, ``3 >= count``); lower bounds (``>= 0``) hold for any count."""
    for index, left, op, right in _pairs(compare):
        if isinstance(op, ast.In) and _is_dlq_count(left):
            element = _single(right)
            if element is not None and _is_expected(element, left, upper=False):
                return _Pair(index, element, upper=False, count_left=True)
        for count_left in (True, False):
            count, other = (left, right) if count_left else (right, left)
            equal = isinstance(op, ast.Eq)
            empty = isinstance(other, (ast.List, ast.Tuple)) and not other.elts
            if equal and empty and _records_name(_name_of(count)):
                return _Pair(index, other, upper=False, count_left=count_left)  # dlq == []
            if not _is_dlq_count(count):
                continue
            upper = isinstance(op, _UPPER_OPS[count_left])
            if (equal or upper) and _is_expected(other, count, upper=upper):
                return _Pair(index, other, upper=upper, count_left=count_left)
    return None


_OPS = {ast.Eq: "==", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.In: "in"}


def _evaluated_ok(compare: ast.Compare, pair: _Pair, text: str | None) -> bool:
    """What pytest shows it evaluated as the expected value (a passing chain shows its last
    pair: ``0 <= 3``) is no ``ANY``, infinity or upper limit of ``MAX_UPPER_BOUND`` or more."""
    if text is None or pair.position != len(compare.ops) - 1:
        return True  # nothing shown for that pair: the source alone decided
    line = text.split("\n", 1)[0].strip()
    symbol = f" {_OPS.get(type(compare.ops[pair.position]), '?')} "
    if symbol not in line:
        return True
    left, _, right = line.partition(symbol) if pair.count_left else line.rpartition(symbol)
    shown = (right if pair.count_left else left).strip()
    if shown.startswith("<ANY") or shown in ("inf", "nan", "-inf"):
        return False
    if not pair.upper:
        return True
    try:
        number = _number(ast.parse(shown, mode="eval").body)
    except SyntaxError:
        return True
    return number is None or number < MAX_UPPER_BOUND


def _checks(node: ast.expr, text: str | None) -> bool:
    """A decisive part of a passing assert checked a DLQ count: a comparison with an expected
    value, or ``not <DLQ records or count>`` (``not dlq_records``: the DLQ is empty)."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        operand = node.operand
        return _records_name(_name_of(operand)) or _is_dlq_count(operand)
    if not isinstance(node, ast.Compare):
        return False
    pair = _counting_pair(node)
    return pair is not None and _evaluated_ok(node, pair, text)


#: Reprs of falsy values: what an ``or`` part before the decisive one may show.
_FALSY = frozenset({"False", "None", "0", "0.0", "''", '""', "b''", "[]", "()", "{}", "set()"})


def _fits(node: ast.expr, part: str, *, falsy: bool) -> bool:
    """``part`` of a boolean explanation has the shape of ``node``'s: a comparison shows its
    operator; a plain value that was false shows a falsy repr. A repr that merely contains
    `` or `` (an object printing "accepted or retried") does not fit."""
    if isinstance(node, ast.Compare):
        return all(f" {_OPS.get(type(op), '')} " in part for op in node.ops[-1:])
    if isinstance(node, ast.BoolOp):
        return part.startswith("(") or (falsy and part.strip() in _FALSY)
    return not falsy or part.strip() in _FALSY or part.startswith("not ")


def _split_boolop(text: str | None, joiner: str) -> list[str] | None:
    """The operand explanations of ``(a or b)`` as pytest renders a passing assert, or None.

    Quote- and bracket-aware; None when ``text`` does not have that shape (then nothing inside
    an ``or`` counts: the rule never guesses in favour of a count).
    """
    if not text or text[0] != "(":
        return None
    parts: list[str] = []
    depth, quote, start, i = 0, "", 1, 0
    while i < len(text):
        char = text[i]
        if quote:
            if char == "\\":
                i += 1
            elif char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
            if depth == 0:
                parts.append(text[start:i])
                rest = text[i + 1 :]
                return parts if not rest or rest.startswith("\n") else None
        elif depth == 1 and text.startswith(joiner, i):
            parts.append(text[start:i])
            start = i + len(joiner)
            i = start
            continue
        i += 1
    return None


def _decisive(node: ast.expr, text: str | None) -> Iterator[tuple[ast.expr, str | None]]:
    """The parts of a *passing* assert whose truth made it pass, each with its explanation when
    known: every operand of an ``and``; of an ``or`` only the last one evaluated (the explanation
    lists just those), and only when every listed part fits its operand (else none)."""
    if not isinstance(node, ast.BoolOp):
        yield node, text
        return
    is_or = isinstance(node.op, ast.Or)
    parts = _split_boolop(text, " or " if is_or else " and ")
    if is_or:
        if parts is None or len(parts) > len(node.values):
            return
        last = len(parts) - 1
        shapes = zip(node.values, parts, strict=False)
        if all(_fits(value, part, falsy=i < last) for i, (value, part) in enumerate(shapes)):
            yield from _decisive(node.values[last], parts[last])
        return
    if parts is not None and (
        len(parts) != len(node.values)
        or not all(_fits(v, p, falsy=False) for v, p in zip(node.values, parts, strict=True))
    ):
        parts = None  # a passing ``and`` evaluated every operand: the text is not its own
    for index, value in enumerate(node.values):
        yield from _decisive(value, parts[index] if parts is not None else None)


@lru_cache(maxsize=4096)
def _parsed(orig: str) -> ast.expr | None:
    """The expression of an assert from pytest's ``orig``; None when ``orig`` holds more than
    one statement (pytest passes ``a; assert b`` for both asserts of such a line: which one
    passed is unknown there; the gate hands over each assert's own source instead)."""
    try:
        return ast.parse(orig.strip(), mode="eval").body
    except SyntaxError:
        pass
    try:  # a multi-line assert keeps its indentation
        return ast.parse("(" + textwrap.dedent(orig).strip() + ")", mode="eval").body
    except SyntaxError:
        return None


def checks_dlq_count(orig: str, expl: str | None) -> bool:
    """Whether a *passing* assert checked a DLQ count against an expected value.

    ``orig`` is the assert's expression source and ``expl`` pytest's explanation of what it
    evaluated (the arguments of ``pytest_assertion_pass``).
    """
    node = _parsed(orig)
    return node is not None and any(_checks(part, text) for part, text in _decisive(node, expl))


def _may_check_count(test: ast.expr) -> bool:
    # Static shape only (which asserts may count): the runtime decision is checks_dlq_count.
    return any(
        isinstance(sub, (ast.Compare, ast.UnaryOp)) and _checks(sub, None) for sub in ast.walk(test)
    )


def _decided_by_source(test: ast.expr) -> bool:
    """Passing proves the count: one comparison of a DLQ count with a literal (``== 0``,
    ``<= 3``, ``in (0,)``, ``== []``) or ``not <DLQ records>``; nothing left to evaluate."""
    if isinstance(test, ast.UnaryOp):
        return _checks(test, None)
    if not isinstance(test, ast.Compare) or len(test.ops) != 1:
        return False
    pair = _counting_pair(test)
    if pair is None:
        return False
    expected = pair.expected
    literal = isinstance(expected, (ast.List, ast.Tuple)) and not expected.elts
    return literal or _number(expected) is not None


class DlqAssert(NamedTuple):
    """A plain assert that may check a DLQ count: its expression's source, and whether passing
    alone proves it (no explanation needed)."""

    source: str
    by_source: bool


@lru_cache(maxsize=4096)
def dlq_asserts(filename: str) -> dict[tuple[int, int], DlqAssert]:
    """The asserts of ``filename`` that may check a DLQ count, by (line, column) of ``assert``."""
    try:
        source = Path(filename).read_text(encoding="utf-8")
        tree = ast.parse(source, filename)
    except (OSError, SyntaxError, ValueError):
        return {}
    found: dict[tuple[int, int], DlqAssert] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assert) and _may_check_count(node.test):
            text = ast.get_source_segment(source, node.test) or ast.unparse(node.test)
            found[(node.lineno, node.col_offset)] = DlqAssert(text, _decided_by_source(node.test))
    return found


@lru_cache(maxsize=4096)
def dlq_assert_lines(filename: str) -> frozenset[int]:
    """Line numbers of the DLQ-count asserts in ``filename`` (the lines where each starts)."""
    return frozenset(line for line, _col in dlq_asserts(filename))


def mentions_dlq(code: CodeType) -> bool:
    """Whether ``code`` may assert a DLQ count: it names a DLQ (``dlq``, ``check_dlq``,
    ``dlq.assert_count``), calls ``assert_dlq_count`` / ``count_of``, or holds a DLQ-count
    ``assert``."""
    names = (*code.co_names, *code.co_varnames)
    if any(DLQ_NAME.search(name) for name in names):
        return True
    if {"assert_count", "assert_dlq_count", "count_of"} & set(code.co_names):
        return True
    lines = dlq_assert_lines(code.co_filename)
    return any(line in lines for _start, _end, line in code.co_lines())


#: Larger files are generated code, not where a DLQ assert lives.
_MAX_SOURCE_BYTES = 2_000_000
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
            if holds_dlq_assert(path):
                found.add(path)
    return frozenset(found)


#: Bumped when what counts as a DLQ-count assert widens: modules cached by pytest under an
#: older rule set are rewritten again (the cache file name carries it).
PASS_HOOK_RULES = 1


def holds_dlq_assert(path: str) -> bool:
    """Whether the file ``path`` holds an ``assert`` that may check a DLQ count (only files
    that name a DLQ, ``count_of`` or ``count_topic`` are parsed)."""
    try:
        # Regular files only: a link to /dev/zero or a FIFO would never end.
        info = os.lstat(path)
        if not stat.S_ISREG(info.st_mode) or info.st_size > _MAX_SOURCE_BYTES:
            return False
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    named = DLQ_NAME.search(text) is not None or any(name in text for name in _COUNT_FUNCTIONS)
    return "assert" in text and named and bool(dlq_assert_lines(path))


def helper_module_names(root: Path) -> list[str]:
    """Import names under which the project's helper files with a DLQ-count ``assert`` may be
    imported (``pipelines.checks`` and ``checks`` for ``<root>/pipelines/checks.py``), so that
    pytest rewrites their asserts; test files and conftest.py are rewritten anyway."""
    names: set[str] = set()
    for path in plain_assert_files(str(root)):
        parts = Path(os.path.relpath(path, root)).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if not parts or ".." in parts or not all(p.isidentifier() for p in parts):
            continue
        names.update(".".join(parts[i:]) for i in range(len(parts)))
    # A name already imported cannot be rewritten any more (pytest would warn): not ours.
    return sorted(name for name in names if name not in sys.modules)


# --------------------------------------------------------------------------- the pass hook
#
# pytest calls ``pytest_assertion_pass`` (the plugin's hook) for each passing rewritten assert,
# after formatting its explanation: about 100 us for an assert comparing a 1,000-item list. The
# rewritten assert first asks ``bool(util._assertion_pass)`` whether anyone listens; the gate
# below answers "no" (so pytest formats nothing) unless the assert is, by its source, one that
# may check a DLQ count, the rule applies to the test, the test has not asserted yet, and no
# measured block (``budget.measure``) runs. Installed only while this plugin is the hook's sole
# implementation: other plugins keep every event.


def _pass_hook_module() -> Any:
    from _pytest.assertion import util

    return util


def candidate_asserts(filename: str, root: str | None) -> dict[tuple[int, int], DlqAssert]:
    """The asserts of ``filename`` that may check a DLQ count (files under ``root`` were read
    once at start-up; a file elsewhere, e.g. a registered helper, is read on first use)."""
    if root and filename.startswith(root + os.sep) and filename not in plain_assert_files(root):
        return {}
    return dlq_asserts(filename)


def _assert_at(code: CodeType, lasti: int, asserts: dict[tuple[int, int], DlqAssert]) -> Any:
    """The DLQ assert whose rewritten code runs instruction ``lasti`` of ``code`` (pytest gives
    the rewritten statements the position of their ``assert``), or None."""
    if not asserts:
        return None
    for index, position in enumerate(code.co_positions()):
        if index == lasti // 2:
            line, _end, col, _end_col = position
            found = asserts.get((line or 0, col or 0))
            if found is None and col is None:  # no column information: only an unambiguous line
                on_line = [a for (ln, _c), a in asserts.items() if ln == line]
                found = on_line[0] if len(on_line) == 1 else None
            return found
    return None


#: How often one assert location of a test gets its explanation formatted (then no more).
MAX_EXPLAINED = 8


class PassHookGate:
    """Stands in for pytest's assertion-pass callback during one test (see above).

    Its answer is decided once per code location (the asking frame's code and instruction) and
    cached: a passing assert costs a dict lookup. An assert whose pass alone proves a DLQ count
    (``assert r.dlq_count == 0``) is recorded right there, with no explanation formatted; one
    that needs the explanation (an ``or``, an expected value not in the source) gets it, and the
    hook then sees that assert's own source. In a whole-call measurement (``lazy``) only the
    first kind counts: no explanation is formatted inside a measured section.
    """

    def __init__(
        self, forward: Callable[[int, str, str], None], tracker: DlqTracker, root: str | None
    ) -> None:
        self._forward = forward
        self._tracker = tracker
        self._root = root
        self._files: dict[str, dict[tuple[int, int], DlqAssert]] = {}
        # Keyed by id(code): hashing a code object hashes its bytecode (microseconds on 3.12).
        # The code objects are kept alive in _codes, so an id is never reused meanwhile.
        self._known: dict[tuple[int, int], DlqAssert | None] = {}
        self._codes: list[CodeType] = []
        self._explained: dict[tuple[int, int], int] = {}
        self._pending: str | None = None

    def __call__(self, lineno: int, orig: str, expl: str) -> None:
        pending, self._pending = self._pending, None
        self._forward(lineno, pending or orig, expl)

    def __bool__(self) -> bool:
        tracker = self._tracker
        if tracker.asserted or tracker.paused:
            return False
        frame = sys._getframe(2)  # the rewritten assert (1 is pytest's check function)
        where = (id(frame.f_code), frame.f_lasti)
        try:
            found = self._known[where]
        except KeyError:
            if sys._getframe(1).f_code.co_name != "_check_if_assertion_pass_impl":
                return True  # not a rewritten assert asking: do not guess
            self._codes.append(frame.f_code)
            found = self._known[where] = self._learn(frame.f_code, frame.f_lasti)
        if found is None:
            return False
        if found.by_source:
            tracker.record("plain assert")
            retire_gate(tracker)
            return False
        if tracker.lazy:
            return False
        asked = self._explained[where] = self._explained.get(where, 0) + 1
        if asked >= MAX_EXPLAINED:
            # `assert row.valid or row.dlq_count == 0` in a loop: an assert that passed this
            # often without counting is a per-record check, not the test's DLQ assertion.
            self._known[where] = None
        self._pending = found.source
        return True

    def _learn(self, code: CodeType, lasti: int) -> DlqAssert | None:
        filename = code.co_filename
        asserts = self._files.get(filename)
        if asserts is None:
            asserts = self._files[filename] = candidate_asserts(filename, self._root)
        found: DlqAssert | None = _assert_at(code, lasti, asserts)
        return found


def install_gate(tracker: DlqTracker, root: str | None, *, listening: bool) -> None:
    """Put the gate in front of pytest's assertion-pass callback for the running test, or
    (``listening=False``: the rule does not apply) no callback at all. pytest puts its own
    back when the test ends."""
    util = _pass_hook_module()
    forward = util._assertion_pass
    if forward is None or isinstance(forward, PassHookGate):
        return
    util._assertion_pass = PassHookGate(forward, tracker, root) if listening else None


def retire_gate(tracker: DlqTracker) -> None:
    """The test has asserted its DLQ count: its passing asserts need no explanation any more."""
    util = _pass_hook_module()
    gate = util._assertion_pass
    if isinstance(gate, PassHookGate) and gate._tracker is tracker:
        util._assertion_pass = None


@contextmanager
def paused_watcher() -> Iterator[None]:
    """No DLQ-rule work inside the block (``budget.measure``): pytest's assertion-pass callback
    is off, so a passing assert costs what it costs without this plugin.

    A plain DLQ ``assert`` executed inside the block is not seen (the measured section is the
    pipeline's; the DLQ assertion belongs after it). ``dlq.assert_count`` still counts.
    """
    tracker = _current
    if tracker is None:
        yield
        return
    util = _pass_hook_module()
    gate = util._assertion_pass
    ours = isinstance(gate, PassHookGate) and gate._tracker is tracker
    tracker.paused += 1
    if ours:
        util._assertion_pass = None
    try:
        yield
    finally:
        tracker.paused -= 1
        if ours and util._assertion_pass is None and not tracker.asserted:
            util._assertion_pass = gate


@contextmanager
def whole_call_watcher() -> Iterator[None]:
    """The whole call of an integration test is measured: only asserts whose pass alone proves
    a DLQ count are recorded (a cached per-location lookup); no explanation is formatted."""
    tracker = _current
    if tracker is not None:
        tracker.lazy += 1
    try:
        yield
    finally:
        if tracker is not None:
            tracker.lazy -= 1
