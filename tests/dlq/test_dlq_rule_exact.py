"""Issue 12: the DLQ rule counts only an assertion that checked an expected DLQ count.

Each case runs a small project with pytester; the same file runs on Python 3.11 and 3.12+ (one
code path: pytest's ``pytest_assertion_pass`` hook, no tracer, no ``sys.monitoring``).
"""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path
from unittest.mock import MagicMock

import pytest

from pytest_pipeline.dlq import rule as dlq
from pytest_pipeline.dlq.rule import count_of

HEADER = """
import pytest
from pytest_pipeline import assert_dlq_count

pytestmark = pytest.mark.integration


class Result:
    rows = 3
    dlq_count = 0
    dlq_topic = "orders-dlq"
    dlq_records = ()
    dlq_max_retries = 5
    dlq_partitions = 3
    dlq_offset = 0
    dlq_reason = "bad"
    dlq_enabled = True
    dlq_config = {"a": 1}
    dlq_headers = {"x": 1}

"""


def project(pytester: pytest.Pytester, body: str, **files: str) -> None:
    pytester.makepyfile(test_pipe=HEADER + textwrap.dedent(body), **files)


def assert_rule_failure(result: pytest.RunResult, nodeid: str = "test_pipe.py::test_it") -> None:
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"{nodeid}: DLQ rule: *"])


def assert_counted(result: pytest.RunResult) -> None:
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["DLQ assertions: 1 of 1 integration tests"])
    assert "DLQ rule" not in result.stdout.str()


# --------------------------------------------------------------------------- does not count


@pytest.mark.parametrize(
    "line",
    [
        'assert Result().dlq_topic == "orders-dlq"',
        "assert Result().dlq_count >= 0",
        "assert Result().dlq_count > -1",
        "assert 0 <= Result().dlq_count",
        "assert Result().rows == 3 or Result().dlq_count == 99",
        "assert Result().dlq_count == 1 or Result().rows == 3",
        "assert not Result().dlq_count == 4",
        "assert Result().dlq_count != 4",
        "cond = False\n    if cond: assert Result().dlq_count == 0",
        "assert Result().dlq_max_retries == 5",
        "assert Result().dlq_partitions == 3",
        "assert Result().dlq_offset == 0",
        "assert Result().dlq_config == {'a': 1}",
        "assert len(Result().dlq_headers) == 1",
        "why = 'bad'\n    assert Result().dlq_reason == why",
        "on = True\n    assert Result().dlq_enabled == on",
        "record = {'dlq_reason': 'x'}\n    expected_reason = 'x'\n"
        "    assert record['dlq_reason'] == expected_reason",
        "dlq_topic = 'orders-dlq'\n    assert ['orders-dlq'].count(dlq_topic) == 1",
        "dlq = 'orders-dlq'\n    name = 'orders-dlq'\n    assert dlq == name",
        "expected_dlq_count = 3\n    assert Result().rows == expected_dlq_count",
        "assert Result().dlq_count == Result().dlq_count",
        "assert len(Result().dlq_records) == len(Result().dlq_records)",
        "assert Result().dlq_count <= 10**9",
        "assert Result().dlq_count < float('inf')",
        "import sys\n    assert Result().dlq_count <= sys.maxsize",
        "import unittest.mock\n    assert Result().dlq_count == unittest.mock.ANY",
        "limit = 2**40\n    assert Result().dlq_count <= limit",
        "from unittest.mock import ANY\n    expected = ANY\n"
        "    assert Result().dlq_count == expected",
        "class V:\n        def __repr__(self): return 'accepted or retried'\n"
        "    verdict = V()\n    assert verdict or Result().dlq_count == 99",
        "class V:\n        def __repr__(self): return 'accepted or 0 == 0'\n"
        "    verdict = V()\n    assert verdict or Result().dlq_count == 99",
        "assert Result().dlq_count == 0 or True if False else True",
    ],
    ids=[
        "topic-name",
        "ge-zero",
        "gt-minus-one",
        "mirrored-lower-bound",
        "or-dlq-part-never-ran",
        "or-dlq-part-false",
        "negated",
        "not-equal",
        "one-line-if-not-taken",
        "max-retries",
        "partitions",
        "offset",
        "config",
        "len-headers",
        "reason-variable",
        "enabled-variable",
        "reason-key",
        "list-count-of-dlq-topic",
        "bare-dlq-string",
        "dlq-name-only-on-expected-side",
        "same-expression",
        "same-len",
        "bound-1e9",
        "bound-inf",
        "bound-maxsize",
        "mock-any",
        "evaluated-huge-bound",
        "evaluated-any",
        "or-repr-with-or",
        "or-repr-faking-a-compare",
        "conditional-expression",
    ],
)
def test_comparison_that_checked_no_expected_count_does_not_count(
    pytester: pytest.Pytester, line: str
) -> None:
    project(pytester, f"def test_it():\n    {line}\n")
    assert_rule_failure(pytester.runpytest())


