"""Compare actual data with expected fixture data and describe the differences readably.

Semantics, shared by every entry point here:

* Records (lists of dicts) are matched **by position**, or by the ``key`` columns, or in any
  order (``ignore_order``); key order within a row does not matter.
  DataFrames and pyarrow Tables are turned into records first, so dtypes do not matter either:
  a CSV-read ``int64`` column equals a DataFrame's ``Int64`` or ``int32`` column holding the same
  numbers.
* Numbers compare by value across ``int``, ``float`` and ``Decimal``. A pair that involves a
  float compares like ``math.isclose(actual, expected, rel_tol=rel or 1e-9, abs_tol=abs or 0.0)``;
  two ints (or Decimals) compare exactly unless ``rel``/``abs`` is given. ``bool`` is not a
  number here: ``True`` does not equal ``1``.
* Missing values are one thing: ``None``, ``NaN``, pandas ``NA`` and ``NaT`` all equal each other
  (pandas and the file readers turn one into another, so telling them apart would only produce
  noise). They never equal a real value.
* A date, datetime, time or UUID on the actual side equals a string on the expected side that
  parses to the same value, because JSON has no such types (``"2024-01-01T10:00:00"``).
* ``text_loose`` (used for CSV fixtures, whose cells are text): a string on either side equals a
  typed value it parses to (``"42"`` equals ``42``, ``"true"`` equals ``True``), and a null-like
  string (``""``, ``"NA"``, ``"null"``, ...) equals a missing value.

Nothing here imports pandas or pyarrow unless a DataFrame or Table is actually passed in.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from pytest_pipeline.records.tables import column_order, is_record_list, is_tabular, to_records
from pytest_pipeline.records.values import normalize_value as _norm

__all__ = [
    "Diff",
    "compare",
    "diff_records",
    "diff_values",
    "mismatch_message",
    "order_for_write",
    "values_equal",
]

DEFAULT_REL = 1e-9
"""Relative tolerance for floats when the caller gives none (as in ``math.isclose``)."""

MAX_ROWS = 20
"""Differing rows listed in a diff before the rest are summarised as ``... and N more``."""

_MAX_KEYS_PER_ROW = 10
_MAX_LINES = 50
_MAX_REPR = 80

# Cell text that pyarrow's CSV reader turns into null; a CSV cannot tell these from a null.
_NULL_STRINGS = frozenset(
    {
        "",
        "#N/A",
        "#N/A N/A",
        "#NA",
        "-1.#IND",
        "-1.#QNAN",
        "-NaN",
        "-nan",
        "1.#IND",
        "1.#QNAN",
        "N/A",
        "NA",
        "NULL",
        "NaN",
        "n/a",
        "nan",
        "null",
    }
)
_TRUE_STRINGS = frozenset({"true", "True", "TRUE", "1"})
_FALSE_STRINGS = frozenset({"false", "False", "FALSE", "0"})

# Same type and ``==`` means equal under our semantics too: the hot-loop shortcut.
_FAST_TYPES = frozenset(
    {str, int, float, bool, type(None), bytes, dt.datetime, dt.date, dt.time, Decimal}
)


class _Missing:
    """Marks a key absent from a row (distinct from a ``None`` value)."""

    def __repr__(self) -> str:
        return "<missing>"


_MISSING: Any = _Missing()


@dataclass(frozen=True)
class _Tolerance:
    rel: float
    abs: float
    explicit: bool  # a tolerance was asked for: ints are compared approximately too


_DEFAULT_TOLERANCE = _Tolerance(rel=DEFAULT_REL, abs=0.0, explicit=False)


def _tolerance(rel: float | None, abs: float | None) -> _Tolerance:
    if rel is not None and (rel < 0 or math.isnan(rel)):
        raise ValueError(f"rel must be a non-negative number, got {rel!r}")
    if abs is not None and (abs < 0 or math.isnan(abs)):
        raise ValueError(f"abs must be a non-negative number, got {abs!r}")
    return _Tolerance(
        rel=DEFAULT_REL if rel is None else float(rel),
        abs=0.0 if abs is None else float(abs),
        explicit=rel is not None or abs is not None,
    )


@dataclass(frozen=True)
class _Tols:
    """The tolerance of each column: ``columns`` overrides ``default`` for the columns named."""

    default: _Tolerance
    columns: Mapping[Any, _Tolerance] = field(default_factory=dict)

    def of(self, column: Any) -> _Tolerance:
        return self.columns.get(column, self.default) if self.columns else self.default


def _column_tolerance(column: Any, spec: Any) -> _Tolerance:
    """``0.01`` (an absolute tolerance) or ``{"abs": 0.01}`` / ``{"rel": 1e-6, "abs": 0.01}``."""
    try:
        if _is_number(spec):
            return _tolerance(None, float(spec))
        if isinstance(spec, Mapping) and spec and set(spec) <= {"rel", "abs"}:
            if not all(_is_number(v) for v in spec.values()):
                raise ValueError(f"rel and abs must be numbers, got {dict(spec)!r}")
            return _tolerance(spec.get("rel"), spec.get("abs"))
    except ValueError as exc:
        raise ValueError(f"tolerance for column {column!r}: {exc}") from None
    raise ValueError(
        f"tolerance for column {column!r} must be a number (an absolute tolerance, like "
        f'{{"amount": 0.01}}) or a dict with "rel" and/or "abs", like {{"amount": {{"rel": 1e-6}}}}'
        f"; got {spec!r}"
    )


def _tols(rel: float | None, abs: float | None, tolerance: Mapping[Any, Any] | None) -> _Tols:
    columns = {c: _column_tolerance(c, spec) for c, spec in (tolerance or {}).items()}
    return _Tols(_tolerance(rel, abs), columns)


@dataclass
class Diff:
    """The outcome of :func:`compare`.

    ``lines`` is empty when the data are equal. ``differing_rows`` and ``total_rows`` are set
    when both sides are records (lists of dicts), ``None`` for other JSON values. ``matched``
    says how rows were paired when not by position (``"rows matched by key id"``).
    """

    lines: list[str] = field(default_factory=list)
    differing_rows: int | None = None
    total_rows: int | None = None
    matched: str | None = None

    @property
    def equal(self) -> bool:
        """True when no difference was found."""
        return not self.lines


# --------------------------------------------------------------------------- normalisation


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    if isinstance(value, Decimal):
        return value.is_nan()
    return type(value).__name__ in ("NAType", "NaTType")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


# --------------------------------------------------------------------------- equality


def _numbers_equal(actual: Any, expected: Any, tol: _Tolerance) -> bool:
    if not tol.explicit and not isinstance(actual, float) and not isinstance(expected, float):
        return bool(actual == expected)  # ints / Decimals: exact unless a tolerance was asked
    try:
        a, e = float(actual), float(expected)
    except OverflowError:
        return bool(actual == expected)
    return math.isclose(a, e, rel_tol=tol.rel, abs_tol=tol.abs)


def _text_equals(text: str, value: Any, tol: _Tolerance) -> bool:
    """Does ``text`` parse to ``value`` (a typed, non-missing value)?"""
    stripped = text.strip()
    try:
        if isinstance(value, bool):
            return stripped in (_TRUE_STRINGS if value else _FALSE_STRINGS)
        if isinstance(value, Decimal):
            return _numbers_equal(Decimal(stripped), value, tol)
        if isinstance(value, int | float):
            try:
                parsed: int | float = int(stripped)
            except ValueError:
                parsed = float(stripped)
            return _numbers_equal(parsed, value, tol)
        if isinstance(value, dt.datetime):
            return bool(dt.datetime.fromisoformat(stripped) == value)
        if isinstance(value, dt.date):
            return dt.date.fromisoformat(stripped) == value
        if isinstance(value, dt.time):
            return dt.time.fromisoformat(stripped) == value
        if isinstance(value, uuid.UUID):
            return uuid.UUID(stripped) == value
    except (ValueError, InvalidOperation, OverflowError):
        return False
    return text == str(value)


_NOT_IN_JSON = (dt.date, dt.time, uuid.UUID)  # dt.datetime is a dt.date


def _equal(actual: Any, expected: Any, tol: _Tolerance, loose: bool) -> bool:
    if actual is expected:
        return True
    actual, expected = _norm(actual), _norm(expected)
    a_missing, e_missing = _is_missing(actual), _is_missing(expected)
    if a_missing or e_missing:
        if a_missing and e_missing:
            return True
        if loose:
            present = expected if a_missing else actual
            return isinstance(present, str) and present.strip() in _NULL_STRINGS
        return False
    if isinstance(actual, str) and isinstance(expected, str):
        return actual == expected
    if isinstance(expected, str):
        if loose or isinstance(actual, _NOT_IN_JSON):
            return _text_equals(expected, actual, tol)
        return False
    if isinstance(actual, str):
        return loose and _text_equals(actual, expected, tol)
    if isinstance(actual, bool) or isinstance(expected, bool):
        return isinstance(actual, bool) and isinstance(expected, bool) and actual == expected
    if _is_number(actual) and _is_number(expected):
        return _numbers_equal(actual, expected, tol)
    if isinstance(actual, Mapping) and isinstance(expected, Mapping):
        if actual.keys() != expected.keys():
            return False
        return all(_equal(actual[k], v, tol, loose) for k, v in expected.items())
    if _is_sequence(actual) and _is_sequence(expected):
        return len(actual) == len(expected) and all(
            _equal(a, e, tol, loose) for a, e in zip(actual, expected, strict=True)
        )
    if isinstance(actual, dt.datetime) != isinstance(expected, dt.datetime):
        return False  # a date never equals a datetime, whatever its time
    try:
        return bool(actual == expected)
    except Exception:  # exotic objects whose __eq__ raises: they are simply not equal
        return False


def _is_sequence(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes | bytearray)


def values_equal(
    actual: Any,
    expected: Any,
    rel: float | None = None,
    abs: float | None = None,
    *,
    text_loose: bool = False,
) -> bool:
    """Whether two values are equal under the module's semantics (see the module docstring)."""
    return _equal(actual, expected, _tolerance(rel, abs), text_loose)


