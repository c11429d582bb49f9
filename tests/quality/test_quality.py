"""The quality layer: real Great Expectations suites, the production gate, the fixture."""

from __future__ import annotations

import io
import json
import math
import re
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import great_expectations as gx  # imported once for the whole module: GE is slow to import
import great_expectations.expectations as gxe
import pandas as pd
import pyarrow as pa
import pytest

from pytest_pipeline.quality.engine import (
    SAMPLE_SIZE,
    QualityEngine,
    QualityError,
    SuiteError,
    SuiteLibrary,
    load_suite,
    validate,
)

SILVER_CSV = textwrap.dedent(
    """\
    order_id,email,amount,country
    1,ana@example.com,12.5,DE
    2,bo@example.com,99.0,FR
    3,cy@example.com,0.0,NL
    """
)


def silver_suite() -> gx.ExpectationSuite:
    """The silver-layer suite of the examples: one expectation per failure shape."""
    return gx.ExpectationSuite(
        name="silver_orders",
        expectations=[
            gxe.ExpectColumnValuesToNotBeNull(column="order_id"),
            gxe.ExpectColumnValuesToBeUnique(column="order_id"),
            gxe.ExpectColumnValuesToBeBetween(column="amount", min_value=0, max_value=100),
            gxe.ExpectColumnValuesToBeInSet(column="country", value_set=["DE", "FR", "NL"]),
            gxe.ExpectColumnValuesToMatchRegex(column="email", regex=r"^[^@\s]+@[^@\s]+$"),
        ],
    )


def broken_frame() -> pd.DataFrame:
    # Every expectation of silver_suite() fails on exactly the rows named in its comment.
    return pd.DataFrame(
        {
            "order_id": [1, 2, 2, None, 5, 6, 7],  # null: row 3; duplicate 2: rows 1, 2
            "email": ["a@x.io", "b@x.io", "c@x.io", "d@x.io", "nope", "bad at", "g@x.io"],
            "amount": [1.0, 2.0, 3.0, 4.0, 5.0, -7.5, 250.0],  # rows 5, 6
            "country": ["DE", "FR", "DE", "NL", "DE", "DE", "XX"],  # row 6
        },
        index=[f"r{i}" for i in range(7)],  # not a RangeIndex: rows are still positions
    )


@pytest.fixture
def suite_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "expectations"
    (directory / "gold").mkdir(parents=True)
    (directory / "silver_orders.json").write_text(json.dumps(silver_suite().to_json_dict()))
    gold = gx.ExpectationSuite(
        name="gold_totals", expectations=[gxe.ExpectTableRowCountToBeBetween(min_value=1)]
    )
    (directory / "gold" / "totals.json").write_text(json.dumps(gold.to_json_dict()))
    return directory


# --------------------------------------------------------------------------- production gate


def test_gate_passes_a_good_frame_from_a_suite_file(suite_dir: Path) -> None:
    frame = pd.read_csv(io.StringIO(SILVER_CSV)).head(2)
    result = validate(frame, "silver_orders", expectations_dir=suite_dir)
    assert result.success
    assert (result.suite, result.row_count, result.evaluated) == ("silver_orders", 2, 5)
    assert result.failed_rows == []
    assert result.message() == "quality suite 'silver_orders': all 5 expectations passed on 2 rows"


def test_gate_reports_every_failure_and_splits_the_rows(suite_dir: Path) -> None:
    frame = broken_frame()
    result = validate(frame, "silver_orders", expectations_dir=suite_dir)

    assert not result.success
    by_type = {failure.expectation: failure for failure in result.failures}
    # Suite order is kept, whatever order GE evaluated in.
    assert list(by_type) == [e.expectation_type for e in silver_suite().expectations]
    expected = {
        "expect_column_values_to_not_be_null": (("order_id",), 1, (None,), (3,)),
        "expect_column_values_to_be_unique": (("order_id",), 2, (2.0,), (1, 2)),
        "expect_column_values_to_be_between": (("amount",), 2, (-7.5, 250.0), (5, 6)),
        "expect_column_values_to_be_in_set": (("country",), 1, ("XX",), (6,)),
        "expect_column_values_to_match_regex": (("email",), 2, ("nope", "bad at"), (4, 5)),
    }
    for kind, (columns, count, sample, rows) in expected.items():
        failure = by_type[kind]
        assert (failure.columns, failure.unexpected_count, failure.sample, failure.rows) == (
            columns,
            count,
            sample,
            rows,
        ), kind
        assert failure.error is None
    assert result.failed_rows == [1, 2, 3, 4, 5, 6]
    assert list(result.bad_rows(frame).index) == ["r1", "r2", "r3", "r4", "r5", "r6"]
    assert list(result.good_rows(frame).index) == ["r0"]
    assert result.failed_columns == ["order_id", "amount", "country", "email"]
    # The report section must survive json (and pytest-xdist's transport of plain data).
    row = json.loads(json.dumps(result.as_dict()))
    assert row["failed"][0] == {
        "expectation": "expect_column_values_to_not_be_null",
        "columns": ["order_id"],
        "kwargs": {"column": "order_id"},
        "unexpected_count": 1,
        "unexpected_percent": pytest.approx(100 / 7),
        "observed_value": None,
        "sample": [None],
        "error": None,
    }