def test_failing_count_caught_by_pytest_raises_does_not_count(pytester: pytest.Pytester) -> None:
    project(
        pytester,
        """
        def test_it(dlq):
            with pytest.raises(TypeError):
                dlq.assert_count(Result(), "0")
        """,
    )
    assert_rule_failure(pytester.runpytest())


def test_failing_count_caught_as_assertion_error_does_not_count(
    pytester: pytest.Pytester,
) -> None:
    project(
        pytester,
        """
        def test_it():
            try:
                assert_dlq_count([1, 2], 5)
            except AssertionError:
                pass
        """,
    )
    assert_rule_failure(pytester.runpytest())


def test_failing_plain_count_caught_does_not_count(pytester: pytest.Pytester) -> None:
    project(
        pytester,
        """
        def test_it():
            with pytest.raises(AssertionError):
                assert Result().dlq_count == 7
        """,
    )
    assert_rule_failure(pytester.runpytest())


def test_type_error_is_not_counted_as_asserted_in_the_summary(pytester: pytest.Pytester) -> None:
    project(
        pytester,
        """
        def test_bad_source(dlq):
            dlq.assert_count(object(), 0)

        def test_ok(dlq):
            dlq.assert_count(Result(), 0)
        """,
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*TypeError: cannot count DLQ records of object*"])
    result.stdout.fnmatch_lines(["DLQ assertions: 1 of 1 integration tests"])


# --------------------------------------------------------------------------- counts


@pytest.mark.parametrize(
    "line",
    [
        "assert Result().dlq_count == 0",
        "assert Result().dlq_count <= 3",
        "assert 3 >= Result().dlq_count",
        "assert 0 <= Result().dlq_count <= 3",
        "assert Result().rows == 4 or Result().dlq_count == 0",
        "assert Result().rows == 3 and (Result().rows == 1 or len(Result().dlq_records) == 0)",
        "assert len(Result().dlq_records) == 0",
        'assert {"dlq_count": 0}["dlq_count"] == 0',
        "assert count_of(Result()) == 0",
        "cond = True\n    if cond: assert Result().dlq_count == 0",
        "dlq_records = []\n    assert not dlq_records",
        "assert not Result().dlq_count",
        "assert Result().dlq_count in (0,)",
        "assert Result().rows == 3; assert Result().dlq_count == 0",
        "dead_letters = []\n    assert dead_letters == []",
        "assert len(Result().dlq_records) == 0; x = 1",
        "class K:\n        def count(self, t): return 3\n    kafka = K(); dlq_topic = 't'\n"
        "    assert kafka.count(dlq_topic) == 3",
        "expected_dlq_count = 0\n    assert Result().dlq_count == expected_dlq_count",
        "assert Result().dlq_count == pytest.approx(0)",
        "class C:\n        dlqCount = 0\n    assert C().dlqCount == 0",
    ],
    ids=[
        "equal",
        "upper-bound",
        "mirrored-upper-bound",
        "chained-with-upper-bound",
        "or-dlq-part-decided",
        "nested-or-dlq-part-decided",
        "len",
        "key",
        "count_of",
        "one-line-if-taken",
        "not-empty-records",
        "not-count",
        "in-single-value",
        "second-assert-on-a-line",
        "bare-dead-letters-empty-list",
        "statement-end",
        "kafka-count-dlq-topic",
        "expected-named-expected",
        "approx",
        "camel-case",
    ],
)
def test_comparison_with_expected_count_counts(pytester: pytest.Pytester, line: str) -> None:
    project(
        pytester,
        f"from pytest_pipeline.dlq.rule import count_of\n\ndef test_it():\n    {line}\n",
    )
    assert_counted(pytester.runpytest())


@pytest.mark.parametrize("phase", ["setup", "teardown"])
@pytest.mark.parametrize(
    "check", ["assert result.dlq_count == 0", "assert_dlq_count(result, 0)"], ids=["plain", "fn"]
)
def test_assert_in_a_conftest_fixture_counts(
    pytester: pytest.Pytester, phase: str, check: str
) -> None:
    setup, teardown = (check, "pass") if phase == "setup" else ("pass", check)
    pytester.makeconftest(
        f"""
        import pytest
        from pytest_pipeline import assert_dlq_count

        class R:
            dlq_count = 0

        @pytest.fixture
        def checked_result():
            result = R()
            {setup}
            yield result
            {teardown}
        """
    )
    project(pytester, "def test_it(checked_result):\n    pass\n")
    assert_counted(pytester.runpytest())


def test_yield_fixture_that_could_assert_the_count_defers_the_verdict_to_teardown(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture
        def result_with_dlq(dlq):
            result = object()
            yield result
            dlq.count([])  # reads the count, asserts nothing
        """
    )
    project(pytester, "def test_it(result_with_dlq):\n    pass\n")
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "test_pipe.py::test_it: DLQ rule: *",
            "DLQ assertions: 0 of 1 integration tests (1 without a DLQ assertion)",
        ]
    )


def test_failing_count_in_a_fixture_teardown_is_the_tests_own_failure(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(
        """
        import pytest
        from pytest_pipeline import assert_dlq_count

        @pytest.fixture
        def checked():
            yield
            assert_dlq_count([1, 2], 5)
        """
    )
    project(pytester, "def test_it(checked):\n    pass\n")
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*DLQ count of list: expected 5, got 2*"])
    assert "DLQ rule" not in result.stdout.str()
    assert "DLQ assertions:" not in result.stdout.str()


def test_yield_fixture_unrelated_to_the_dlq_keeps_the_verdict_in_the_call(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture(autouse=True)
        def clean_tables():
            yield
            assert 1 == 1
        """
    )
    project(pytester, "def test_it():\n    pass\n")
    assert_rule_failure(pytester.runpytest())


def test_assert_in_project_helper_package_counts(pytester: pytest.Pytester) -> None:
    (pytester.path / "pipelines").mkdir()
    (pytester.path / "pipelines" / "__init__.py").write_text("")
    (pytester.path / "pipelines" / "checks.py").write_text(
        "def no_dead_letters(result):\n    assert result.dlq_count == 0\n"
    )
    project(
        pytester,
        """
        from pipelines.checks import no_dead_letters

        def test_it():
            no_dead_letters(Result())
        """,
    )
    assert_counted(pytester.runpytest())


def test_helper_outside_rootdir_counts_when_registered(
    pytester: pytest.Pytester, tmp_path_factory: pytest.TempPathFactory
) -> None:
    outside = tmp_path_factory.mktemp("outside")
    (outside / "far_checks.py").write_text(
        "def no_dead_letters(result):\n    assert result.dlq_count == 0\n"
    )
    pytester.makeconftest(
        f"""
        import sys
        import pytest

        sys.path.insert(0, {str(outside)!r})
        pytest.register_assert_rewrite("far_checks")
        """
    )
    project(
        pytester,
        """
        from far_checks import no_dead_letters

        def test_it():
            no_dead_letters(Result())
        """,
    )
    assert_counted(pytester.runpytest("--rootdir", str(pytester.path)))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_a_fifo_named_like_a_module_in_the_rootdir_is_not_read(pytester: pytest.Pytester) -> None:
    # The start-up scan for helper modules reads regular files only: a FIFO never ends.
    os.mkfifo(pytester.path / "pipe.py")
    project(pytester, "def test_it():\n    assert Result().dlq_count == 0\n")
    assert_counted(pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=60))