# --------------------------------------------------------------------------- rendering


def _show(value: Any) -> str:
    text = repr(value)
    if len(text) > _MAX_REPR:
        text = text[: _MAX_REPR - 3] + "..."
    return text


def _leaf_line(path: str, actual: Any, expected: Any) -> str:
    line = f"{path}: actual={_show(actual)} expected={_show(expected)}"
    a, e = _norm(actual), _norm(expected)
    if _is_number(a) and _is_number(e) and not _is_missing(a) and not _is_missing(e):
        try:
            delta = float(a) - float(e)
        except OverflowError:
            return line
        if math.isfinite(delta):
            line += f" (diff {delta:+.6g})"
    return line


def _child(path: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def _diff_value(
    actual: Any, expected: Any, path: str, tol: _Tolerance, loose: bool, out: list[str]
) -> None:
    """Append one line per differing leaf (nested dicts and lists are walked)."""
    if _equal(actual, expected, tol, loose):
        return
    a, e = _norm(actual), _norm(expected)
    if isinstance(a, Mapping) and isinstance(e, Mapping):
        for key, e_value in e.items():
            if key not in a:
                out.append(f"{_child(path, key)}: missing in actual (expected={_show(e_value)})")
            else:
                _diff_value(a[key], e_value, _child(path, key), tol, loose, out)
        for key, a_value in a.items():
            if key not in e:
                out.append(f"{_child(path, key)}: extra in actual (actual={_show(a_value)})")
        return
    if _is_sequence(a) and _is_sequence(e):
        if len(a) != len(e):
            out.append(f"{path or '$'}: length actual={len(a)} expected={len(e)}")
        for index, (a_item, e_item) in enumerate(zip(a, e, strict=False)):
            _diff_value(a_item, e_item, _child(path, index), tol, loose, out)
        return
    out.append(_leaf_line(path or "$", actual, expected))


def _diff_row(
    actual: Mapping[Any, Any],
    expected: Mapping[Any, Any],
    skip: frozenset[Any],
    tols: _Tols,
    loose: bool,
) -> list[str]:
    """Differences between two rows, one line per key; empty when equal."""
    out: list[str] = []
    for key, e_value in expected.items():
        a_value = actual.get(key, _MISSING)
        if a_value is e_value:
            continue
        kind = type(a_value)
        if kind is type(e_value) and kind in _FAST_TYPES and a_value == e_value:
            continue
        if skip and key in skip:
            continue
        if a_value is _MISSING:
            out.append(f"{key}: missing in actual (expected={_show(e_value)})")
        else:
            _diff_value(a_value, e_value, str(key), tols.of(key), loose, out)
    if actual.keys() != expected.keys():
        for key, a_value in actual.items():
            if key not in expected and key not in skip:
                out.append(f"{key}: extra in actual (actual={_show(a_value)})")
    return out


def _same_row(actual: Mapping[Any, Any], expected: Mapping[Any, Any]) -> bool:
    """C-speed shortcut for the common case of identical rows.

    Python's ``==`` is looser than our semantics only across types (``True == 1``), so equal
    rows whose values have the same types in the same order are equal for us too.
    """
    try:
        if actual != expected:
            return False
    except Exception:  # values like numpy arrays refuse a truth value: take the slow path
        return False
    return list(map(type, actual.values())) == list(map(type, expected.values()))


def _all_keys(rows: Sequence[Mapping[Any, Any]]) -> set[Any]:
    return set(column_order(rows))


def _key_list(keys: set[Any]) -> str:
    return ", ".join(repr(k) for k in sorted(keys, key=str))


def _shape_lines(
    actual: Sequence[Mapping[Any, Any]], expected: Sequence[Mapping[Any, Any]], lines: list[str]
) -> frozenset[Any]:
    """Report keys one side has in every row and the other in none, once, not on every row.

    Returns those keys: row diffs skip them. Keys found in only some rows are reported with
    their rows.
    """
    actual_keys = _all_keys(actual)
    expected_keys = _all_keys(expected)
    missing = {k for k in expected_keys - actual_keys if all(k in row for row in expected)}
    extra = {k for k in actual_keys - expected_keys if all(k in row for row in actual)}
    if actual and missing:
        lines.append(f"keys missing from every actual row: {_key_list(missing)}")
    if expected and extra:
        lines.append(f"extra keys in every actual row: {_key_list(extra)}")
    return frozenset(missing | extra) if actual and expected else frozenset()


def _row_block(head: str, row_lines: list[str], one_line: bool = False) -> list[str]:
    """A differing row's lines: ``head:`` then one indented line per key (capped)."""
    if one_line and len(row_lines) == 1:
        return [f"{head}: {row_lines[0]}"]
    block = [f"{head}:", *(f"  {line}" for line in row_lines[:_MAX_KEYS_PER_ROW])]
    if len(row_lines) > _MAX_KEYS_PER_ROW:
        block.append(f"  ... and {len(row_lines) - _MAX_KEYS_PER_ROW} more keys")
    return block


def _compare_records(
    actual: Sequence[Mapping[Any, Any]],
    expected: Sequence[Mapping[Any, Any]],
    tols: _Tols,
    loose: bool,
    max_rows: int,
) -> Diff:
    n_actual, n_expected = len(actual), len(expected)
    lines: list[str] = []
    if n_actual != n_expected:
        lines.append(f"row count: actual={n_actual} expected={n_expected}")
    skip = _shape_lines(actual, expected, lines)

    common = min(n_actual, n_expected)
    listed = 0  # rows with a difference of their own (values, row-level keys, extra/missing)
    shown = 0
    for index, (a_row, e_row) in enumerate(zip(actual, expected, strict=False)):
        if _same_row(a_row, e_row):
            continue
        row_lines = _diff_row(a_row, e_row, skip, tols, loose)
        if not row_lines:
            continue
        listed += 1
        if shown < max_rows:
            shown += 1
            lines.extend(_row_block(f"row {index}", row_lines))
    for index in range(common, max(n_actual, n_expected)):
        listed += 1
        if shown < max_rows:
            shown += 1
            if index < n_actual:
                lines.append(f"row {index}: extra in actual: {_show(dict(actual[index]))}")
            else:
                lines.append(f"row {index}: missing in actual: {_show(dict(expected[index]))}")
    if listed > shown:
        lines.append(f"... and {listed - shown} more differing rows")
    # Keys missing from (or extra in) every row make every common row differ.
    differing = common + (n_actual + n_expected - 2 * common) if skip else listed
    return Diff(lines=lines, differing_rows=differing, total_rows=max(n_actual, n_expected))


# --------------------------------------------------------------------------- order-free


def _canon(value: Any, loose: bool) -> Any:
    """A hashable stand-in for ``value``: values equal under our semantics map to equal ones.

    Numbers hash alike across int, float and Decimal already; dates, times and UUIDs become
    their ISO text (JSON holds them as strings); with ``loose`` (CSV text) a numeric string
    becomes its number. Used to match rows by key and to pair rows in any order.
    """
    value = _norm(value)
    if _is_missing(value):
        return None
    kind = type(value)
    if kind is str:
        if loose:
            for parse in (int, float):
                try:
                    return parse(value.strip())
                except ValueError:
                    pass
        return value
    if kind in _FAST_TYPES and kind is not dt.datetime and kind is not dt.time:
        return value if kind is not dt.date else value.isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), _canon(v, loose)) for k, v in value.items()))
    if _is_sequence(value):
        return tuple(_canon(v, loose) for v in value)
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value


