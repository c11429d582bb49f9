"""Unit tests of record / value comparison and of the diff text."""

from __future__ import annotations

import datetime as dt
import math
import uuid
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from pytest_pipeline.fixture_files.compare import (
    Diff,
    compare,
    diff_records,
    diff_values,
    mismatch_message,
    values_equal,
)
from pytest_pipeline.records.tables import is_tabular, to_records

NAN = float("nan")


# --------------------------------------------------------------------------- values


@pytest.mark.parametrize(
    ("actual", "expected"),
    [
        (1, 1),
        (1, 1.0),
        (0.1 + 0.2, 0.3),  # within the default rel=1e-9
        (Decimal("1.5"), 1.5),
        (Decimal("2"), 2),
        (NAN, NAN),
        (None, NAN),
        (NAN, None),
        (pd.NA, None),
        (pd.NaT, NAN),
        (float("inf"), float("inf")),
        (np.int64(3), 3),
        (np.float32(0.5), 0.5),
        (np.bool_(True), True),
        ("x", "x"),
        (dt.datetime(2024, 1, 1, 10), pd.Timestamp("2024-01-01 10:00")),
        (dt.datetime(2024, 1, 1, 10), "2024-01-01T10:00:00"),  # JSON has no datetimes
        (dt.date(2024, 1, 1), "2024-01-01"),
        (dt.time(10, 30), "10:30:00"),
        (uuid.UUID(int=1), str(uuid.UUID(int=1))),
        ({"a": [1, 2.0]}, {"a": [1, 2]}),
        ((1, 2), [1, 2]),
        (np.array([1, 2]), [1, 2]),
        (np.datetime64("2024-01-01T10:00:00"), dt.datetime(2024, 1, 1, 10)),
    ],
)
def test_equal_values(actual: Any, expected: Any) -> None:
    assert values_equal(actual, expected)


@pytest.mark.parametrize(
    ("actual", "expected"),
    [
        (1, 2),
        (True, 1),  # a bool is not a number
        (False, 0.0),
        (1, True),
        (0.1, 0.1000001),
        ("1", 1),  # in JSON a string is not a number
        (1, "1"),
        (None, 0),
        (None, ""),
        (NAN, 0.0),
        (dt.date(2024, 1, 1), dt.datetime(2024, 1, 1)),
        (dt.datetime(2024, 1, 1), "2024-01-02T00:00:00"),
        (dt.datetime(2024, 1, 1), "not a date"),
        ({"a": 1}, {"a": 1, "b": 2}),
        ([1, 2], [1, 2, 3]),
        ("a", ["a"]),
        (2**70, 2**70 + 1),  # big ints compare exactly
    ],
)
def test_unequal_values(actual: Any, expected: Any) -> None:
    assert not values_equal(actual, expected)


def test_tolerances() -> None:
    assert not values_equal(100.0, 101.0)
    assert values_equal(100.0, 101.0, rel=0.01)
    assert values_equal(100.0, 101.0, abs=1.0)
    assert not values_equal(100.0, 101.0, abs=0.5)
    assert not values_equal(0.0, 1e-12)  # rel alone never accepts anything around zero
    assert values_equal(0.0, 1e-12, abs=1e-9)
    # Ints are exact by default, approximate once a tolerance is asked for.
    assert not values_equal(100, 101)
    assert values_equal(100, 101, rel=0.05)
    assert values_equal(Decimal("1.00"), Decimal("1.01"), abs=0.02)


def test_negative_tolerance_is_refused() -> None:
    with pytest.raises(ValueError, match="rel must be a non-negative number"):
        values_equal(1.0, 1.0, rel=-1)
    with pytest.raises(ValueError, match="abs must be"):
        diff_records([], [], abs=float("nan"))


@pytest.mark.parametrize(
    ("actual", "expected"),
    [
        ("42", 42),
        (42, "42"),
        ("007", 7),
        ("1.50", 1.5),
        ("true", True),
        ("False", False),
        ("2024-01-01", dt.date(2024, 1, 1)),
        ("2024-01-01 10:00:00", dt.datetime(2024, 1, 1, 10)),
        ("", None),
        ("NA", None),
        (None, "null"),
        (NAN, ""),
        ("1.5", Decimal("1.5")),
    ],
)
def test_text_loose_for_csv(actual: Any, expected: Any) -> None:
    assert values_equal(actual, expected, text_loose=True)


@pytest.mark.parametrize(
    ("actual", "expected"),
    [("42", 43), ("yes", True), ("x", None), ("2024-01-01", dt.date(2024, 1, 2)), ("1", True)],
)
def test_text_loose_still_tells_values_apart(actual: Any, expected: Any) -> None:
    if (actual, expected) == ("1", True):
        assert values_equal(actual, expected, text_loose=True)  # pyarrow reads "1" as true too
    else:
        assert not values_equal(actual, expected, text_loose=True)