def test_modules_cached_without_the_hook_are_rewritten_again(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)
    project(pytester, "def test_it():\n    assert Result().dlq_count == 0\n")
    # A run without the plugin caches test_pipe rewritten without the assertion-pass calls.
    pytester.runpytest_subprocess("-p", "no:pipeline").assert_outcomes(passed=1)
    assert list((pytester.path / "__pycache__").glob("test_pipe.*pytest*.pyc"))
    assert_counted(pytester.runpytest_subprocess())


def test_plain_assert_mode_says_why_plain_asserts_are_not_seen(pytester: pytest.Pytester) -> None:
    project(pytester, "def test_it():\n    assert Result().dlq_count == 0\n")
    # A subprocess: in-process, this session's own rewrite hook would import test_pipe.
    result = pytester.runpytest_subprocess("--assert=plain")
    assert_rule_failure(result)
    result.stdout.fnmatch_lines(["*pytest runs with --assert=plain*"])


# --------------------------------------------------------------------------- measurement


def test_no_rule_work_inside_a_measured_block(pytester: pytest.Pytester) -> None:
    project(
        pytester,
        """
        import sys
        from _pytest.assertion import util

        def probe():
            tools = []
            monitoring = getattr(sys, "monitoring", None)
            if monitoring is not None:
                tools = [t for t in range(6) if monitoring.get_tool(t) == "pytest-pipeline"]
            # pytest formats an explanation and calls the pass hook only if this is truthy.
            return sys.gettrace(), tools, bool(util._assertion_pass)

        @pytest.mark.performance
        def test_it(budget, dlq):
            before = probe()
            with budget.measure(records=1):
                inside = probe()
            after = probe()
            assert before[2]  # the rule listens outside the block
            assert inside == (None, [], False)
            assert after[2]
            dlq.assert_count(Result(), 0)
        """,
    )
    assert_counted(pytester.runpytest("-p", "no:cacheprovider"))