def test_failure_message_has_one_row_per_failed_expectation(suite_dir: Path) -> None:
    message = validate(broken_frame(), "silver_orders", expectations_dir=suite_dir).message()
    lines = message.splitlines()
    assert lines[0] == "quality suite 'silver_orders' failed on 7 rows: 5 of 5 expectations failed"
    assert lines[1].split() == [
        "expectation",
        "column(s)",
        "observed",
        "unexpected",
        "sample",
        "unexpected",
        "values",
    ]
    rows = lines[2:7]
    assert rows[0].split() == ["expect_column_values_to_not_be_null", "order_id", "-", "1",
                               "(14.3%)", "null"]  # fmt: skip
    assert "expect_column_values_to_be_between(min_value=0.0, max_value=100.0)" in rows[2]
    assert rows[2].rstrip().endswith("2 (28.6%)   -7.5, 250.0")
    assert rows[3].rstrip().endswith("'XX'")
    assert rows[4].rstrip().endswith("'nope', 'bad at'")
    assert lines[7] == "failing columns: order_id, amount, country, email"


def test_samples_are_distinct_and_capped() -> None:
    frame = pd.DataFrame({"code": [f"bad{i % 8}" for i in range(40)]})
    result = validate(frame, [gxe.ExpectColumnValuesToBeInSet(column="code", value_set=["ok"])])
    (failure,) = result.failures
    assert failure.unexpected_count == 40
    assert failure.sample == tuple(f"bad{i}" for i in range(SAMPLE_SIZE))
    assert failure.rows == tuple(range(40))


def test_table_level_failures_show_the_observed_value() -> None:
    frame = pd.DataFrame({"amount": [10.0, 20.0]})
    result = validate(
        frame,
        [
            gxe.ExpectTableRowCountToBeBetween(min_value=5),
            gxe.ExpectColumnMeanToBeBetween(column="amount", max_value=12),
        ],
    )
    assert [(f.observed_value, f.unexpected_count) for f in result.failures] == [
        (2, None),
        (15.0, None),
    ]
    assert result.failed_rows == []  # table-level: no row to blame, yet not a success
    assert not result.success
    assert "expect_table_row_count_to_be_between(min_value=5)  -          2" in result.message()


def test_a_missing_column_is_a_failure_with_ges_reason() -> None:
    result = validate(pd.DataFrame({"a": [1]}), [gxe.ExpectColumnValuesToNotBeNull(column="b")])
    (failure,) = result.failures
    assert failure.error == 'Error: The column "b" in BatchData does not exist.'
    assert 'error: Error: The column "b" in BatchData does not exist.' in result.message()


def test_pyarrow_and_records_inputs() -> None:
    expectations = [gxe.ExpectColumnValuesToNotBeNull(column="id")]
    table = pa.table({"id": [1, None, 3]})
    from_table = validate(table, expectations)
    from_records = validate([{"id": 1}, {"id": None}, {"id": 3}], expectations)
    for result in (from_table, from_records):
        assert result.row_count == 3
        assert result.failed_rows == [1]
    with pytest.raises(QualityError, match=r"cannot validate a builtins.dict: pass a pandas"):
        validate({"id": [1]}, expectations)


def test_the_same_expectation_objects_can_be_reused() -> None:
    # GE ties an expectation to the suite it joins; the gate must not trip over that.
    expectations = [gxe.ExpectColumnValuesToBeUnique(column="id")]
    frame = pd.DataFrame({"id": [1, 1]})
    assert [len(validate(frame, expectations).failures) for _ in range(3)] == [1, 1, 1]