# --------------------------------------------------------------------------- records


ROWS = [{"id": i, "amount": float(i), "currency": "EUR"} for i in range(5)]


def copy_rows() -> list[dict[str, Any]]:
    return [dict(r) for r in ROWS]


def test_equal_records() -> None:
    assert diff_records(copy_rows(), ROWS) == []
    # Key order does not matter.
    assert diff_records([dict(reversed(list(r.items()))) for r in ROWS], ROWS) == []
    assert diff_records([], []) == []


def test_value_differences() -> None:
    actual = copy_rows()
    actual[1]["amount"] = 1.5
    actual[3]["currency"] = "USD"
    actual[3]["id"] = True
    assert diff_records(actual, ROWS) == [
        "row 1:",
        "  amount: actual=1.5 expected=1.0 (diff +0.5)",
        "row 3:",
        "  id: actual=True expected=3",
        "  currency: actual='USD' expected='EUR'",
    ]


def test_row_level_missing_and_extra_keys() -> None:
    actual = copy_rows()
    del actual[2]["currency"]
    actual[4]["fee"] = 0.1
    assert diff_records(actual, ROWS) == [
        "row 2:",
        "  currency: missing in actual (expected='EUR')",
        "row 4:",
        "  fee: extra in actual (actual=0.1)",
    ]


def test_keys_missing_from_every_row_are_reported_once() -> None:
    actual = [{"id": r["id"], "amount": r["amount"], "fee": 0} for r in ROWS]
    actual[2]["amount"] = 99.0
    diff = compare(actual, ROWS)
    assert diff.lines == [
        "keys missing from every actual row: 'currency'",
        "extra keys in every actual row: 'fee'",
        "row 2:",
        "  amount: actual=99.0 expected=2.0 (diff +97)",
    ]
    assert (diff.differing_rows, diff.total_rows) == (5, 5)


def test_row_count_mismatch() -> None:
    diff = compare(copy_rows()[:3], ROWS)
    assert diff.lines == [
        "row count: actual=3 expected=5",
        "row 3: missing in actual: {'id': 3, 'amount': 3.0, 'currency': 'EUR'}",
        "row 4: missing in actual: {'id': 4, 'amount': 4.0, 'currency': 'EUR'}",
    ]
    assert (diff.differing_rows, diff.total_rows) == (2, 5)
    more = compare([*copy_rows(), {"id": 5}], ROWS)
    assert more.lines == ["row count: actual=6 expected=5", "row 5: extra in actual: {'id': 5}"]
    assert compare([], ROWS).lines[0] == "row count: actual=0 expected=5"


def test_output_is_capped() -> None:
    expected = [{"id": i, "v": i} for i in range(100)]
    actual = [{"id": i, "v": i + 1} for i in range(100)]
    diff = compare(actual, expected, max_rows=20)
    assert diff.differing_rows == 100
    assert sum(1 for line in diff.lines if line.startswith("row ")) == 20
    assert diff.lines[-1] == "... and 80 more differing rows"
    wide = [{f"k{i}": i for i in range(30)}]
    lines = diff_records([{k: -1 for k in wide[0]}], wide)
    assert lines[-1] == "  ... and 20 more keys"
    assert len(lines) == 12


def test_long_values_are_shortened() -> None:
    lines = diff_records([{"text": "a" * 500}], [{"text": "b" * 500}])
    assert len(lines[1]) < 200
    assert "..." in lines[1]


def test_nested_values_are_reported_by_path() -> None:
    expected = [{"id": 1, "items": [{"sku": "a", "qty": 1}], "meta": {"src": "x"}}]
    actual = [{"id": 1, "items": [{"sku": "a", "qty": 2}, {"sku": "b"}], "meta": {}}]
    assert diff_records(actual, expected) == [
        "row 0:",
        "  items: length actual=2 expected=1",
        "  items[0].qty: actual=2 expected=1 (diff +1)",
        "  meta.src: missing in actual (expected='x')",
    ]


def test_nan_and_none_rows_are_equal() -> None:
    assert diff_records([{"a": NAN, "b": None}], [{"a": None, "b": NAN}]) == []


def test_tolerance_applies_to_records() -> None:
    actual = [{"x": 1.0 + 1e-6}]
    assert diff_records(actual, [{"x": 1.0}]) != []
    assert diff_records(actual, [{"x": 1.0}], rel=1e-5) == []
    assert diff_records(actual, [{"x": 1.0}], abs=1e-5) == []


