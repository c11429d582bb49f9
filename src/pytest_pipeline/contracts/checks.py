"""What each scenario runs and asserts. Every check takes ``(prepared, scenario, *args)``.

A transform that breaks its contract fails the test with a message naming the scenario,
the record (position and a short repr) and the field. An exception the transform raises where
it should not is re-raised as is, with a note naming the scenario, so its traceback points
into the transform.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

from pytest_pipeline.contracts import tabular
from pytest_pipeline.contracts.spec import EdgeCase
from pytest_pipeline.fixture_files.compare import compare, values_equal
from pytest_pipeline.records.tables import to_records

if TYPE_CHECKING:
    from pytest_pipeline.contracts.scenarios import Prepared


def _fail(message: str) -> NoReturn:
    # Not hidden: with every frame hidden pytest adds a "traceback entries are hidden" line.
    pytest.fail(message, pytrace=False)  # the message says it all: no frames of this module


def _name(exc: Any) -> str:
    if isinstance(exc, tuple):
        return " or ".join(_name(e) for e in exc)
    return str(exc.__name__)


def _call(p: Prepared, data: Any, scenario: str, what: str) -> Any:
    __tracebackhide__ = True
    try:
        return p.contract.transform(data)
    except Exception as exc:
        exc.add_note(f"{scenario}: the transform raised this on {what} ({p.test})")
        raise


def _out(p: Prepared, result: Any, scenario: str) -> list[dict[str, Any]]:
    """The records of a result (through ``output=``), or a failure saying what it was."""
    __tracebackhide__ = True
    out = p.contract.output(result) if p.contract.output is not None else result
    try:
        records = to_records(out)
    except TypeError:
        records = None
    if records is None or not all(isinstance(r, Mapping) for r in records):
        _fail(
            f"{scenario}: the transform returned {type(out).__name__}, not records (a list of "
            "dicts, a DataFrame or a Table); pass output= to pick the records out of its result"
        )
    return records


def _rejected(p: Prepared, result: Any) -> list[dict[str, Any]]:
    assert p.contract.rejects is not None
    return to_records(p.contract.rejects(result))


def _first(p: Prepared, data: Any) -> dict[str, Any]:
    record: dict[str, Any] = tabular.convert(data, "records")[0]
    return record


# --------------------------------------------------------------------------- the scenarios


def happy_path(p: Prepared, scenario: str) -> None:
    __tracebackhide__ = True
    n = tabular.length(p.sample)
    out = _out(p, _call(p, tabular.fresh(p.sample, p.kind), scenario, "the sample"), scenario)
    if p.expected is not None:
        diff = compare(out, p.expected)
        if not diff.equal:
            _fail(
                "happy_path: the output for the sample does not match the expected records:\n"
                + "\n".join(f"  {line}" for line in diff.lines)
            )
    elif not out:
        _fail(
            f"happy_path: the transform returned no records for the {n}-record sample; a "
            "happy-path sample should produce output (pass expected= to check exactly what)"
        )


def empty_input(p: Prepared, scenario: str) -> None:
    __tracebackhide__ = True
    data = tabular.empty(p.sample, p.kind)
    out = _out(p, _call(p, data, scenario, "an empty input"), scenario)
    if out:
        _fail(
            f"empty_input: the transform returned {len(out)} record(s) for an empty input, "
            f"expected none; the first is {tabular.short(out[0])}"
        )


def input_not_mutated(p: Prepared, scenario: str) -> None:
    __tracebackhide__ = True
    data = tabular.fresh(p.sample, p.kind)
    before = tabular.fresh(data, p.kind)
    _call(p, data, scenario, "the sample")
    change = tabular.first_change(before, data, p.kind)
    if change is not None:
        _fail(f"input_not_mutated: the transform changed its input: {change}")


def deterministic(p: Prepared, scenario: str) -> None:
    __tracebackhide__ = True
    first = _out(p, _call(p, tabular.fresh(p.sample, p.kind), scenario, "the sample"), scenario)
    second = _out(p, _call(p, tabular.fresh(p.sample, p.kind), scenario, "the sample"), scenario)
    diff = compare(second, first)
    if not diff.equal:
        _fail(
            "deterministic: two calls on the same input gave different output (second call "
            "against first):\n" + "\n".join(f"  {line}" for line in diff.lines)
        )


def required(p: Prepared, scenario: str, name: str, null: bool) -> None:
    __tracebackhide__ = True
    if null:
        data = tabular.with_value(p.sample, p.kind, name, 0, None)
        what = f"{tabular.row_repr(data, p.kind, 0)} with {name}=None"
    elif p.kind == "records":
        data = tabular.without(p.sample, p.kind, name, 0)
        what = f"{tabular.row_repr(data, p.kind, 0)}, which lacks {name!r}"
    else:
        data = tabular.without(p.sample, p.kind, name, None)
        what = f"the sample without its {name!r} column"
    if p.contract.raises is not None:
        _expect_raise(p, data, scenario, what, p.contract.raises)
        return
    rejected = _rejected(p, _call(p, data, scenario, what))
    target = _first(p, data)
    if not any(_holds(record, target) for record in rejected):
        _fail(
            f"{scenario}: {what}: the record is not among the {len(rejected)} rejected "
            "record(s) (rejects=); a record without a required field must be rejected"
        )


def _expect_raise(p: Prepared, data: Any, scenario: str, what: str, expected: Any) -> None:
    __tracebackhide__ = True
    try:
        p.contract.transform(data)
    except expected:
        return
    except Exception as exc:
        exc.add_note(
            f"{scenario}: {what}: expected {_name(expected)}, the transform raised this "
            f"instead ({p.test})"
        )
        raise
    _fail(f"{scenario}: {what}: the transform returned normally; expected {_name(expected)}")


def _holds(record: Mapping[str, Any], target: Mapping[str, Any]) -> bool:
    """Whether a rejected record carries every field of ``target`` (extra fields allowed)."""
    return all(k in record and values_equal(record[k], v) for k, v in target.items())


def optional(p: Prepared, scenario: str, name: str, default: Any) -> None:
    __tracebackhide__ = True
    for how in ("missing", "null"):
        if how == "missing":
            data = tabular.without(p.sample, p.kind, name, None)
        else:
            data = _edit(p, scenario, name, None, None)
        what = f"{name!r} {how} in every record"
        out = _out(p, _call(p, data, scenario, f"the sample with {what}"), scenario)
        if not out:
            _fail(
                f"{scenario}: with {what} the transform returned no records; each should "
                f"carry the documented default {name}={default!r}"
            )
        for i, record in enumerate(out):
            if name not in record:
                _fail(
                    f"{scenario}: with {what}, output record {i} {tabular.short(record)} has "
                    f"no field {name!r}; the documented default is {default!r}"
                )
            if not values_equal(record[name], default):
                _fail(
                    f"{scenario}: with {what}, output record {i} {tabular.short(record)} has "
                    f"{name}={record[name]!r}; the documented default is {default!r}"
                )


def _edit(p: Prepared, scenario: str, name: str, row: int | None, value: Any) -> Any:
    __tracebackhide__ = True
    try:
        return tabular.with_value(p.sample, p.kind, name, row, value)
    except tabular.Unfit as exc:
        problem = str(exc)  # failed outside the handler: no "during handling" context shown
    _fail(
        f"{scenario}: the sample's field {name!r} cannot hold it: {problem}; give the field "
        f"values it can hold with boundaries={{{name!r}: [...]}}, or skip the scenario"
    )


def boundary(p: Prepared, scenario: str, name: str, value: Any) -> None:
    __tracebackhide__ = True
    data = _edit(p, scenario, name, 0, value)
    what = f"{tabular.row_repr(data, p.kind, 0)} with {name}={value!r}"
    base = _call(p, tabular.fresh(p.sample, p.kind), scenario, "the sample")
    result = _call(p, data, scenario, what)
    kept, expected = len(_out(p, result, scenario)), len(_out(p, base, scenario))
    if kept != expected:
        _fail(
            f"{scenario}: {what}: the transform returned {kept} record(s), {expected} for the "
            "unchanged sample; a boundary value must be accepted like any other (skip the "
            "scenario with a reason if the domain rejects it)"
        )
    if p.contract.rejects is not None:
        now, before = len(_rejected(p, result)), len(_rejected(p, base))
        if now != before:
            _fail(
                f"{scenario}: {what}: the transform rejected {now} record(s), {before} for the "
                "unchanged sample; a boundary value must be accepted like any other"
            )


def edge(p: Prepared, scenario: str, case: EdgeCase) -> None:
    __tracebackhide__ = True
    if isinstance(case.data, dict):
        data = tabular.convert([{**_first(p, p.sample), **case.data}], p.kind, like=p.sample)
        what = f"the sample's first record with {tabular.short(case.data)}"
    else:
        data = tabular.convert(case.data, p.kind, like=p.sample)
        what = f"the edge case's {len(case.data)} record(s)"
    if case.raises is not None:
        _expect_raise(p, data, scenario, what, case.raises)
        return
    result = _call(p, data, scenario, what)
    out = p.contract.output(result) if p.contract.output is not None else result
    if callable(case.expect):
        if case.expect(out) is False:
            check = getattr(case.expect, "__name__", repr(case.expect))
            _fail(f"{scenario}: the check {check} returned False for {what}; output {out!r}")
    elif case.expect is not None:
        diff = compare(_out(p, result, scenario), case.expect)
        if not diff.equal:
            _fail(
                f"{scenario}: the output for {what} does not match the expected records:\n"
                + "\n".join(f"  {line}" for line in diff.lines)
            )