def test_the_gate_leaves_the_users_ge_context_current() -> None:
    from great_expectations.data_context.data_context.context_factory import project_manager

    users = gx.get_context(mode="ephemeral")  # a pipeline's own context
    result = QualityEngine().validate(
        pd.DataFrame({"id": [1]}), [gxe.ExpectColumnValuesToNotBeNull(column="id")]
    )
    assert result.success
    assert project_manager.get_current_project() is users


def test_rows_false_skips_row_positions() -> None:
    frame = pd.DataFrame({"id": [1, None]})
    result = validate(frame, [gxe.ExpectColumnValuesToNotBeNull(column="id")], rows=False)
    assert result.failures[0].unexpected_count == 1
    assert result.failed_rows is None
    with pytest.raises(QualityError, match="validate with rows=True"):
        result.bad_rows(frame)


def test_suite_argument_kinds(suite_dir: Path) -> None:
    engine = QualityEngine(SuiteLibrary(suite_dir))
    by_name = engine.suite("silver_orders")
    assert isinstance(by_name, gx.ExpectationSuite)
    assert by_name.name == "silver_orders"
    assert by_name.to_json_dict()["expectations"] == silver_suite().to_json_dict()["expectations"]
    assert engine.suite("silver_orders") is not by_name  # fresh copies: suites are mutable
    assert engine.suite("gold/totals.json").name == "gold_totals"
    assert engine.suite(by_name) is by_name
    assert engine.suite(str(suite_dir / "gold" / "totals.json")).name == "gold_totals"
    single = engine.suite(gxe.ExpectColumnValuesToNotBeNull(column="x"))
    assert (single.name, len(single.expectations)) == ("inline", 1)
    with pytest.raises(QualityError, match="cannot use a int as a suite"):
        engine.suite(3)
    with pytest.raises(SuiteError, match="pass a path to a suite JSON file, or expectations_dir="):
        QualityEngine().suite("silver_orders")


# --------------------------------------------------------------------------- suite errors


def test_unknown_suite_lists_the_suites_there(suite_dir: Path) -> None:
    library = SuiteLibrary(suite_dir, rootdir=suite_dir.parent)
    assert library.names() == ["gold/totals", "silver_orders"]
    with pytest.raises(SuiteError) as info:
        library.load("silver_order")
    assert str(info.value) == (
        "no suite 'silver_order' in expectations (suites there: gold/totals, silver_orders). "
        "Did you mean 'silver_orders'?"
    )
    with pytest.raises(SuiteError, match=r"expectations directory nowhere does not exist"):
        SuiteLibrary(suite_dir.parent / "nowhere", rootdir=suite_dir.parent).load("x")


def _suite_file(tmp_path: Path, content: Any) -> Path:
    path = tmp_path / "bad.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            '{"name": "x", "expectations": [}',
            r"bad.json is not valid JSON: .* at line 1, column 32",
        ),
        ([], r"bad.json: a suite is a JSON object, found a list"),
        ({"name": "x"}, r"bad.json: 'expectations' must be a list"),
        (
            {"expectations": [{"type": "expect_column_values_to_not_be_nul", "kwargs": {}}]},
            r"bad.json: expectation #1 \(expect_column_values_to_not_be_nul\): unknown "
            r"expectation type .*; did you mean 'expect_column_values_to_not_be_null'\?",
        ),
        (
            {
                "expectations": [
                    {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "a"}},
                    {"type": "expect_column_values_to_be_between", "kwargs": {"min_value": 1}},
                ]
            },
            r"bad.json: expectation #2 \(expect_column_values_to_be_between\) has invalid "
            r"arguments: .*column field required",
        ),
        (
            {"expectations": [{"expectation_type": "expect_column_to_exist", "kwargs": {}}]},
            r"expectation #1 has no 'type' \(a Great Expectations 0.x suite: rename "
            r"'expectation_type' to 'type'\)",
        ),
        ({"expectations": ["x"]}, r"expectation #1 is a str, expected a JSON object"),
    ],
)
def test_malformed_suites_name_the_file_and_expectation(
    tmp_path: Path, content: Any, message: str
) -> None:
    with pytest.raises(SuiteError, match=message):
        load_suite(_suite_file(tmp_path, content))


def test_a_suite_file_rewritten_on_disk_is_read_again(suite_dir: Path) -> None:
    library = SuiteLibrary(suite_dir)
    assert len(library.load("silver_orders").expectations) == 5
    one = gx.ExpectationSuite(
        name="silver_orders", expectations=[gxe.ExpectColumnToExist(column="order_id")]
    )
    (suite_dir / "silver_orders.json").write_text(json.dumps(one.to_json_dict(), indent=1))
    assert len(library.load("silver_orders").expectations) == 1