def _key_of(row: Mapping[Any, Any], names: tuple[Any, ...], side: str, index: int) -> Any:
    try:
        return tuple(row[name] for name in names)
    except KeyError:
        absent = next(name for name in names if name not in row)
        raise ValueError(
            f"key column {absent!r} is missing from {side} row {index}: {_show(dict(row))}; "
            "every row needs the key columns"
        ) from None


def _key_text(names: tuple[Any, ...], values: tuple[Any, ...]) -> str:
    return ", ".join(f"{name}={_show(_norm(v))}" for name, v in zip(names, values, strict=True))


def _rows_text(indexes: list[int]) -> str:
    shown = [str(i) for i in indexes[:5]] + (["..."] if len(indexes) > 5 else [])
    return ", ".join(shown[:-1]) + " and " + shown[-1]


def _canonical_keys(
    rows: Sequence[Mapping[Any, Any]], names: tuple[Any, ...], side: str, loose: bool
) -> list[Any]:
    """Each row's key as a hashable value (a tuple for several columns), in row order."""
    try:
        if len(names) == 1:
            name = names[0]
            plain = (int,) if loose else (int, str)  # CSV text keys may need parsing
            return [
                v if type(v) in plain else _canon(v, loose) for v in [row[name] for row in rows]
            ]
        return [tuple(_canon(row[n], loose) for n in names) for row in rows]
    except KeyError:
        for number, row in enumerate(rows):
            _key_of(row, names, side, number)  # raises, naming the row
        raise


