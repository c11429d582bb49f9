"""Columns of seeded synthetic values from a :class:`~pytest_pipeline.synth.spec.Plan` (numpy).

Each column has its own random stream, derived from the seed and the column's name: adding a
column to a suite leaves the others' values as they were. The first rows of every column are
its boundary values (lowest, highest, zero, empty string, null: whichever the column allows),
then the values every row of a "contain this set" expectation needs; the rest are drawn.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from pytest_pipeline.errors import RegexNotGeneratable, SynthError
from pytest_pipeline.synth.regex import RegexSampler, _Chars, _Repeat
from pytest_pipeline.synth.spec import ColumnSpec, Plan, _allowed

MAX_ROUNDS = 60
"""Redraws of the rows that broke uniqueness or an exclusion before giving up."""
_TEXT = [chr(c) for c in range(ord("a"), ord("z") + 1)] + [str(d) for d in range(10)]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)

Draw = Callable[[int], list[Any]]


def column_rng(seed: int, name: str) -> np.random.Generator:
    """The random stream of column ``name`` for ``seed`` (stable across runs and machines)."""
    key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big")
    return np.random.default_rng([seed & 0xFFFFFFFFFFFFFFFF, key])


def generate_columns(plan: Plan, n: int, seed: int) -> dict[str, list[Any]]:
    """``n`` values per column of ``plan``, as Python lists, in the plan's column order."""
    if n < 0:
        raise SynthError(f"cannot make {n} records: ask for 0 or more")
    plan.check_rows(n)
    return {spec.name: _column(spec, n, column_rng(seed, spec.name)) for spec in plan.columns}


def _column(spec: ColumnSpec, n: int, rng: np.random.Generator) -> list[Any]:
    if spec.kind == "null":
        return [None] * n
    draw = _drawer(spec, rng)
    head = _head(spec)
    if len(spec.required) > n:
        raise SynthError(
            f"column {spec.name!r} must contain {len(spec.required)} distinct values; "
            f"{n} records cannot: ask for at least {len(spec.required)}"
        )
    head = head[:n]
    pooled = _pooled(spec, n)
    values = head + (_unique_bulk(spec, rng, head, n) if pooled else draw(n - len(head)))
    return _repair(spec, values, len(head), draw, spec.unique and not pooled)


def _head(spec: ColumnSpec) -> list[Any]:
    """The values the first rows carry on purpose: required values, then boundaries."""
    chosen = [v for v in spec.required if v is not None]
    chosen += [v for v in _boundaries(spec) if _ok(spec, v)]
    if _nulls_allowed(spec):
        chosen.append(None)
    return _dedupe(chosen)


def _dedupe(values: list[Any]) -> list[Any]:
    seen: set[Any] = set()
    out = []
    for value in values:
        key = _key(value)
        if key not in seen:
            seen.add(key)
            out.append(value)
    return out


def _key(value: Any) -> Any:
    # 1 and True and 1.0 are equal in Python; keep them apart as values of a set are.
    return (type(value).__name__, value)


def _nulls_allowed(spec: ColumnSpec) -> bool:
    # A suite's int / bool type does not hold nulls in a DataFrame (it becomes float / object).
    return spec.nullable and not (spec.typed and spec.kind in ("int", "bool"))


def _boundaries(spec: ColumnSpec) -> list[Any]:
    if spec.values is not None:
        return [spec.values[0], spec.values[-1]]
    kind = spec.kind
    if kind in ("int", "float"):
        zero = 0 if kind == "int" else 0.0
        inside = spec.low < zero < spec.high
        return [spec.low, spec.high, *([zero] if inside else [])]
    if kind == "bool":
        return [False, True]
    if kind in ("datetime", "date"):
        return [_moment(spec, spec.low), _moment(spec, spec.high)]
    if kind == "str":
        sampler = _text_sampler(spec)
        rng = np.random.default_rng(0)
        edges = [sampler.sample(rng, 1, "min")[0], sampler.sample(rng, 1, "max")[0]]
        return ["", *edges]
    return []


def _ok(spec: ColumnSpec, value: Any) -> bool:
    if spec.kind in ("datetime", "date") or spec.values is not None:
        return True  # in range by construction; set values were filtered when planned
    return _allowed(spec, value)


def _moment(spec: ColumnSpec, moment: datetime) -> Any:
    if spec.kind == "date":
        return moment.date()
    return moment if spec.tz else moment.replace(tzinfo=None)


# --------------------------------------------------------------------------- drawing


class _Text:
    """Strings of the column's lengths from a plain alphabet, when no regex says more."""

    def __init__(self, spec: ColumnSpec) -> None:
        self.repeat = _Repeat(_Chars(_TEXT), spec.min_length or 0, spec.max_length or 0)
        self.exact = True

    def sample(self, rng: np.random.Generator, n: int, mode: str = "random") -> list[str]:
        return self.repeat.sample(rng, n, mode)


def _text_sampler(spec: ColumnSpec) -> RegexSampler | _Text:
    if spec.regex is None:
        return _Text(spec)
    try:
        return RegexSampler(spec.regex)
    except RegexNotGeneratable as exc:
        raise SynthError(
            f"column {spec.name!r}: cannot make strings matching regex {spec.regex!r}: it uses "
            f"{exc}; use a simpler regex or give the column a value set"
        ) from None


