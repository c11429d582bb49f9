"""The sample as records, a pandas DataFrame or a pyarrow Table: one set of edits for all three.

Every edit returns a new object and leaves the sample alone. "Row" is a position (the
DataFrame's index is not used). pandas and pyarrow are imported only for their own kind.
"""

from __future__ import annotations

import copy
import reprlib
from decimal import Decimal
from typing import Any

from pytest_pipeline.records.tables import column_order, to_records

_REPR = reprlib.Repr()
_REPR.maxstring = 24
_REPR.maxother = 24
_MAX_REPR = 100


class Unfit(ValueError):
    """A value the sample's column type cannot hold (the message says which)."""


def kind_of(data: Any) -> str | None:
    """``records``, ``pandas`` or ``arrow`` for data of that kind, else None."""
    if isinstance(data, list) and all(isinstance(row, dict) for row in data):
        return "records"
    module = type(data).__module__.split(".")[0]
    if module == "pandas" and type(data).__name__ == "DataFrame":
        return "pandas"
    if module == "pyarrow" and type(data).__name__ == "Table":
        return "arrow"
    return None


def convert(data: Any, kind: str, like: Any = None) -> Any:
    """``data`` (records or any kind) as ``kind``; ``like`` lends its Arrow schema if it fits."""
    current = kind_of(data)
    if current == kind:
        return data
    records = to_records(data)
    if kind == "records":
        return records
    if kind == "pandas":
        import pandas as pd

        return pd.DataFrame(records)
    import pyarrow as pa

    if like is not None and kind_of(like) == "arrow":
        try:
            return pa.Table.from_pylist(records, schema=like.schema)
        except (pa.ArrowException, TypeError, ValueError, KeyError):
            pass  # the edge case's own types
    return pa.Table.from_pylist(records)


def fields(data: Any, kind: str) -> list[str]:
    """The sample's field names, in order of first appearance."""
    if kind == "records":
        return column_order(data)
    if kind == "pandas":
        return [str(c) for c in data.columns]
    return list(data.column_names)


def numeric_fields(data: Any, kind: str) -> dict[str, str]:
    """Numeric fields of the sample and their type: ``int``, ``float`` or ``decimal``.

    A records field is numeric when any record holds a number there; it is ``float`` when
    any of them is a float. bool is not a number.
    """
    found: dict[str, str] = {}
    if kind == "records":
        for row in data:
            for name, value in row.items():
                number = _number_kind(value)
                if number is not None and (name not in found or number == "float"):
                    found[name] = number
        return found
    if kind == "pandas":
        from pandas.api import types as ptypes

        for name in data.columns:
            col = data[name]
            if ptypes.is_bool_dtype(col):
                continue
            if ptypes.is_integer_dtype(col):
                found[str(name)] = "int"
            elif ptypes.is_float_dtype(col):
                found[str(name)] = "float"
        return found
    import pyarrow as pa

    for schema_field in data.schema:
        if pa.types.is_integer(schema_field.type):
            found[schema_field.name] = "int"
        elif pa.types.is_floating(schema_field.type):
            found[schema_field.name] = "float"
        elif pa.types.is_decimal(schema_field.type):
            found[schema_field.name] = "decimal"
    return found


def _number_kind(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, Decimal):
        return "decimal"
    return None


def length(data: Any) -> int:
    return len(data)


def fresh(data: Any, kind: str) -> Any:
    """A copy the transform may do anything to (an Arrow Table is immutable: itself)."""
    if kind == "records":
        return copy.deepcopy(data)
    if kind == "pandas":
        return data.copy(deep=True)
    return data


def empty(data: Any, kind: str) -> Any:
    """No rows; a DataFrame or Table keeps its columns and types."""
    if kind == "records":
        return []
    if kind == "pandas":
        return data.iloc[0:0].copy(deep=True)
    return data.slice(0, 0)


def without(data: Any, kind: str, name: str, row: int | None) -> Any:
    """``name`` removed from record ``row`` (records), or the column dropped (tabular)."""
    if kind == "records":
        result = copy.deepcopy(data)
        rows = range(len(result)) if row is None else [row]
        for i in rows:
            result[i].pop(name, None)
        return result
    if kind == "pandas":
        return data.drop(columns=[name])
    return data.drop_columns([name])


