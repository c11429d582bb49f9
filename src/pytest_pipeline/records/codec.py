"""Record files by suffix: the format table, and reading and writing each format as bytes.

Fixture files and S3 objects go through the same code, so a file means the same wherever it is:

* ``.json``: any JSON value (records are an array of objects).
* ``.jsonl`` / ``.ndjson``: one object per line; blank lines are skipped.
* ``.csv``: a header line, then rows. Strings are always written quoted and a null as an empty
  unquoted cell, so that ``""`` and null stay apart. Reading infers types (pyarrow's CSV
  reader): an unquoted empty cell or ``NA`` / ``null`` / ... is null, a quoted ``""`` is the
  empty string; quoted cells may span lines. Nested values have no CSV form.
* ``.parquet`` (pyarrow), and ``.gz`` of the text formats.

Errors are :class:`~pytest_pipeline.errors.RecordsError` naming the file (``display``) and,
where there is one, its line and column. pandas and pyarrow are imported only when a file that
needs them is read or written.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import gzip
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pytest_pipeline._optional import require
from pytest_pipeline.errors import RecordsError
from pytest_pipeline.records.tables import (
    column_order,
    is_tabular,
    prepare_frame,
    pyarrow,
    record_list,
    records_table,
    table_records,
    to_records,
)
from pytest_pipeline.records.values import FILE_JSON, JsonRules, dumps, json_kind, normalize_value

if TYPE_CHECKING:
    from types import ModuleType

__all__ = [
    "SUPPORTED_SUFFIXES",
    "Format",
    "decode_text",
    "encode",
    "format_of",
    "parse_json",
    "parse_jsonl",
    "read_csv",
    "read_parquet",
    "read_records",
    "too_large",
]

SUPPORTED_SUFFIXES = (
    ".json",
    ".jsonl",
    ".ndjson",
    ".csv",
    ".parquet",
    ".json.gz",
    ".jsonl.gz",
    ".ndjson.gz",
    ".csv.gz",
)
"""File suffixes of records (matched case-insensitively)."""

_KINDS = {
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".parquet": "parquet",
}
_MAX_EXCERPT = 80
_MIB = 1024 * 1024
_PARQUET_BATCH_ROWS = 65_536


@dataclass(frozen=True)
class Format:
    """A file's format: ``kind`` is json, jsonl, csv or parquet; ``gz`` says gzipped."""

    kind: str
    gz: bool


def format_of(name: str) -> Format | None:
    """The format ``name``'s suffix names (case-insensitive), or None if unsupported."""
    lower = name.lower()
    gz = lower.endswith(".gz")
    base = lower[:-3] if gz else lower
    for suffix, kind in _KINDS.items():
        if base.endswith(suffix) and not (gz and kind == "parquet"):
            return Format(kind, gz)
    return None


def too_large(display: str, limit: int, size: int | None, how: str = "") -> str:
    """The message for a file over ``fixtures_max_mb`` (``size`` in bytes when known)."""
    shown = f": {size / _MIB:.1f} MB" if size is not None else ""
    return (
        f"{display} is larger than fixtures_max_mb ({limit / _MIB:g} MB){how}{shown}; "
        "a fixture file this large is refused so that a huge or gzip-bomb file cannot exhaust "
        "memory: raise fixtures_max_mb under [tool.pytest-pipeline] in pyproject.toml (or "
        "PYTEST_PIPELINE_FIXTURES_MAX_MB) if the file is meant to be this large"
    )


# --------------------------------------------------------------------------- reading


