"""What a suite or a pyarrow schema says about each column, as plain data for the generators.

Pure Python: no numpy, pandas, pyarrow or Great Expectations is imported here (a pyarrow
schema is read through its own objects). The suite is the JSON the quality layer loads.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from pytest_pipeline.errors import SynthError

#: Columns without a range: ints within +-2**31 (sums in tests do not overflow), floats +-1e6.
INT_RANGE = (-(2**31), 2**31 - 1)
FLOAT_RANGE = (-1e6, 1e6)
DATETIME_RANGE = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2039, 12, 31, tzinfo=UTC))
DEFAULT_MAX_LENGTH = 12


@dataclass(frozen=True)
class Unsupported:
    """One expectation the generator does not honour, and why."""

    expectation: str
    columns: tuple[str, ...]
    reason: str

    def describe(self) -> str:
        on = f" on {', '.join(self.columns)}" if self.columns else ""
        return f"{self.expectation}{on}: {self.reason}"


@dataclass
class ColumnSpec:
    """The constraints of one column, merged from every expectation naming it."""

    name: str
    kind: str | None = None
    """int, float, str, bool, datetime, date or null; None until something says."""
    nullable: bool = True
    unique: bool = False
    low: Any = None
    high: Any = None
    strict_low: bool = False
    strict_high: bool = False
    values: list[Any] | None = None
    """The allowed values (value sets intersected), in suite order."""
    required: list[Any] = field(default_factory=list)
    """Values that must appear (distinct values equal / contain a set)."""
    excluded: list[Any] = field(default_factory=list)
    regex: str | None = None
    excluded_regexes: list[str] = field(default_factory=list)
    min_length: int | None = None
    max_length: int | None = None
    dtype: str | None = None
    """The declared type name (of_type / the schema), for the DataFrame and Arrow outputs."""
    tz: str | None = None
    typed: bool = False
    """A type expectation or schema fixed the type: nulls only where the dtype holds them."""

    def describe(self) -> str:
        """``amount: int, not null, unique, between 0 and 100`` (what the column's values meet)."""
        parts = [self.dtype or self.kind or "any type"]
        parts += ["not null"] * (not self.nullable) + ["unique"] * self.unique
        if self.low is not None or self.high is not None:
            low = "" if self.low is None else f"{'>' if self.strict_low else '>='} {self.low!r}"
            high = "" if self.high is None else f"{'<' if self.strict_high else '<='} {self.high!r}"
            parts.append(" and ".join(p for p in (low, high) if p))
        if self.values is not None:
            parts.append(f"one of {self.values!r}")
        if self.required:
            parts.append(f"including {self.required!r}")
        if self.excluded:
            parts.append(f"never {self.excluded!r}")
        if self.regex is not None:
            parts.append(f"matching {self.regex!r}")
        if self.excluded_regexes:
            parts.append(f"matching none of {self.excluded_regexes!r}")
        if self.min_length is not None or self.max_length is not None:
            parts.append(f"length {self.min_length or 0}..{self.max_length or ''}")
        return f"{self.name}: {', '.join(parts)}"


@dataclass
class Plan:
    """Every column of a suite or schema, in output order, and what is not honoured."""

    name: str
    columns: list[ColumnSpec]
    unsupported: list[Unsupported] = field(default_factory=list)
    row_count: tuple[int | None, int | None] = (None, None)
    schema: Any = None
    """The pyarrow schema given, for Arrow output."""

    def __str__(self) -> str:
        """The columns, one a line, then what is not honoured: ``print(plan(...))`` reads."""
        lines = [f"plan for suite {self.name!r}: {len(self.columns)} column(s)"]
        lines += [f"  {spec.describe()}" for spec in self.columns]
        low, high = self.row_count
        if low is not None or high is not None:
            lines.append(
                f"  rows: {low if low is not None else 0}..{high if high is not None else ''}"
            )
        if self.unsupported:
            lines.append(f"not honoured ({len(self.unsupported)}):")
            lines += [f"  {item.describe()}" for item in self.unsupported]
        return "\n".join(lines)

    __repr__ = __str__

    def column(self, name: str) -> ColumnSpec:
        for spec in self.columns:
            if spec.name == name:
                return spec
        spec = ColumnSpec(name)
        self.columns.append(spec)
        return spec

    def check_rows(self, n: int) -> None:
        """SynthError when ``n`` rows break the suite's row-count expectation."""
        low, high = self.row_count
        if (low is not None and n < low) or (high is not None and n > high):
            raise SynthError(
                f"suite {self.name!r} expects between {low} and {high} rows; "
                f"{n} were asked for: ask for a row count the suite allows"
            )


# --------------------------------------------------------------------------- suites

_TYPES = {
    "int": ("int", None),
    "long": ("int", None),
    "float": ("float", None),
    "double": ("float", None),
    "str": ("str", None),
    "string": ("str", None),
    "string_types": ("str", None),
    "unicode": ("str", None),
    "object": ("str", None),
    "bool": ("bool", None),
    "boolean": ("bool", None),
    "none": ("null", None),
    "nonetype": ("null", None),
    "timestamp": ("datetime", None),
    "datetime": ("datetime", None),
    "date": ("date", None),
}
_INT_BITS = re.compile(r"^u?int(8|16|32|64)$", re.IGNORECASE)

#: Why each family of expectations cannot be generated for.
_CROSS = "relates several columns; each column is drawn on its own"
_STATS = "constrains a statistic of the whole column (a distribution), not each value"
_WHY_NOT = {
    "expect_column_pair_": _CROSS,
    "expect_multicolumn_": _CROSS,
    "expect_compound_columns_": _CROSS,
    "expect_select_column_values_to_be_unique_within_record": _CROSS,
    "expect_column_mean_": _STATS,
    "expect_column_median_": _STATS,
    "expect_column_stdev_": _STATS,
    "expect_column_sum_": _STATS,
    "expect_column_quantile_": _STATS,
    "expect_column_kl_divergence_": _STATS,
    "expect_column_most_common_value_": _STATS,
    "expect_column_unique_value_count_": _STATS,
    "expect_column_proportion_of_": _STATS,
    "expect_column_values_to_be_increasing": "orders rows; values are drawn independently",
    "expect_column_values_to_be_decreasing": "orders rows; values are drawn independently",
    "expect_column_values_to_match_like_pattern": "SQL LIKE patterns apply to SQL sources only",
}


def _type_of(name: str) -> tuple[str, Any] | None:
    """(kind, dtype) for a GE type name; None when the generator cannot make it."""
    lower = name.lower()
    if lower in _TYPES:
        return _TYPES[lower][0], name
    if _INT_BITS.match(lower):
        return "int", name.lower()
    if lower in ("float16", "float32", "float64"):
        return "float", lower
    if lower.startswith(("datetime64", "datetimetzdtype")):
        return "datetime", name
    return None


def _int_range(dtype: str | None) -> tuple[int, int]:
    match = _INT_BITS.match(dtype or "")
    if not match or match.group(1) == "64":
        return INT_RANGE if not (dtype or "").lower().startswith("u") else (0, INT_RANGE[1])
    bits = int(match.group(1))
    if dtype and dtype.lower().startswith("u"):
        return 0, 2**bits - 1
    return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1


class _Reader:
    """Folds the expectations of one suite into a :class:`Plan`."""

    def __init__(self, plan: Plan, display: str) -> None:
        self.plan = plan
        self.display = display
        self.order: list[str] | None = None
        self.column_set: list[str] | None = None
        self.exact_set = True

    def fail(self, position: int, kind: str, problem: str) -> SynthError:
        return SynthError(f"{self.display}: expectation #{position} ({kind}) {problem}")

    def read(self, position: int, entry: Any) -> None:
        if not isinstance(entry, Mapping) or "type" not in entry:
            raise SynthError(
                f"{self.display}: expectation #{position} is not an object with a 'type' "
                "(the format ExpectationSuite.to_json_dict() writes)"
            )
        kind = str(entry["type"])
        kwargs = entry.get("kwargs") or {}
        if not isinstance(kwargs, Mapping):
            raise self.fail(position, kind, "has 'kwargs' that is not a JSON object")
        if kwargs.get("row_condition"):
            self.skip(kind, kwargs, "applies only to rows matching a condition on other columns")
            return
        handler = getattr(self, "_" + kind.removeprefix("expect_"), None)
        if handler is None:
            why = next((why for prefix, why in _WHY_NOT.items() if kind.startswith(prefix)), None)
            self.skip(kind, kwargs, why or "not an expectation type the generator knows")
            return
        column = kwargs.get("column")
        if kind.startswith("expect_column") and not isinstance(column, str):
            raise self.fail(position, kind, "has no 'column' name")
        try:
            handler(self.plan.column(column) if isinstance(column, str) else None, kwargs)
        except (TypeError, ValueError) as exc:
            raise self.fail(
                position, kind, f"has arguments the generator cannot use: {exc}"
            ) from None

    def skip(self, kind: str, kwargs: Mapping[str, Any], reason: str) -> None:
        columns = [kwargs[k] for k in ("column", "column_A", "column_B") if k in kwargs]
        columns += list(kwargs.get("column_list") or ())
        self.plan.unsupported.append(Unsupported(kind, tuple(map(str, columns)), reason))

    # ---- one method per expectation type (name without "expect_")

    def _column_to_exist(self, spec: ColumnSpec, kwargs: Mapping[str, Any]) -> None:
        return None  # plan.column() added it

    def _column_values_to_not_be_null(self, spec: ColumnSpec, kwargs: Mapping[str, Any]) -> None:
        spec.nullable = False

    def _column_values_to_be_null(self, spec: ColumnSpec, kwargs: Mapping[str, Any]) -> None:
        spec.kind = "null"

    def _column_values_to_be_unique(self, spec: ColumnSpec, kwargs: Mapping[str, Any]) -> None:
        spec.unique = True

    def _column_values_to_be_in_set(self, spec: ColumnSpec, kwargs: Mapping[str, Any]) -> None:
        values = list(kwargs["value_set"])
        spec.values = values if spec.values is None else [v for v in spec.values if v in values]

    _column_distinct_values_to_be_in_set = _column_values_to_be_in_set

    def _column_distinct_values_to_equal_set(
        self, spec: ColumnSpec, kwargs: Mapping[str, Any]
    ) -> None:
        self._column_values_to_be_in_set(spec, kwargs)
        spec.required = list(kwargs["value_set"])

    def _column_distinct_values_to_contain_set(
        self, spec: ColumnSpec, kwargs: Mapping[str, Any]
    ) -> None:
        spec.required = [*spec.required, *kwargs["value_set"]]

    def _column_values_to_not_be_in_set(self, spec: ColumnSpec, kwargs: Mapping[str, Any]) -> None:
        spec.excluded = [*spec.excluded, *kwargs["value_set"]]

    def _column_values_to_be_between(self, spec: ColumnSpec, kwargs: Mapping[str, Any]) -> None:
        low, high = kwargs.get("min_value"), kwargs.get("max_value")
        if low is not None and (spec.low is None or _gt(low, spec.low)):
            spec.low, spec.strict_low = low, bool(kwargs.get("strict_min"))
        if high is not None and (spec.high is None or _gt(spec.high, high)):
            spec.high, spec.strict_high = high, bool(kwargs.get("strict_max"))

    def _column_min_to_be_between(self, spec: ColumnSpec, kwargs: Mapping[str, Any]) -> None:
        # Every value >= the lowest allowed minimum; the boundary row puts the minimum itself.
        self._column_values_to_be_between(spec, {"min_value": kwargs.get("min_value")})
        cap = kwargs.get("max_value")
        if cap is not None and spec.low is not None and _gt(spec.low, cap):
            raise ValueError(f"the minimum cannot be both >= {spec.low} and <= {cap}")

    def _column_max_to_be_between(self, spec: ColumnSpec, kwargs: Mapping[str, Any]) -> None:
        self._column_values_to_be_between(spec, {"max_value": kwargs.get("max_value")})
        floor = kwargs.get("min_value")
        if floor is not None and spec.high is not None and _gt(floor, spec.high):
            raise ValueError(f"the maximum cannot be both <= {spec.high} and >= {floor}")

    def _column_values_to_match_regex(self, spec: ColumnSpec, kwargs: Mapping[str, Any]) -> None:
        regex = str(kwargs["regex"])
        re.compile(regex)
        if spec.regex is not None and spec.regex != regex:
            raise ValueError(f"a second regex for the column ({spec.regex!r} and {regex!r})")
        spec.regex = regex

    def _column_values_to_match_regex_list(
        self, spec: ColumnSpec, kwargs: Mapping[str, Any]
    ) -> None:
        regexes = list(kwargs["regex_list"])
        if kwargs.get("match_on", "any") == "all" and len(regexes) > 1:
            self.skip("expect_column_values_to_match_regex_list", kwargs, "match_on='all'")
            return
        self._column_values_to_match_regex(spec, {"regex": regexes[0]})

    def _column_values_to_not_match_regex(
        self, spec: ColumnSpec, kwargs: Mapping[str, Any]
    ) -> None:
        spec.excluded_regexes = [*spec.excluded_regexes, str(kwargs["regex"])]

    def _column_values_to_not_match_regex_list(
        self, spec: ColumnSpec, kwargs: Mapping[str, Any]
    ) -> None:
        spec.excluded_regexes = [*spec.excluded_regexes, *map(str, kwargs["regex_list"])]

    def _column_value_lengths_to_be_between(
        self, spec: ColumnSpec, kwargs: Mapping[str, Any]
    ) -> None:
        low, high = kwargs.get("min_value"), kwargs.get("max_value")
        if low is not None:
            spec.min_length = max(int(low), spec.min_length or 0)
        if high is not None:
            spec.max_length = int(high) if spec.max_length is None else min(spec.max_length, high)
        spec.kind = spec.kind or "str"

    def _column_value_lengths_to_equal(self, spec: ColumnSpec, kwargs: Mapping[str, Any]) -> None:
        value = kwargs["value"]
        self._column_value_lengths_to_be_between(spec, {"min_value": value, "max_value": value})

    def _column_values_to_be_of_type(self, spec: ColumnSpec, kwargs: Mapping[str, Any]) -> None:
        self._type_list(spec, [str(kwargs["type_"])], kwargs)

    def _column_values_to_be_in_type_list(
        self, spec: ColumnSpec, kwargs: Mapping[str, Any]
    ) -> None:
        self._type_list(spec, [str(t) for t in kwargs["type_list"]], kwargs)

    def _type_list(self, spec: ColumnSpec, names: list[str], kwargs: Mapping[str, Any]) -> None:
        for name in names:
            found = _type_of(name)
            if found is not None:
                spec.kind, spec.dtype, spec.typed = found[0], found[1], True
                return
        self.skip(
            "expect_column_values_to_be_of_type",
            kwargs,
            f"no value of type {', '.join(names)} can be generated",
        )

    def _table_columns_to_match_ordered_list(self, spec: None, kwargs: Mapping[str, Any]) -> None:
        self.order = [str(c) for c in kwargs["column_list"]]

    def _table_columns_to_match_set(self, spec: None, kwargs: Mapping[str, Any]) -> None:
        self.column_set = [str(c) for c in kwargs["column_set"]]
        self.exact_set = kwargs.get("exact_match", True) is not False

    def _table_column_count_to_equal(self, spec: None, kwargs: Mapping[str, Any]) -> None:
        self.column_count = (int(kwargs["value"]), int(kwargs["value"]))

    def _table_column_count_to_be_between(self, spec: None, kwargs: Mapping[str, Any]) -> None:
        self.column_count = (kwargs.get("min_value"), kwargs.get("max_value"))

    def _table_row_count_to_equal(self, spec: None, kwargs: Mapping[str, Any]) -> None:
        self.plan.row_count = (int(kwargs["value"]), int(kwargs["value"]))

    def _table_row_count_to_be_between(self, spec: None, kwargs: Mapping[str, Any]) -> None:
        self.plan.row_count = (kwargs.get("min_value"), kwargs.get("max_value"))

    column_count: tuple[Any, Any] = (None, None)

    def finish(self) -> None:
        """Put the columns in the order the suite fixes; check the table-level expectations."""
        named = [spec.name for spec in self.plan.columns]
        wanted = self.order or self.column_set
        if wanted is not None:
            strays = [c for c in named if c not in wanted]
            if strays and (self.order is not None or self.exact_set):
                raise SynthError(
                    f"{self.display}: columns {', '.join(strays)} have expectations but are "
                    "not in the suite's column list or set: add them there or drop them"
                )
            by_name = {spec.name: spec for spec in self.plan.columns}
            ordered = [by_name.get(c) or ColumnSpec(c) for c in wanted]
            self.plan.columns = ordered + [s for s in self.plan.columns if s.name not in wanted]
        low, high = self.column_count
        count = len(self.plan.columns)
        if (low is not None and count < low) or (high is not None and count > high):
            raise SynthError(
                f"{self.display}: the suite expects between {low} and {high} columns but names "
                f"{count}: list every column (expect_table_columns_to_match_ordered_list)"
            )


def _gt(a: Any, b: Any) -> bool:
    try:
        return bool(a > b)
    except TypeError:
        return bool(_as_datetime(a) > _as_datetime(b))


def _as_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    else:
        moment = datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def plan_suite(data: Any, display: str) -> Plan:
    """The plan of a suite's JSON data (``display`` names it in messages)."""
    if not isinstance(data, Mapping) or not isinstance(data.get("expectations"), list):
        raise SynthError(
            f"{display}: a suite is a JSON object with an 'expectations' list "
            "(the format ExpectationSuite.to_json_dict() writes)"
        )
    plan = Plan(name=str(data.get("name") or display), columns=[])
    reader = _Reader(plan, display)
    for position, entry in enumerate(data["expectations"], start=1):
        reader.read(position, entry)
    reader.finish()
    for spec in plan.columns:
        settle(spec, display)
    return plan


# --------------------------------------------------------------------------- schemas


def plan_schema(schema: Any, plan: Plan | None = None) -> Plan:
    """The plan of a pyarrow schema, or ``plan`` (a suite's) with the schema's types added."""
    import pyarrow as pa

    if plan is None:
        plan = Plan(name="schema", columns=[])
        for arrow_field in schema:
            plan.column(arrow_field.name)
    else:
        missing = [c.name for c in plan.columns if c.name not in schema.names]
        if missing:
            raise SynthError(
                f"suite {plan.name!r} has columns {', '.join(missing)} that the schema lacks: "
                "pass the schema of the same table"
            )
    plan.schema = schema
    for spec in plan.columns:
        arrow_field = schema.field(spec.name)
        kind, dtype = _arrow_kind(pa, arrow_field)
        spec.kind, spec.dtype = kind, dtype
        spec.tz = getattr(arrow_field.type, "tz", None)
        if not arrow_field.nullable:
            spec.nullable = False
        if kind == "int" and dtype is not None:
            type_low, type_high = _int_range(dtype)
            spec.low = type_low if spec.low is None else max(spec.low, type_low)
            spec.high = type_high if spec.high is None else min(spec.high, type_high)
        settle(spec, f"schema field {spec.name!r}")
    return plan


def _arrow_kind(pa: Any, arrow_field: Any) -> tuple[str, str | None]:
    kind = arrow_field.type
    checks = (
        (pa.types.is_boolean, "bool"),
        (pa.types.is_integer, "int"),
        (pa.types.is_floating, "float"),
        (pa.types.is_string, "str"),
        (pa.types.is_large_string, "str"),
        (pa.types.is_timestamp, "datetime"),
        (pa.types.is_date, "date"),
        (pa.types.is_null, "null"),
    )
    for check, name in checks:
        if check(kind):
            return name, str(kind) if name == "int" else None
    raise SynthError(
        f"schema field {arrow_field.name!r} has type {kind}, which the generator cannot make: "
        "use bool, integer, floating, string, timestamp or date fields"
    )


# --------------------------------------------------------------------------- settling


def settle(spec: ColumnSpec, where: str) -> None:
    """Infer the kind from the constraints, fill default ranges, catch contradictions."""
    if spec.kind is None:
        spec.kind = _infer_kind(spec)
    if spec.kind == "null":
        if not spec.nullable:
            raise SynthError(f"{where}: column {spec.name!r} must be null and not null at once")
        return
    if spec.values is not None:
        spec.values = [v for v in spec.values if _allowed(spec, v)]
        if not spec.values:
            raise SynthError(
                f"{where}: no value of the set of column {spec.name!r} meets its other "
                "expectations (range, regex, lengths, excluded values)"
            )
    missing = [v for v in spec.required if not _allowed(spec, v)]
    if missing:
        raise SynthError(
            f"{where}: column {spec.name!r} must contain {missing!r}, which its other "
            "expectations forbid"
        )
    if spec.kind == "int":
        _settle_ints(spec, where)
    elif spec.kind == "float":
        low = FLOAT_RANGE[0] if spec.low is None else float(spec.low)
        high = FLOAT_RANGE[1] if spec.high is None else float(spec.high)
        if spec.low is None and low > high:
            low = high - (FLOAT_RANGE[1] - FLOAT_RANGE[0])
        if spec.high is None and high < low:
            high = low + (FLOAT_RANGE[1] - FLOAT_RANGE[0])
        if spec.strict_low:
            low = math.nextafter(low, math.inf)
        if spec.strict_high:
            high = math.nextafter(high, -math.inf)
        spec.low, spec.high = low, high
        spec.strict_low = spec.strict_high = False
        _check_range(spec, where)
    elif spec.kind in ("datetime", "date"):
        first = DATETIME_RANGE[0] if spec.low is None else _as_datetime(spec.low)
        last = DATETIME_RANGE[1] if spec.high is None else _as_datetime(spec.high)
        spec.low, spec.high = first, last
        _check_range(spec, where)
    elif spec.kind == "str" and spec.regex is None:
        low_len = spec.min_length or 0
        high_len = DEFAULT_MAX_LENGTH if spec.max_length is None else spec.max_length
        if spec.max_length is None and high_len < low_len:
            high_len = low_len + DEFAULT_MAX_LENGTH
        spec.min_length, spec.max_length = low_len, high_len
        if low_len > high_len:
            raise SynthError(
                f"{where}: column {spec.name!r} needs lengths from {low_len} to {high_len}"
            )


def _infer_kind(spec: ColumnSpec) -> str:
    sample = spec.values or spec.required
    if sample:
        kinds = {type(v) for v in sample if v is not None}
        if kinds <= {int}:
            return "int"
        if kinds <= {int, float}:
            return "float"
        return "str" if kinds <= {str} else "any"
    if spec.regex is not None or spec.min_length is not None or spec.max_length is not None:
        return "str"
    bounds = [b for b in (spec.low, spec.high) if b is not None]
    if bounds:
        if all(isinstance(b, int) and not isinstance(b, bool) for b in bounds):
            return "int"
        if all(isinstance(b, float) and b.is_integer() for b in bounds):
            return "int"  # 1.0 as GE writes 1: whole numbers meet the range either way
        if all(isinstance(b, int | float) for b in bounds):
            return "float"
        return "datetime"
    return "str"


def _settle_ints(spec: ColumnSpec, where: str) -> None:
    default_low, default_high = _int_range(spec.dtype)
    low = default_low if spec.low is None else _int_bound(spec.low, up=True)
    high = default_high if spec.high is None else _int_bound(spec.high, up=False)
    if spec.low is None and low > high:
        low = high - (default_high - default_low)
    if spec.high is None and high < low:
        high = low + (default_high - default_low)
    spec.low = low + 1 if spec.strict_low and low == spec.low else low
    spec.high = high - 1 if spec.strict_high and high == spec.high else high
    spec.strict_low = spec.strict_high = False
    _check_range(spec, where)
    if spec.unique and spec.values is None and spec.high - spec.low + 1 < 1:
        raise SynthError(f"{where}: column {spec.name!r} has no integer in its range")


def _int_bound(value: Any, *, up: bool) -> int:
    number = float(value)
    return math.ceil(number) if up else math.floor(number)


def _check_range(spec: ColumnSpec, where: str) -> None:
    if spec.values is None and _gt(spec.low, spec.high):
        raise SynthError(
            f"{where}: column {spec.name!r} has an empty range ({spec.low} to {spec.high})"
        )


def _allowed(spec: ColumnSpec, value: Any) -> bool:
    """Whether ``value`` meets the column's range, regex, lengths and exclusions."""
    if value is None or value in spec.excluded:
        return False
    try:
        if spec.low is not None and (
            _gt(spec.low, value) or (spec.strict_low and not _gt(value, spec.low))
        ):
            return False
        if spec.high is not None and (
            _gt(value, spec.high) or (spec.strict_high and not _gt(spec.high, value))
        ):
            return False
    except (TypeError, ValueError):
        return False
    text = str(value)
    if spec.regex is not None and not re.search(spec.regex, text):
        return False
    if any(re.search(pattern, text) for pattern in spec.excluded_regexes):
        return False
    if spec.min_length is not None and len(text) < spec.min_length:
        return False
    return not (spec.max_length is not None and len(text) > spec.max_length)


def read_source(source: Any, display: str) -> Any:
    """JSON data of a suite given as a mapping or as an object with ``to_json_dict()``."""
    if isinstance(source, Mapping):
        return source
    to_json = getattr(source, "to_json_dict", None)
    if callable(to_json):
        return to_json()
    if isinstance(source, Sequence):
        return {"name": display, "expectations": list(source)}
    raise SynthError(
        f"cannot make data from a {type(source).__qualname__}: pass a suite name or file, "
        "a suite's JSON data, a Great Expectations suite or a pyarrow schema"
    )
