"""Order-free comparisons: ``key=``, ``ignore_order=``, ``ignore_columns=``, per-column
``tolerance=`` and raw CSV text (issue 13, section 3), through the plugin and ``compare``."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from pytest_pipeline.fixture_files.compare import compare, mismatch_message

ROWS = [
    {"id": 1, "region": "eu", "amount": 10.0},
    {"id": 2, "region": "us", "amount": 20.5},
    {"id": 3, "region": "eu", "amount": 7.25},
]
SHUFFLED = [ROWS[2], ROWS[0], ROWS[1]]


@pytest.fixture
def fixtures(pytester: pytest.Pytester) -> Path:
    folder = pytester.path / "tests" / "fixtures"
    folder.mkdir(parents=True)
    return folder


def _test_file(pytester: pytest.Pytester, body: str) -> None:
    pytester.makepyfile(test_it=textwrap.dedent(body))


def _jsonl(rows: list[dict[str, object]]) -> str:
    import json

    return "".join(json.dumps(r) + "\n" for r in rows)


# --------------------------------------------------------------------------- through the plugin


@pytest.mark.parametrize("kind", ["records", "dataframe", "table"])
def test_key_matches_rows_in_any_order(
    pytester: pytest.Pytester, fixtures: Path, kind: str
) -> None:
    (fixtures / "out.jsonl").write_text(_jsonl(ROWS), encoding="utf-8")
    make = {
        "records": "rows",
        "dataframe": "pd.DataFrame(rows)",
        "table": "pa.Table.from_pylist(rows)",
    }[kind]
    _test_file(
        pytester,
        f"""
        import pandas as pd
        import pyarrow as pa

        def test_it(assert_matches_fixture):
            rows = {SHUFFLED!r}
            assert_matches_fixture({make}, "out.jsonl", key="id")
            assert_matches_fixture({make}, "out.jsonl", key=["region", "id"])
            assert_matches_fixture({make}, "out.jsonl", ignore_order=True)
        """,
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_keyed_diff_names_the_key_of_each_row(pytester: pytest.Pytester, fixtures: Path) -> None:
    (fixtures / "out.jsonl").write_text(_jsonl(ROWS), encoding="utf-8")
    actual = [
        {"id": 3, "region": "eu", "amount": 7.25},
        {"id": 1, "region": "eu", "amount": 10.5},
        {"id": 9, "region": "us", "amount": 1.0},
    ]
    _test_file(
        pytester,
        f"""
        def test_it(assert_matches_fixture):
            assert_matches_fixture({actual!r}, "out.jsonl", key="id")
        """,
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*actual does not match fixture out.jsonl"
            " (3 of 4 rows differ, rows matched by key id):",
            "*  row id=1: amount: actual=10.5 expected=10.0 (diff +0.5)",
            "*  keys missing from actual (1): id=2",
            "*  keys only in actual (1): id=9",
        ]
    )


def test_duplicate_keys_are_a_clear_error(pytester: pytest.Pytester, fixtures: Path) -> None:
    (fixtures / "out.jsonl").write_text(_jsonl(ROWS), encoding="utf-8")
    actual = [*ROWS, {"id": 2, "region": "us", "amount": 1.0}]
    _test_file(
        pytester,
        f"""
        def test_actual(assert_matches_fixture):
            assert_matches_fixture({actual!r}, "out.jsonl", key="id")

        def test_expected(assert_matches_fixture):
            assert_matches_fixture({ROWS!r}, "out.jsonl", key="region")
        """,
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "*key id is not unique in actual: id=2 is in rows 1 and 3*",
            "*key region is not unique in actual: region='eu' is in rows 0 and 2*",
        ]
    )


def test_ignore_columns_and_per_column_tolerance(pytester: pytest.Pytester, fixtures: Path) -> None:
    (fixtures / "out.jsonl").write_text(_jsonl(ROWS), encoding="utf-8")
    actual = [{**row, "amount": row["amount"] + 0.004, "loaded_at": "now"} for row in SHUFFLED]
    _test_file(
        pytester,
        f"""
        def test_passes(assert_matches_fixture):
            assert_matches_fixture(
                {actual!r}, "out.jsonl", key="id", ignore_columns=["loaded_at"],
                tolerance={{"amount": 0.01}},
            )
            assert_matches_fixture(
                {actual!r}, "out.jsonl", key="id", ignore_columns=["loaded_at"],
                tolerance={{"amount": {{"abs": 0.01}}}},
            )

        def test_tolerance_is_per_column(assert_matches_fixture):
            assert_matches_fixture(
                {actual!r}, "out.jsonl", key="id", ignore_columns=["loaded_at"],
                tolerance={{"amount": 0.001}},
            )

        def test_typo(assert_matches_fixture):
            assert_matches_fixture({ROWS!r}, "out.jsonl", tolerance={{"amout": 0.01}})
        """,
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*row id=1: amount: actual=10.004 expected=10.0 (diff +0.004)",
            "*tolerance names column 'amout', which neither actual nor expected has*",
        ]
    )


def test_ignore_order_reports_unmatched_rows(pytester: pytest.Pytester, fixtures: Path) -> None:
    (fixtures / "out.jsonl").write_text(_jsonl(ROWS), encoding="utf-8")
    actual = [ROWS[2], ROWS[0], {"id": 2, "region": "us", "amount": 99.0}]
    _test_file(
        pytester,
        f"""
        def test_it(assert_matches_fixture):
            assert_matches_fixture({actual!r}, "out.jsonl", ignore_order=True)
        """,
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*(2 of 4 rows differ, in any order):",
            "*  rows only in actual (1):",
            "*    {'id': 2, 'region': 'us', 'amount': 99.0}",
            "*  rows missing from actual (1):",
            "*    {'id': 2, 'region': 'us', 'amount': 20.5}",
        ]
    )


def test_csv_raw_keeps_text(pytester: pytest.Pytester, fixtures: Path) -> None:
    (fixtures / "zips.csv").write_text("id,zip\n1,00501\n2,10001\n", encoding="utf-8")
    _test_file(
        pytester,
        """
        def test_load(load_fixture):
            assert load_fixture("zips.csv", csv_raw=True) == [
                {"id": "1", "zip": "00501"}, {"id": "2", "zip": "10001"}
            ]
            assert load_fixture("zips.csv")[0]["zip"] == 501  # inferred, as before

        def test_raw_compare_is_exact_text(assert_matches_fixture):
            rows = [{"id": "2", "zip": "10001"}, {"id": "1", "zip": "00501"}]
            assert_matches_fixture(rows, "zips.csv", key="id", csv_raw=True)

        def test_raw_compare_tells_lost_zeros(assert_matches_fixture):
            rows = [{"id": "1", "zip": "501"}, {"id": "2", "zip": "10001"}]
            assert_matches_fixture(rows, "zips.csv", key="id", csv_raw=True)
        """,
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*row id='1': zip: actual='501' expected='00501'"])


def test_missing_expected_file_says_how_to_create_it(
    pytester: pytest.Pytester, fixtures: Path
) -> None:
    _test_file(
        pytester,
        f"""
        def test_it(assert_matches_fixture):
            assert_matches_fixture({ROWS!r}, "new/out.jsonl", key="id")
        """,
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*not found*run pytest with --pipeline-update-fixtures to create it from actual*"]
    )


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
@pytest.mark.parametrize("kind", ["records", "dataframe", "table"])
def test_update_with_key_writes_rows_sorted_by_key(
    pytester: pytest.Pytester, fixtures: Path, kind: str, suffix: str
) -> None:
    make = {
        "records": "rows",
        "dataframe": "pd.DataFrame(rows)",
        "table": "pa.Table.from_pylist(rows)",
    }[kind]
    actual = [{**row, "loaded_at": "volatile"} for row in SHUFFLED]
    _test_file(
        pytester,
        f"""
        import pandas as pd
        import pyarrow as pa

        def test_it(assert_matches_fixture, load_fixture):
            rows = {actual!r}
            assert_matches_fixture(
                {make}, "out{suffix}", key="id", ignore_columns=["loaded_at"]
            )
        """,
    )
    pytester.runpytest("--pipeline-update-fixtures").assert_outcomes(passed=1)
    written = pytester.path / "tests" / "fixtures" / f"out{suffix}"
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        got = pq.read_table(written).to_pylist()
    elif suffix == ".csv":
        got = pd.read_csv(written).to_dict("records")
    else:
        import json

        got = [json.loads(line) for line in written.read_text(encoding="utf-8").splitlines()]
    assert got == ROWS  # sorted by id, without the ignored column
    pytester.runpytest().assert_outcomes(passed=1)


# --------------------------------------------------------------------------- compare() itself


def test_positional_comparison_is_unchanged() -> None:
    diff = compare(SHUFFLED, ROWS)
    assert (diff.differing_rows, diff.total_rows) == (3, 3)


def test_keyed_output_is_capped() -> None:
    expected = [{"id": i, "v": i} for i in range(100)]
    actual = [{"id": i, "v": i + 1} for i in range(100)]
    diff = compare(actual, expected, key="id", max_rows=5)
    message = mismatch_message("x.jsonl", diff)
    assert message.count("  row id=") == 5
    assert "... and 95 more differing rows" in message


def test_many_missing_keys_are_capped() -> None:
    expected = [{"id": i} for i in range(100)]
    diff = compare([], expected, key="id", max_rows=5)
    assert diff.lines == [
        "keys missing from actual (100): id=0, id=1, id=2, id=3, id=4, ... and 95 more"
    ]


def test_key_values_match_across_types() -> None:
    # A CSV-read key is an int64, a DataFrame's an Int64, a JSON key a float when written so.
    actual = pd.DataFrame({"id": pd.array([2, 1], dtype="Int64"), "v": ["b", "a"]})
    expected = [{"id": 1.0, "v": "a"}, {"id": 2, "v": "b"}]
    assert compare(actual, expected, key="id").equal
    table = pa.table({"id": [2, 1], "v": ["b", "a"]})
    assert compare(table, expected, key=["id"]).equal


def test_a_row_without_the_key_column_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"key column 'id' is missing from expected row 1"):
        compare([{"id": 1}], [{"id": 1}, {"other": 2}], key="id")


def test_ignore_order_with_tolerance_pairs_close_rows() -> None:
    expected = [{"a": 1.0}, {"a": 2.0}]
    actual = [{"a": 2.001}, {"a": 1.001}]
    assert not compare(actual, expected, ignore_order=True).equal
    assert compare(actual, expected, ignore_order=True, tolerance={"a": 0.01}).equal
    assert compare(actual, expected, ignore_order=True, abs=0.01).equal


def test_bad_tolerance_specs_are_refused() -> None:
    with pytest.raises(ValueError, match="tolerance for column 'a'"):
        compare([{"a": 1}], [{"a": 1}], tolerance={"a": {"absolute": 0.1}})
    with pytest.raises(ValueError, match="tolerance for column 'a'"):
        compare([{"a": 1}], [{"a": 1}], tolerance={"a": -1})
    with pytest.raises(ValueError, match="pass key= or ignore_order=True, not both"):
        compare([{"a": 1}], [{"a": 1}], key="a", ignore_order=True)


def test_update_with_key_leaves_an_equal_file_alone_in_any_order(
    pytester: pytest.Pytester, fixtures: Path
) -> None:
    (fixtures / "out.jsonl").write_text(_jsonl(ROWS), encoding="utf-8")
    before = (fixtures / "out.jsonl").stat().st_mtime_ns
    _test_file(
        pytester,
        f"""
        def test_it(assert_matches_fixture):
            assert_matches_fixture({SHUFFLED!r}, "out.jsonl", key="id")
            assert_matches_fixture({SHUFFLED!r}, "out.jsonl", ignore_order=True)
        """,
    )
    result = pytester.runpytest("--pipeline-update-fixtures")
    result.assert_outcomes(passed=1)
    assert "wrote" not in result.stdout.str()
    assert (fixtures / "out.jsonl").stat().st_mtime_ns == before


def test_update_refuses_a_duplicated_key(pytester: pytest.Pytester, fixtures: Path) -> None:
    actual = [*ROWS, ROWS[0]]
    _test_file(
        pytester,
        f"""
        def test_it(assert_matches_fixture):
            assert_matches_fixture({actual!r}, "out.jsonl", key="id")
        """,
    )
    result = pytester.runpytest("--pipeline-update-fixtures")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*key id is not unique in actual: id=1 is in rows 0 and 3*"])
    assert not (fixtures / "out.jsonl").exists()


def test_update_with_ignore_order_sorts_by_every_column(
    pytester: pytest.Pytester, fixtures: Path
) -> None:
    actual = [{"a": 2, "b": "x"}, {"a": 1, "b": "z"}, {"a": 1, "b": "y"}]
    _test_file(
        pytester,
        f"""
        def test_it(assert_matches_fixture):
            assert_matches_fixture({actual!r}, "out.jsonl", ignore_order=True)
        """,
    )
    pytester.runpytest("--pipeline-update-fixtures").assert_outcomes(passed=1)
    assert (fixtures / "out.jsonl").read_text(encoding="utf-8").splitlines() == [
        '{"a": 1, "b": "y"}',
        '{"a": 1, "b": "z"}',
        '{"a": 2, "b": "x"}',
    ]


def test_csv_raw_on_another_format_is_a_clear_error(
    pytester: pytest.Pytester, fixtures: Path
) -> None:
    (fixtures / "out.jsonl").write_text(_jsonl(ROWS), encoding="utf-8")
    _test_file(
        pytester,
        """
        def test_it(load_fixture):
            load_fixture("out.jsonl", csv_raw=True)
        """,
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*csv_raw=True reads a .csv fixture's cells as text*"])


def test_a_typo_in_ignore_columns_is_an_error() -> None:
    with pytest.raises(ValueError, match="ignore_columns names column 'loadded_at'"):
        compare(ROWS, ROWS, key="id", ignore_columns=["loadded_at"])


def test_nan_and_none_match_in_any_order() -> None:
    expected = [{"id": 1, "v": None}, {"id": 2, "v": 1.5}]
    actual = [{"id": 2, "v": 1.5}, {"id": 1, "v": float("nan")}]
    assert compare(actual, expected, ignore_order=True).equal
    assert compare(actual, expected, key="id").equal
