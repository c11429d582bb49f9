"""``transform_contract(...)``: one declaration, one collected test per scenario.

Each scenario must pass for a correct transform and fail for a transform broken in exactly the
way the scenario is about; every run here is a real pytest session of an example project.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable

import pytest

SAMPLE = (
    '{"id": "a1", "amount": 12.5, "currency": "EUR"}\n'
    '{"id": "a2", "amount": 3, "currency": null}\n'
    '{"id": "a3", "amount": 7}\n'
)

CORRECT = """
def normalize(records):
    out = []
    for r in records:
        if r.get("id") is None or r.get("amount") is None:
            raise ValueError(f"record without id or amount: {r!r}")
        out.append(
            {
                "id": r["id"],
                "amount_cents": round(r["amount"] * 100),
                "currency": r.get("currency") or "USD",
            }
        )
    return out
"""

DECLARATION = """
test_normalize = transform_contract(
    normalize,
    sample="raw/events.jsonl",
    required=["id", "amount"],
    optional={"currency": "USD"},
    raises=ValueError,
)
"""

IDS = [
    "happy_path",
    "empty_input",
    "input_not_mutated",
    "deterministic",
    "missing_required:id",
    "missing_required:amount",
    "null_required:id",
    "null_required:amount",
    "optional_default:currency",
    "boundary:amount=0",
    "boundary:amount=-1",
    "boundary:amount=large",
]


@pytest.fixture
def project(pytester: pytest.Pytester, pipeline_toml: Callable[[str], None]) -> pytest.Pytester:
    pipeline_toml('fixtures_dir = "tests/fixtures"\n')
    fixtures = pytester.path / "tests" / "fixtures" / "raw"
    fixtures.mkdir(parents=True)
    (fixtures / "events.jsonl").write_text(SAMPLE, encoding="utf-8")
    return pytester


def write_test(pytester: pytest.Pytester, body: str, name: str = "test_contract") -> None:
    source = "import random\nfrom pytest_pipeline import edge_case, transform_contract\n"
    source += textwrap.dedent(body)
    path = pytester.path / "tests" / f"{name}.py"
    path.write_text(source, encoding="utf-8")


def failed_ids(result: pytest.RunResult) -> set[str]:
    return set(re.findall(r"^FAILED \S+::test_normalize\[(.+?)\]", result.stdout.str(), re.M))


# --------------------------------------------------------------------------- expansion


def test_one_test_per_scenario_with_its_own_id(project: pytest.Pytester) -> None:
    write_test(project, CORRECT + DECLARATION)
    result = project.runpytest("--collect-only", "-q", "-p", "no:cacheprovider")
    collected = [line for line in result.stdout.lines if "::" in line]
    assert collected == [f"tests/test_contract.py::test_normalize[{i}]" for i in IDS]


def test_a_correct_transform_passes_every_scenario_marked_unit(project: pytest.Pytester) -> None:
    write_test(project, CORRECT + DECLARATION)
    result = project.runpytest("-m", "unit", "--strict-markers", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=len(IDS))


def test_scenarios_are_selected_by_k_and_by_node_id(project: pytest.Pytester) -> None:
    write_test(project, CORRECT + DECLARATION)
    result = project.runpytest("-k", "required and amount", "-v", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, deselected=len(IDS) - 2)
    node = "tests/test_contract.py::test_normalize[boundary:amount=-1]"
    result = project.runpytest(node, "-v", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    escaped = "".join({"[": "[[]", "]": "[]]"}.get(c, c) for c in node)  # fnmatch's brackets
    result.stdout.fnmatch_lines([f"{escaped} PASSED*"])


BROKEN = {
    # name: (what replaces the correct line or is added, the scenario that must fail, message)
    "mutates its input": (
        (
            '"currency": r.get("currency") or "USD",',
            '"currency": r.setdefault("currency") or "USD",',
        ),
        "input_not_mutated",
        "input_not_mutated: the transform changed its input: record 2 {'id': 'a3', 'amount': 7}:"
        " field 'currency' was added (None)",
    ),
    "crashes on an empty input": (
        ("out = []", "out = [] if records[0] else []"),
        "empty_input",
        "*IndexError: list index out of range",
    ),
    "ignores the default": (
        ('"currency": r.get("currency") or "USD",', '"currency": r.get("currency"),'),
        "optional_default:currency",
        "optional_default:currency: with 'currency' missing in every record, output record 0 "
        "{'id': 'a1', 'amount_cents': 1250, 'currency': None} has currency=None; the documented "
        "default is 'USD'",
    ),
    "is not deterministic": (
        ('"id": r["id"],', '"id": r["id"], "batch": random.random(),'),
        "deterministic",
        "deterministic: two calls on the same input gave different output*",
    ),
    "does not raise on a missing required field": (
        ('r.get("amount") is None', "False"),
        "missing_required:amount null_required:amount",
        "*null_required:amount: record 0 {'id': 'a1', 'amount': None, 'currency': 'EUR'} with "
        "amount=None: expected ValueError, the transform raised this instead*",
    ),
    "drops zero amounts": (
        ("for r in records:", "for r in [r for r in records if r.get('amount') != 0]:"),
        "boundary:amount=0",
        "boundary:amount=0: record 0 {'id': 'a1', 'amount': 0.0, 'currency': 'EUR'} with "
        "amount=0.0: the transform returned 2 record(s), 3 for the unchanged sample*",
    ),
    "refuses negative amounts": (
        ("out.append(", "assert r['amount'] >= 0, 'negative'\n        out.append("),
        "boundary:amount=-1",
        "*boundary:amount=-1: the transform raised this on record 0 *amount=-1.0*",
    ),
    "overflows on large amounts": (
        ("out.append(", "assert r['amount'] < 2**31, 'int32'\n        out.append("),
        "boundary:amount=large",
        "*boundary:amount=large: the transform raised this on record 0 "
        "*amount=1000000000000000.0 *",
    ),
}


@pytest.mark.parametrize("broken", list(BROKEN), ids=list(BROKEN))
def test_a_broken_transform_fails_its_scenario(project: pytest.Pytester, broken: str) -> None:
    (old, new), scenario, message = BROKEN[broken]
    assert old in CORRECT
    write_test(project, CORRECT.replace(old, new) + DECLARATION)
    result = project.runpytest("-rf", "-p", "no:cacheprovider")
    assert failed_ids(result) == set(scenario.split()), result.stdout.str()
    result.assert_outcomes(passed=len(IDS) - len(scenario.split()), failed=len(scenario.split()))
    result.stdout.fnmatch_lines([message])


def test_missing_required_that_does_not_raise(project: pytest.Pytester) -> None:
    write_test(
        project,
        CORRECT.replace('r.get("id") is None or ', "").replace('r["id"]', 'r.get("id")')
        + DECLARATION,
    )
    result = project.runpytest("-rf", "-p", "no:cacheprovider")
    assert failed_ids(result) == {"missing_required:id", "null_required:id"}
    result.stdout.fnmatch_lines(
        [
            "missing_required:id: record 0 {'amount': 12.5, 'currency': 'EUR'}, which lacks "
            "'id': the transform returned normally; expected ValueError"
        ]
    )


def test_the_happy_path_compares_with_the_expected_output(project: pytest.Pytester) -> None:
    expected = project.path / "tests" / "fixtures" / "expected.jsonl"
    expected.write_text(
        '{"id": "a1", "amount_cents": 1250, "currency": "EUR"}\n'
        '{"id": "a2", "amount_cents": 300, "currency": "USD"}\n'
        '{"id": "a3", "amount_cents": 700, "currency": "USD"}\n',
        encoding="utf-8",
    )
    declaration = DECLARATION.replace(
        "raises=ValueError,", 'raises=ValueError, expected="expected.jsonl",'
    )
    write_test(project, CORRECT + declaration)
    project.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=len(IDS))
    write_test(project, CORRECT.replace("* 100", "* 10") + declaration)
    result = project.runpytest("-rf", "-p", "no:cacheprovider")
    assert failed_ids(result) == {"happy_path"}
    result.stdout.fnmatch_lines(
        [
            "happy_path: the output for the sample does not match the expected records:",
            "  row 0:",
            "    amount_cents: actual=125 expected=1250 (diff -1125)",
        ]
    )


# --------------------------------------------------------------------------- skip, edge cases


def test_a_skipped_scenario_is_reported_with_its_reason(project: pytest.Pytester) -> None:
    declaration = DECLARATION.replace(
        "raises=ValueError,",
        'raises=ValueError, skip={"boundary:amount=-1": "negative amounts are refunds, tested '
        'below", "missing_required:*": "checked upstream"},',
    )
    write_test(project, CORRECT + declaration)
    result = project.runpytest("-rs", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=len(IDS) - 3, skipped=3)
    result.stdout.fnmatch_lines_random(
        [
            "SKIPPED [[]1[]] tests/test_contract.py:*: negative amounts are refunds, tested below",
            "SKIPPED [[]2[]] tests/test_contract.py:*: checked upstream",
        ]
    )


def test_domain_edge_cases(project: pytest.Pytester) -> None:
    body = """
    def is_rounded(out):
        assert out[0]["amount_cents"] == 0

    test_normalize = transform_contract(
        normalize,
        sample=[{"id": "x", "amount": 1.0, "currency": "EUR"}],
        edge_cases={
            "sub_cent": edge_case({"amount": 0.001}, expect=is_rounded),
            "yen": edge_case(
                {"currency": "JPY"},
                expect=[{"id": "x", "amount_cents": 100, "currency": "JPY"}],
            ),
            "no_id": edge_case([{"amount": 1}], raises=ValueError),
            "wrong": edge_case({"amount": 2}, expect=lambda out: out[0]["amount_cents"] == 1),
        },
    )
    """
    write_test(project, CORRECT + textwrap.dedent(body))
    result = project.runpytest("-rf", "-p", "no:cacheprovider")
    assert failed_ids(result) == {"edge:wrong"}, result.stdout.str()
    result.stdout.fnmatch_lines(["edge:wrong: the check <lambda> returned False for *"])


def test_rejects_instead_of_raising(project: pytest.Pytester) -> None:
    body = """
    def split(records):
        valid, rejected = [], []
        for r in records:
            if r.get("id") is None:
                rejected.append({**r, "error": "missing id"})
            else:
                valid.append(r.copy())
        return valid, rejected

    def lenient(records):
        return [r.copy() for r in records], []

    for name, transform in (("test_normalize", split), ("test_lenient", lenient)):
        globals()[name] = transform_contract(
            transform,
            sample="raw/events.jsonl",
            required=["id"],
            output=lambda result: result[0],
            rejects=lambda result: result[1],
        )
    """
    write_test(project, body)
    result = project.runpytest("-rf", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(
        [
            "missing_required:id: record 0 {'amount': 12.5, 'currency': 'EUR'}, which lacks "
            "'id': the record is not among the 0 rejected record(s)*",
        ]
    )
    result.assert_outcomes(passed=2 * 9 - 2, failed=2)


# --------------------------------------------------------------------------- DataFrame, Arrow

FRAME = """
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

