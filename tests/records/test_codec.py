"""The record codec: every format round-trips None, "", dates, decimals and nested values.

Files are written to disk and read back with the codec, the fixture loader, and pandas /
pyarrow's own readers, so that a file means the same to each of them.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pytest_pipeline.errors import RecordsError, ServiceError
from pytest_pipeline.fixture_files.store import FixtureStore
from pytest_pipeline.records import codec
from pytest_pipeline.records.tables import check_records, column_order, to_records
from pytest_pipeline.records.values import (
    FILE_JSON,
    REPORT_JSON,
    WIRE_JSON,
    dumps,
    json_value,
    normalize_value,
    plain_value,
)

FLAT: list[dict[str, Any]] = [
    {"id": 1, "name": "", "amount": 12.5, "when": dt.date(2024, 1, 2), "ok": True},
    {"id": 2, "name": None, "amount": None, "when": None, "ok": False},
    {
        "id": 3,
        "name": 'Zoë, "q"\ntwo lines',
        "amount": -0.25,
        "when": dt.date(2024, 2, 29),
        "ok": None,
    },
]


def _write(tmp_path: Path, name: str, data: Any, **options: Any) -> Path:
    fmt = codec.format_of(name)
    assert fmt is not None
    path = tmp_path / name
    path.write_bytes(codec.encode(data, fmt, name, **options))
    return path


def _read(path: Path) -> list[dict[str, Any]]:
    fmt = codec.format_of(path.name)
    assert fmt is not None
    data = path.read_bytes()
    return codec.read_records(gzip.decompress(data) if fmt.gz else data, fmt.kind, path.name)


# --------------------------------------------------------------------------- formats


def test_the_suffix_table() -> None:
    assert codec.format_of("a/B.JSONL.GZ") == codec.Format("jsonl", True)
    assert codec.format_of("x.ndjson") == codec.Format("jsonl", False)
    assert codec.format_of("x.parquet") == codec.Format("parquet", False)
    assert codec.format_of("x.parquet.gz") is None  # Parquet compresses itself
    assert codec.format_of("x.txt") is None
    assert all(codec.format_of(f"f{suffix}") for suffix in codec.SUPPORTED_SUFFIXES)


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
def test_csv_keeps_empty_strings_and_nulls_apart(tmp_path: Path, suffix: str) -> None:
    path = _write(tmp_path, f"r{suffix}", FLAT)
    body = gzip.decompress(path.read_bytes()) if suffix.endswith(".gz") else path.read_bytes()
    lines = body.decode().split("\n")
    assert lines[0] == '"id","name","amount","when","ok"'
    assert lines[1] == '1,"",12.5,2024-01-02,true'  # "" quoted, a null an empty cell
    assert lines[2] == "2,,,,false"
    assert _read(path) == FLAT
    assert FixtureStore(tmp_path).load(path.name) == FLAT  # the loader reads the same file
    raw = codec.read_csv(body, "r.csv", raw=True).to_pylist()
    assert raw[1] == {"id": "2", "name": "", "amount": "", "when": "", "ok": "false"}


def test_csv_from_elsewhere_reads_quoted_empties_as_text_and_empty_cells_as_null() -> None:
    data = b'a,n,d\n"x",1,2024-01-02\n"",,\n,3,\n'
    assert codec.read_records(data, "csv", "p.csv") == [
        {"a": "x", "n": 1, "d": dt.date(2024, 1, 2)},
        {"a": "", "n": None, "d": None},
        {"a": None, "n": 3, "d": None},
    ]


def test_csv_has_no_form_for_nested_values(tmp_path: Path) -> None:
    for nested in ({"b": 1}, [1, 2], b"raw"):
        with pytest.raises(RecordsError, match=r"column 'a' to CSV: a .* value has no CSV form"):
            _write(tmp_path, "n.csv", [{"a": nested}])


@pytest.mark.parametrize("suffix", [".json", ".jsonl", ".ndjson", ".json.gz", ".jsonl.gz"])
def test_json_formats_round_trip_nested_values(tmp_path: Path, suffix: str) -> None:
    records = [
        {"id": 1, "tags": ["a", "b"], "meta": {"n": None, "s": ""}, "x": None},
        {"id": 2, "tags": [], "meta": {}, "x": ""},
    ]
    path = _write(tmp_path, f"n{suffix}", records)
    assert _read(path) == records
    assert FixtureStore(tmp_path).load(path.name) == records


def test_json_writes_dates_and_decimals_by_its_rules(tmp_path: Path) -> None:
    record = {
        "day": dt.date(2024, 1, 2),
        "at": dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
        "price": Decimal("12.50"),
        "count": Decimal(3),
        "id": uuid.UUID(int=1),
        "nan": float("nan"),
        "tags": {"b", "a"},
    }
    path = _write(tmp_path, "t.jsonl", [record])
    # Fixture files: a Decimal is a number, so it compares equal when read back.
    assert json.loads(path.read_text()) == {
        "day": "2024-01-02",
        "at": "2024-01-02T03:04:05+00:00",
        "price": 12.5,
        "count": 3,
        "id": "00000000-0000-0000-0000-000000000001",
        "nan": None,
        "tags": ["a", "b"],
    }
    # On the wire (Kafka, S3): a Decimal keeps its exact text, bytes travel as base64.
    wire = json.loads(dumps({**record, "raw": b"\x00\xff"}, WIRE_JSON, compact=True))
    assert (wire["price"], wire["count"], wire["raw"]) == ("12.50", "3", "AP8=")
    with pytest.raises(RecordsError, match=r"cannot write row 0\.raw to JSON: bytes value"):
        _write(tmp_path, "b.jsonl", [{"raw": b"x"}])
    with pytest.raises(RecordsError, match=r"cannot write actual\.x to JSON: object value"):
        _write(tmp_path, "o.json", {"x": object()})


def test_json_without_special_values_is_written_as_json_dumps_would() -> None:
    plain = {"a": [1, 2.5, "é", None, True], "b": {"c": "d"}}
    assert dumps(plain) == json.dumps(plain, ensure_ascii=False)
    assert dumps(plain, WIRE_JSON, compact=True) == json.dumps(
        plain, ensure_ascii=False, separators=(",", ":")
    )
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(RecordsError, match="nested too deeply"):
        dumps(loop)


@pytest.mark.parametrize("suffix", [".parquet"])
def test_parquet_round_trips_types_and_nested_values(tmp_path: Path, suffix: str) -> None:
    records = [
        {"id": 1, "name": "", "price": Decimal("1.10"), "at": dt.datetime(2024, 1, 2, 3, 4)},
        {"id": 2, "name": None, "price": None, "at": None},
    ]
    path = _write(tmp_path, f"p{suffix}", records)
    assert _read(path) == records
    assert pq.read_table(path).to_pylist() == records  # pyarrow's own reader agrees
    nested = [{"id": 1, "tags": ["a"], "meta": {"k": 1}}, {"id": 2, "tags": None, "meta": None}]
    assert _read(_write(tmp_path, "n.parquet", nested)) == nested


def test_parquet_keeps_a_dataframes_dtypes_and_reads_nanoseconds_as_datetime(
    tmp_path: Path,
) -> None:
    frame = pd.DataFrame(
        {
            "n": pd.array([1, None], dtype="Int32"),
            "at": pd.Series(["2024-01-02", None], dtype="datetime64[ns]"),
        }
    )
    path = _write(tmp_path, "f.parquet", frame)
    schema = pq.read_schema(path)
    assert schema.field("n").type == pa.int32()
    assert schema.field("at").type == pa.timestamp("ns")
    assert _read(path) == [{"n": 1, "at": dt.datetime(2024, 1, 2)}, {"n": None, "at": None}]
    assert type(_read(path)[0]["at"]) is dt.datetime  # not a pandas Timestamp


def test_parquet_mixed_column_names_the_column(tmp_path: Path) -> None:
    with pytest.raises(RecordsError, match="column 'a' has no single Arrow type"):
        _write(tmp_path, "m.parquet", [{"a": 1}, {"a": "text"}])


def test_empty_record_lists_round_trip(tmp_path: Path) -> None:
    for suffix in codec.SUPPORTED_SUFFIXES:
        assert _read(_write(tmp_path, f"e{suffix}", [])) == []


def test_gzip_output_is_the_same_bytes_for_the_same_records(tmp_path: Path) -> None:
    first = _write(tmp_path, "a.csv.gz", FLAT).read_bytes()
    assert _write(tmp_path, "b.csv.gz", FLAT).read_bytes() == first


# --------------------------------------------------------------------------- bad files


def test_parse_errors_name_the_file_line_and_column() -> None:
    with pytest.raises(RecordsError, match=r"^s3://b/k\.jsonl:2:1: invalid JSON on line 2"):
        codec.read_records(b'{"a": 1}\nnope\n', "jsonl", "s3://b/k.jsonl")
    with pytest.raises(RecordsError, match=r"^k\.json holds an object, not a list of records"):
        codec.read_records(b'{"a": 1}', "json", "k.json")
    with pytest.raises(RecordsError, match=r"^k\.csv:3: row has 3 fields but the header"):
        codec.read_records(b"a,b\n1,2\n1,2,3\n", "csv", "k.csv")
    with pytest.raises(RecordsError, match=r"^k\.csv:2: unterminated quoted field"):
        codec.read_records(b'a,b\n"1,2\n', "csv", "k.csv")
    with pytest.raises(RecordsError, match=r"^k\.csv:1:4: not valid UTF-8"):
        codec.read_records(b"a,b\xff\n", "csv", "k.csv")
    with pytest.raises(RecordsError, match=r"^k\.parquet is not a readable Parquet file"):
        codec.read_records(b"PAR1 not really", "parquet", "k.parquet")


def test_parquet_over_the_limit_is_refused(tmp_path: Path) -> None:
    data = _write(tmp_path, "big.parquet", [{"s": "x" * 1000}] * 100).read_bytes()
    with pytest.raises(RecordsError, match=r"larger than fixtures_max_mb .* when decoded"):
        codec.read_parquet(data, "big.parquet", limit=10_000)
    assert codec.read_parquet(data, "big.parquet").num_rows == 100


# --------------------------------------------------------------------------- values, records


def test_numpy_and_pandas_scalars_become_plain_values() -> None:
    import numpy as np

    assert type(normalize_value(np.int64(3))) is int
    assert normalize_value(np.datetime64("2024-01-02T03:04:05.123456789")) == dt.datetime(
        2024, 1, 2, 3, 4, 5, 123456
    )
    assert (normalize_value(pd.NA), normalize_value(pd.NaT)) == (None, None)
    assert plain_value((np.float64("nan"), [np.int32(1)])) == (None, [1])
    assert json_value({"v": np.float64("inf")}, REPORT_JSON) == {"v": "inf"}
    assert json_value({1: (Decimal("2"),)}, FILE_JSON) == {"1": [2]}


def test_records_from_tables_and_their_column_order() -> None:
    rows: list[dict[str, Any]] = [{"a": 1}, {"b": 2, "a": 3}, {"c": None}]
    assert column_order(rows) == ["a", "b", "c"]
    table = pa.table({"at": pa.array([0], pa.timestamp("ns"))})
    assert to_records(table) == [{"at": dt.datetime(1970, 1, 1)}]
    frame = pd.DataFrame({"k": ["x"], "v": [1]}).set_index("k")
    assert to_records(frame) == [{"k": "x", "v": 1}]


def test_check_records_raises_the_callers_error() -> None:
    assert check_records(({"a": 1},), "here", ServiceError) == [{"a": 1}]
    with pytest.raises(ServiceError, match=r"here: records must be .* a single dict; wrap one"):
        check_records({"a": 1}, "here", ServiceError)
    with pytest.raises(ValueError, match=r"here: record 1 is a int, not a mapping \(dict\)"):
        check_records([{"a": 1}, 2], "here", ValueError)
    with pytest.raises(ServiceError, match="here: record 0 has a non-string key 1"):
        check_records([{1: "x"}], "here", ServiceError, str_keys=True)
