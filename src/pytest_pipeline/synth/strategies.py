"""The plan of a suite or schema as Hypothesis strategies, built on ``hypothesis.strategies``.

Hypothesis finds the boundaries itself (it tries the ends of every range first), so these
strategies only say what a value may be: ``from_regex`` for regexes, ``sampled_from`` for
sets, ``integers`` / ``floats`` / ``datetimes`` with the column's bounds.
"""

from __future__ import annotations

from typing import Any

from pytest_pipeline._optional import require
from pytest_pipeline.synth.spec import ColumnSpec, Plan, _allowed

EXTRA = "synth"
_FEATURE = "The Hypothesis strategy of pytest_pipeline.synth"


def _st() -> Any:
    require("hypothesis", EXTRA, _FEATURE)
    import hypothesis.strategies as st

    return st


def column_strategy(spec: ColumnSpec) -> Any:
    """The values of one column (null included where the column allows it)."""
    st = _st()
    if spec.kind == "null":
        return st.none()
    base = _values(st, spec)
    if spec.excluded or spec.excluded_regexes or (spec.regex and spec.kind == "str"):
        base = base.filter(lambda value: value is None or _allowed(spec, value))
    from pytest_pipeline.synth.generate import _nulls_allowed

    return st.one_of(st.none(), base) if _nulls_allowed(spec) else base


def _values(st: Any, spec: ColumnSpec) -> Any:
    if spec.values is not None:
        return st.sampled_from(spec.values)
    if spec.kind == "int":
        return st.integers(spec.low, spec.high)
    if spec.kind == "float":
        return st.floats(spec.low, spec.high, allow_nan=False, allow_infinity=False)
    if spec.kind == "bool":
        return st.booleans()
    if spec.kind == "datetime":
        low, high = spec.low.replace(tzinfo=None), spec.high.replace(tzinfo=None)
        moments = st.datetimes(low, high)
        if spec.tz:
            from datetime import UTC

            return moments.map(lambda moment: moment.replace(tzinfo=UTC))
        return moments
    if spec.kind == "date":
        return st.dates(spec.low.date(), spec.high.date())
    if spec.regex is not None:  # compiled when the suite was planned
        return st.from_regex(spec.regex, fullmatch=True)
    return st.text(min_size=spec.min_length or 0, max_size=spec.max_length)


def record_strategy(plan: Plan) -> Any:
    """Single records: a dict with every column of the plan, in order."""
    st = _st()
    names = [spec.name for spec in plan.columns]
    columns = st.fixed_dictionaries({spec.name: column_strategy(spec) for spec in plan.columns})
    # Hypothesis may fill the keys in another order: the records keep the suite's.
    return columns.map(lambda record: {name: record[name] for name in names})


def batch_strategy(plan: Plan, min_size: int, max_size: int | None) -> Any:
    """Lists of records; unique columns hold no repeated value (nulls aside) within a list."""
    st = _st()
    low, high = plan.row_count
    min_size = max(min_size, low or 0)
    max_size = high if max_size is None else (max_size if high is None else min(max_size, high))
    unique = [spec.name for spec in plan.columns if spec.unique]

    def key(name: str) -> Any:
        # Nulls may repeat in a unique column: give each its own key.
        return lambda record: record[name] if record[name] is not None else object()

    return st.lists(
        record_strategy(plan),
        min_size=min_size,
        max_size=max_size,
        unique_by=tuple(key(name) for name in unique) or None,
    )