def _drawer(spec: ColumnSpec, rng: np.random.Generator) -> Draw:
    if spec.values is not None:
        values = spec.values
        return lambda m: [values[i] for i in rng.integers(len(values), size=m).tolist()]
    kind = spec.kind
    if kind == "int":
        low, high = spec.low, spec.high
        return lambda m: rng.integers(low, high, size=m, endpoint=True).tolist()
    if kind == "float":
        low, high = spec.low, spec.high
        return lambda m: np.clip(rng.uniform(low, high, size=m), low, high).tolist()
    if kind == "bool":
        return lambda m: (rng.integers(2, size=m) == 1).tolist()
    if kind in ("datetime", "date"):
        return _moments(spec, rng)
    if kind == "str":
        sampler = _text_sampler(spec)
        return lambda m: sampler.sample(rng, m)
    raise SynthError(f"column {spec.name!r}: no values can be made for kind {kind!r}")


def _moments(spec: ColumnSpec, rng: np.random.Generator) -> Draw:
    step = timedelta(days=1) if spec.kind == "date" else _MICRO
    low = (spec.low - _EPOCH) // step
    high = (spec.high - _EPOCH) // step
    unit = "datetime64[D]" if spec.kind == "date" else "datetime64[us]"
    aware = bool(spec.tz)

    def draw(m: int) -> list[Any]:
        values: list[Any] = rng.integers(low, high, size=m, endpoint=True).astype(unit).tolist()
        return [v.replace(tzinfo=UTC) for v in values] if aware else values

    return draw


def _pooled(spec: ColumnSpec, n: int) -> bool:
    """Unique values from a small domain: drawn without replacement, not redrawn."""
    if not spec.unique:
        return False
    if spec.values is not None:
        return True
    return spec.kind == "int" and spec.high - spec.low + 1 <= max(4 * n, 1 << 16)


def _unique_bulk(spec: ColumnSpec, rng: np.random.Generator, head: list[Any], n: int) -> list[Any]:
    taken = {_key(v) for v in head}
    if spec.values is not None:
        pool: Any = [v for v in spec.values if _key(v) not in taken]
    else:
        pool = np.arange(spec.low, spec.high + 1, dtype=np.int64)
        pool = np.setdiff1d(pool, np.array([v for v in head if v is not None], dtype=np.int64))
    wanted = n - len(head)
    if len(pool) < wanted:
        raise SynthError(
            f"column {spec.name!r} must be unique but allows only {len(pool) + len(head)} "
            f"distinct values; {n} records cannot be made: ask for fewer or widen the column"
        )
    picks = rng.choice(len(pool), size=wanted, replace=False)
    if isinstance(pool, list):
        return [pool[i] for i in picks.tolist()]
    chosen: list[Any] = pool[picks].tolist()
    return chosen


def _repair(spec: ColumnSpec, values: list[Any], head: int, draw: Draw, unique: bool) -> list[Any]:
    """Redraw the rows after the head that repeat a value of a unique column or are banned.

    One pass over the column finds them; later rounds look only at the redrawn rows.
    """
    check = _row_check(spec)
    if not unique and check is None:
        return values
    seen: set[Any] = set()
    add = seen.add
    if check is None:  # the common case, kept to one C-speed comprehension
        bad = [row for row, v in enumerate(values) if v is not None and (v in seen or add(v))]
    else:
        bad = [
            row
            for row, v in enumerate(values)
            if (row >= head and check(v)) or (unique and v is not None and (v in seen or add(v)))
        ]
    for _ in range(MAX_ROUNDS):
        if not bad:
            return values
        still: list[int] = []
        for row, value in zip(bad, draw(len(bad)), strict=True):
            if (check is not None and check(value)) or (unique and value in seen):
                still.append(row)
                continue
            if unique and value is not None:
                add(value)
            values[row] = value
        bad = still
    what = "distinct values" if unique else "values that meet every expectation"
    raise SynthError(
        f"column {spec.name!r}: could not make {len(values)} {what} in {MAX_ROUNDS} rounds "
        "(a regex or length that allows few strings, or exclusions that ban most): ask for "
        "fewer records or loosen the column's expectations"
    )


def _row_check(spec: ColumnSpec) -> Callable[[Any], bool] | None:
    """A test telling a banned value (excluded, off-regex, wrong length), or None if none can be.

    Built from only the parts the column needs: an excluded set alone is a C-level lookup.
    """
    parts: list[Callable[[Any], bool]] = []
    if spec.excluded:
        parts.append(set(spec.excluded).__contains__)
    if spec.kind == "str" and spec.values is None and spec.regex is not None:
        regex = re.compile(spec.regex)
        low, high = spec.min_length or 0, spec.max_length
        if low > 0 or high is not None or not _text_sampler(spec).exact:

            def off_pattern(value: Any) -> bool:
                if not isinstance(value, str):
                    return False
                too_long = high is not None and len(value) > high
                return too_long or len(value) < low or not regex.search(value)

            parts.append(off_pattern)
    if spec.excluded_regexes:
        compiled = [re.compile(p) for p in spec.excluded_regexes]
        parts.append(
            lambda value: value is not None and any(p.search(str(value)) for p in compiled)
        )
    if len(parts) <= 1:
        return parts[0] if parts else None
    return lambda value: any(part(value) for part in parts)
