"""A declaration checked against its sample, and the scenarios it expands into.

Pure logic: given the contract, the test's id and a way to load fixture files, this returns
the cases to run, or raises :class:`ContractError` naming the test and the key at fault.
"""

from __future__ import annotations

import difflib
import fnmatch
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pytest_pipeline.contracts import checks, tabular
from pytest_pipeline.contracts.spec import KINDS, Contract, EdgeCase
from pytest_pipeline.errors import ContractError

Loader = Callable[[str, str], Any]
"""``load(name, kind)``: a fixture file as records, a DataFrame or a Table."""

LARGE = 10**15
"""The default "very large" boundary: beyond any real amount or count, yet exact as an int64
and as a float64 (below 2**53), so a correct transform can carry it through unchanged."""


@dataclass
class Prepared:
    """A contract resolved at collection: its sample loaded, its kind known."""

    contract: Contract
    test: str
    sample: Any
    kind: str
    expected: list[dict[str, Any]] | None = None


@dataclass
class Case:
    """One scenario: the collected test ``<name>[<id>]`` runs :meth:`run`."""

    id: str
    prepared: Prepared
    check: Callable[..., None]
    args: tuple[Any, ...] = ()
    skip_reason: str | None = field(default=None)

    def run(self) -> None:
        """Run the scenario: a broken contract fails the test, naming scenario, record and
        field; an exception of the transform propagates with a note naming the scenario."""
        __tracebackhide__ = True
        self.check(self.prepared, self.id, *self.args)


def prepare(contract: Contract, test: str, load: Loader) -> Prepared:
    """Check the declaration and load its sample; ``test`` is the node id used in errors."""
    if not callable(contract.transform):
        raise ContractError(
            f"{test}: transform_contract() needs the transform function first, "
            f"got {type(contract.transform).__name__}"
        )
    if contract.kind is not None and contract.kind not in KINDS:
        raise ContractError(
            f"{test}: kind={contract.kind!r} is not a kind of data the contract knows; "
            f"use one of {', '.join(map(repr, KINDS))}"
        )
    sample, kind = _sample(contract, test, load)
    names = tabular.fields(sample, kind)
    for key, listed in (
        ("required", contract.required),
        ("optional", contract.optional),
        ("boundaries", contract.boundaries),
    ):
        for name in listed:
            if name not in names:
                raise ContractError(
                    f"{test}: {key}= names the field {name!r}, which no record of the sample "
                    f"has{_did_you_mean(str(name), names)} (fields: {', '.join(names)})"
                )
    _check_raises(contract, test)
    _check_edge_cases(contract, test)
    return Prepared(contract, test, sample, kind, _expected(contract, test, load))


def _sample(contract: Contract, test: str, load: Loader) -> tuple[Any, str]:
    sample = contract.sample
    if isinstance(sample, str | os.PathLike):
        kind = contract.kind or "records"
        try:
            data = load(os.fspath(sample), kind)
        except Exception as exc:  # the loader's errors name the file and the fix
            raise ContractError(f"{test}: the sample could not be loaded: {exc}") from None
    else:
        data = sample
        found = tabular.kind_of(sample)
        if found is None:
            raise ContractError(
                f"{test}: sample= must be a fixture file name, records (a list of dicts), a "
                f"pandas DataFrame or a pyarrow Table, got {type(sample).__name__}"
            )
        kind = contract.kind or found
        data = tabular.convert(sample, kind)
    if tabular.kind_of(data) is None:
        raise ContractError(
            f"{test}: the sample {sample!r} holds no records (a list of JSON objects); a "
            "contract needs records to derive its scenarios from"
        )
    if tabular.length(data) == 0:
        raise ContractError(
            f"{test}: the sample has no records; a contract needs at least one record to "
            "derive its scenarios from"
        )
    return data, kind


def _expected(contract: Contract, test: str, load: Loader) -> list[dict[str, Any]] | None:
    expected = contract.expected
    if expected is None:
        return None
    if isinstance(expected, str | os.PathLike):
        try:
            expected = load(os.fspath(expected), "records")
        except Exception as exc:
            raise ContractError(f"{test}: the expected output could not be loaded: {exc}") from None
    if tabular.kind_of(expected) is None:
        raise ContractError(
            f"{test}: expected= must be a fixture file name or records (a list of dicts), "
            f"got {type(expected).__name__}"
        )
    records: list[dict[str, Any]] = tabular.convert(expected, "records")
    return records


def _is_exception(value: Any) -> bool:
    if isinstance(value, tuple):
        return bool(value) and all(_is_exception(v) for v in value)
    return isinstance(value, type) and issubclass(value, BaseException)