def _excerpt(line: str, column: int) -> str:
    """The line and a caret under ``column`` (1-based), trimmed around it."""
    line = line.replace("\t", " ").rstrip("\r\n")
    start = max(0, min(column - 1 - _MAX_EXCERPT // 2, len(line) - _MAX_EXCERPT))
    snippet = line[start : start + _MAX_EXCERPT]
    caret = " " * max(0, column - 1 - start) + "^"
    return f"\n    {snippet}\n    {caret}"


def decode_text(data: bytes, display: str) -> str:
    """``data`` as UTF-8 text (a BOM dropped); the error names the line and column."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise RecordsError(
            f"{display}:{line}:{column}: not valid UTF-8 ({exc.reason}); "
            "fixture files must be UTF-8 encoded"
        ) from None


def parse_json(text: str, display: str) -> Any:
    """The JSON value in ``text``; the error names the line and column, with an excerpt."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        line = text.split("\n")[exc.lineno - 1] if text.strip() else ""
        raise RecordsError(
            f"{display}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}"
            + (_excerpt(line, exc.colno) if line else " (the file is empty)")
        ) from None
    except RecursionError:
        raise RecordsError(f"{display}: invalid JSON: nested too deeply") from None


def parse_jsonl(text: str, display: str) -> list[dict[str, Any]]:
    """The objects of a JSON Lines text, one per non-blank line."""
    decoder = json.JSONDecoder()
    records: list[dict[str, Any]] = []
    for lineno, line in enumerate(text.split("\n"), 1):
        stripped = line.strip(" \t\r")
        if not stripped:
            continue
        indent = len(line) - len(line.lstrip(" \t\r"))
        try:
            obj, end = decoder.raw_decode(stripped)
        except json.JSONDecodeError as exc:
            raise RecordsError(
                f"{display}:{lineno}:{indent + exc.colno}: invalid JSON on line {lineno}: "
                f"{exc.msg}" + _excerpt(line, indent + exc.colno)
            ) from None
        except RecursionError:
            raise RecordsError(
                f"{display}:{lineno}: invalid JSON on line {lineno}: nested too deeply"
            ) from None
        if end != len(stripped):
            rest = stripped[end:]
            column = indent + end + len(rest) - len(rest.lstrip(" \t")) + 1  # the extra data
            raise RecordsError(
                f"{display}:{lineno}:{column}: extra data after the JSON object on line {lineno} "
                "(one object per line in JSON Lines)" + _excerpt(line, column)
            )
        if type(obj) is not dict:
            raise RecordsError(
                f"{display}:{lineno}: line {lineno} holds {json_kind(obj)}, not a JSON object "
                "(JSON Lines fixtures hold one record object per line)"
            )
        records.append(obj)
    return records


def _locate_csv_problem(text: str, display: str) -> str | None:
    """Find the first ragged row or bad quoting with the stdlib reader, which counts lines."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    width: int | None = None
    header_line = 0
    end = 0
    try:
        for row in reader:
            start, end = end + 1, reader.line_num
            if not row:
                continue  # blank line: pyarrow skips these too
            if width is None:
                width, header_line = len(row), start
                continue
            if len(row) != width:
                shown = ",".join(row)
                if len(shown) > _MAX_EXCERPT:
                    shown = shown[: _MAX_EXCERPT - 3] + "..."
                return (
                    f"{display}:{start}: row has {len(row)} fields but the header "
                    f"(line {header_line}) has {width}: {shown}"
                )
    except csv.Error as exc:
        start = end + 1
        if "end of data" in str(exc) or "EOF" in str(exc):
            return (
                f"{display}:{start}: unterminated quoted field: the quote opened on line {start} "
                "is never closed"
            )
        return f"{display}:{reader.line_num}: malformed CSV: {exc}"
    return None


def _raw_csv_options(pcsv: ModuleType, pa: ModuleType, text: str) -> Any:
    """Every column as text, exactly as written: no type inference, no nulls (empty is "")."""
    header = next((row for row in csv.reader(io.StringIO(text, newline="")) if row), [])
    return pcsv.ConvertOptions(
        column_types={name: pa.string() for name in header}, strings_can_be_null=False
    )


def read_csv(data: bytes, display: str, *, raw: bool = False) -> Any:
    """A pyarrow Table of the CSV ``data`` (see the module docstring for the rules).

    ``raw`` reads every cell as the text written: no type inference, an empty cell is ``""``.
    """
    pa = pyarrow("Reading CSV records")
    pcsv = require("pyarrow.csv", None, "Reading CSV records")
    text = decode_text(data, display)
    if not text.strip():
        return pa.table({})  # no header, no rows
    options = pcsv.ConvertOptions(strings_can_be_null=True, quoted_strings_can_be_null=False)
    if raw:
        with contextlib.suppress(csv.Error):  # malformed: the reader below names the line
            options = _raw_csv_options(pcsv, pa, text)
    parse = pcsv.ParseOptions(newlines_in_values=True)  # a quoted cell may span lines
    try:
        table = pcsv.read_csv(pa.BufferReader(data), parse_options=parse, convert_options=options)
    except pa.ArrowException as exc:
        located = _locate_csv_problem(text, display)
        reason = str(exc).removeprefix("CSV parse error: ")
        raise RecordsError(located or f"{display}: cannot parse CSV: {reason}") from None
    # pyarrow accepts an unclosed quote (it swallows the rest of the file into one cell);
    # balanced quotes come in pairs, so an odd count is worth a closer look.
    if data.count(b'"') % 2:
        located = _locate_csv_problem(text, display)
        if located:
            raise RecordsError(located)
    names = table.column_names
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise RecordsError(
            f"{display}:1: duplicate column name(s) in the header: {', '.join(duplicated)}"
        )
    return table


def read_parquet(data: bytes, display: str, limit: int | None = None) -> Any:
    """A pyarrow Table of the Parquet ``data``; more than ``limit`` decoded bytes is an error."""
    pa = pyarrow("Reading Parquet records")
    pq = require("pyarrow.parquet", None, "Reading Parquet records")
    # Read in batches, counting decoded bytes: repeated values take little room on disk (and
    # in the footer's sizes) but their full size in memory, so only reading tells the size.
    batches = []
    inflated = 0
    try:
        reader = pq.ParquetFile(pa.BufferReader(data))
        for batch in reader.iter_batches(batch_size=_PARQUET_BATCH_ROWS):
            inflated += batch.nbytes
            if limit is not None and inflated > limit:
                raise RecordsError(too_large(display, limit, None, " when decoded"))
            batches.append(batch)
        return pa.Table.from_batches(batches, schema=reader.schema_arrow)
    except (pa.ArrowException, OSError, ValueError) as exc:
        if isinstance(exc, RecordsError):
            raise
        reason = str(exc).removeprefix("Could not open Parquet input source '<Buffer>': ")
        raise RecordsError(f"{display} is not a readable Parquet file: {reason}") from None


def read_records(data: bytes, kind: str, display: str) -> list[dict[str, Any]]:
    """The records (a list of dicts) of a file of format ``kind`` (data decompressed)."""
    if kind == "csv":
        return table_records(read_csv(data, display))
    if kind == "parquet":
        return table_records(read_parquet(data, display))
    text = decode_text(data, display)
    if kind == "jsonl":
        return parse_jsonl(text, display)
    return [dict(row) for row in record_list(parse_json(text, display), display)]


# --------------------------------------------------------------------------- writing


def _csv_cell(value: Any, row: int, column: Any) -> str:
    value = normalize_value(value)
    if value is None:
        return ""
    if isinstance(value, str):
        # Strings are always quoted so that "" and a null stay distinct.
        return '"' + value.replace('"', '""') + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    if isinstance(value, Decimal):
        return "" if value.is_nan() else str(value)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, Mapping | list | tuple | set | frozenset | bytes | bytearray):
        raise RecordsError(
            f"cannot write row {row}, column {column!r} to CSV: a {type(value).__name__} "
            "value has no CSV form; use a .json, .jsonl or .parquet fixture for nested data"
        )
    return '"' + str(value).replace('"', '""') + '"'


def _csv_bytes(records: Sequence[Mapping[Any, Any]]) -> bytes:
    columns = column_order(records)
    lines = [",".join('"' + str(c).replace('"', '""') + '"' for c in columns)] if columns else []
    for index, row in enumerate(records):
        lines.append(",".join(_csv_cell(row.get(c), index, c) for c in columns))
    return "".join(line + "\n" for line in lines).encode("utf-8")


def _parquet_bytes(data: Any, display: str, action: str) -> bytes:
    pa = pyarrow("Writing Parquet records")
    pq = require("pyarrow.parquet", None, "Writing Parquet records")
    table = None
    if isinstance(data, pa.Table):
        table = data
    elif isinstance(data, pa.RecordBatch):
        table = pa.Table.from_batches([data])
    elif is_tabular(data):  # a DataFrame: keep its dtypes (timestamps, categoricals)
        try:
            table = pa.Table.from_pandas(prepare_frame(data), preserve_index=False)
        except (pa.ArrowException, TypeError, ValueError, OverflowError):
            table = None  # mixed object columns: fall back to the records' own types
    if table is None:
        plain = [{k: normalize_value(v) for k, v in row.items()} for row in to_records(data)]
        table = records_table(plain, display, action=action)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    written: bytes = sink.getvalue().to_pybytes()
    return written


def encode(
    data: Any,
    fmt: Format,
    display: str,
    *,
    rules: JsonRules = FILE_JSON,
    indent: int | None = None,
    what: str = "actual",
    action: str = "write records to",
) -> bytes:
    """``data`` as the bytes of a file of format ``fmt`` (gzipped if ``fmt.gz``).

    ``data``: records, a DataFrame or a Table; for ``.json`` any JSON-able value. JSON is
    written under ``rules`` (``indent`` for ``.json``; ``what`` names a ``.json`` value in
    errors, ``row <n>`` a record); a Parquet column of mixed types is an
    error saying it could not ``action`` ``display``. Gzip output is the same bytes for the
    same data (no timestamp).
    """
    if fmt.kind == "json":
        value = to_records(data) if is_tabular(data) else data
        body = (dumps(value, rules, where=what, indent=indent) + "\n").encode("utf-8")
    elif fmt.kind == "jsonl":
        body = "".join(
            dumps(row, rules, where=f"row {i}") + "\n" for i, row in enumerate(to_records(data))
        ).encode("utf-8")
    elif fmt.kind == "csv":
        body = _csv_bytes(to_records(data))
    else:
        body = _parquet_bytes(data, display, action)
    return gzip.compress(body, mtime=0) if fmt.gz else body