def _index_by_key(
    rows: Sequence[Mapping[Any, Any]], names: tuple[Any, ...], side: str, loose: bool
) -> dict[Any, int]:
    """Canonical key -> row number; a key found twice is an error naming its values."""
    keys = _canonical_keys(rows, names, side, loose)
    index = dict(zip(keys, range(len(keys)), strict=True))
    if len(index) == len(keys):
        return index
    index = {}
    duplicates: dict[Any, list[int]] = {}
    for number, key in enumerate(keys):
        first = index.setdefault(key, number)
        if first != number:
            duplicates.setdefault(key, [first]).append(number)
    if duplicates:
        shown = [
            f"{_key_text(names, _key_of(rows[numbers[0]], names, side, 0))} is in rows "
            f"{_rows_text(numbers)}"
            for numbers in list(duplicates.values())[:5]
        ]
        more = f" (and {len(duplicates) - 5} more duplicated keys)" if len(duplicates) > 5 else ""
        raise ValueError(
            f"key {', '.join(map(str, names))} is not unique in {side}: {'; '.join(shown)}{more}"
            "; pass key= the column(s) that identify one row, or remove the duplicated rows"
        )
    return index


def _capped_keys(
    rows: Sequence[Mapping[Any, Any]], numbers: list[int], names: tuple[Any, ...], cap: int
) -> str:
    shown = [_key_text(names, tuple(rows[i][n] for n in names)) for i in numbers[:cap]]
    if len(numbers) > cap:
        shown.append(f"... and {len(numbers) - cap} more")
    return ", ".join(shown)