def _check_raises(contract: Contract, test: str) -> None:
    if contract.raises is not None and not _is_exception(contract.raises):
        raise ContractError(
            f"{test}: raises= must be an exception class (or a tuple of them), "
            f"got {contract.raises!r}"
        )
    if contract.raises is not None and contract.rejects is not None:
        raise ContractError(
            f"{test}: give raises= or rejects=, not both: a missing required field either "
            "raises or sends the record to the rejected ones"
        )
    if contract.required and contract.raises is None and contract.rejects is None:
        raise ContractError(
            f"{test}: required= needs raises= (the exception a missing or null required field "
            "raises) or rejects= (a function returning the rejected records from the result)"
        )


def _check_edge_cases(contract: Contract, test: str) -> None:
    for name, case in contract.edge_cases.items():
        if not isinstance(name, str) or not name or any(c in name for c in "[]:\n"):
            raise ContractError(
                f"{test}: edge case name {name!r} must be a non-empty string without "
                "brackets, colons or newlines (it becomes part of the test id)"
            )
        if not isinstance(case, EdgeCase):
            raise ContractError(
                f"{test}: edge_cases[{name!r}] must be made with edge_case(data, expect=..., "
                f"raises=...), got {type(case).__name__}"
            )
        if not isinstance(case.data, dict | list):
            raise ContractError(
                f"{test}: edge_cases[{name!r}]: the data must be a dict (fields replaced in the "
                f"sample's first record) or a list of records, got {type(case.data).__name__}"
            )
        if case.raises is not None and not _is_exception(case.raises):
            raise ContractError(
                f"{test}: edge_cases[{name!r}]: raises= must be an exception class, "
                f"got {case.raises!r}"
            )


def _did_you_mean(name: str, names: list[str]) -> str:
    close = difflib.get_close_matches(name, names, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


# --------------------------------------------------------------------------- the scenarios


def _boundary_values(number: str) -> list[tuple[str, Any]]:
    if number == "int":
        return [("0", 0), ("-1", -1), ("large", LARGE)]
    if number == "float":
        return [("0", 0.0), ("-1", -1.0), ("large", float(LARGE))]
    return [("0", Decimal(0)), ("-1", Decimal(-1)), ("large", Decimal(LARGE))]


def _boundaries(prepared: Prepared, test: str) -> Iterable[tuple[str, str, Any]]:
    numeric = tabular.numeric_fields(prepared.sample, prepared.kind)
    custom = prepared.contract.boundaries
    for name in tabular.fields(prepared.sample, prepared.kind):
        if name in custom:
            values = custom[name]
            if isinstance(values, str | bytes) or not isinstance(values, Iterable):
                raise ContractError(
                    f"{test}: boundaries[{name!r}] must be a list of values, got {values!r}"
                )
            for value in values:
                yield name, str(value), value
        elif name in numeric:
            for label, value in _boundary_values(numeric[name]):
                yield name, label, value


def cases(prepared: Prepared) -> list[Case]:
    """Every scenario of the contract, in a stable order (the test ids depend on it)."""
    contract, test = prepared.contract, prepared.test
    found = [
        Case("happy_path", prepared, checks.happy_path),
        Case("empty_input", prepared, checks.empty_input),
    ]
    if prepared.kind != "arrow":  # an Arrow Table cannot be changed in place
        found.append(Case("input_not_mutated", prepared, checks.input_not_mutated))
    found.append(Case("deterministic", prepared, checks.deterministic))
    for name in contract.required:
        found.append(Case(f"missing_required:{name}", prepared, checks.required, (name, False)))
    for name in contract.required:
        found.append(Case(f"null_required:{name}", prepared, checks.required, (name, True)))
    for name, default in contract.optional.items():
        found.append(Case(f"optional_default:{name}", prepared, checks.optional, (name, default)))
    for name, label, value in _boundaries(prepared, test):
        found.append(Case(f"boundary:{name}={label}", prepared, checks.boundary, (name, value)))
    for name, case in contract.edge_cases.items():
        found.append(Case(f"edge:{name}", prepared, checks.edge, (case,)))
    _apply_skips(found, contract, test)
    return found


def _apply_skips(found: list[Case], contract: Contract, test: str) -> None:
    ids = [case.id for case in found]
    for pattern, reason in contract.skip.items():
        if not isinstance(reason, str) or not reason.strip():
            raise ContractError(
                f"{test}: skip[{pattern!r}] needs a reason: a sentence saying why the scenario "
                "does not apply to this transform"
            )
        hits = [case for case in found if fnmatch.fnmatchcase(case.id, str(pattern))]
        if not hits:
            raise ContractError(
                f"{test}: skip= names {pattern!r}, which is none of this contract's "
                f"scenarios{_did_you_mean(str(pattern), ids)}: {', '.join(ids)}"
            )
        for case in hits:
            case.skip_reason = reason
