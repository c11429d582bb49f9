"""Scalar values of records: numpy / pandas scalars as plain Python, and their JSON forms.

One place decides how a value that JSON has no type for is written (:class:`JsonRules`): dates
and times as ISO text, UUIDs as text, NaN as null, sets as sorted lists; Decimals as numbers in
fixture files (so that they compare equal when read back) or as their exact text on the wire
(Kafka messages, S3 objects); bytes as base64 text on the wire only.

Only the standard library is imported here.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID

from pytest_pipeline.errors import RecordsError

__all__ = [
    "FILE_JSON",
    "REPORT_JSON",
    "WIRE_JSON",
    "JsonRules",
    "dumps",
    "json_kind",
    "json_value",
    "normalize_value",
    "plain_value",
]

# Types that are already what the readers produce: returned as they are (the hot path).
_PLAIN_TYPES = frozenset(
    {str, int, float, bool, type(None), bytes, dt.datetime, dt.date, dt.time, Decimal}
    | {dict, list, tuple}
)


def normalize_value(value: Any) -> Any:
    """A numpy / pandas scalar as the plain Python value a file reader would produce.

    numpy scalars and arrays become Python values and lists (``datetime64`` a ``datetime``);
    pandas ``NA`` and ``NaT`` become ``None``; anything else is returned unchanged.
    """
    kind = type(value)
    if kind in _PLAIN_TYPES:
        return value
    if kind.__module__ == "numpy":
        if kind.__name__ == "datetime64":
            # .item() of a nanosecond datetime64 is an int; microseconds give a datetime.
            return value.astype("datetime64[us]").item()
        if kind.__name__ == "timedelta64":
            return value.astype("timedelta64[us]").item()
        if hasattr(value, "tolist"):  # numpy scalars and arrays
            return value.tolist()
    if kind.__name__ in ("NAType", "NaTType"):
        return None
    return value


def plain_value(value: Any) -> Any:
    """:func:`normalize_value`, with NaN as ``None`` and lists / tuples converted item-wise."""
    if isinstance(value, tuple):
        return tuple(plain_value(item) for item in value)
    if isinstance(value, list):
        return [plain_value(item) for item in value]
    value = normalize_value(value)
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def json_kind(value: Any) -> str:
    """What a parsed JSON value is, for messages: ``an object``, ``an array``, ``null``..."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return "a number"


@dataclass(frozen=True)
class JsonRules:
    """How values that JSON has no type for are written (see the module docstring)."""

    decimal_text: bool = False
    """A Decimal as its exact text (``"1.10"``) instead of a number."""
    bytes_base64: bool = False
    """bytes as base64 text instead of an error."""
    anything_text: bool = False
    """Any other value as ``str(value)``, infinities as ``"inf"``, instead of an error."""


FILE_JSON = JsonRules()
"""Fixture files: values that read back equal to what was written; others are an error."""
WIRE_JSON = JsonRules(decimal_text=True, bytes_base64=True)
"""Kafka messages and S3 objects: no precision lost, bytes carried as base64."""
REPORT_JSON = JsonRules(decimal_text=True, anything_text=True)
"""Reports: every value has a form, so a report is always written."""


def _scalar(value: Any, rules: JsonRules, where: str) -> Any:
    """The JSON form of a value JSON has no type for."""
    if isinstance(value, dt.date | dt.time):  # dt.datetime is a dt.date
        return value.isoformat()
    if isinstance(value, Decimal):
        if value.is_nan():
            return None
        if rules.decimal_text:
            return str(value)
        if not value.is_finite():
            return float(value)
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, UUID):
        return str(value)
    if rules.bytes_base64 and isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if rules.anything_text:
        return str(value)
    raise RecordsError(
        f"cannot write {where} to JSON: {type(value).__name__} value {value!r} has no JSON "
        "form; convert it (e.g. to str) first"
    )


def json_value(value: Any, rules: JsonRules = FILE_JSON, where: str = "value") -> Any:
    """``value`` as plain JSON data (dict, list, str, int, float, bool, None) under ``rules``.

    NaN (float, Decimal, pandas ``NA``) becomes ``None``; mapping keys become text; tuples and
    sets become lists (a set sorted). ``where`` names the value in the error for a value that
    has no JSON form under ``rules`` (:class:`RecordsError`).
    """
    value = normalize_value(value)
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return str(value) if rules.anything_text and math.isinf(value) else value
    if isinstance(value, Mapping):
        return {
            (k if isinstance(k, str) else str(k)): json_value(v, rules, f"{where}.{k}")
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [json_value(v, rules, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, set | frozenset):
        return [
            json_value(v, rules, f"{where}[{i}]") for i, v in enumerate(sorted(value, key=repr))
        ]
    return _scalar(value, rules, where)


def dumps(
    value: Any,
    rules: JsonRules = FILE_JSON,
    *,
    where: str = "value",
    indent: int | None = None,
    compact: bool = False,
) -> str:
    """JSON text of ``value`` under ``rules`` (non-ASCII kept); :class:`RecordsError` if some
    part has no JSON form. ``compact`` drops the spaces after ``,`` and ``:``.

    Plain data is written at C speed; only data holding NaN or a value JSON has no type for
    is walked by :func:`json_value` first.
    """
    separators = (",", ":") if compact else None

    def default(item: Any) -> Any:
        return json_value(item, rules, where)

    try:
        return json.dumps(
            value,
            default=default,
            allow_nan=False,  # NaN must become null: the walk below does that
            ensure_ascii=False,
            indent=indent,
            separators=separators,
        )
    except (ValueError, TypeError, RecursionError):
        pass  # NaN or infinity, a key JSON cannot hold, or an error to be named precisely
    try:
        converted = json_value(value, rules, where)
    except RecursionError:
        raise RecordsError(f"cannot write {where} to JSON: it is nested too deeply") from None
    return json.dumps(converted, ensure_ascii=False, indent=indent, separators=separators)