def test_numpy_values_inside_rows() -> None:
    actual = [{"a": np.array([1, 2]), "b": np.int64(2)}]
    assert diff_records(actual, [{"a": [1, 2], "b": 2}]) == []
    assert diff_records(actual, [{"a": [1, 3], "b": 2}]) == [
        "row 0:",
        "  a[1]: actual=2 expected=3 (diff -1)",
    ]


# --------------------------------------------------------------------------- other values


def test_diff_values_by_path() -> None:
    expected = {"total": 3, "by": {"EUR": 2, "USD": 1}, "tags": ["a", "b"]}
    actual = {"total": 3, "by": {"EUR": 2}, "tags": ["a", "c"], "new": True}
    assert diff_values(actual, expected) == [
        "$.by.USD: missing in actual (expected=1)",
        "$.tags[1]: actual='c' expected='b'",
        "$.new: extra in actual (actual=True)",
    ]
    assert diff_values(1, {"a": 1}) == ["$: actual=1 expected={'a': 1}"]
    assert diff_values([1, 2], [1, 2]) == []


def test_records_against_a_non_record_value() -> None:
    diff = compare([{"a": 1}], {"a": 1})
    assert diff.total_rows is None
    assert diff.lines == ["$: actual=[{'a': 1}] expected={'a': 1}"]


# --------------------------------------------------------------------------- tabular input


def test_dataframe_dtypes_do_not_matter() -> None:
    expected = [{"id": 1, "amount": 2, "name": "a"}, {"id": 2, "amount": None, "name": None}]
    frame = pd.DataFrame(
        {
            "id": pd.array([1, 2], dtype="int32"),
            "amount": [2.0, np.nan],
            "name": pd.array(["a", None], dtype="string"),
        }
    )
    assert compare(frame, expected).equal
    assert compare(frame.astype({"amount": "Int64"}), expected).equal
    assert compare(pa.Table.from_pandas(frame), expected).equal


def test_dataframe_index() -> None:
    frame = pd.DataFrame({"currency": ["EUR", "USD"], "total": [3, 4]})
    grouped = frame.set_index("currency")
    assert to_records(grouped) == [
        {"currency": "EUR", "total": 3},
        {"currency": "USD", "total": 4},
    ]
    # An unnamed index (what filtering leaves) is not data.
    assert to_records(frame[frame.total > 3]) == [{"currency": "USD", "total": 4}]


def test_dataframe_problems() -> None:
    frame = pd.DataFrame([[1, 2]], columns=["a", "a"])
    with pytest.raises(ValueError, match="duplicate column names"):
        to_records(frame)
    clash = pd.DataFrame({"a": [1]}, index=pd.Index([0], name="a"))
    with pytest.raises(ValueError, match="same name as a column"):
        to_records(clash)


def test_mixed_object_column_falls_back_to_pandas() -> None:
    frame = pd.DataFrame({"a": [1, "x"], "b": [np.int64(1), None]})
    records = to_records(frame)  # no Arrow type for column "a": pandas converts instead
    assert records[0] == {"a": 1, "b": 1.0}
    assert records[1]["a"] == "x"
    assert math.isnan(records[1]["b"])
    assert compare(frame, [{"a": 1, "b": 1}, {"a": "x", "b": None}]).equal


def test_to_records_refuses_other_types() -> None:
    with pytest.raises(TypeError, match="expected records"):
        to_records(42)
    assert to_records(({"a": 1},)) == [{"a": 1}]
    assert is_tabular(pd.DataFrame())
    assert is_tabular(pa.table({"a": [1]}))
    assert not is_tabular([{"a": 1}])


# --------------------------------------------------------------------------- message


def test_mismatch_message() -> None:
    actual = copy_rows()
    actual[1]["amount"] = 7.0
    message = mismatch_message("payments/expected/out.jsonl", compare(actual, ROWS))
    assert message.splitlines() == [
        "actual does not match fixture payments/expected/out.jsonl (1 of 5 rows differ):",
        "  row 1:",
        "    amount: actual=7.0 expected=1.0 (diff +6)",
    ]
    other = mismatch_message("cfg.json", Diff(lines=["$.a: actual=1 expected=2"]))
    assert other == "actual does not match fixture cfg.json:\n  $.a: actual=1 expected=2"


def test_large_equal_inputs_take_the_fast_path() -> None:
    expected: list[dict[str, Any]] = [
        {"id": i, "v": i * 0.5, "s": str(i), "f": i % 2 == 0} for i in range(20_000)
    ]
    actual = [dict(r) for r in expected]
    assert compare(actual, expected).equal
    actual[-1]["f"] = int(actual[-1]["f"])  # the shortcut must not accept True == 1
    assert compare(actual, expected).lines == ["row 19999:", "  f: actual=0 expected=False"]