def _compare_keyed(
    actual: Sequence[Mapping[Any, Any]],
    expected: Sequence[Mapping[Any, Any]],
    names: tuple[Any, ...],
    tols: _Tols,
    loose: bool,
    max_rows: int,
) -> Diff:
    a_index = _index_by_key(actual, names, "actual", loose)
    e_index = _index_by_key(expected, names, "expected", loose)
    lines: list[str] = []
    skip = _shape_lines(actual, expected, lines)
    listed = shown = matched = 0
    missing: list[int] = []
    for key, e_number in e_index.items():  # the expected file's order: stable output
        a_number = a_index.get(key)
        if a_number is None:
            missing.append(e_number)
            continue
        matched += 1
        a_row, e_row = actual[a_number], expected[e_number]
        if _same_row(a_row, e_row):
            continue
        row_lines = _diff_row(a_row, e_row, skip, tols, loose)
        if not row_lines:
            continue
        listed += 1
        if shown < max_rows:
            shown += 1
            head = f"row {_key_text(names, tuple(e_row[n] for n in names))}"
            lines.extend(_row_block(head, row_lines, one_line=True))
    if listed > shown:
        lines.append(f"... and {listed - shown} more differing rows")
    extra = [number for key, number in a_index.items() if key not in e_index]
    if missing:
        keys = _capped_keys(expected, missing, names, max_rows)
        lines.append(f"keys missing from actual ({len(missing)}): {keys}")
    if extra:
        lines.append(
            f"keys only in actual ({len(extra)}): {_capped_keys(actual, extra, names, max_rows)}"
        )
    differing = (matched if skip else listed) + len(missing) + len(extra)
    return Diff(lines, differing, matched + len(missing) + len(extra), _by_key(names))


