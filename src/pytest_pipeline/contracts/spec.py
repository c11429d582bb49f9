"""The declaration: what ``transform_contract(...)`` records, checked later at collection.

Nothing is validated here: a bad declaration is reported at collection, where the error can
name the test (``tests/unit/test_x.py::test_normalize``) and the offending key.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import pytest

from pytest_pipeline.contracts import CONTRACT_ATTR

KINDS = ("records", "pandas", "arrow")


class EdgeCase(NamedTuple):
    """A domain edge case of a contract; made by :func:`edge_case`."""

    data: Any
    expect: Any = None
    raises: Any = None


def edge_case(data: Any, *, expect: Any = None, raises: Any = None) -> EdgeCase:
    """A domain edge case for ``transform_contract(edge_cases={name: edge_case(...)})``.

    ``data`` is the input: a dict is the sample's first record with these fields replaced (a
    one-record input), a list of dicts is the whole input. ``expect`` is the expected output
    (records, compared like fixture files) or a callable given the output that asserts or
    returns False on a wrong one; ``raises`` is the exception class the input must raise.
    """
    return EdgeCase(data, expect, raises)


@dataclass(frozen=True)
class Contract:
    """The arguments of one ``transform_contract(...)`` call."""

    transform: Any
    sample: Any
    required: tuple[Any, ...] = ()
    optional: Mapping[Any, Any] = field(default_factory=dict)
    raises: Any = None
    rejects: Callable[[Any], Any] | None = None
    output: Callable[[Any], Any] | None = None
    expected: Any = None
    boundaries: Mapping[Any, Any] = field(default_factory=dict)
    edge_cases: Mapping[Any, Any] = field(default_factory=dict)
    skip: Mapping[Any, Any] = field(default_factory=dict)
    kind: str | None = None


def transform_contract(
    transform: Callable[..., Any],
    *,
    sample: Any,
    required: Iterable[str] = (),
    optional: Mapping[str, Any] | None = None,
    raises: type[BaseException] | tuple[type[BaseException], ...] | None = None,
    rejects: Callable[[Any], Any] | None = None,
    output: Callable[[Any], Any] | None = None,
    expected: Any = None,
    boundaries: Mapping[str, Iterable[Any]] | None = None,
    edge_cases: Mapping[str, EdgeCase] | None = None,
    skip: Mapping[str, str] | None = None,
    kind: str | None = None,
) -> Callable[..., None]:
    """Declare the contract tests of ``transform``; assign the result to a ``test_...`` name.

    ``sample`` is a fixture file name (relative to ``fixtures_dir``) or inline data: records,
    a pandas DataFrame or a pyarrow Table. ``required`` fields must make the transform raise
    ``raises`` when missing or null (or, with ``rejects=``, land among the records
    ``rejects(result)`` returns); ``optional`` maps fields to the default the output carries
    when they are missing or null. ``output`` picks the records out of the transform's
    result; ``expected`` (a fixture file name or records) is what the happy path must produce.
    ``boundaries`` replaces the boundary values of a numeric field, ``edge_cases`` adds domain
    cases (:func:`edge_case`), ``skip`` maps scenario names (or ``fnmatch`` patterns) to the
    reason they do not apply, and ``kind`` (``records`` / ``pandas`` / ``arrow``) says what the
    transform takes when the sample alone does not. Every scenario is a test marked ``unit``.
    """
    contract = Contract(
        transform=transform,
        sample=sample,
        required=tuple(required) if not isinstance(required, str) else (required,),
        optional=dict(optional or {}),
        raises=raises,
        rejects=rejects,
        output=output,
        expected=expected,
        boundaries=dict(boundaries or {}),
        edge_cases=dict(edge_cases or {}),
        skip=dict(skip or {}),
        kind=kind,
    )

    def contract_test(pipeline_contract_case: Any) -> None:
        __tracebackhide__ = True
        pipeline_contract_case.run()

    setattr(contract_test, CONTRACT_ATTR, contract)
    _place_at_caller(contract_test)
    marked: Callable[..., None] = pytest.mark.unit(contract_test)
    return marked


def _place_at_caller(function: Callable[..., None]) -> None:
    """Make pytest report the test at the declaration's file and line, not in this module.

    pytest locates a test through its function's code, or ``place_as`` when set: a code
    object with the caller's file and line gives failures and junit XML the user's location.
    """
    frame = sys._getframe(2)
    code = (lambda: None).__code__.replace(
        co_filename=frame.f_code.co_filename, co_firstlineno=frame.f_lineno
    )
    function.place_as = types.SimpleNamespace(__code__=code)  # type: ignore[attr-defined]
