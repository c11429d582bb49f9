"""The per-test S3 namespace (``s3`` fixture object), against a real S3-compatible server."""

from __future__ import annotations

import gzip
import io
import json
import re
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_pipeline.errors import ServiceError
from pytest_pipeline.fixture_files.store import FixtureStore
from pytest_pipeline.services.endpoints import S3Endpoint
from pytest_pipeline.services.s3 import SUPPORTED_SUFFIXES, S3Namespace, bucket_name

pytest.importorskip("boto3")

RECORDS: list[dict[str, Any]] = [
    {"id": 1, "name": 'Zoë, "quoted"', "amount": 12.5, "active": True},
    {"id": 2, "name": None, "amount": None, "active": False},
    {"id": 3, "name": "two\nlines", "amount": -0.25, "active": True},
]


@pytest.fixture(scope="module")
def endpoint(local_s3: Any) -> S3Endpoint:
    ep: S3Endpoint = local_s3.endpoint
    return ep


def _prefix() -> str:
    return f"pp-test-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def s3(endpoint: S3Endpoint) -> Iterator[S3Namespace]:
    namespace = S3Namespace(endpoint, _prefix())
    yield namespace
    namespace.close()


def _server_buckets(namespace: S3Namespace) -> set[str]:
    return {b["Name"] for b in namespace.client.list_buckets()["Buckets"]}


# --------------------------------------------------------------------------- formats


@pytest.mark.parametrize("suffix", SUPPORTED_SUFFIXES)
def test_each_suffix_round_trips(s3: S3Namespace, suffix: str) -> None:
    bucket = s3.bucket("data")
    key = f"out/part-0{suffix}"
    s3.put_records(bucket, key, RECORDS)
    assert s3.read_records(bucket, key) == RECORDS
    body = s3.client.get_object(Bucket=bucket, Key=key)["Body"].read()
    if suffix.endswith(".gz"):
        assert body[:2] == b"\x1f\x8b"
        body = gzip.decompress(body)
    if suffix == ".parquet":
        assert body[:4] == b"PAR1"
    elif suffix in (".json", ".json.gz"):
        assert json.loads(body)[0]["id"] == 1
    elif suffix.startswith((".jsonl", ".ndjson")):
        assert len(body.decode().splitlines()) == len(RECORDS)
    else:
        assert body.decode().splitlines()[0] == '"id","name","amount","active"'  # as fixtures


def test_csv_follows_the_fixture_file_rules(s3: S3Namespace, tmp_path: Path) -> None:
    # "" and None stay apart both ways, and the bytes are those of a fixture file.
    bucket = s3.bucket("csv-rules")
    records: list[dict[str, Any]] = [
        {"id": 1, "note": ""},
        {"id": 2, "note": None},
        {"id": 3, "note": "x"},
    ]
    s3.put_records(bucket, "r.csv", records)
    assert s3.read_records(bucket, "r.csv") == records
    FixtureStore(tmp_path, update=True).assert_matches(records, "w.csv")
    written = (tmp_path / "w.csv").read_bytes()
    assert s3.client.get_object(Bucket=bucket, Key="r.csv")["Body"].read() == written
    s3.client.put_object(Bucket=bucket, Key="w.csv", Body=written)
    assert s3.read_records(bucket, "w.csv") == FixtureStore(tmp_path).load("w.csv") == records
    with pytest.raises(ServiceError, match=r"column 'a' to CSV: a dict value has no CSV form"):
        s3.put_records(bucket, "nested.csv", [{"a": {"b": 1}}])


def test_uneven_records_get_the_union_of_columns(s3: S3Namespace) -> None:
    bucket = s3.bucket("uneven")
    records: list[dict[str, Any]] = [{"a": 1}, {"b": "x", "a": 2}]
    for key in ("u.csv", "u.parquet"):
        s3.put_records(bucket, key, records)
        assert s3.read_records(bucket, key) == [{"a": 1, "b": None}, {"a": 2, "b": "x"}]
    s3.put_records(bucket, "u.jsonl", records)
    assert s3.read_records(bucket, "u.jsonl") == records  # JSON keeps each record as it is