def _by_key(names: tuple[Any, ...]) -> str:
    return "rows matched by key " + ", ".join(map(str, names))


_MAX_PAIRINGS = 1_000_000
"""Row comparisons spent pairing leftover rows within tolerance before reporting them."""


def _pair_leftovers(
    actual: Sequence[Mapping[Any, Any]],
    expected: Sequence[Mapping[Any, Any]],
    left: tuple[list[int], list[int]],
    skip: frozenset[Any],
    tols: _Tols,
    loose: bool,
) -> tuple[list[int], list[int]]:
    """Pair rows that are equal only within a tolerance or as CSV text (not by hash)."""
    only_actual, remaining = left
    if not only_actual or not remaining or len(only_actual) * len(remaining) > _MAX_PAIRINGS:
        return only_actual, remaining
    remaining = list(remaining)
    unpaired = []
    for a_number in only_actual:
        for position, e_number in enumerate(remaining):
            if not _diff_row(actual[a_number], expected[e_number], skip, tols, loose):
                del remaining[position]
                break
        else:
            unpaired.append(a_number)
    return unpaired, remaining


def _row_list(
    head: str, rows: Sequence[Mapping[Any, Any]], numbers: list[int], cap: int
) -> list[str]:
    block = [f"{head} ({len(numbers)}):", *(f"  {_show(dict(rows[i]))}" for i in numbers[:cap])]
    if len(numbers) > cap:
        block.append(f"  ... and {len(numbers) - cap} more")
    return block


