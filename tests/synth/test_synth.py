"""Synthetic records from a suite or a schema: they pass the real suite through the quality layer.

Every generated batch here is validated by ``pytest_pipeline.quality.engine.validate`` (Great
Expectations itself), so a generator that ignores an expectation fails these tests.
"""

from __future__ import annotations

import json
import sys
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest

from pytest_pipeline.errors import MissingDependencyError
from pytest_pipeline.quality.engine import SuiteError, validate
from pytest_pipeline.synth import SynthError, SynthWarning, plan, strategy, synthesize
from pytest_pipeline.synth import spec as synth_spec

ROOT = Path(__file__).resolve().parents[2]
PAYMENTS = ROOT / "examples/payments/src/payments/quality/expectations/silver_payments.json"
ORDERS = ROOT / "src/pytest_pipeline/cli/templates/project/expectations/orders_clean.json"
COLUMNS = [
    "id",
    "sku",
    "country",
    "status",
    "amount",
    "quantity",
    "note",
    "code",
    "rate",
    "tag",
]


def expectation(kind: str, **kwargs: Any) -> dict[str, Any]:
    return {"type": kind, "kwargs": kwargs, "meta": {}}


def ten_columns() -> dict[str, Any]:
    """A 10-column suite using every supported family of expectations."""
    e = expectation
    return {
        "name": "ten_columns",
        "expectations": [
            e("expect_table_columns_to_match_ordered_list", column_list=COLUMNS),
            e("expect_table_row_count_to_be_between", min_value=1, max_value=1_000_000),
            e("expect_column_values_to_not_be_null", column="id"),
            e("expect_column_values_to_be_unique", column="id"),
            e("expect_column_values_to_be_between", column="id", min_value=1, max_value=10**9),
            e("expect_column_values_to_be_of_type", column="id", type_="int64"),
            e("expect_column_values_to_match_regex", column="sku", regex=r"^[A-Z]{3}-\d{4}$"),
            e("expect_column_values_to_be_unique", column="sku"),
            e("expect_column_values_to_not_be_null", column="sku"),
            e("expect_column_values_to_be_in_set", column="country", value_set=["DE", "FR", "NL"]),
            e("expect_column_values_to_not_be_null", column="country"),
            e(
                "expect_column_distinct_values_to_equal_set",
                column="status",
                value_set=["new", "paid", "void"],
            ),
            e("expect_column_values_to_not_be_null", column="status"),
            e(
                "expect_column_values_to_be_between",
                column="amount",
                min_value=-50.5,
                max_value=99.25,
                strict_max=True,
            ),
            e("expect_column_values_to_be_of_type", column="amount", type_="float64"),
            e("expect_column_min_to_be_between", column="quantity", min_value=1, max_value=3),
            e("expect_column_max_to_be_between", column="quantity", min_value=10, max_value=500),
            e("expect_column_values_to_not_be_null", column="quantity"),
            e(
                "expect_column_value_lengths_to_be_between",
                column="note",
                min_value=0,
                max_value=20,
            ),
            e("expect_column_values_to_not_match_regex", column="note", regex="zz"),
            e("expect_column_value_lengths_to_equal", column="code", value=6),
            e("expect_column_values_to_not_be_in_set", column="code", value_set=["aaaaaa"]),
            e("expect_column_values_to_not_be_null", column="code"),
            e("expect_column_values_to_be_between", column="rate", min_value=0.0, max_value=1.0),
            e("expect_column_values_to_not_be_null", column="rate"),
            e("expect_column_values_to_be_in_type_list", column="rate", type_list=["float64"]),
            e("expect_column_values_to_be_of_type", column="tag", type_="str"),
            e("expect_column_values_to_match_regex", column="tag", regex="^(?:a|bb|ccc)[0-9]*$"),
        ],
        "meta": {},
    }


@pytest.fixture
def ten_suite(tmp_path: Path) -> Path:
    path = tmp_path / "ten_columns.json"
    path.write_text(json.dumps(ten_columns()), encoding="utf-8")
    return path


def assert_valid(data: Any, suite: Path | str) -> None:
    result = validate(data, str(suite))
    assert result.success, result.message()


# --------------------------------------------------------------------------- the real suites


@pytest.mark.parametrize("output", ["records", "pandas", "arrow"])
def test_ten_column_records_pass_the_suite(ten_suite: Path, output: str) -> None:
    data = synthesize(ten_suite, 3_000, seed=11, output=output)  # type: ignore[call-overload]
    assert len(data) == 3_000
    assert_valid(data, ten_suite)