def test_assert_inside_a_measured_block_is_not_seen(pytester: pytest.Pytester) -> None:
    project(
        pytester,
        """
        @pytest.mark.performance
        def test_it(budget):
            with budget.measure(records=1):
                assert Result().dlq_count == 0
        """,
    )
    assert_rule_failure(pytester.runpytest())


def test_no_tracer_during_an_integration_test(pytester: pytest.Pytester) -> None:
    project(
        pytester,
        """
        import sys

        def test_it():
            assert sys.gettrace() is None
            assert Result().dlq_count == 0
        """,
    )
    assert_counted(pytester.runpytest("-p", "no:cacheprovider"))


@pytest.mark.skipif(sys.version_info < (3, 12), reason="sys.monitoring exists on 3.12+ only")
def test_other_monitoring_tools_keep_their_disabled_events(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import sys

        monitoring = sys.monitoring
        TOOL = monitoring.COVERAGE_ID
        seen = []

        def on_line(code, line):
            if code.co_name == "traced":
                seen.append(line)
            return monitoring.DISABLE  # a coverage tool: one event per line is enough

        def pytest_configure(config):
            monitoring.use_tool_id(TOOL, "fake-coverage")
            monitoring.register_callback(TOOL, monitoring.events.LINE, on_line)
            monitoring.set_events(TOOL, monitoring.events.LINE)

        def pytest_unconfigure(config):
            print("LINE EVENTS OF traced:", len(seen))
            monitoring.set_events(TOOL, 0)
            monitoring.free_tool_id(TOOL)
        """
    )
    project(
        pytester,
        """
        def traced():
            return 1

        def test_a():
            traced()
            assert Result().dlq_count == 0

        def test_b():
            traced()
            assert Result().dlq_count == 0
        """,
    )
    result = pytester.runpytest_subprocess("-s")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["LINE EVENTS OF traced: 1"])


# --------------------------------------------------------------------------- units


def test_count_of_a_mock_is_a_clear_error() -> None:
    with pytest.raises(TypeError, match="a mock is not a DLQ count"):
        count_of(MagicMock())
    with pytest.raises(TypeError, match="a mock is not a DLQ count"):
        count_of(MagicMock(spec=["dlq_count"]))


def test_count_of_nested_attribute_is_one_level() -> None:
    class Odd:
        dlq_count = "3"

    with pytest.raises(TypeError, match=r"\.dlq_count of Odd is str"):
        count_of(Odd())


@pytest.mark.parametrize(
    ("orig", "expl", "counts"),
    [
        ("r.rows == 3 or r.dlq_count == 99", "(3 == 3)\n +  where 3 = R(' or ').rows", False),
        ("r.rows == 4 or r.dlq_count == 5", "(3 == 4 or 5 == 5)\n +  where 3 = x.rows", True),
        ("r.rows == 4 or r.dlq_count == 5", "(3 == 4 or 5 ==", False),  # unparsable: no
        ('r.dlq_topic == "orders-dlq"', "'orders-dlq' == 'orders-dlq'", False),
        ("r.dlq_count >= 0", "5 >= 0", False),
        ("r.dlq_count == n", "5 == 5", True),
        ("dlq.count(topic) == 2", "2 == 2", True),
        ("kafka.count(dlq_topic) == 2", "2 == 2", True),
        ("kafka.count(topic) == 2", "2 == 2", False),
        ("len(dlq_topic) == 2", "2 == 2", False),
        ("r.dlq_topic_size <= 2", "2 <= 2", True),
        ("r.dlq_url == url", "'x' == 'x'", False),
        ("pipeline.get_dlq_count(t) == 0", "0 == 0", True),
        ("get_dlq_topic(t) == t", "'t' == 't'", False),
        ("(n := r.dlq_count) == 0", "0 == 0", True),
        ("r.dlq_count == True", "True == True", False),
        ("r.dlq_count == None", "None == None", False),
        ('r.dlq_count == f"{n}"', "'1' == '1'", False),
        ("a and b or r.dlq_count == 0", "(False or 0 == 0)", True),
    ],
)
def test_checks_dlq_count(orig: str, expl: str, counts: bool) -> None:
    assert dlq.checks_dlq_count(orig, expl) is counts


def test_docs_describe_the_mechanism() -> None:
    text = (Path(__file__).parents[2] / "docs" / "dlq-rule.md").read_text()
    assert "pytest_assertion_pass" in text


# --------------------------------------------------------------------------- review of issue 12


@pytest.mark.parametrize(
    ("source", "count"),
    [
        ({"processed": 97, "dlq_count": 3}, 3),
        ({"processed": 97, "dlq_records": [1, 2, 3]}, 3),
        ([1, 2], 2),
    ],
)
def test_count_of_a_mapping_reads_its_dlq_keys(source: object, count: int) -> None:
    assert count_of(source) == count


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ({"processed": 97, "failed": 3}, "without a 'dlq_count' or 'dlq_records' key"),
        ({"dlq_count": {"a": 1}}, r"\['dlq_count'\] of dict is dict"),
        (b"abc", "cannot count DLQ records of bytes"),
        (bytearray(b"abc"), "cannot count DLQ records of bytearray"),
    ],
)
def test_count_of_refuses_what_is_not_a_count_source(source: object, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        count_of(source)


def test_assert_count_of_a_result_dict_checks_its_dlq_count(pytester: pytest.Pytester) -> None:
    project(
        pytester,
        """
        def test_it(dlq):
            dlq.assert_count({"processed": 97, "dlq_count": 3}, 2)
        """,
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*DLQ count of dict: expected 2, got 3*"])


def test_how_to_fix_suggests_a_check_that_works_for_a_list() -> None:
    assert "dlq_records == 0" not in dlq.HOW_TO_FIX
    assert "len(result.dlq_records) == 0" in dlq.HOW_TO_FIX


COUNTED_REPR = """
calls = []

class Row:
    valid = True
    dlq_count = 0

    def __repr__(self):
        calls.append(1)  # pytest formatted an explanation naming this row
        return "Row()"

ROWS = [Row() for _ in range(100)]

def check(rows):
    for row in rows:
        assert row.valid or row.dlq_count == 0
"""


def test_whole_call_measurement_formats_no_explanation(pytester: pytest.Pytester) -> None:
    project(
        pytester,
        COUNTED_REPR
        + """
@pytest.mark.performance(records=1)
def test_it():
    check(ROWS)
    assert not calls  # no explanation formatted inside the measured call
    assert Result().dlq_count == 0  # decided by its source: counts without an explanation
""",
    )
    pytester.makefile(".toml", pyproject="[tool.pytest-pipeline.budgets]\nmax_seconds = 60\n")
    assert_counted(pytester.runpytest("-p", "no:randomly"))


def test_an_assert_location_is_explained_a_bounded_number_of_times(
    pytester: pytest.Pytester,
) -> None:
    project(
        pytester,
        COUNTED_REPR
        + f"""
def test_it():
    check(ROWS)
    assert 0 < len(calls) <= {dlq.MAX_EXPLAINED} * 2
    assert Result().dlq_count == 0
""",
    )
    assert_counted(pytester.runpytest("-p", "no:randomly"))


@pytest.mark.parametrize(
    ("ini", "mode", "outcome"),
    [
        ("enable_assertion_pass_hook = false", "strict", "error"),
        ("enable_assertion_pass_hook = false", "off", "passed"),
        ("", "strict", "passed"),
    ],
)
def test_an_explicit_enable_assertion_pass_hook_false_is_respected(
    pytester: pytest.Pytester, ini: str, mode: str, outcome: str
) -> None:
    pytester.makefile(
        ".toml",
        pyproject=f'[tool.pytest-pipeline]\ndlq_assertions = "{mode}"\n'
        f"[tool.pytest.ini_options]\n{ini}\n",
    )
    project(pytester, "def test_it():\n    assert Result().dlq_count == 0\n")
    result = pytester.runpytest()
    if outcome == "error":
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines(["*enable_assertion_pass_hook = false is set, but the DLQ*"])
    else:
        result.assert_outcomes(passed=1)


_SEEN_PASSES = """
import pytest

SEEN = []

def pytest_assertion_pass(item, lineno, orig, expl):
    SEEN.append(f"{item.name}: {orig}")

def pytest_terminal_summary(terminalreporter):
    terminalreporter.write_line(f"SEEN {sorted(SEEN)}")
"""


def test_only_modules_with_a_dlq_assert_are_rewritten_with_the_pass_hook(
    pytester: pytest.Pytester,
) -> None:
    # The hook makes pytest's rewrite of every assert dearer: a module without a DLQ-count
    # assert is rewritten as it would be without the plugin, so its asserts report nothing.
    pytester.makeconftest(_SEEN_PASSES)
    pytester.makepyfile(
        test_plain="import pytest\n\n@pytest.mark.unit\ndef test_sum():\n    assert 1 + 1 == 2\n",
        test_flow="import pytest\n\n@pytest.mark.integration\ndef test_flow():\n"
        "    dlq_records = []\n    assert len(dlq_records) == 0\n",
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["SEEN ['test_flow: len(dlq_records) == 0']"])


def test_a_project_that_turns_the_pass_hook_on_gets_every_event(
    pytester: pytest.Pytester,
) -> None:
    pytester.makefile(
        ".toml", pyproject="[tool.pytest.ini_options]\nenable_assertion_pass_hook = true\n"
    )
    pytester.makeconftest(_SEEN_PASSES)
    pytester.makepyfile(
        test_plain="import pytest\n\n@pytest.mark.unit\ndef test_sum():\n    assert 1 + 1 == 2\n",
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["SEEN ['test_sum: 1 + 1 == 2']"])


def test_a_count_topic_assert_in_a_file_that_names_no_dlq_gets_the_pass_hook(
    pytester: pytest.Pytester,
) -> None:
    # count_of/count_topic count whatever their arguments are called: such a module must be
    # rewritten with the hook although the file never says "dlq".
    pytester.makeconftest(_SEEN_PASSES)
    pytester.makepyfile(
        test_error_topic="import pytest\n\n"
        "def count_topic(servers, topic):\n    return 0\n\n"
        "@pytest.mark.integration\ndef test_errors():\n"
        "    assert count_topic('localhost:9092', 'orders.errors') == 0\n",
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(['SEEN [[]"test_errors: count_topic(*) == 0"[]]'])