def _compare_unordered(
    actual: Sequence[Mapping[Any, Any]],
    expected: Sequence[Mapping[Any, Any]],
    tols: _Tols,
    loose: bool,
    max_rows: int,
) -> Diff:
    """Compare as multisets of rows: each actual row pairs with one equal expected row."""
    lines: list[str] = []
    if len(actual) != len(expected):
        lines.append(f"row count: actual={len(actual)} expected={len(expected)}")
    skip = _shape_lines(actual, expected, lines)

    # One column order for every row; an absent key (_MISSING) differs from a None value.
    columns = [c for c in _all_keys(actual) | _all_keys(expected) if c not in skip]
    plain = (int,) if loose else (int, str)  # already canonical (NaN is not: it is missing)

    def canon(row: Mapping[Any, Any]) -> Any:
        values = [row.get(c, _MISSING) for c in columns]
        return tuple(v if type(v) in plain or v is _MISSING else _canon(v, loose) for v in values)

    buckets: dict[Any, list[int]] = {}
    for number, row in enumerate(expected):
        buckets.setdefault(canon(row), []).append(number)
    only_actual = []
    for number, row in enumerate(actual):
        bucket = buckets.get(canon(row))
        if bucket:
            bucket.pop()
        else:
            only_actual.append(number)
    only_expected = sorted(n for bucket in buckets.values() for n in bucket)
    only_actual, only_expected = _pair_leftovers(
        actual, expected, (only_actual, only_expected), skip, tols, loose
    )
    if only_actual:
        lines.extend(_row_list("rows only in actual", actual, only_actual, max_rows))
    if only_expected:
        lines.extend(_row_list("rows missing from actual", expected, only_expected, max_rows))
    total = len(expected) + len(only_actual)
    differing = total if skip else len(only_actual) + len(only_expected)
    return Diff(lines, differing, total, "in any order")


def _columns(value: str | Iterable[Any] | None, option: str) -> tuple[Any, ...]:
    if value is None:
        return ()
    names = (value,) if isinstance(value, str) else tuple(value)
    if option == "key" and not names:
        raise ValueError("key= needs at least one column name")
    return names


def _check_named(
    names: Iterable[Any], option: str, actual: Sequence[Any], expected: Sequence[Any]
) -> None:
    """A column named in an option that neither side has is a typo: say so."""
    names = list(names)
    if not names or (not actual and not expected):
        return
    known = _all_keys(actual) | _all_keys(expected)
    for name in names:
        if name not in known:
            raise ValueError(
                f"{option} names column {name!r}, which neither actual nor expected has; "
                f"their columns: {_key_list(known)}"
            )


def _drop(rows: Sequence[Mapping[Any, Any]], ignore: frozenset[Any]) -> list[dict[Any, Any]]:
    return [{k: v for k, v in row.items() if k not in ignore} for row in rows]


def _compare_rows(
    actual: Sequence[Mapping[Any, Any]],
    expected: Sequence[Mapping[Any, Any]],
    options: _RowOptions,
) -> Diff:
    tols = options.tols
    _check_named(tols.columns, "tolerance", actual, expected)
    _check_named(options.ignore, "ignore_columns", actual, expected)
    if options.ignore:
        ignore = frozenset(options.ignore)
        actual, expected = _drop(actual, ignore), _drop(expected, ignore)
    if options.key:
        return _compare_keyed(actual, expected, options.key, tols, options.loose, options.max_rows)
    if options.ignore_order:
        return _compare_unordered(actual, expected, tols, options.loose, options.max_rows)
    return _compare_records(actual, expected, tols, options.loose, options.max_rows)


@dataclass(frozen=True)
class _RowOptions:
    tols: _Tols
    loose: bool
    max_rows: int
    key: tuple[Any, ...] = ()
    ignore_order: bool = False
    ignore: tuple[Any, ...] = ()


