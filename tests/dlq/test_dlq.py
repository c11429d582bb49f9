"""The DLQ rule: a passing integration test must have asserted its dead-letter-queue count."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_pipeline import assert_dlq_count
from pytest_pipeline.dlq.rule import DlqSummary, count_of, dlq_assert_lines

Toml = Callable[[str], None]

RULE_LINE = (
    "{nodeid}: DLQ rule: this integration test passed without asserting the expected "
    "dead-letter-queue record count. Assert the expected dead-letter-queue count, e.g. "
    "dlq.assert_count(result, 0), assert_dlq_count(dlq_topic, 1) (from pytest_pipeline import "
    "assert_dlq_count), or a plain `assert result.dlq_count == 0` / "
    "`assert len(result.dlq_records) == 0`; if this test has no DLQ, "
    'mark it @pytest.mark.no_dlq(reason="...").'
)

HEADER = """
import pytest
from pytest_pipeline import assert_dlq_count


class Result:
    def __init__(self, dlq_records=0, dlq_count=None):
        self.dlq_records = dlq_records
        if dlq_count is not None:
            self.dlq_count = dlq_count


def run_pipeline(bad=0):
    return Result(dlq_records=[{"bad": i} for i in range(bad)])

"""


def integration_module(body: str) -> str:
    """A test module whose tests are all integration tests, with a tiny fake pipeline."""
    return HEADER + "pytestmark = pytest.mark.integration\n\n" + textwrap.dedent(body)


# --------------------------------------------------------------------------- what counts

COUNTING = {
    "fixture-int": """
        def test_it(dlq):
            dlq.assert_count(0, 0)
        """,
    "fixture-list": """
        def test_it(dlq):
            dlq.assert_count([{"id": 1}, {"id": 2}], 2)
        """,
    "fixture-dlq_records-int": """
        def test_it(dlq):
            dlq.assert_count(Result(dlq_records=3), 3)
        """,
    "fixture-dlq_records-list": """
        def test_it(dlq):
            dlq.assert_count(run_pipeline(bad=2), 2)
        """,
    "fixture-dlq_count": """
        def test_it(dlq):
            dlq.assert_count(Result(dlq_records=[], dlq_count=4), 4)
        """,
    "imported-function": """
        def test_it():
            assert_dlq_count(run_pipeline(bad=1), 1)
        """,
    "imported-in-function": """
        def test_it():
            from pytest_pipeline import assert_dlq_count as check
            check([], 0)
        """,
    "plain-attribute": """
        def test_it():
            result = Result()
            assert result.dlq_records == 0
        """,
    "plain-len": """
        def test_it():
            dlq_messages = ["a", "b"]
            assert len(dlq_messages) == 2
        """,
    "plain-dead-letter-name": """
        def test_it():
            dead_letters = []
            assert len(dead_letters) <= 0
        """,
    "plain-reversed": """
        def test_it():
            assert 0 == len(run_pipeline().dlq_records)
        """,
    "plain-multi-line": """
        def test_it():
            result = run_pipeline(bad=1)
            assert (
                len(
                    result.dlq_records
                )
                == 1
            ), "one bad record goes to the DLQ"
        """,
    "plain-in-loop": """
        def test_it():
            for bad in (0, 1):
                assert len(run_pipeline(bad).dlq_records) == bad
        """,
    "plain-with-and": """
        def test_it():
            result = run_pipeline()
            assert result is not None and len(result.dlq_records) == 0
        """,
    "plain-parametrized": """
        @pytest.mark.parametrize("bad", [3])
        def test_it(bad):
            assert len(run_pipeline(bad).dlq_records) == bad
        """,
    "plain-in-method": """
        class TestPipeline:
            def test_it(self):
                assert run_pipeline().dlq_records == []
        """,
    "plain-in-fixture-using-test": """
        @pytest.fixture
        def result():
            return run_pipeline()

        def test_it(result):
            assert result.dlq_records == []
        """,
}


@pytest.mark.parametrize("body", list(COUNTING.values()), ids=list(COUNTING))
def test_dlq_assertion_forms_satisfy_the_rule(pytester: pytest.Pytester, body: str) -> None:
    pytester.makepyfile(test_pipe=integration_module(body))
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["DLQ assertions: 1 of 1 integration tests"])
    assert "DLQ rule" not in result.stdout.str()


def test_dlq_assert_in_conftest_helper_counts(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        def check_pipeline_output(result, expected_bad):
            assert len(result["dlq"]) == expected_bad
        """
    )
    pytester.makepyfile(
        test_pipe="""
        import pytest
        from conftest import check_pipeline_output

        @pytest.mark.integration
        def test_it():
            check_pipeline_output({"dlq": [1]}, 1)
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["DLQ assertions: 1 of 1 integration tests"])


def test_dlq_assert_in_helper_module_counts(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        pipeline_checks="""
        def no_dead_letters(result):
            # not a test module and not a conftest: pytest does not rewrite this assert
            assert result.dlq_count == 0
        """,
        test_pipe="""
        import pytest
        from pipeline_checks import no_dead_letters

        class R:
            dlq_count = 0

        @pytest.mark.integration
        def test_it():
            no_dead_letters(R())
        """,
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["DLQ assertions: 1 of 1 integration tests"])


# --------------------------------------------------------------------------- what does not count

NOT_COUNTING = {
    "no-assert": """
        def test_it():
            run_pipeline()
        """,
    "happy-path-only": """
        def test_it():
            rows = [1, 2]
            assert len(rows) == 2
        """,
    "not-executed": """
        def test_it():
            result = run_pipeline()
            if False:
                assert result.dlq_records == 0
        """,
    "not-executed-branch": """
        def test_it():
            result = run_pipeline()
            if result is None:
                assert len(result.dlq_records) == 0
        """,
    "truthiness-only": """
        def test_it():
            dlq_topic = "orders.dlq"
            assert dlq_topic
        """,
    "membership-not-count": """
        def test_it():
            topics = ["orders.dlq"]
            assert "orders.dlq" in topics
        """,
    "dlq-only-in-message": """
        def test_it():
            rows = []
            assert len(rows) == 0, "no dlq here"
        """,
    "helper-never-called": """
        def check(result):
            assert result.dlq_records == 0

        def test_it():
            run_pipeline()
        """,
    "dlq-fixture-requested-but-unused": """
        def test_it(dlq):
            run_pipeline()
        """,
    "dlq-count-without-assert": """
        def test_it(dlq):
            dlq.count(run_pipeline())
        """,
}


@pytest.mark.parametrize("body", list(NOT_COUNTING.values()), ids=list(NOT_COUNTING))
def test_strict_fails_passing_test_without_dlq_assertion(
    pytester: pytest.Pytester, body: str
) -> None:
    pytester.makepyfile(test_pipe=integration_module(body))
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            RULE_LINE.format(nodeid="test_pipe.py::test_it"),
            "DLQ assertions: 0 of 1 integration tests (1 without a DLQ assertion)",
            "FAILED test_pipe.py::test_it - *DLQ rule*",
        ]
    )
    # The rule failure is the message, not a traceback into the plugin.
    failures = result.stdout.str().split("FAILURES")[1]
    assert "plugin.py" not in failures
    assert "dlq.py" not in failures


def test_rule_is_per_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_pipe=integration_module(
            """
            def test_asserts():
                assert run_pipeline().dlq_records == []

            def test_forgets():
                run_pipeline()

            def test_asserts_again(dlq):
                dlq.assert_count(run_pipeline(bad=1), 1)
            """
        )
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "test_pipe.py::test_forgets: DLQ rule: *",
            "DLQ assertions: 2 of 3 integration tests (1 without a DLQ assertion)",
        ]
    )


def test_unit_tests_are_not_subject_to_the_rule(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.unit
        def test_unit():
            pass

        def test_plain():
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=2)
    assert "DLQ assertions" not in result.stdout.str()


def test_auto_marked_integration_dir_is_subject_to_the_rule(pytester: pytest.Pytester) -> None:
    (pytester.path / "tests" / "integration").mkdir(parents=True)
    (pytester.path / "tests" / "integration" / "test_load.py").write_text(
        "def test_load():\n    pass\n\ndef test_load_checked(dlq):\n    dlq.assert_count([], 0)\n"
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "tests/integration/test_load.py::test_load: DLQ rule: *",
            "DLQ assertions: 1 of 2 integration tests (1 without a DLQ assertion)",
        ]
    )


# --------------------------------------------------------------------------- failures, modes


def test_failing_integration_test_reports_its_own_failure(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_pipe=integration_module(
            """
            def test_it():
                rows = run_pipeline()
                assert rows is None, "transform returned nothing"
            """
        )
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*AssertionError: transform returned nothing*"])
    assert "DLQ rule" not in result.stdout.str()


def test_dlq_count_mismatch_is_the_failure(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_pipe=integration_module(
            """
            def test_fixture(dlq):
                dlq.assert_count(run_pipeline(bad=2), 0)

            def test_function():
                assert_dlq_count([1, 2, 3], 1)

            def test_plain():
                assert run_pipeline(bad=1).dlq_records == []
            """
        )
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines(
        [
            "*AssertionError: DLQ count of Result: expected 0, got 2",
            # What went to the DLQ, first: the records of a result object or a list.
            "E *first 2 DLQ record(s):",
            "E *{'bad': 0}",
            "E *{'bad': 1}",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*AssertionError: DLQ count of list: expected 1, got 3",
            "E *first 3 DLQ record(s):",
            "E *1",
            "E *2",
            "E *3",
            "*assert [[]{'bad': 0}[]] == [[][]]*",
        ]
    )
    # A DLQ assertion counts once it passed: these tests failed for their own reason.
    assert "DLQ rule" not in result.stdout.str()
    assert "DLQ assertions:" not in result.stdout.str()


def test_uncountable_source_is_a_clear_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_pipe=integration_module(
            """
            def test_object(dlq):
                dlq.assert_count(object(), 0)

            def test_topic_name(dlq):
                dlq.assert_count("orders.dlq", 0)
            """
        )
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "*TypeError: cannot count DLQ records of object: pass an int, a collection of "
            "records, a mapping or object with dlq_records / dlq_count, or a Kafka topic of "
            "this test.",
            "*TypeError: 'orders.dlq' is not a Kafka topic of this test*",
        ]
    )


def test_warn_mode_passes_with_a_warning_naming_the_test(
    pytester: pytest.Pytester, pipeline_toml: Toml
) -> None:
    pipeline_toml('dlq_assertions = "warn"\n')
    pytester.makepyfile(
        test_pipe=integration_module(
            """
            def test_forgets():
                run_pipeline()

            def test_asserts(dlq):
                dlq.assert_count(0, 0)
            """
        )
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=2, warnings=1)
    result.stdout.fnmatch_lines(
        [
            "pipeline: seed=1234 dlq_assertions=warn *",
            "*PipelineWarning: test_pipe.py::test_forgets: DLQ rule: *",
            "DLQ assertions: 1 of 2 integration tests (1 without a DLQ assertion, "
            "dlq_assertions = warn)",
        ]
    )
    assert result.ret == pytest.ExitCode.OK


def test_off_mode_passes_without_warning(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_pipe=integration_module(
            """
            def test_forgets():
                run_pipeline()
            """
        )
    )
    result = pytester.runpytest("--pipeline-dlq-assertions=off")
    result.assert_outcomes(passed=1, warnings=0)
    assert "DLQ rule" not in result.stdout.str()


def test_off_mode_prints_no_summary(pytester: pytest.Pytester) -> None:
    # In off mode plain asserts are not watched: a summary would miscount them as missing.
    pytester.makepyfile(
        test_pipe=integration_module(
            """
            def test_plain():
                assert run_pipeline().dlq_records == []

            def test_forgets():
                run_pipeline()
            """
        )
    )
    result = pytester.runpytest("--pipeline-dlq-assertions=off")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["pipeline: * dlq_assertions=off *"])
    result.stdout.no_fnmatch_line("DLQ assertions:*")


def test_no_dlq_exempts_one_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_pipe=integration_module(
            """
            @pytest.mark.no_dlq(reason="only reads the warehouse; no DLQ in this path")
            def test_exempt():
                run_pipeline()

            def test_forgets():
                run_pipeline()
            """
        )
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "test_pipe.py::test_forgets: DLQ rule: *",
            "DLQ assertions: 0 of 2 integration tests (1 exempt with no_dlq, "
            "1 without a DLQ assertion)",
        ]
    )
    assert "test_exempt: DLQ rule" not in result.stdout.str()


def test_summary_line_all_asserted(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_pipe=integration_module(
            """
            @pytest.mark.parametrize("bad", range(12))
            def test_it(bad, dlq):
                dlq.assert_count(run_pipeline(bad), bad)
            """
        )
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=12)
    result.stdout.fnmatch_lines(["DLQ assertions: 12 of 12 integration tests"])


def test_skipped_integration_test_is_not_a_violation(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_pipe=integration_module(
            """
            def test_skips():
                pytest.skip("no broker here")

            @pytest.mark.skip(reason="later")
            def test_marked_skip():
                pass
            """
        )
    )
    result = pytester.runpytest()
    result.assert_outcomes(skipped=2)
    assert "DLQ rule" not in result.stdout.str()


def test_skipped_and_xfailed_tests_are_not_counted_as_missing(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_pipe=integration_module(
            """
            def test_skips():
                pytest.skip("no broker here")

            @pytest.mark.xfail(reason="known bug")
            def test_xfails():
                raise ValueError

            def test_asserts(dlq):
                dlq.assert_count(0, 0)
            """
        )
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, skipped=1, xfailed=1)
    result.stdout.fnmatch_lines(["DLQ assertions: 1 of 1 integration tests"])


def test_own_failure_is_not_counted_but_rule_failure_is(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_pipe=integration_module(
            """
            def test_breaks():
                raise RuntimeError("pipeline crashed")

            def test_forgets():
                pass
            """
        )
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        ["DLQ assertions: 0 of 1 integration tests (1 without a DLQ assertion)"]
    )


# --------------------------------------------------------------------------- robustness


CACHE_PROJECT = {
    "pipeline_checks": """
        def check(result):
            assert result["dlq_count"] == 0
        """,
    "test_pipe": integration_module(
        """
        from pipeline_checks import check

        def test_plain():
            result = run_pipeline()
            assert result.dlq_records == []

        def test_helper():
            check({"dlq_count": 0})

        def test_forgets():
            run_pipeline()
        """
    ),
}


def _assert_cache_project_verdicts(result: pytest.RunResult) -> None:
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "test_pipe.py::test_forgets: DLQ rule: *",
            "DLQ assertions: 2 of 3 integration tests (1 without a DLQ assertion)",
        ]
    )


def test_same_verdicts_with_assertion_rewrite_cache(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)
    pytester.makepyfile(**CACHE_PROJECT)
    first = pytester.runpytest_subprocess()
    _assert_cache_project_verdicts(first)
    cached = list((pytester.path / "__pycache__").glob("test_pipe.*pytest*.pyc"))
    assert cached, "the first run should have written the rewritten test module to the cache"
    second = pytester.runpytest_subprocess()  # imports the rewritten module from the cache
    _assert_cache_project_verdicts(second)


@pytest.mark.parametrize(
    "args",
    # --assert=plain: see test_dlq_rule_exact.py (plain asserts are not rewritten, so not seen).
    [("-p", "no:cacheprovider")],
)
def test_same_verdicts_without_cache_or_rewriting(
    pytester: pytest.Pytester, args: tuple[str, ...]
) -> None:
    pytester.makepyfile(**CACHE_PROJECT)
    _assert_cache_project_verdicts(pytester.runpytest(*args))


def test_summary_and_verdicts_under_xdist(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_pipe=integration_module(
            """
            @pytest.mark.parametrize("bad", range(4))
            def test_plain(bad):
                assert len(run_pipeline(bad).dlq_records) == bad

            @pytest.mark.parametrize("bad", range(3))
            def test_fixture(dlq, bad):
                dlq.assert_count(run_pipeline(bad), bad)

            @pytest.mark.no_dlq(reason="reads only")
            def test_exempt():
                pass

            def test_forgets():
                run_pipeline()
            """
        )
    )
    result = pytester.runpytest_subprocess("-n", "2")
    result.assert_outcomes(passed=8, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*test_pipe.py::test_forgets: DLQ rule: *",
            "DLQ assertions: 7 of 9 integration tests (1 exempt with no_dlq, "
            "1 without a DLQ assertion)",
        ]
    )


def test_coexists_with_another_tracer(pytester: pytest.Pytester) -> None:
    # A coverage-style tracer installed before the tests run keeps getting its events, is
    # restored after each test, and does not hide a plain DLQ assert from the rule.
    pytester.makeconftest(
        """
        import sys

        calls = []

        def counting(frame, event, arg):
            if event == "call" and frame.f_code.co_name.startswith("transform"):
                calls.append(frame.f_code.co_name)
            return counting

        def pytest_configure(config):
            sys.settrace(counting)

        def pytest_sessionfinish(session):
            print("TRACER STILL SET:", sys.gettrace() is counting)
            print("TRACER CALLS:", len(calls))
            sys.settrace(None)
        """
    )
    pytester.makepyfile(
        test_pipe=integration_module(
            """
            def transform_a(rows):
                return rows

            def test_plain():
                transform_a([])
                assert run_pipeline().dlq_records == []

            def test_forgets():
                transform_a([])
            """
        )
    )
    result = pytester.runpytest_subprocess("-s")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*TRACER STILL SET: True*",
            "*TRACER CALLS: 2*",
            "test_pipe.py::test_forgets: DLQ rule: *",
        ]
    )


def test_test_that_installs_its_own_tracer(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_pipe=integration_module(
            """
            import sys

            def test_it():
                seen = []

                def counting(frame, event, arg):
                    seen.append(event)
                    return None

                previous = sys.gettrace()
                sys.settrace(counting)
                try:
                    run_pipeline()
                finally:
                    sys.settrace(previous)
                assert seen
                assert run_pipeline().dlq_records == []
            """
        )
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["DLQ assertions: 1 of 1 integration tests"])


# --------------------------------------------------------------------------- units


def test_assert_dlq_count_outside_pytest_hooks() -> None:
    assert_dlq_count([1, 2], 2)
    with pytest.raises(AssertionError, match="DLQ count of int: expected 1, got 0"):
        assert_dlq_count(0, 1)
    with pytest.raises(TypeError, match="cannot be a bool"):
        count_of(True)


@pytest.mark.parametrize("expected", ["0", 1.0, -1, None, True])
def test_expected_count_must_be_a_count(expected: object) -> None:
    with pytest.raises(TypeError, match="expected DLQ count must be a non-negative int, got "):
        assert_dlq_count(0, expected)  # type: ignore[arg-type]


def test_count_of_sources() -> None:
    class WithRecords:
        dlq_records = ({"id": 1},)

    class WithCount:
        dlq_count = 7
        dlq_records = ()

    assert count_of(3) == 3
    assert count_of([1, 2]) == 2
    assert count_of({"a": 1, "dlq_count": 4}) == 4
    assert count_of(WithRecords()) == 1
    assert count_of(WithCount()) == 7


def test_dlq_assert_lines(tmp_path: Path) -> None:
    path = tmp_path / "test_lines.py"
    path.write_text(
        textwrap.dedent(
            """\
            def test_a(result, dlq_topic, rows):
                assert result.dlq_records == 0
                assert dlq_topic
                assert len(rows) == 2
                assert (
                    len(result.dead_letters)
                    <= 1
                )
                assert "orders.dlq" in rows
                assert result.DLQ_count < 3
            """
        )
    )
    assert dlq_assert_lines(str(path)) == frozenset({2, 5, 10})  # where each assert starts
    broken = tmp_path / "broken.py"
    broken.write_text("def (:\n")
    assert dlq_assert_lines(str(broken)) == frozenset()


def test_summary_line_wording() -> None:
    summary = DlqSummary()
    assert summary.line("strict") is None
    for outcome in ("asserted", "asserted", "exempt", "missing"):
        summary.add(outcome)
    assert summary.line("strict") == (
        "DLQ assertions: 2 of 4 integration tests (1 exempt with no_dlq, 1 without a DLQ assertion)"
    )
    assert summary.line("warn") == (
        "DLQ assertions: 2 of 4 integration tests (1 exempt with no_dlq, "
        "1 without a DLQ assertion, dlq_assertions = warn)"
    )
    assert summary.line("off") is None


def test_plain_assert_in_a_thread_counts(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_pipe=integration_module(
            """
            import threading

            def check(result):
                assert result.dlq_records == []

            def test_checked_in_a_worker_thread():
                worker = threading.Thread(target=check, args=(run_pipeline(0),))
                worker.start()
                worker.join()
            """
        )
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1)


def test_nested_session_does_not_reset_the_outer_tests_tracker(
    pytester: pytest.Pytester,
) -> None:
    """An integration test that runs a pytest session in-process keeps its own DLQ record."""
    pytester.makeconftest("pytest_plugins = ['pytester']")
    pytester.makepyfile(
        test_outer="""
        import pytest
        from pytest_pipeline import assert_dlq_count

        @pytest.mark.integration
        def test_outer(pytester):
            pytester.makepyfile(test_inner="def test_inner():\\n    pass\\n")
            pytester.runpytest_inprocess().assert_outcomes(passed=1)
            assert_dlq_count(0, 0)

        @pytest.mark.integration
        def test_asserts_then_nests(pytester):
            assert_dlq_count(0, 0)
            pytester.makepyfile(test_inner="def test_inner():\\n    pass\\n")
            pytester.runpytest_inprocess().assert_outcomes(passed=1)
        """
    )
    result = pytester.runpytest_subprocess("-p", "pytester")
    result.assert_outcomes(passed=2)


@pytest.mark.parametrize("plain_assert_in_project", [False, True])
def test_no_line_tracing_whether_or_not_the_project_has_a_plain_dlq_assert(
    pytester: pytest.Pytester, plain_assert_in_project: bool
) -> None:
    # The rule sets no tracer on any Python version (it listens to pytest_assertion_pass).
    pytester.makepyfile(
        test_rule="""
        import sys
        import pytest

        @pytest.mark.integration
        def test_counts(dlq):
            assert sys.gettrace() is None
            dlq.assert_count([], 0)
        """
    )
    if plain_assert_in_project:
        pytester.makepyfile(
            helpers="""
            def check(result):
                assert result.dlq_records == 0
            """
        )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
