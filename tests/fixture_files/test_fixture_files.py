"""Unit tests of fixture-file loading, caching, errors, comparison and update mode."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pytest_pipeline.errors import FixtureFileError
from pytest_pipeline.fixture_files import store as fixture_files
from pytest_pipeline.fixture_files.store import SUPPORTED_SUFFIXES, FixtureStore

RECORDS = [
    {"id": 1, "name": "alice", "amount": 10.5, "active": True, "note": None},
    {"id": 2, "name": "bob", "amount": 0.25, "active": False, "note": "vip"},
]

CSV_TEXT = 'id,name,amount,active,note\n1,alice,10.5,true,\n2,"bob",0.25,false,vip\n'


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "tests" / "fixtures").mkdir(parents=True)
    return tmp_path


@pytest.fixture
def fixtures(root: Path) -> Path:
    return root / "tests" / "fixtures"


@pytest.fixture
def store(fixtures: Path, root: Path) -> FixtureStore:
    return FixtureStore(fixtures, rootdir=root)


def write(base: Path, name: str, content: str | bytes) -> Path:
    path = base / name
    path.parent.mkdir(parents=True, exist_ok=True)
    data = content.encode() if isinstance(content, str) else content
    if name.endswith(".gz"):
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def jsonl(records: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def write_parquet(base: Path, name: str, records: list[dict[str, Any]]) -> Path:
    path = base / name
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(records), path)
    return path


def error_of(call: Any, *args: Any) -> FixtureFileError:
    with pytest.raises(FixtureFileError) as info:
        call(*args)
    # Clear errors, not a chain from deep inside a dependency.
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__ or info.value.__context__ is None
    return info.value


# --------------------------------------------------------------------------- formats


@pytest.mark.parametrize("name", ["r.json", "r.json.gz"])
def test_load_json_records(store: FixtureStore, fixtures: Path, name: str) -> None:
    write(fixtures, name, json.dumps(RECORDS))
    assert store.load(name) == RECORDS


def test_load_json_any_value(store: FixtureStore, fixtures: Path) -> None:
    write(fixtures, "config.json", '{"rates": {"EUR": 1.0}, "codes": [1, 2]}')
    assert store.load("config.json") == {"rates": {"EUR": 1.0}, "codes": [1, 2]}


@pytest.mark.parametrize("name", ["r.jsonl", "r.ndjson", "r.jsonl.gz", "r.ndjson.gz"])
def test_load_jsonl(store: FixtureStore, fixtures: Path, name: str) -> None:
    # Blank lines, CRLF endings and indentation are tolerated.
    text = "\r\n".join(json.dumps(r) for r in RECORDS) + "\r\n\n  \n"
    write(fixtures, name, "  " + text)
    assert store.load(name) == RECORDS


@pytest.mark.parametrize("name", ["r.csv", "r.csv.gz"])
def test_load_csv_typed(store: FixtureStore, fixtures: Path, name: str) -> None:
    write(fixtures, name, CSV_TEXT)
    assert store.load(name) == RECORDS


def test_csv_nulls_and_empty_strings(store: FixtureStore, fixtures: Path) -> None:
    # Unquoted empty / NA cells are null; a quoted "" or "NA" is a string.
    write(fixtures, "n.csv", 'a,b\n,""\nNA,"NA"\n')
    assert store.load("n.csv") == [{"a": None, "b": ""}, {"a": None, "b": "NA"}]


def test_csv_dates_and_timestamps(store: FixtureStore, fixtures: Path) -> None:
    write(fixtures, "t.csv", "day,at\n2024-01-02,2024-01-02T10:30:00\n")
    assert store.load("t.csv") == [
        {"day": dt.date(2024, 1, 2), "at": dt.datetime(2024, 1, 2, 10, 30)}
    ]


def test_empty_csv_is_no_rows(store: FixtureStore, fixtures: Path) -> None:
    write(fixtures, "empty.csv", "")
    write(fixtures, "header.csv", "a,b\n")
    assert store.load("empty.csv") == []
    assert store.load("header.csv") == []
    assert store.load_table("header.csv").column_names == ["a", "b"]


def test_load_parquet(store: FixtureStore, fixtures: Path) -> None:
    write_parquet(fixtures, "r.parquet", RECORDS)
    assert store.load("r.parquet") == RECORDS


def test_suffix_is_case_insensitive(store: FixtureStore, fixtures: Path) -> None:
    write(fixtures, "R.JSONL", jsonl(RECORDS))
    assert store.load("R.JSONL") == RECORDS


@pytest.mark.parametrize(
    "name", ["r.json", "r.jsonl", "r.ndjson.gz", "r.csv", "r.csv.gz", "r.parquet"]
)
def test_dataframe_and_table_for_every_format(
    store: FixtureStore, fixtures: Path, name: str
) -> None:
    if name.endswith(".parquet"):
        write_parquet(fixtures, name, RECORDS)
    elif ".csv" in name:
        write(fixtures, name, CSV_TEXT)
    elif name.endswith((".json", ".json.gz")):
        write(fixtures, name, json.dumps(RECORDS))
    else:
        write(fixtures, name, jsonl(RECORDS))
    table = store.load_table(name)
    assert isinstance(table, pa.Table)
    assert table.to_pylist() == RECORDS
    frame = store.load_dataframe(name)
    assert list(frame.columns) == ["id", "name", "amount", "active", "note"]
    assert str(frame["id"].dtype) == "int64"
    assert str(frame["amount"].dtype) == "float64"
    assert str(frame["active"].dtype) == "bool"
    assert frame["name"].tolist() == ["alice", "bob"]


def test_json_table_takes_keys_from_every_row(store: FixtureStore, fixtures: Path) -> None:
    write(fixtures, "sparse.jsonl", '{"a": 1}\n{"b": "x"}\n')
    assert store.load_table("sparse.jsonl").to_pylist() == [
        {"a": 1, "b": None},
        {"a": None, "b": "x"},
    ]


def test_dataframe_of_mixed_type_json_column(store: FixtureStore, fixtures: Path) -> None:
    write(fixtures, "mixed.jsonl", '{"a": 1}\n{"a": "x"}\n')
    assert store.load_dataframe("mixed.jsonl")["a"].tolist() == [1, "x"]
    error = error_of(store.load_table, "mixed.jsonl")
    assert "column 'a'" in str(error)
    assert "tests/fixtures/mixed.jsonl" in str(error)


# --------------------------------------------------------------------------- cache and copies


def test_each_file_is_parsed_once(
    store: FixtureStore, fixtures: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Path] = []
    real_parse = fixture_files._parse

    def counting_parse(path: Path, *args: Any) -> Any:
        calls.append(path)
        return real_parse(path, *args)

    monkeypatch.setattr(fixture_files, "_parse", counting_parse)
    write(fixtures, "a.csv", CSV_TEXT)
    write(fixtures, "b.jsonl", jsonl(RECORDS))
    for _ in range(3):
        store.load("a.csv")
        store.load_table("a.csv")
        store.load_dataframe("a.csv")
        store.load("b.jsonl")
        store.load_dataframe("b.jsonl")
        store.assert_matches(RECORDS, "b.jsonl")
    assert len(calls) == 2

    # A rewritten file is parsed again, even when it keeps its size.
    path = write(fixtures, "b.jsonl", jsonl(RECORDS).replace("alice", "carol"))
    assert store.load("b.jsonl")[0]["name"] == "carol"
    assert len(calls) == 3
    os.utime(path, ns=(1, 1))
    store.load("b.jsonl")
    assert len(calls) == 4


@pytest.mark.parametrize("name", ["r.json", "r.jsonl", "r.csv", "r.parquet"])
def test_each_load_is_a_fresh_copy(store: FixtureStore, fixtures: Path, name: str) -> None:
    if name.endswith(".parquet"):
        write_parquet(fixtures, name, RECORDS)
    elif name.endswith(".csv"):
        write(fixtures, name, CSV_TEXT)
    elif name.endswith(".json"):
        write(fixtures, name, json.dumps(RECORDS))
    else:
        write(fixtures, name, jsonl(RECORDS))
    first = store.load(name)
    first[0]["id"] = 99
    first[1].clear()
    first.append({"extra": 1})
    assert store.load(name) == RECORDS

    frame = store.load_dataframe(name)
    frame.loc[0, "id"] = 99
    frame["amount"] = 0.0
    assert store.load_dataframe(name)["id"].tolist() == [1, 2]
    assert store.load_dataframe(name)["amount"].tolist() == [10.5, 0.25]


def test_nested_values_are_copied_too(store: FixtureStore, fixtures: Path) -> None:
    write(fixtures, "nested.jsonl", '{"id": 1, "items": [{"sku": "a"}], "meta": {"k": [1]}}\n')
    write(fixtures, "doc.json", '{"a": {"b": [1, 2]}}')
    first = store.load("nested.jsonl")
    first[0]["items"][0]["sku"] = "changed"
    first[0]["meta"]["k"].append(2)
    assert store.load("nested.jsonl") == [{"id": 1, "items": [{"sku": "a"}], "meta": {"k": [1]}}]
    doc = store.load("doc.json")
    doc["a"]["b"].append(3)
    assert store.load("doc.json") == {"a": {"b": [1, 2]}}


def test_braces_inside_strings_do_not_break_copies(store: FixtureStore, fixtures: Path) -> None:
    # The fast "flat records" check counts braces; a brace in a string must stay correct.
    write(fixtures, "s.jsonl", '{"t": "{not nested}"}\n{"t": "[x]", "l": [1]}\n')
    first = store.load("s.jsonl")
    first[1]["l"].append(2)
    assert store.load("s.jsonl") == [{"t": "{not nested}"}, {"t": "[x]", "l": [1]}]


def test_load_table_is_shared_and_immutable(store: FixtureStore, fixtures: Path) -> None:
    write(fixtures, "a.csv", CSV_TEXT)
    assert store.load_table("a.csv") is store.load_table("a.csv")


def test_plugin_import_does_not_import_pandas_or_pyarrow() -> None:
    src = Path(fixture_files.__file__).resolve().parents[2]
    code = (
        "import sys\n"
        "import pytest_pipeline.fixture_files.store, pytest_pipeline.fixture_files.compare\n"
        "heavy = sorted(m for m in ('pandas', 'pyarrow', 'numpy') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    env = {**os.environ, "PYTHONPATH": str(src)}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_public_methods_hide_their_frames() -> None:
    for name in ("path", "load", "load_table", "load_dataframe", "assert_matches"):
        method = getattr(FixtureStore, name)
        assert "__tracebackhide__" in method.__code__.co_varnames
        assert "__tracebackhide__" in method.__wrapped__.__code__.co_varnames


@pytest.mark.parametrize(
    ("name", "call"),
    [
        ("bad.json", "load"),
        ("bad.json", "load_dataframe"),
        ("bad.csv", "load_table"),
        ("missing.json", "load"),
        ("bad.csv", "assert_matches"),
        ("bad.json", "path_of_missing"),
    ],
)
def test_errors_point_at_the_callers_line(
    store: FixtureStore, fixtures: Path, name: str, call: str
) -> None:
    write(fixtures, "bad.json", "{")
    write(fixtures, "bad.csv", "a\n1,2\n")
    calls = {
        "assert_matches": lambda: store.assert_matches([], name),
        "path_of_missing": lambda: store.path("nope/" + name),
    }
    run = calls.get(call, lambda: getattr(store, call)(name))
    with pytest.raises(FixtureFileError) as info:
        run()
    shown = info.traceback.filter(info)  # what pytest prints: frames not hidden
    assert {Path(entry.path).name for entry in shown} == {"test_fixture_files.py"}


def test_bad_tolerance_names_the_fixture(store: FixtureStore, fixtures: Path) -> None:
    write(fixtures, "t.json", "[]")
    with pytest.raises(ValueError, match=r"assert_matches_fixture\(\.\.\., 't.json'\): rel"):
        store.assert_matches([], "t.json", rel=-1.0)


# --------------------------------------------------------------------------- names and paths


def test_path_resolves(store: FixtureStore, fixtures: Path) -> None:
    write(fixtures, "payments/raw/valid.jsonl", jsonl(RECORDS))
    assert (
        store.path("payments/raw/valid.jsonl") == (fixtures / "payments/raw/valid.jsonl").resolve()
    )
    assert store.path("payments/./other/../raw/valid.jsonl").name == "valid.jsonl"


def test_missing_file_names_dir_and_close_matches(store: FixtureStore, fixtures: Path) -> None:
    write(fixtures, "payments/raw/valid.json", json.dumps(RECORDS))
    write(fixtures, "payments/raw/invalid.jsonl", jsonl(RECORDS))
    write(fixtures, "payments/raw/other.csv", CSV_TEXT)
    message = str(error_of(store.load, "payments/raw/valid.jsonl"))
    assert "'payments/raw/valid.jsonl' not found" in message
    assert str(fixtures.resolve()) in message
    assert "did you mean 'payments/raw/valid.json'" in message  # same stem, other suffix
    assert "other.csv" not in message

    message = str(error_of(store.load, "payments/raw/vaild.json"))
    assert "did you mean 'payments/raw/valid.json'" in message

    message = str(error_of(store.load, "raw/valid.json"))  # folder forgotten
    assert "'payments/raw/valid.json'" in message


def test_missing_file_without_similar_names(store: FixtureStore, fixtures: Path) -> None:
    assert "holds no files" in str(error_of(store.load, "a.json"))
    write(fixtures, "zzzz.csv", CSV_TEXT)
    assert "no file with a similar name" in str(error_of(store.load, "payments.jsonl"))


def test_missing_fixtures_dir_names_the_config_key(root: Path) -> None:
    store = FixtureStore(root / "nowhere", rootdir=root)
    message = str(error_of(store.load, "a.json"))
    assert "fixtures directory nowhere" in message
    assert "does not exist" in message
    assert "fixtures_dir" in message
    assert "[tool.pytest-pipeline]" in message


@pytest.mark.parametrize("name", ["/etc/passwd.json", "C:/data/x.json"])
def test_absolute_names_are_refused(store: FixtureStore, name: str) -> None:
    message = str(error_of(store.load, name))
    assert "absolute path" in message
    assert "relative to the fixtures directory" in message


@pytest.mark.parametrize("name", ["../secret.json", "a/../../secret.json", ".."])
def test_escaping_names_are_refused(store: FixtureStore, name: str) -> None:
    assert "points outside the fixtures directory" in str(error_of(store.load, name))


def test_empty_name_and_wrong_type(store: FixtureStore) -> None:
    assert "empty fixture name" in str(error_of(store.load, ""))
    with pytest.raises(TypeError, match="path relative to fixtures_dir"):
        store.load(42)  # type: ignore[arg-type]


def test_directory_name(store: FixtureStore, fixtures: Path) -> None:
    (fixtures / "payments").mkdir()
    (fixtures / "data.json").mkdir()
    assert "is a directory" in str(error_of(store.load, "payments"))
    assert "is a directory" in str(error_of(store.load, "data.json"))


@pytest.mark.parametrize("name", ["notes.txt", "data.xlsx", "x.parquet.gz", "x.gz"])
def test_unsupported_suffix_lists_supported_ones(
    store: FixtureStore, fixtures: Path, name: str
) -> None:
    write(fixtures, name, "whatever")
    message = str(error_of(store.load, name))
    assert "unsupported format" in message
    for suffix in SUPPORTED_SUFFIXES:
        assert suffix in message


# --------------------------------------------------------------------------- malformed files


def test_bad_json_names_file_line_and_column(store: FixtureStore, fixtures: Path) -> None:
    write(fixtures, "p/bad.json", '[\n  {"id": 1},\n  {"id": 2 "x": 3}\n]\n')
    message = str(error_of(store.load, "p/bad.json"))
    assert message.startswith("tests/fixtures/p/bad.json:3:12: invalid JSON: Expecting ','")
    assert '{"id": 2 "x": 3}' in message
    assert message.endswith("^")


def test_empty_json(store: FixtureStore, fixtures: Path) -> None:
    write(fixtures, "e.json", "")
    assert "e.json:1:1: invalid JSON" in str(error_of(store.load, "e.json"))


def test_bad_gzip_json(store: FixtureStore, fixtures: Path) -> None:
    (fixtures / "r.json.gz").write_bytes(b"not gzip at all")
    assert "tests/fixtures/r.json.gz is not a valid gzip file" in str(
        error_of(store.load, "r.json.gz")
    )
    (fixtures / "t.json.gz").write_bytes(gzip.compress(b'[{"a": 1}]')[:-6])
    assert "not a valid gzip file" in str(error_of(store.load, "t.json.gz"))


def test_bad_gzip_content_names_the_line(store: FixtureStore, fixtures: Path) -> None:
    write(fixtures, "r.jsonl.gz", '{"a": 1}\n{"a": }\n')
    assert "tests/fixtures/r.jsonl.gz:2:7: invalid JSON on line 2" in str(
        error_of(store.load, "r.jsonl.gz")
    )


def test_invalid_utf8(store: FixtureStore, fixtures: Path) -> None:
    write(fixtures, "u.jsonl", b'{"a": "ok"}\n{"a": "\xff"}\n')
    write(fixtures, "u.csv", b"a\nok\n\xfe\n")
    assert "u.jsonl:2:8: not valid UTF-8" in str(error_of(store.load, "u.jsonl"))
    assert "u.csv:3:1: not valid UTF-8" in str(error_of(store.load, "u.csv"))


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"a": 1}\n{"a": 2,}\n', "bad.jsonl:2:9: invalid JSON on line 2: Expecting property name"),
        ('{"a": 1}\n\n\n{"a" 1}\n', "bad.jsonl:4:6: invalid JSON on line 4"),
        ('{"a": 1}\n{"a": 2} {"a": 3}\n', "bad.jsonl:2:10: extra data after the JSON object"),
        ('{"a": 1}\n[1, 2]\n', "bad.jsonl:2: line 2 holds an array, not a JSON object"),
        ('{"a": 1}\n"text"\n', "bad.jsonl:2: line 2 holds a string, not a JSON object"),
        ('{"a": 1}\n{"a": [1,\n', "bad.jsonl:2:"),
    ],
)
def test_bad_jsonl_names_the_line(
    store: FixtureStore, fixtures: Path, content: str, expected: str
) -> None:
    write(fixtures, "bad.jsonl", content)
    message = str(error_of(store.load, "bad.jsonl"))
    assert message.startswith("tests/fixtures/" + expected), message


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("a,b,c\n1,2,3\n4,5,6,7\n", "bad.csv:3: row has 4 fields but the header (line 1) has 3"),
        ("a,b,c\n1,2,3\n\n4,5\n", "bad.csv:4: row has 2 fields but the header (line 1) has 3"),
        ('a,b\n"x\ny",2\n3,4,5\n', "bad.csv:4: row has 3 fields"),  # a quoted newline
        ('a,b\n1,"abc\n2,3\n', "bad.csv:2: unterminated quoted field"),
        ('a,b\n1,"ab"c"\n', "bad.csv:2: malformed CSV"),
        ("a,a\n1,2\n", "bad.csv:1: duplicate column name(s) in the header: a"),
    ],
)
def test_bad_csv_names_the_line(
    store: FixtureStore, fixtures: Path, content: str, expected: str
) -> None:
    write(fixtures, "bad.csv", content)
    message = str(error_of(store.load, "bad.csv"))
    assert message.startswith("tests/fixtures/" + expected), message


def test_bad_csv_in_gzip(store: FixtureStore, fixtures: Path) -> None:
    write(fixtures, "bad.csv.gz", "a,b\n1,2\n3\n")
    assert "bad.csv.gz:3: row has 1 fields" in str(error_of(store.load, "bad.csv.gz"))


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "size is 0 bytes"),
        (b"definitely not parquet", "magic bytes not found"),
    ],
)
def test_bad_parquet_names_file_and_reason(
    store: FixtureStore, fixtures: Path, content: bytes, reason: str
) -> None:
    write(fixtures, "bad.parquet", content)
    message = str(error_of(store.load, "bad.parquet"))
    assert message.startswith("tests/fixtures/bad.parquet is not a readable Parquet file")
    assert reason in message


def test_truncated_parquet(store: FixtureStore, fixtures: Path) -> None:
    path = write_parquet(fixtures, "t.parquet", RECORDS)
    path.write_bytes(path.read_bytes()[:-20])
    assert "not a readable Parquet file" in str(error_of(store.load, "t.parquet"))


@pytest.mark.parametrize(
    ("content", "found"),
    [
        ('{"a": 1}', "holds an object, not a list of records"),
        ("42", "holds a number, not a list of records"),
        ('[{"a": 1}, 2]', "item 1 of the array is a number, not an object"),
        ('[{"a": 1}, [1]]', "item 1 of the array is an array, not an object"),
    ],
)
def test_json_that_is_not_records(
    store: FixtureStore, fixtures: Path, content: str, found: str
) -> None:
    write(fixtures, "cfg.json", content)
    assert found in str(error_of(store.load_dataframe, "cfg.json"))
    assert found in str(error_of(store.load_table, "cfg.json"))
    store.load("cfg.json")  # plain loading is fine: .json may hold any value


def test_paths_outside_rootdir_are_absolute(tmp_path: Path) -> None:
    write(tmp_path, "bad.json", "{")
    store = FixtureStore(tmp_path, rootdir=tmp_path / "elsewhere")
    assert str(error_of(store.load, "bad.json")).startswith(str(tmp_path / "bad.json") + ":1:2")


# --------------------------------------------------------------------------- assert_matches


def test_assert_matches_passes_for_every_shape(store: FixtureStore, fixtures: Path) -> None:
    write(fixtures, "out.csv", CSV_TEXT)
    store.assert_matches(RECORDS, "out.csv")
    store.assert_matches(pd.DataFrame(RECORDS), "out.csv")
    store.assert_matches(pa.Table.from_pylist(RECORDS), "out.csv")
    store.assert_matches(tuple(RECORDS), "out.csv")


def test_assert_matches_message(store: FixtureStore, fixtures: Path) -> None:
    expected = [{"id": i, "amount": float(i), "currency": "EUR"} for i in range(100)]
    write(fixtures, "payments/expected/out.jsonl", jsonl(expected))
    actual = [dict(r) for r in expected]
    actual[4]["amount"] = 4.5
    actual[17]["currency"] = "USD"
    del actual[50]["currency"]
    with pytest.raises(AssertionError) as info:
        store.assert_matches(actual, "payments/expected/out.jsonl")
    message = str(info.value)
    assert message.startswith(
        "actual does not match fixture payments/expected/out.jsonl (3 of 100 rows differ):\n"
    )
    assert "  row 4:\n    amount: actual=4.5 expected=4.0 (diff +0.5)" in message
    assert "  row 17:\n    currency: actual='USD' expected='EUR'" in message
    assert "  row 50:\n    currency: missing in actual (expected='EUR')" in message
    assert "tests/fixtures/payments/expected/out.jsonl" in message
    assert "--pipeline-update-fixtures" in message


def test_assert_matches_tolerance(store: FixtureStore, fixtures: Path) -> None:
    write(fixtures, "t.json", '[{"x": 1.0}]')
    with pytest.raises(AssertionError):
        store.assert_matches([{"x": 1.001}], "t.json")
    store.assert_matches([{"x": 1.001}], "t.json", rel=0.01)
    store.assert_matches([{"x": 1.001}], "t.json", abs=0.01)


def test_assert_matches_json_value(store: FixtureStore, fixtures: Path) -> None:
    write(fixtures, "summary.json", '{"total": 3, "by_currency": {"EUR": 2, "USD": 1}}')
    store.assert_matches({"total": 3, "by_currency": {"USD": 1, "EUR": 2}}, "summary.json")
    with pytest.raises(AssertionError) as info:
        store.assert_matches({"total": 3, "by_currency": {"EUR": 1, "USD": 1}}, "summary.json")
    assert str(info.value).startswith("actual does not match fixture summary.json:\n")
    assert "$.by_currency.EUR: actual=1 expected=2" in str(info.value)


def test_dataframe_matches_csv_with_other_dtypes(store: FixtureStore, fixtures: Path) -> None:
    write(fixtures, "out.csv", "id,amount,day\n1,2,2024-01-01\n2,,2024-01-02\n")
    frame = pd.DataFrame(
        {
            "id": pd.array([1, 2], dtype="int32"),
            "amount": pd.array([2, None], dtype="Int64"),
            "day": [dt.date(2024, 1, 1), dt.date(2024, 1, 2)],
        }
    )
    store.assert_matches(frame, "out.csv")
    store.assert_matches(frame.astype({"amount": "float64"}), "out.csv")


def test_assert_matches_requires_records_for_row_formats(
    store: FixtureStore, fixtures: Path
) -> None:
    write(fixtures, "out.jsonl", jsonl(RECORDS))
    with pytest.raises(TypeError, match="actual must be records"):
        store.assert_matches({"id": 1}, "out.jsonl")


def test_assert_matches_missing_fixture(store: FixtureStore) -> None:
    assert "not found" in str(error_of(store.assert_matches, RECORDS, "nope.jsonl"))


# --------------------------------------------------------------------------- update mode

ROUND_TRIP = [
    {
        "id": 1,
        "name": 'quote " and, comma',
        "amount": 10.5,
        "ok": True,
        "note": None,
        "code": "007",
        "empty": "",
        "at": dt.datetime(2024, 1, 2, 10, 30, 0, 123456),
        "day": dt.date(2024, 1, 2),
    },
    {
        "id": 2,
        "name": "ünïcode ✓",
        "amount": float("nan"),
        "ok": False,
        "note": "NA",
        "code": "12",
        "empty": "x",
        "at": dt.datetime(2024, 1, 3, 0, 0),
        "day": dt.date(2024, 1, 3),
    },
]


@pytest.mark.parametrize("suffix", SUPPORTED_SUFFIXES)
@pytest.mark.parametrize("shape", ["records", "dataframe", "table"])
def test_update_round_trip(fixtures: Path, root: Path, suffix: str, shape: str) -> None:
    name = f"expected/deep/out{suffix}"
    actual: Any = ROUND_TRIP
    if shape == "dataframe":
        actual = pd.DataFrame(ROUND_TRIP)
    elif shape == "table":
        actual = pa.Table.from_pylist(ROUND_TRIP)
    updater = FixtureStore(fixtures, update=True, rootdir=root)
    updater.assert_matches(actual, name)
    path = fixtures / name
    assert updater.updated == [path.resolve()]
    if suffix.endswith(".gz"):
        assert path.read_bytes()[:2] == b"\x1f\x8b"
    # A later normal run passes, with a fresh store and with the same one.
    FixtureStore(fixtures, rootdir=root).assert_matches(actual, name)
    updater.update = False
    updater.assert_matches(actual, name)


@pytest.mark.parametrize("suffix", SUPPORTED_SUFFIXES)
def test_update_writes_readable_files(fixtures: Path, suffix: str) -> None:
    name = f"out{suffix}"
    FixtureStore(fixtures, update=True).assert_matches(RECORDS, name)
    loaded = FixtureStore(fixtures).load(name)
    assert loaded == RECORDS


def test_update_file_formats(fixtures: Path) -> None:
    updater = FixtureStore(fixtures, update=True)
    updater.assert_matches(RECORDS, "a.json")
    updater.assert_matches(RECORDS, "a.jsonl")
    updater.assert_matches(RECORDS, "a.csv")
    assert (fixtures / "a.json").read_text().startswith('[\n  {\n    "id": 1,')
    assert (fixtures / "a.jsonl").read_text().splitlines()[0] == json.dumps(RECORDS[0])
    assert (fixtures / "a.csv").read_text().splitlines() == [
        '"id","name","amount","active","note"',
        '1,"alice",10.5,true,',
        '2,"bob",0.25,false,"vip"',
    ]


def test_update_json_value_and_nan(fixtures: Path) -> None:
    updater = FixtureStore(fixtures, update=True)
    updater.assert_matches({"n": float("nan"), "when": dt.date(2024, 1, 1)}, "v.json")
    assert json.loads((fixtures / "v.json").read_text()) == {"n": None, "when": "2024-01-01"}


def test_update_leaves_equal_files_alone(fixtures: Path) -> None:
    path = write(fixtures, "same.json", json.dumps(RECORDS))  # compact, hand-written
    before = path.read_bytes()
    updater = FixtureStore(fixtures, update=True)
    updater.assert_matches(RECORDS, "same.json")
    assert updater.updated == []
    assert path.read_bytes() == before


def test_update_replaces_a_malformed_file(fixtures: Path) -> None:
    write(fixtures, "broken.jsonl", "{nope\n")
    FixtureStore(fixtures, update=True).assert_matches(RECORDS, "broken.jsonl")
    assert FixtureStore(fixtures).load("broken.jsonl") == RECORDS


def test_update_creates_the_fixtures_dir(tmp_path: Path) -> None:
    fixtures = tmp_path / "not" / "yet"
    FixtureStore(fixtures, update=True).assert_matches(RECORDS, "x/out.parquet")
    assert FixtureStore(fixtures).load("x/out.parquet") == RECORDS


def test_update_refuses_what_the_format_cannot_hold(fixtures: Path) -> None:
    updater = FixtureStore(fixtures, update=True)
    message = str(error_of(updater.assert_matches, [{"a": [1, 2]}], "n.csv"))
    assert "column 'a'" in message
    assert "no CSV form" in message
    message = str(error_of(updater.assert_matches, [{"a": 1}, {"a": "x"}], "m.parquet"))
    assert "column 'a'" in message
    assert "m.parquet" in message
    message = str(error_of(updater.assert_matches, [{"a": object()}], "o.jsonl"))
    assert "row 0.a" in message
    with pytest.raises(TypeError, match="actual must be records"):
        updater.assert_matches(42, "x.csv")
    assert not list(fixtures.iterdir())  # nothing half-written


def test_update_then_rewrite_is_reread(fixtures: Path) -> None:
    store = FixtureStore(fixtures, update=True)
    store.assert_matches(RECORDS, "r.jsonl")
    store.assert_matches(RECORDS[:1], "r.jsonl")
    assert store.load("r.jsonl") == RECORDS[:1]