def test_empty_record_lists_round_trip(s3: S3Namespace) -> None:
    bucket = s3.bucket("empty")
    for suffix in SUPPORTED_SUFFIXES:
        s3.put_records(bucket, f"e{suffix}", [])
        assert s3.read_records(bucket, f"e{suffix}") == []


def test_read_records_in_key_order_under_a_prefix(s3: S3Namespace) -> None:
    bucket = s3.bucket("ordered")
    s3.put_records(bucket, "run/2024/b.json", [{"n": 3}, {"n": 4}])
    s3.put_records(bucket, "run/2024/a.jsonl", [{"n": 1}, {"n": 2}])
    s3.put_records(bucket, "run/2024/c/part-0.csv.gz", [{"n": 5}])
    s3.put_records(bucket, "run/2025/a.json", [{"n": 99}])
    s3.put_records(bucket, "other/a.json", [{"n": -1}])
    # Markers written by Spark / Hadoop jobs are not data.
    s3.client.put_object(Bucket=bucket, Key="run/2024/_SUCCESS", Body=b"")
    s3.client.put_object(Bucket=bucket, Key="run/2024/.part-0.crc", Body=b"x")
    s3.client.put_object(Bucket=bucket, Key="run/2024/c/", Body=b"")
    assert s3.read_records(bucket, "run/2024/") == [{"n": i} for i in range(1, 6)]
    assert [r["n"] for r in s3.read_records(bucket, "run/")] == [1, 2, 3, 4, 5, 99]
    assert [r["n"] for r in s3.read_records(bucket)] == [-1, 1, 2, 3, 4, 5, 99]
    assert s3.read_records(bucket, "nothing/") == []
    assert s3.read_records("ordered", "run/2025/") == [{"n": 99}]  # the name given to bucket()


def test_unknown_suffix_is_an_error_naming_bucket_key_and_suffixes(s3: S3Namespace) -> None:
    bucket = s3.bucket("unknown")
    with pytest.raises(ServiceError) as info:
        s3.put_records(bucket, "data/x.txt", RECORDS)
    message = str(info.value)
    assert f"s3://{bucket}/data/x.txt" in message
    for suffix in (".jsonl", ".parquet", ".csv.gz"):
        assert suffix in message
    with pytest.raises(ServiceError, match=r"x\.parquet\.gz"):
        s3.put_records(bucket, "x.parquet.gz", RECORDS)
    s3.client.put_object(Bucket=bucket, Key="data/readme.md", Body=b"# hi")
    with pytest.raises(ServiceError, match=re.escape(f"s3://{bucket}/data/readme.md")):
        s3.read_records(bucket, "data/")


def test_non_record_data_is_an_error(s3: S3Namespace) -> None:
    bucket = s3.bucket("bad")
    with pytest.raises(ServiceError, match="record 1 is a int"):
        s3.put_records(bucket, "x.json", [{"a": 1}, 2])  # type: ignore[list-item]
    with pytest.raises(ServiceError, match="wrap one record in a list"):
        s3.put_records(bucket, "x.json", {"a": 1})  # type: ignore[arg-type]
    with pytest.raises(ServiceError, match="column 'a' has no single Arrow type"):
        s3.put_records(bucket, "mixed.parquet", [{"a": 1}, {"a": "text"}])
    bad_objects = {
        "object.json": b'{"a": 1}',
        "lines.jsonl": b'{"a": 1}\n[1, 2]\n',
        "broken.json.gz": b"not gzip",
        "broken.parquet": b"PAR1 not really",
    }
    for key, body in bad_objects.items():
        s3.client.put_object(Bucket=bucket, Key=key, Body=body)
        with pytest.raises(ServiceError, match=re.escape(f"s3://{bucket}/{key}")) as info:
            s3.read_records(bucket, key)
        assert str(info.value).count(f"s3://{bucket}/{key}") == 1, info.value