def test_payments_silver_records_pass_the_example_suite() -> None:
    records = synthesize(PAYMENTS, 20_000, seed=5)
    assert list(records[0]) == ["payment_id", "merchant", "currency", "amount_minor", "paid_at"]
    assert_valid(records, PAYMENTS)


def test_orders_records_pass_the_init_sample_suite() -> None:
    assert_valid(synthesize(ORDERS, 2_000, seed=9), ORDERS)


def test_the_suite_check_catches_a_generator_that_ignores_an_expectation(
    ten_suite: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The same check as above, with regexes and ranges ignored: it must fail, naming them.
    monkeypatch.setattr(synth_spec._Reader, "_column_values_to_match_regex", lambda *a: None)
    monkeypatch.setattr(synth_spec._Reader, "_column_values_to_be_between", lambda *a: None)
    result = validate(synthesize(ten_suite, 500, seed=1), str(ten_suite))
    failed = {(f.expectation, f.columns) for f in result.failures}
    assert ("expect_column_values_to_match_regex", ("sku",)) in failed
    assert ("expect_column_values_to_be_between", ("amount",)) in failed
    assert ("expect_column_values_to_be_between", ("rate",)) in failed


# --------------------------------------------------------------------------- determinism


def test_the_same_seed_gives_the_same_records(ten_suite: Path) -> None:
    assert synthesize(ten_suite, 500, seed=42) == synthesize(ten_suite, 500, seed=42)


def test_another_seed_gives_other_records(ten_suite: Path) -> None:
    first, second = synthesize(ten_suite, 500, seed=1), synthesize(ten_suite, 500, seed=2)
    for column in ("id", "sku", "amount", "note", "code", "rate"):
        assert [r[column] for r in first[10:]] != [r[column] for r in second[10:]], column


def test_a_new_column_leaves_the_others_as_they_were(tmp_path: Path) -> None:
    base = ten_columns()
    base["expectations"] = base["expectations"][1:]  # no fixed column list
    grown = {
        **base,
        "expectations": [
            *base["expectations"],
            expectation("expect_column_values_to_not_be_null", column="extra"),
        ],
    }
    before, after = synthesize(base, 300, seed=3), synthesize(grown, 300, seed=3)
    assert [{k: r[k] for k in COLUMNS} for r in after] == before


# --------------------------------------------------------------------------- what is honoured


def test_boundaries_come_first(ten_suite: Path) -> None:
    records = synthesize(ten_suite, 1_000, seed=4)
    head = records[:5]

    def first(column: str) -> list[Any]:
        return [r[column] for r in head]

    assert {1, 10**9} <= set(first("id"))
    assert -50.5 in first("amount")
    assert (
        max(r["amount"] for r in records if r["amount"] is not None) < 99.25
    )  # strict_max: the top is excluded
    assert 0.0 in first("amount")  # zero lies inside the range
    assert {0.0, 1.0} <= set(first("rate"))
    assert "" in first("note")
    assert max(len(v) for v in first("note") if v) == 20
    assert None in first("note")  # nullable: a null on purpose
    assert None not in [r["id"] for r in records]  # not null
    assert set(first("status")) == {"new", "paid", "void"}  # every value of the equal set
    assert min(r["quantity"] for r in records) == 1


def test_regex_set_range_and_unique_are_honoured(ten_suite: Path) -> None:
    records = synthesize(ten_suite, 5_000, seed=8)
    skus = [r["sku"] for r in records]
    assert len(set(skus)) == len(skus)
    assert all(len(s) == 8 and s[:3].isupper() and s[4:].isdigit() for s in skus)
    assert {r["country"] for r in records} == {"DE", "FR", "NL"}
    assert all(-50.5 <= r["amount"] < 99.25 for r in records if r["amount"] is not None)
    assert all(len(r["code"]) == 6 and r["code"] != "aaaaaa" for r in records)
    assert not any("zz" in (r["note"] or "") for r in records)
    assert len({r["id"] for r in records}) == len(records)


def test_unique_values_from_a_small_domain_use_it_all() -> None:
    suite = {
        "expectations": [
            expectation("expect_column_values_to_be_unique", column="n"),
            expectation(
                "expect_column_values_to_be_between", column="n", min_value=1, max_value=50
            ),
            expectation("expect_column_values_to_not_be_null", column="n"),
        ]
    }
    assert sorted(r["n"] for r in synthesize(suite, 50)) == list(range(1, 51))
    with pytest.raises(SynthError, match="must be unique but allows only 50 distinct values"):
        synthesize(suite, 51)


def test_a_pyarrow_schema_gives_typed_columns() -> None:
    schema = pa.schema(
        [
            pa.field("id", pa.int16(), nullable=False),
            pa.field("name", pa.string()),
            pa.field("ok", pa.bool_(), nullable=False),
            pa.field("at", pa.timestamp("us", tz="UTC"), nullable=False),
            pa.field("price", pa.float64()),
        ]
    )
    table = synthesize(schema, 200, seed=2, output="arrow")
    assert table.schema == schema
    ids = table.column("id").to_pylist()
    assert {-(2**15), 2**15 - 1} <= set(ids[:4])  # the type's own boundaries
    assert table.column("at").null_count == 0
    assert table.column("name").null_count >= 1  # a null on purpose where allowed


def test_a_suite_with_a_schema_gets_its_types() -> None:
    schema = pa.schema(
        [
            pa.field("payment_id", pa.string(), nullable=False),
            pa.field("merchant", pa.string(), nullable=False),
            pa.field("currency", pa.string(), nullable=False),
            pa.field("amount_minor", pa.int64(), nullable=False),
            pa.field("paid_at", pa.timestamp("us", tz="UTC"), nullable=False),
        ]
    )
    records = synthesize(PAYMENTS, 1_000, seed=6, schema=schema)
    assert all(isinstance(r["paid_at"], datetime) and r["paid_at"].tzinfo for r in records)
    assert records[0]["paid_at"] < datetime(2001, 1, 1, tzinfo=UTC)  # the lowest, first
    assert_valid(records, PAYMENTS)


def test_pandas_output_keeps_a_declared_dtype() -> None:
    suite = {
        "expectations": [
            expectation("expect_column_values_to_be_of_type", column="n", type_="int32")
        ]
    }
    frame = synthesize(suite, 100, output="pandas")
    assert isinstance(frame, pd.DataFrame)
    assert str(frame["n"].dtype) == "int32"
    assert_valid_types = validate(frame, _inline(suite))
    assert assert_valid_types.success, assert_valid_types.message()


def _inline(suite: dict[str, Any]) -> Any:
    from pytest_pipeline.quality.engine import build_suite

    return build_suite(suite, "inline", default_name="inline")


# --------------------------------------------------------------------------- what is not


def test_unsupported_expectations_are_listed_with_why() -> None:
    suite = {
        "name": "pairs",
        "expectations": [
            expectation("expect_column_values_to_not_be_null", column="a"),
            expectation(
                "expect_column_pair_values_a_to_be_greater_than_b", column_A="a", column_B="b"
            ),
            expectation("expect_column_mean_to_be_between", column="a", min_value=1, max_value=2),
        ],
    }
    with pytest.warns(SynthWarning) as caught:
        synthesize(suite, 10)
    (message,) = [str(w.message) for w in caught]
    assert "suite 'pairs': 2 expectation(s) not honoured" in message
    assert "expect_column_pair_values_a_to_be_greater_than_b on a, b: relates several" in message
    assert "expect_column_mean_to_be_between on a: constrains a statistic" in message
    with pytest.raises(SynthError, match="2 expectation"):
        synthesize(suite, 10, unsupported="error")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        synthesize(suite, 10, unsupported="ignore")
    assert [u.expectation for u in plan(suite).unsupported] == [
        "expect_column_pair_values_a_to_be_greater_than_b",
        "expect_column_mean_to_be_between",
    ]


@pytest.mark.parametrize(
    ("suite", "message"),
    [
        (
            [
                expectation("expect_column_values_to_be_in_set", column="c", value_set=["a", "b"]),
                expectation("expect_column_values_to_match_regex", column="c", regex="^x"),
            ],
            "no value of the set of column 'c' meets its other expectations",
        ),
        (
            [expectation("expect_column_values_to_match_regex", column="c", regex=r"^(a)\1$")],
            "cannot make strings matching regex",
        ),
        (
            [
                expectation(
                    "expect_column_values_to_be_between", column="c", min_value=5, max_value=1
                )
            ],
            "has an empty range",
        ),
        (
            [
                expectation("expect_table_columns_to_match_ordered_list", column_list=["a"]),
                expectation("expect_column_values_to_not_be_null", column="b"),
            ],
            "columns b have expectations but are not in the suite's column list",
        ),
    ],
)
def test_impossible_suites_are_refused_with_the_reason(suite: list[Any], message: str) -> None:
    with pytest.raises(SynthError, match=message):
        synthesize({"name": "bad", "expectations": suite}, 10)


def test_an_unknown_suite_name_lists_the_suites(tmp_path: Path) -> None:
    (tmp_path / "orders.json").write_text(ORDERS.read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(SuiteError, match=r"no suite 'order' .*Did you mean 'orders'"):
        synthesize("order", 5, expectations_dir=tmp_path)
    assert len(synthesize("orders", 5, expectations_dir=tmp_path)) == 5


# --------------------------------------------------------------------------- Hypothesis


def test_the_strategy_names_the_extra_without_hypothesis(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "hypothesis", None)
    with pytest.raises(MissingDependencyError, match=r"pytest-pipeline\[synth\]"):
        strategy(PAYMENTS)


def test_a_property_test_with_the_strategy(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml(
        '[tool.pytest-pipeline]\nexpectations_dir = "expectations"\nrequire_layer = false\n'
    )
    pytester.mkdir("expectations")
    (pytester.path / "expectations/silver_payments.json").write_text(
        PAYMENTS.read_text(encoding="utf-8"), encoding="utf-8"
    )
    pytester.makepyfile(
        """
        import re
        from hypothesis import given, settings
        from pytest_pipeline.synth import batches, strategy

        SUITE = "expectations/silver_payments.json"

        @settings(max_examples=60, deadline=None)
        @given(strategy(SUITE))
        def test_records_meet_the_suite(record):
            assert list(record) == ["payment_id", "merchant", "currency", "amount_minor", "paid_at"]
            assert re.search(r"^p-[0-9]+$", record["payment_id"])
            assert re.search(r"^[a-z0-9][a-z0-9_-]{0,63}$", record["merchant"])
            assert record["currency"] in {"CHF", "EUR", "GBP", "JPY", "USD"}
            assert 1 <= record["amount_minor"] <= 5_000_000

        @settings(max_examples=30, deadline=None)
        @given(batches(SUITE, max_size=20))
        def test_ids_are_unique_in_a_batch(batch):
            ids = [r["payment_id"] for r in batch]
            assert len(ids) == len(set(ids))

        def test_the_fixture_gives_a_strategy_too(synthetic):
            from hypothesis import given as given_

            @settings(max_examples=10, deadline=None)
            @given_(synthetic.strategy("silver_payments"))
            def check(record):
                assert record["amount_minor"] >= 1

            check()
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)


def test_the_strategy_takes_a_suite_name_in_a_test_session(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml(
        '[tool.pytest-pipeline]\nexpectations_dir = "expectations"\nrequire_layer = false\n'
    )
    pytester.mkdir("expectations")
    (pytester.path / "expectations/orders_clean.json").write_text(
        ORDERS.read_text(encoding="utf-8"), encoding="utf-8"
    )
    pytester.makepyfile(
        test_names="""
        from hypothesis import given, settings
        from pytest_pipeline.synth import batches, strategy, synthesize

        @settings(max_examples=10, deadline=None)
        @given(strategy("orders_clean"), batches("orders_clean", max_size=3))
        def test_by_name(record, batch):
            assert record["currency"] in {"EUR", "GBP", "USD", None}
            assert all(r["quantity"] is None or 1 <= r["quantity"] <= 1000 for r in batch)

        def test_synthesize_by_name():
            assert len(synthesize("orders_clean", 4)) == 4
        """,
        test_unknown="""
        from pytest_pipeline.synth import strategy

        STRATEGY = strategy("orders_dirty")

        def test_never():
            pass
        """,
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--continue-on-collection-errors")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*no suite 'orders_dirty' in *expectations*orders_clean*"])
    assert "synth/__init__.py" not in result.stdout.str()
    assert "quality.py" not in result.stdout.str()


def test_a_suite_name_outside_a_session_needs_expectations_dir(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import pytest_pipeline.synth as synth

    monkeypatch.setattr(synth, "_session_suites", None)  # this very run is a session
    with pytest.raises(SynthError, match=r"no suite file 'orders_clean'.*expectations_dir="):
        strategy("orders_clean")


def test_an_inner_session_restores_the_outer_sessions_suites(pytester: pytest.Pytester) -> None:
    import pytest_pipeline.synth as synth

    outer = synth._session_suites
    assert outer is not None  # this run's own
    pytester.makepyfile("def test_x():\n    pass\n")
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
    assert synth._session_suites == outer


def test_a_plan_prints_readably() -> None:
    text = str(plan(ORDERS))
    assert "ColumnSpec(" not in text
    assert text.splitlines()[0].startswith("plan for suite ")
    assert "order_id" in text
    assert repr(plan(ORDERS)) == text


def test_the_strategy_finds_a_transform_bug(pytester: pytest.Pytester) -> None:
    # A property that is false only for the range's top value: Hypothesis must find it
    # (derandomized, so the search is the same in every run).
    pytester.makepyfile(
        """
        from hypothesis import given, settings
        from pytest_pipeline.synth import strategy

        SUITE = {"expectations": [{"type": "expect_column_values_to_be_between",
                  "kwargs": {"column": "n", "min_value": 0, "max_value": 1000}},
                 {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "n"}}]}

        @settings(max_examples=200, deadline=None, database=None, derandomize=True)
        @given(strategy(SUITE))
        def test_below_top(record):
            assert record["n"] < 1000
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*Failing test case*", "*record={*n*: 1000}*"])


# --------------------------------------------------------------------------- the fixture


def test_the_fixture_seeds_from_the_test_seed(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml(
        '[tool.pytest-pipeline]\nexpectations_dir = "expectations"\nrequire_layer = false\n'
    )
    pytester.mkdir("expectations")
    (pytester.path / "expectations/orders_clean.json").write_text(
        ORDERS.read_text(encoding="utf-8"), encoding="utf-8"
    )
    pytester.makepyfile(
        """
        from pytest_pipeline.synth import synthesize

        def test_records(synthetic, pipeline_seed):
            records = synthetic.records("orders_clean", 50)
            assert synthetic.seed == pipeline_seed
            assert records == synthesize("expectations/orders_clean.json", 50, seed=pipeline_seed)
            print("FIRST", records[5])
            frame = synthetic.frame("orders_clean", 10)
            assert list(frame.columns) == ["order_id", "currency", "quantity", "amount_cents"]
        """
    )
    runs = [pytester.runpytest("-s", *extra) for extra in ([], [], ["--pipeline-seed", "99"])]
    lines = []
    for run in runs:
        run.assert_outcomes(passed=1)
        lines.append([line for line in run.outlines if "FIRST" in line])
    assert lines[0] == lines[1] != lines[2]


def test_the_fixture_warns_at_the_test_about_unsupported_expectations(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyprojecttoml("[tool.pytest-pipeline]\nrequire_layer = false\n")
    pytester.makepyfile(
        """
        SUITE = {"name": "stats", "expectations": [{"type": "expect_column_median_to_be_between",
                 "kwargs": {"column": "x", "min_value": 1, "max_value": 3}}]}

        def test_records(synthetic):
            assert len(synthetic.records(SUITE, 5)) == 5
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(
        [
            "*test_records*",
            "*SynthWarning: suite 'stats': 1 expectation(s) not honoured*",
            "*expect_column_median_to_be_between on x: constrains a statistic*",
        ]
    )


# --------------------------------------------------------------------------- hostile suites


def test_column_names_from_a_suite_file_stay_names(tmp_path: Path) -> None:
    # The records builder compiles a dict display from the column names: each is a repr().
    e = expectation
    marker = tmp_path / "ran"
    names = ["a'b", 'x"}, __import__("pathlib").Path(' + repr(str(marker)) + ").touch(), {", "\n"]
    suite = {
        "expectations": [
            *(e("expect_column_values_to_be_in_set", column=n, value_set=[1]) for n in names),
            *(e("expect_column_values_to_not_be_null", column=n) for n in names),
        ]
    }
    assert synthesize(suite, 3) == [dict.fromkeys(names, 1)] * 3
    assert not marker.exists()


def test_a_suite_name_out_of_the_expectations_dir_is_not_read(tmp_path: Path) -> None:
    inside = tmp_path / "expectations"
    inside.mkdir()
    (tmp_path / "outside.json").write_text(ORDERS.read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(SuiteError, match=r"no suite '\.\./outside'"):
        synthesize("../outside", 5, expectations_dir=inside)


def test_the_docs_example_runs(pytester: pytest.Pytester) -> None:
    text = (ROOT / "docs/transforms.md").read_text(encoding="utf-8")
    section = text.split("## Synthetic data from a suite or a schema", 1)[1]
    example = section.split("```python\n", 1)[1].split("```", 1)[0]
    pytester.makepyprojecttoml(
        '[tool.pytest-pipeline]\nexpectations_dir = "src/payments/quality/expectations"\n'
        "require_layer = false\n"
    )
    suites = pytester.path / "src/payments/quality/expectations"
    suites.mkdir(parents=True)
    (suites / "silver_payments.json").write_text(
        PAYMENTS.read_text(encoding="utf-8"), encoding="utf-8"
    )
    pytester.makepyfile(test_silver_volume=example)
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=3)