# --------------------------------------------------------------------------- the fixture


def _example_project(pytester: pytest.Pytester, pipeline_toml: Callable[[str], None]) -> None:
    pipeline_toml(
        """
        fixtures_dir = "data"
        expectations_dir = "suites"
        """
    )
    suites = pytester.path / "suites"
    suites.mkdir()
    (suites / "silver_orders.json").write_text(json.dumps(silver_suite().to_json_dict()))
    (suites / "broken.json").write_text(
        json.dumps({"name": "broken", "expectations": [{"type": "expect_nothing", "kwargs": {}}]})
    )
    (pytester.path / "data").mkdir()
    (pytester.path / "data" / "silver_orders.csv").write_text(SILVER_CSV)


FIXTURE_TESTS = """
    import json
    import os

    import great_expectations as gx
    import great_expectations.expectations as gxe
    import pandas as pd
    import pytest

    from pytest_pipeline.quality.engine import SuiteError

    pytestmark = pytest.mark.quality

    def test_silver_fixture_passes_in_one_line(expectations):
        expectations.assert_valid("silver_orders.csv", "silver_orders")

    def test_pyarrow_table(expectations, load_fixture_as_table):
        result = expectations.assert_valid(load_fixture_as_table("silver_orders.csv"),
                                           "silver_orders")
        assert result.row_count == 3

    def test_suite_object_and_inline_expectations(expectations, load_fixture_as_dataframe):
        suite = expectations.suite("silver_orders")
        assert isinstance(suite, gx.ExpectationSuite)
        frame = load_fixture_as_dataframe("silver_orders.csv")
        assert expectations.validate(frame, suite).success
        expectations.assert_valid(frame, [gxe.ExpectColumnValuesToBeUnique(column="email")])
        assert os.environ["GX_ANALYTICS_ENABLED"] == "false"

    def test_broken_frame(expectations):
        frame = pd.DataFrame({
            "order_id": [1, 1, None],
            "email": ["a@b.c", "not an email", "c@d.e"],
            "amount": [5.0, 500.0, 1.0],
            "country": ["DE", "FR", "ZZ"],
        })
        expectations.assert_valid(frame, "silver_orders")

    def test_unknown_suite(expectations):
        expectations.suite("silver")

    def test_malformed_suite(expectations):
        with pytest.raises(SuiteError, match="broken.json: expectation #1"):
            expectations.suite("broken")

    def test_unknown_fixture_file(expectations):
        expectations.validate("missing.csv", "silver_orders")
"""

CONFTEST = """
    import json

    from pytest_pipeline.report.collect import run_report

    def pytest_unconfigure(config):
        print("QUALITY-REPORT", json.dumps(run_report(config).sections.get("quality")))
"""


@pytest.fixture
def quality_run(
    pytester: pytest.Pytester, pipeline_toml: Callable[[str], None]
) -> Callable[..., pytest.RunResult]:
    _example_project(pytester, pipeline_toml)
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_silver=FIXTURE_TESTS)

    def run(*args: str, subprocess: bool = False) -> pytest.RunResult:
        # In process is fast: this module imported GE already, so the run does not import it
        # again (pytester forgets only the modules a run imports itself).
        runner = pytester.runpytest_subprocess if subprocess else pytester.runpytest_inprocess
        return runner("-p", "no:cacheprovider", "-s", *args)

    return run


def _quality_report(result: pytest.RunResult) -> list[dict[str, Any]]:
    line = next(x for x in result.outlines if x.startswith("QUALITY-REPORT "))
    rows: list[dict[str, Any]] = json.loads(line.split(" ", 1)[1])
    return rows