def compare(
    actual: Any,
    expected: Any,
    rel: float | None = None,
    abs: float | None = None,
    *,
    text_loose: bool = False,
    max_rows: int = MAX_ROWS,
    key: str | Sequence[Any] | None = None,
    ignore_order: bool = False,
    ignore_columns: str | Iterable[Any] | None = None,
    tolerance: Mapping[Any, Any] | None = None,
) -> Diff:
    """Compare ``actual`` with ``expected`` and describe every difference.

    ``actual`` may be records (a list of dicts), a pandas DataFrame, a pyarrow Table or any
    JSON-like value; ``expected`` is what a fixture file holds. Records are compared row by row
    (see the module docstring for the value semantics); other values are walked recursively and
    differences are reported by path (``$.totals.amount``).

    For records: ``key`` (a column name or several) matches rows by those columns instead of
    by position, listing keys missing from or only in ``actual``; a key found twice on one side
    raises ``ValueError``. ``ignore_order=True`` compares the rows as multisets. Columns in
    ``ignore_columns`` are left out on both sides. ``tolerance`` maps a column to its own
    tolerance, ``0.01`` (absolute) or ``{"rel": ..., "abs": ...}``, in place of ``rel``/``abs``.
    """
    keys = _columns(key, "key")
    if keys and ignore_order:
        raise ValueError(
            "pass key= or ignore_order=True, not both: key= already matches rows in any order"
        )
    options = _RowOptions(
        _tols(rel, abs, tolerance),
        text_loose,
        max_rows,
        keys,
        ignore_order,
        _columns(ignore_columns, "ignore_columns"),
    )
    if is_tabular(actual):
        actual = to_records(actual)
    if is_tabular(expected):
        expected = to_records(expected)
    if is_record_list(actual) and is_record_list(expected):
        return _compare_rows(actual, expected, options)
    if keys or ignore_order or options.ignore or options.tols.columns:
        raise ValueError(
            "key=, ignore_order=, ignore_columns= and tolerance= compare records: both sides "
            f"must be lists of dicts (or DataFrames, Tables); got {type(actual).__name__} and "
            f"{type(expected).__name__}"
        )
    lines: list[str] = []
    _diff_value(actual, expected, "$", options.tols.default, text_loose, lines)
    if len(lines) > _MAX_LINES:
        lines = [*lines[:_MAX_LINES], f"... and {len(lines) - _MAX_LINES} more differences"]
    return Diff(lines=lines)


def _sort_value(value: Any) -> tuple[int, Any]:
    # Numbers before text before anything else, missing values last: a total order.
    if value is None:
        return (3, "")
    if _is_number(value):
        return (0, value)
    if isinstance(value, str):
        return (1, value)
    return (2, repr(value))


def order_for_write(
    records: Sequence[Mapping[Any, Any]],
    key: str | Sequence[Any] | None = None,
    ignore_order: bool = False,
) -> list[int]:
    """The row order update mode writes in, so that an order-free fixture file is stable.

    With ``key``: by the key columns (a duplicated key raises ``ValueError``, as comparing
    would). With ``ignore_order``: by every column, in the order the columns first appear.
    Otherwise the rows' own order. Returns row numbers.
    """
    names = _columns(key, "key")
    if names:
        _index_by_key(records, names, "actual", False)
    elif ignore_order:
        names = tuple(column_order(records))
    else:
        return list(range(len(records)))

    def sort_key(number: int) -> tuple[tuple[int, Any], ...]:
        row = records[number]
        return tuple(_sort_value(_canon(row.get(n), False)) for n in names)

    return sorted(range(len(records)), key=sort_key)


def diff_records(
    actual: Sequence[Mapping[str, Any]],
    expected: Sequence[Mapping[str, Any]],
    rel: float | None = None,
    abs: float | None = None,
    *,
    text_loose: bool = False,
    max_rows: int = MAX_ROWS,
) -> list[str]:
    """Readable differences between two lists of records; an empty list means equal.

    Rows are matched by position. The lines report the row count, keys missing from (or extra
    in) every row, then up to ``max_rows`` differing rows, each with one line per differing key:
    ``amount: actual=10.5 expected=10.05 (diff +0.45)``.
    """
    return _compare_records(actual, expected, _tols(rel, abs, None), text_loose, max_rows).lines


def diff_values(
    actual: Any,
    expected: Any,
    rel: float | None = None,
    abs: float | None = None,
    *,
    text_loose: bool = False,
) -> list[str]:
    """Readable differences between two JSON-like values, by path; an empty list means equal."""
    return compare(actual, expected, rel, abs, text_loose=text_loose).lines


def mismatch_message(name: str, diff: Diff) -> str:
    """The assertion message for a failed comparison against the fixture ``name``."""
    if diff.total_rows is not None:
        head = (
            f"actual does not match fixture {name} "
            f"({diff.differing_rows} of {diff.total_rows} rows differ"
            + (f", {diff.matched}):" if diff.matched else "):")
        )
    else:
        head = f"actual does not match fixture {name}:"
    return "\n".join([head, *(f"  {line}" for line in diff.lines)])