def normalize_frame(frame):
    if "amount" not in frame.columns or frame["amount"].isna().any():
        raise ValueError("amount is required")
    out = pd.DataFrame({"id": frame["id"], "cents": (frame["amount"] * 100).round()})
    out["currency"] = frame["currency"].fillna("USD") if "currency" in frame else "USD"
    return out

def mutating_frame(frame):
    frame["amount"] = frame["amount"] * 100
    return frame

def normalize_table(table):
    if "amount" not in table.column_names or table.column("amount").null_count:
        raise ValueError("amount is required")
    return pa.table({"id": table.column("id"), "cents": pc.multiply(table.column("amount"), 100)})

def nondeterministic_table(table):
    return table.append_column("r", pa.array([random.random()] * table.num_rows))

common = dict(required=["amount"], raises=ValueError)
test_frame = transform_contract(
    normalize_frame,
    sample="raw/events.jsonl",
    kind="pandas",
    optional={"currency": "USD"},
    **common,
)
test_mutating = transform_contract(mutating_frame, sample=pd.DataFrame({"amount": [1.5, 2.0]}))
ints = pd.DataFrame({"id": ["a", "b"], "amount": [5, 7], "currency": ["EUR", None]})
test_int_frame = transform_contract(normalize_frame, sample=ints, **common)  # null: int -> float
table = pa.table({"id": ["a", "b"], "amount": pa.array([1, 2], pa.int32())})
test_table = transform_contract(
    normalize_table, sample=table, boundaries={"amount": [0, -1, 2**31 - 1]}, **common
)
test_table_unfit = transform_contract(normalize_table, sample=table, **common)
test_random_table = transform_contract(
    nondeterministic_table, sample="raw/events.jsonl", kind="arrow"
)
"""


def test_dataframe_and_arrow_transforms(project: pytest.Pytester) -> None:
    write_test(project, FRAME)
    result = project.runpytest("-rf", "-p", "no:cacheprovider", "--collect-only", "-q")
    table_ids = [line.split("::")[1] for line in result.stdout.lines if "::test_table[" in line]
    assert table_ids == [  # no input_not_mutated: an Arrow table cannot be changed in place
        "test_table[happy_path]",
        "test_table[empty_input]",
        "test_table[deterministic]",
        "test_table[missing_required:amount]",
        "test_table[null_required:amount]",
        "test_table[boundary:amount=0]",
        "test_table[boundary:amount=-1]",
        "test_table[boundary:amount=2147483647]",
    ]
    result = project.runpytest("-rf", "-p", "no:cacheprovider")
    failed = set(re.findall(r"^FAILED \S+::(\S+\[.+?\])", result.stdout.str(), re.M))
    assert failed == {
        "test_mutating[input_not_mutated]",
        "test_table_unfit[boundary:amount=large]",
        "test_random_table[deterministic]",
    }, result.stdout.str()
    result.stdout.fnmatch_lines_random(
        [
            "*input_not_mutated: the transform changed its input: record 0 {'amount': 1.5}: "
            "field 'amount' was 1.5, is now 150.0",
            "*boundary:amount=large: the sample's field 'amount' cannot hold it: "
            "1000000000000000 does not fit the column's type int32*"
            "boundaries={'amount': [[]...[]]}*",
        ]
    )
    result.assert_outcomes(failed=3, passed=12 + 6 + 9 + 8 + 7 + 3)


# --------------------------------------------------------------------------- bad declarations


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ('required=["id", "amount"]', 'required=["id", "amuont"]'),
            "tests/test_contract.py::test_normalize: required= names the field 'amuont', which "
            "no record of the sample has (did you mean 'amount'?) (fields: id, amount, currency)",
        ),
        (
            ('optional={"currency": "USD"}', 'optional={"curency": "USD"}'),
            "*test_normalize: optional= names the field 'curency'*did you mean 'currency'*",
        ),
        (
            ('"raw/events.jsonl"', '"raw/event.jsonl"'),
            "*test_normalize: the sample could not be loaded: *raw/event.jsonl*",
        ),
        (
            ("raises=ValueError,", ""),
            "*test_normalize: required= needs raises= (the exception a missing or null*",
        ),
        (
            ("raises=ValueError,", 'raises=ValueError, skip={"boundary:amount=-2": "no"},'),
            "*test_normalize: skip= names 'boundary:amount=-2', which is none of this "
            "contract's scenarios (did you mean 'boundary:amount=-1'?)*",
        ),
        (
            ("raises=ValueError,", 'raises=ValueError, skip={"deterministic": " "},'),
            "*test_normalize: skip[[]'deterministic'[]] needs a reason*",
        ),
        (
            ("raises=ValueError,", 'raises="ValueError",'),
            "*test_normalize: raises= must be an exception class*",
        ),
    ],
    ids=["required", "optional", "sample", "no-raises", "skip-unknown", "skip-reason", "raises"],
)
def test_a_bad_declaration_is_a_collection_error(
    project: pytest.Pytester, change: tuple[str, str], message: str
) -> None:
    assert change[0] in DECLARATION
    write_test(project, CORRECT + DECLARATION.replace(*change))
    result = project.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*ERROR collecting tests/test_contract.py*", message])
    assert "Traceback" not in result.stdout.str()


def test_an_empty_sample_is_a_collection_error(project: pytest.Pytester) -> None:
    write_test(project, CORRECT + DECLARATION.replace('"raw/events.jsonl"', "[]"))
    result = project.runpytest("-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*test_normalize: the sample has no records*"])


# --------------------------------------------------------------------------- --lf and xdist


def test_last_failed_reruns_only_the_failed_scenario(project: pytest.Pytester) -> None:
    (old, new), scenario, _ = BROKEN["ignores the default"]
    write_test(project, CORRECT.replace(old, new) + DECLARATION)
    project.runpytest().assert_outcomes(passed=len(IDS) - 1, failed=1)
    result = project.runpytest("--lf", "-v")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*test_normalize[[]{scenario}[]] FAILED*"])


def test_under_xdist(project: pytest.Pytester) -> None:
    (old, new), scenario, _ = BROKEN["drops zero amounts"]
    write_test(project, CORRECT.replace(old, new) + DECLARATION)
    result = project.runpytest_subprocess("-n", "2", "-rf", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=len(IDS) - 1, failed=1)
    assert failed_ids(result) == {scenario}


def test_a_sample_outside_the_fixtures_dir_is_not_read(project: pytest.Pytester) -> None:
    # The fixture-file loader's containment holds at collection too: no read through "..".
    (project.path / "outside.jsonl").write_text('{"id": "secret", "amount": 1}\n', "utf-8")
    write_test(project, CORRECT + DECLARATION.replace("raw/events.jsonl", "../../outside.jsonl"))
    result = project.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        ["*test_normalize: the sample could not be loaded: *points outside the fixtures directory*"]
    )
    assert "secret" not in result.stdout.str()


def test_a_result_that_is_not_records_or_is_empty(project: pytest.Pytester) -> None:
    body = """
    sample = "raw/events.jsonl"
    test_normalize = transform_contract(lambda records: {"n": len(records)}, sample=sample)
    test_nothing = transform_contract(lambda records: [], sample=sample)
    """
    write_test(project, textwrap.dedent(body))
    result = project.runpytest("-p", "no:cacheprovider", "-rf")
    result.stdout.fnmatch_lines_random(
        [
            "happy_path: the transform returned dict, not records (a list of dicts, a DataFrame "
            "or a Table); pass output= to pick the records out of its result",
            "happy_path: the transform returned no records for the 3-record sample*",
        ]
    )
    # The first fails every scenario that looks at its output (all but input_not_mutated); the
    # second only its happy path (no records out, for an empty input and for boundaries alike).
    result.assert_outcomes(failed=6 + 1, passed=1 + 6)