# --------------------------------------------------------------------------- buckets


def test_bucket_names_are_sanitized(s3: S3Namespace) -> None:
    names = ["Raw Data!", "x" * 100, "a", "under_score.and.dots", "UPPER", "upper", "-edge-"]
    made = [s3.bucket(name) for name in names]
    for real in made:
        assert 3 <= len(real) <= 63
        assert re.fullmatch(r"[a-z0-9][a-z0-9-]*[a-z0-9]", real), real
        assert "--" not in real
        assert real.startswith(s3.prefix)
    assert len(set(made)) == len(made)  # "UPPER" and "upper" stay distinct
    assert set(made) <= _server_buckets(s3)
    assert s3.bucket("Raw Data!") == made[0]  # same name, same bucket
    assert bucket_name(s3.prefix, "x" * 100) != bucket_name(s3.prefix, "x" * 101)
    long_prefix = "pp-" + "run" * 30 + "-gw12-345"
    assert len(bucket_name(long_prefix, "orders")) <= 63
    assert bucket_name(long_prefix, "o") != bucket_name(long_prefix.replace("345", "346"), "o")
    with pytest.raises(ServiceError, match="cannot be empty"):
        s3.bucket("")


def test_close_removes_only_its_own_buckets(endpoint: S3Endpoint) -> None:
    mine, other = S3Namespace(endpoint, _prefix()), S3Namespace(endpoint, _prefix())
    try:
        full = mine.bucket("full")
        empty = mine.bucket("empty")
        kept = other.bucket("full")
        mine.put_records(full, "a.json", RECORDS)
        mine.put_records(full, "deep/b.parquet", RECORDS)
        assert mine.owns(full)
        assert mine.owns("full")
        assert not mine.owns(kept)
        mine.close()
        buckets = _server_buckets(other)
        assert full not in buckets
        assert empty not in buckets
        assert kept in buckets
        mine.close()  # idempotent
        with pytest.raises(ServiceError, match="closed"):
            mine.bucket("again")
    finally:
        other.close()
    assert kept not in _server_buckets(other)


def test_close_without_delete_keeps_the_buckets(endpoint: S3Endpoint) -> None:
    namespace = S3Namespace(endpoint, _prefix())
    bucket = namespace.bucket("kept")
    namespace.put_records(bucket, "a.json", RECORDS)
    namespace.close(delete=False)  # what --pipeline-keep-failed does
    assert bucket in _server_buckets(namespace)
    cleaner = S3Namespace(endpoint, _prefix())
    assert cleaner.read_records(bucket) == RECORDS
    cleaner.client.delete_object(Bucket=bucket, Key="a.json")
    cleaner.client.delete_bucket(Bucket=bucket)


def test_client_and_storage_options(s3: S3Namespace, endpoint: S3Endpoint) -> None:
    assert s3.endpoint_url == endpoint.endpoint_url
    assert s3.client.meta.config.s3["addressing_style"] == "path"
    assert s3.storage_options == {
        "key": endpoint.access_key,
        "secret": endpoint.secret_key,
        "client_kwargs": {"endpoint_url": endpoint.endpoint_url, "region_name": endpoint.region},
        "config_kwargs": {"s3": {"addressing_style": "path"}},
    }
    bucket = s3.bucket("raw")
    s3.client.upload_fileobj(io.BytesIO(b'[{"k": 1}]'), bucket, "via-client.json")
    assert s3.read_records(bucket) == [{"k": 1}]


def test_errors_never_show_the_secret_key() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    namespace = S3Namespace(S3Endpoint(url, "AKIDEXAMPLE", "s3cret-key/xyz"), _prefix())
    with pytest.raises(ServiceError) as info:
        namespace.bucket("b")
    assert "s3cret-key" not in str(info.value)
    assert url in str(info.value)