def with_value(data: Any, kind: str, name: str, row: int | None, value: Any) -> Any:
    """``name`` set to ``value`` in record ``row``, or in every record when ``row`` is None.

    Raises :class:`Unfit` when the column's type cannot hold ``value``.
    """
    if kind == "records":
        result = copy.deepcopy(data)
        for i in range(len(result)) if row is None else [row]:
            result[i][name] = value
        return result
    if kind == "pandas":
        return _frame_with_value(data, name, row, value)
    return _table_with_value(data, name, row, value)


def _frame_with_value(frame: Any, name: str, row: int | None, value: Any) -> Any:
    import numpy as np
    from pandas.api import types as ptypes

    result = frame.copy(deep=True)
    col = result[name]
    extension = ptypes.is_extension_array_dtype(col.dtype)
    if value is None and not extension:
        # A numpy int or bool column cannot hold a null: pandas reads such data as float/object.
        if ptypes.is_integer_dtype(col):
            result[name] = col.astype("float64")
        elif ptypes.is_bool_dtype(col):
            result[name] = col.astype(object)
    elif ptypes.is_integer_dtype(col) and not extension:
        if isinstance(value, float):
            result[name] = col.astype("float64")
        elif isinstance(value, int):
            info = np.iinfo(col.dtype)
            if not info.min <= value <= info.max:
                raise Unfit(f"{value!r} does not fit the column's type {col.dtype}")
    position = result.columns.get_loc(name)
    if row is None:
        for i in range(len(result)):
            result.iat[i, position] = value
    else:
        result.iat[row, position] = value
    return result


def _table_with_value(table: Any, name: str, row: int | None, value: Any) -> Any:
    import pyarrow as pa

    rows = table.to_pylist()
    for i in range(len(rows)) if row is None else [row]:
        rows[i][name] = value
    try:
        return pa.Table.from_pylist(rows, schema=table.schema)
    except (pa.ArrowException, OverflowError, TypeError, ValueError) as exc:
        kind = table.schema.field(name).type
        raise Unfit(f"{value!r} does not fit the column's type {kind} ({exc})") from None


def row_repr(data: Any, kind: str, row: int) -> str:
    """``record 3 {'id': 'a3', 'amount': 12.5, ...}``: the row's position and a short repr."""
    if kind == "records":
        record = data[row]
    else:
        record = to_records(data.slice(row, 1) if kind == "arrow" else data.iloc[row : row + 1])[0]
    return f"record {row} {short(record)}"


def short(value: Any) -> str:
    """A repr of at most about 100 characters; a record keeps its field order."""
    if isinstance(value, dict):
        text = "{" + ", ".join(f"{k!r}: {_REPR.repr(v)}" for k, v in value.items()) + "}"
    else:
        text = _REPR.repr(value)
    if len(text) <= _MAX_REPR:
        return text
    return text[: _MAX_REPR - 4] + ("...}" if isinstance(value, dict) else "...")


def first_change(before: Any, after: Any, kind: str) -> str | None:
    """What changed between two states of the same input, or None when nothing did.

    Equality is strict (Python ``==`` on records, dtypes too for a DataFrame): a string parsed
    into a datetime in place is a change even though the two compare equal as fixture data.
    """
    if kind == "pandas":
        if list(before.columns) != list(after.columns):
            gone = [c for c in before.columns if c not in after.columns]
            new = [c for c in after.columns if c not in before.columns]
            return f"its columns changed (removed {gone}, added {new})"
        changed = [c for c in before.columns if before[c].dtype != after[c].dtype]
        if changed:
            c = changed[0]
            return f"column {c!r} changed type from {before[c].dtype} to {after[c].dtype}"
        before, after = to_records(before), to_records(after)
    if len(before) != len(after):
        return f"it had {len(before)} records, now {len(after)}"
    for i, (old, new) in enumerate(zip(before, after, strict=True)):
        if old == new:
            continue
        for name in [*old, *(k for k in new if k not in old)]:
            if name not in new:
                return f"record {i} {short(old)}: field {name!r} was removed"
            if name not in old:
                return f"record {i} {short(old)}: field {name!r} was added ({short(new[name])})"
            if not _same(old[name], new[name]):
                return (
                    f"record {i} {short(old)}: field {name!r} was {short(old[name])}, "
                    f"is now {short(new[name])}"
                )
    return None


def _same(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and a != a and b != b:  # NaN stays NaN
        return True
    return bool(a == b)
