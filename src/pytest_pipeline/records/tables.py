"""Records (lists of dicts) and the tables they come from or go to: DataFrames, Arrow Tables.

The column order of records is the order keys first appear in. pandas and pyarrow are imported
only when a DataFrame or Table is actually passed in (or built).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pytest_pipeline._optional import require
from pytest_pipeline.errors import RecordsError
from pytest_pipeline.records.values import json_kind, normalize_value

if TYPE_CHECKING:
    from types import ModuleType

__all__ = [
    "check_records",
    "column_order",
    "is_record_list",
    "is_tabular",
    "prepare_frame",
    "record_list",
    "records_table",
    "table_records",
    "to_records",
]


def pyarrow(feature: str = "Reading and writing records") -> ModuleType:
    """pyarrow, a core dependency; imported on first use."""
    return require("pyarrow", None, feature)


def column_order(records: Sequence[Mapping[Any, Any]]) -> list[Any]:
    """Every key of the records, in the order keys first appear."""
    columns: dict[Any, None] = {}
    # Rows mostly share one shape: collect the distinct shapes at C speed, then merge them.
    for shape in dict.fromkeys(map(tuple, records)):
        columns.update(dict.fromkeys(shape))
    return list(columns)


def is_record_list(value: Any) -> bool:
    """Whether ``value`` is a list or tuple of mappings (records)."""
    return isinstance(value, list | tuple) and all(
        type(row) is dict or isinstance(row, Mapping) for row in value
    )


def check_records(
    records: Any, where: str, error: Callable[[str], Exception], *, str_keys: bool = False
) -> list[Mapping[str, Any]]:
    """``records`` as a list of mappings, or ``error(message)`` raised naming ``where``.

    ``str_keys`` also refuses a record with a key that is not a string (a column name).
    """
    if isinstance(records, Mapping | str | bytes):
        raise error(
            f"{where}: records must be a sequence of mappings (a list of dicts), got a single "
            f"{type(records).__name__}; wrap one record in a list"
        )
    try:
        rows = list(records)
    except TypeError:
        raise error(
            f"{where}: records must be a sequence of mappings, got {type(records).__name__}"
        ) from None
    for index, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise error(f"{where}: record {index} is a {type(row).__name__}, not a mapping (dict)")
        if str_keys:
            for key in row:
                if not isinstance(key, str):
                    raise error(f"{where}: record {index} has a non-string key {key!r}")
    return rows


# --------------------------------------------------------------------------- tables


def _is_dataframe(value: Any) -> bool:
    pandas = sys.modules.get("pandas")  # not imported: cannot be a DataFrame
    return pandas is not None and isinstance(value, pandas.DataFrame)


def _is_arrow(value: Any) -> bool:
    pa = sys.modules.get("pyarrow")
    return pa is not None and isinstance(value, pa.Table | pa.RecordBatch)


def is_tabular(value: Any) -> bool:
    """Whether ``value`` is a pandas DataFrame or a pyarrow Table / RecordBatch."""
    return _is_dataframe(value) or _is_arrow(value)


def to_records(data: Any) -> list[dict[str, Any]]:
    """Records (a list of dicts with plain Python values) from a DataFrame, Table or records.

    A DataFrame's named index levels become columns (``groupby(...).sum()`` results keep their
    keys); an unnamed index (a RangeIndex, or what is left after filtering) is dropped.
    """
    if isinstance(data, list):
        return data
    if isinstance(data, tuple):
        return list(data)
    if _is_arrow(data):
        return table_records(data)
    if _is_dataframe(data):
        return _dataframe_records(data)
    raise TypeError(
        f"expected records (a list of dicts), a pandas DataFrame or a pyarrow Table, "
        f"got {type(data).__name__}"
    )


def prepare_frame(frame: Any) -> Any:
    """The DataFrame as compared and written: named index levels become columns.

    Raises ``ValueError`` for duplicate column names, or an index level named like a column.
    """
    columns = [str(c) for c in frame.columns]
    duplicated = sorted({c for c in columns if columns.count(c) > 1})
    if duplicated:
        raise ValueError(f"the DataFrame has duplicate column names: {duplicated}")
    named = [n for n in frame.index.names if n is not None]
    if not named:
        return frame
    clash = [n for n in named if str(n) in columns]
    if clash:
        raise ValueError(
            f"the DataFrame's index level(s) {clash} have the same name as a column; "
            "rename one or reset the index before comparing"
        )
    return frame.reset_index(level=named)


def _dataframe_records(frame: Any) -> list[dict[str, Any]]:
    frame = prepare_frame(frame)
    pa = pyarrow("Comparing a DataFrame with a fixture")
    try:
        table = pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        # Object columns of mixed types have no Arrow type; pandas' own conversion still works.
        return [
            {str(k): normalize_value(v) for k, v in row.items()} for row in frame.to_dict("records")
        ]
    records: list[dict[str, Any]] = table.to_pylist()
    return records


def table_records(table: Any) -> list[dict[str, Any]]:
    """Records from a Table or RecordBatch, with plain ``datetime`` values where that loses
    nothing.

    Nanosecond timestamps (what pyarrow infers for fractional seconds in a CSV, what pandas
    writes to Parquet) would come out as pandas ``Timestamp`` objects; microseconds give
    ``datetime``. The cast is a safe one, so real nanoseconds are kept.
    """
    pa = pyarrow()
    if isinstance(table, pa.RecordBatch):
        table = pa.Table.from_batches([table])
    for index, column in enumerate(table.schema):
        if pa.types.is_timestamp(column.type) and column.type.unit == "ns":
            try:
                micro = table.column(index).cast(pa.timestamp("us", column.type.tz))
            except pa.ArrowInvalid:
                continue
            table = table.set_column(index, column.name, micro)
    records: list[dict[str, Any]] = table.to_pylist()
    return records


def record_list(value: Any, display: str) -> list[Mapping[Any, Any]]:
    """``value`` (parsed JSON) if it is a list of objects, else :class:`RecordsError`."""
    if not isinstance(value, list):
        raise RecordsError(
            f"{display} holds {json_kind(value)}, not a list of records: a DataFrame or Table "
            'needs a JSON array of objects, like [{"id": 1}, {"id": 2}]'
        )
    for index, row in enumerate(value):
        if type(row) is not dict and not isinstance(row, Mapping):
            raise RecordsError(
                f"{display}: item {index} of the array is {json_kind(row)}, not an object: "
                "a DataFrame or Table needs every item to be an object (a record)"
            )
    return value


def records_table(value: Any, display: str, *, action: str = "read") -> Any:
    """A pyarrow Table from a list of objects, in :func:`column_order`.

    :class:`RecordsError` naming ``display`` when ``value`` is not a list of objects, or a
    column has no single Arrow type (``action`` says what was being done: ``read``,
    ``write records to``).
    """
    pa = pyarrow()
    value = record_list(value, display)
    arrays = {}
    for key in column_order(value):
        try:
            arrays[str(key)] = pa.array([row.get(key) for row in value])
        except (pa.ArrowException, OverflowError, TypeError, ValueError) as exc:
            raise RecordsError(
                f"cannot {action} {display} as a table: column {key!r} has no single Arrow "
                f"type ({exc}); are there mixed types in that column?"
            ) from None
    return pa.table(arrays)