def _check_fixture_run(result: pytest.RunResult) -> None:
    result.assert_outcomes(passed=4, failed=3)
    output = result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "*_ test_broken_frame _*",
            "E*AssertionError: quality suite 'silver_orders' failed on 3 rows: "
            "5 of 5 expectations failed",
            "E*expectation * column(s) * observed * unexpected * sample unexpected values",
            "E*expect_column_values_to_not_be_null * order_id * - * 1 (33.3%) * null",
            "E*expect_column_values_to_be_unique * order_id * - * 2 (100.0%) * 1.0",
            "E*expect_column_values_to_be_between(min_value=0.0, max_value=100.0) * amount "
            "* - * 1 (33.3%) * 500.0",
            "E*expect_column_values_to_be_in_set(value_set=*) * country * - * 1 (33.3%) * 'ZZ'",
            "E*expect_column_values_to_match_regex(regex=*) * email * - * 1 (33.3%) "
            "* 'not an email'",
            "E*failing columns: order_id, amount, country, email",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*_ test_unknown_suite _*",
            "E*pytest_pipeline.errors.SuiteError: no suite 'silver' in suites "
            "(suites there: broken, silver_orders). Did you mean 'silver_orders'?",
        ]
    )
    result.stdout.fnmatch_lines(
        ["*_ test_unknown_fixture_file _*", "E**FixtureFileError: *missing.csv*"]
    )
    result.stdout.fnmatch_lines(
        [
            "pytest-pipeline quality: 5 validation(s) of 2 suite(s), 1 failed",
            "  test_silver.py::test_broken_frame: suite 'silver_orders' on 3 rows, 5 of 5 "
            "expectations failed (columns: order_id, amount, country, email)",
        ]
    )
    # No GE progress bars, no frames from inside quality.py / GE in the failures.
    assert "Calculating Metrics" not in output + result.stderr.str()
    assert "quality.py:" not in output
    assert "great_expectations/" not in output

    rows = _quality_report(result)
    # Sorted: under xdist, reports arrive in any order.
    assert sorted((row["test"].split("::")[1], row["suite"], row["success"]) for row in rows) == [
        ("test_broken_frame", "silver_orders", False),
        ("test_pyarrow_table", "silver_orders", True),
        ("test_silver_fixture_passes_in_one_line", "silver_orders", True),
        ("test_suite_object_and_inline_expectations", "inline", True),
        ("test_suite_object_and_inline_expectations", "silver_orders", True),
    ]
    broken = next(row for row in rows if not row["success"])
    assert [f["columns"] for f in broken["failed"]] == [
        ["order_id"],
        ["order_id"],
        ["amount"],
        ["country"],
        ["email"],
    ]
    assert broken["failed"][2]["sample"] == [500.0]
    assert broken["rows"] == 3
    assert all(math.isfinite(row["seconds"]) for row in rows)


def test_expectations_fixture_in_a_pytest_run(quality_run: Callable[..., pytest.RunResult]) -> None:
    _check_fixture_run(quality_run())


def test_expectations_fixture_under_xdist(quality_run: Callable[..., pytest.RunResult]) -> None:
    # Worker results reach the controller's summary and report on the test reports.
    pytest.importorskip("xdist")
    result = quality_run("-n", "2", "-p", "xdist", subprocess=True)
    _check_fixture_run(result)


def test_first_ge_import_is_announced_with_its_time(
    pytester: pytest.Pytester, pipeline_toml: Callable[[str], None]
) -> None:
    _example_project(pytester, pipeline_toml)
    pytester.makepyfile(
        test_silver="""
        import pytest

        @pytest.mark.quality
        @pytest.mark.parametrize("n", [1, 2])
        def test_silver(expectations, n):
            expectations.assert_valid("silver_orders.csv", "silver_orders")
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    # Once, on a line of its own (the test module does not import GE itself).
    loads = re.findall(
        r"^quality: Great Expectations 1\.\S+ loaded in \d+\.\d\d s$", result.stdout.str(), re.M
    )
    assert len(loads) == 1, result.stdout.str()


def test_missing_extra_names_the_install_command(
    pytester: pytest.Pytester, pipeline_toml: Callable[[str], None]
) -> None:
    pipeline_toml("")
    pytester.makeconftest(
        """
        import sys

        sys.modules["great_expectations"] = None  # as if the quality extra were not installed

        def pytest_sessionfinish(session):
            print("GE-LOADED", "great_expectations" in sys.modules and
                  sys.modules["great_expectations"] is not None)
        """
    )
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.quality
        def test_needs_ge(expectations):
            pass

        @pytest.mark.quality
        def test_without_expectations():
            pass
        """
    )
    result = pytester.runpytest_subprocess("-s")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*GE-LOADED False*",
            "*ERROR at setup of test_needs_ge*",
            "E**MissingDependencyError: Great Expectations suites (the quality layer) needs "
            "the Python package 'great_expectations' which is not installed (*). "
            'Install it with: pip install "pytest-pipeline[[]quality[]]>=1.0"',
        ]
    )
    assert "pytest-pipeline quality:" not in result.stdout.str()
