"""The ``s3`` and ``kafka`` fixtures in each common client's own dialect, on the real servers.

Each client is the real library against the session's local S3 server or Kafka broker: what
``storage_options_for(client)`` / ``consumer_config(client=...)`` return must be accepted as is
and round-trip data. Also: hive partition columns kept by ``read_records``, and the local
servers' known deviations from the real services, each checked live and listed in the docs.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_pipeline.errors import ServiceError
from pytest_pipeline.masking import Secret
from pytest_pipeline.services import kafka as kafka_module
from pytest_pipeline.services.endpoints import S3Endpoint
from pytest_pipeline.services.kafka import KafkaNamespace
from pytest_pipeline.services.s3 import S3Namespace

pytest.importorskip("boto3")

DOCS = Path(__file__).resolve().parents[2] / "docs" / "services.md"
ROWS: list[dict[str, Any]] = [{"id": 1, "amount": 9.5}, {"id": 2, "amount": 3.0}]


def _prefix() -> str:
    return f"pp-dialect-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def s3_endpoint(local_s3: Any) -> S3Endpoint:
    ep: S3Endpoint = local_s3.endpoint
    return ep


@pytest.fixture
def s3(s3_endpoint: S3Endpoint) -> Iterator[S3Namespace]:
    namespace = S3Namespace(s3_endpoint, _prefix())
    yield namespace
    namespace.close()


@pytest.fixture(scope="module")
def broker(local_kafka: Any) -> Any:
    return local_kafka


@pytest.fixture
def kafka(broker: Any) -> Iterator[KafkaNamespace]:
    # The group timings the kafka fixture gives on this broker (services/fixtures.py).
    tansu = "tansu" in broker.description
    namespace = KafkaNamespace(
        broker.endpoint.bootstrap_servers,
        _prefix(),
        timeout=20,
        group_settings=(
            kafka_module.TANSU_GROUP_SETTINGS if tansu else kafka_module.STANDARD_GROUP_SETTINGS
        ),
    )
    yield namespace
    namespace.close()


# --------------------------------------------------------------------------- S3 attributes


def test_s3_endpoint_and_credentials_are_attributes(s3: S3Namespace) -> None:
    endpoint = s3.endpoint
    assert s3.endpoint_url == endpoint.endpoint_url
    assert s3.access_key == endpoint.access_key
    assert s3.region == endpoint.region
    assert s3.secret_key == endpoint.secret_key
    assert isinstance(s3.secret_key, Secret)
    assert endpoint.secret_key not in repr(s3.secret_key)


def test_s3_options_for_an_unknown_client_name_the_known_ones(s3: S3Namespace) -> None:
    with pytest.raises(ServiceError, match=r"unknown client 'spark'.*polars.*pyarrow.*s3fs"):
        s3.storage_options_for("spark")


@pytest.mark.parametrize("client", ["s3fs", "polars", "pyarrow", "boto3"])
def test_s3_options_keep_the_secret_masked(s3: S3Namespace, client: str) -> None:
    options = s3.storage_options_for(client)
    secret = s3.endpoint.secret_key
    assert secret in options.values() or secret in json.dumps(options)
    assert secret not in repr(options)


def test_s3fs_options_are_the_storage_options(s3: S3Namespace) -> None:
    assert s3.storage_options_for("s3fs") == s3.storage_options
    assert s3.storage_options_for("pandas") == s3.storage_options


# --------------------------------------------------------------------------- S3 clients


def test_polars_reads_and_writes_with_its_options(s3: S3Namespace) -> None:
    pl = pytest.importorskip("polars")
    bucket = s3.bucket("polars")
    s3.put_records(bucket, "in/part-0.parquet", ROWS)
    options = s3.storage_options_for("polars")

    frame = pl.read_parquet(f"s3://{bucket}/in/part-0.parquet", storage_options=options)
    assert frame.to_dicts() == ROWS
    frame.write_parquet(f"s3://{bucket}/out/part-0.parquet", storage_options=options)
    assert s3.read_records(bucket, "out/") == ROWS


def test_pyarrow_filesystem_with_its_options(s3: S3Namespace) -> None:
    fs = pytest.importorskip("pyarrow.fs")
    pq = pytest.importorskip("pyarrow.parquet")
    bucket = s3.bucket("arrow")
    s3.put_records(bucket, "in/part-0.parquet", ROWS)
    filesystem = fs.S3FileSystem(**s3.storage_options_for("pyarrow"))
    assert pq.read_table(f"{bucket}/in/part-0.parquet", filesystem=filesystem).to_pylist() == ROWS


def test_boto3_client_with_its_options(s3: S3Namespace) -> None:
    boto3 = pytest.importorskip("boto3")
    bucket = s3.bucket("boto")
    s3.put_records(bucket, "in/a.json", ROWS)
    client = boto3.client("s3", **s3.storage_options_for("boto3"))
    body = client.get_object(Bucket=bucket, Key="in/a.json")["Body"].read()
    assert json.loads(body) == ROWS


def test_s3fs_with_its_options(s3: S3Namespace) -> None:
    s3fs = pytest.importorskip("s3fs")
    bucket = s3.bucket("s3fs")
    s3.put_records(bucket, "in/a.jsonl", ROWS)
    filesystem = s3fs.S3FileSystem(**s3.storage_options_for("s3fs"))
    lines = filesystem.cat(f"{bucket}/in/a.jsonl").decode().splitlines()
    assert [json.loads(line) for line in lines] == ROWS


# --------------------------------------------------------------------------- hive partitions


HIVE_FILES: dict[str, list[dict[str, Any]]] = {
    "sales/region=eu/year=2024/part-0.parquet": [{"id": 1, "amount": 9.5}],
    "sales/region=eu/year=2025/part-0.parquet": [{"id": 2, "amount": 3.0}],
    "sales/region=us%2Fwest/year=2024/part-0.parquet": [{"id": 3, "amount": 1.5}],
    "sales/region=__HIVE_DEFAULT_PARTITION__/year=2024/part-0.parquet": [{"id": 4, "amount": 2.0}],
    "sales/_SUCCESS": [],
}


def _put_hive(s3: S3Namespace, bucket: str) -> None:
    for key, rows in HIVE_FILES.items():
        if key.endswith("_SUCCESS"):
            s3.client.put_object(Bucket=bucket, Key=key, Body=b"")
        else:
            s3.put_records(bucket, key, rows)


def test_read_records_keeps_hive_partition_columns(s3: S3Namespace) -> None:
    bucket = s3.bucket("hive")
    _put_hive(s3, bucket)
    assert s3.read_records(bucket, "sales/") == [
        # In key order: "region=__HIVE_DEFAULT_PARTITION__" sorts before "region=eu".
        {"id": 4, "amount": 2.0, "region": None, "year": 2024},
        {"id": 1, "amount": 9.5, "region": "eu", "year": 2024},
        {"id": 2, "amount": 3.0, "region": "eu", "year": 2025},
        {"id": 3, "amount": 1.5, "region": "us/west", "year": 2024},
    ]


def test_hive_columns_match_a_pyarrow_dataset(s3: S3Namespace) -> None:
    ds = pytest.importorskip("pyarrow.dataset")
    fs = pytest.importorskip("pyarrow.fs")
    bucket = s3.bucket("hive-arrow")
    _put_hive(s3, bucket)
    filesystem = fs.S3FileSystem(**s3.storage_options_for("pyarrow"))
    dataset = ds.dataset(f"{bucket}/sales", filesystem=filesystem, partitioning="hive")
    by_id = {row["id"]: row for row in dataset.to_table().to_pylist()}
    ours = s3.read_records(bucket, "sales/")
    assert ours == [by_id[row["id"]] for row in ours]


def test_hive_columns_below_the_prefix_only(s3: S3Namespace) -> None:
    """Read from inside a partition, its column is not added (as a dataset rooted there)."""
    bucket = s3.bucket("hive-inner")
    _put_hive(s3, bucket)
    assert s3.read_records(bucket, "sales/region=eu/") == [
        {"id": 1, "amount": 9.5, "year": 2024},
        {"id": 2, "amount": 3.0, "year": 2025},
    ]


def test_the_path_value_wins_over_the_file_column_as_in_pyarrow(s3: S3Namespace) -> None:
    bucket = s3.bucket("hive-dup")
    s3.put_records(bucket, "t/region=eu/x/a.jsonl", [{"id": 1, "region": "EU-1"}])
    assert s3.read_records(bucket, "t/") == [{"id": 1, "region": "eu"}]


def test_partition_values_are_ints_only_when_all_are(s3: S3Namespace) -> None:
    """pyarrow's inference: int32 when every value parses as one, else strings."""
    bucket = s3.bucket("hive-mixed")
    s3.put_records(bucket, "t/day=07/n=9999999999/a.json", [{"id": 1}])
    s3.put_records(bucket, "t/day=x/n=1/a.json", [{"id": 2}])
    s3.put_records(bucket, "u/day=07/n=-1/a.json", [{"id": 3}])
    assert s3.read_records(bucket, "t/") == [
        {"id": 1, "day": "07", "n": "9999999999"},
        {"id": 2, "day": "x", "n": "1"},
    ]
    assert s3.read_records(bucket, "u/") == [{"id": 3, "day": 7, "n": -1}]


# --------------------------------------------------------------------------- Kafka clients


#: The client's own bound on waiting for records, the group join included.
CLIENT_WAIT_MS = 4000


def test_kafka_config_for_an_unknown_client_names_the_known_ones(kafka: KafkaNamespace) -> None:
    known = r"confluent-kafka, kafka-python, aiokafka"
    with pytest.raises(ServiceError, match=rf"unknown client 'faust'; use one of {known}"):
        kafka.consumer_config(client="faust")
    with pytest.raises(ServiceError, match=r"unknown client 'faust'"):
        kafka.producer_config(client="faust")


def test_kafka_python_keys_and_group_timings(kafka: KafkaNamespace) -> None:
    config = kafka.consumer_config(client="kafka-python")
    librdkafka = kafka.consumer_config()
    assert config["bootstrap_servers"] == kafka.bootstrap_servers
    assert config["group_id"] == librdkafka["group.id"]
    assert config["auto_offset_reset"] == "earliest"
    assert config["session_timeout_ms"] == librdkafka["session.timeout.ms"]
    assert config["heartbeat_interval_ms"] == librdkafka["heartbeat.interval.ms"]
    assert not [key for key in config if "." in key]
    assert kafka.consumer_config(client="aiokafka", max_poll_records=5)["max_poll_records"] == 5


def test_kafka_python_consumer_group_joins_within_its_own_wait(kafka: KafkaNamespace) -> None:
    client = pytest.importorskip("kafka")
    topic = kafka.topic("kp-in")
    kafka.produce(topic, ROWS)
    consumer = client.KafkaConsumer(
        topic,
        **kafka.consumer_config(client="kafka-python"),
        consumer_timeout_ms=CLIENT_WAIT_MS,  # iteration ends after this long without a record
    )
    try:
        got = []
        for message in consumer:
            got.append(json.loads(message.value))
            if len(got) == len(ROWS):
                break
    finally:
        consumer.close()
    assert got == ROWS


def test_kafka_python_producer_writes_with_its_config(kafka: KafkaNamespace) -> None:
    client = pytest.importorskip("kafka")
    topic = kafka.topic("kp-out")
    producer = client.KafkaProducer(**kafka.producer_config(client="kafka-python"))
    try:
        for row in ROWS:
            producer.send(topic, json.dumps(row).encode())
        producer.flush(timeout=CLIENT_WAIT_MS / 1000)
    finally:
        producer.close(timeout=5)
    assert kafka.consume(topic) == ROWS


def test_aiokafka_consumer_group_joins_within_its_own_wait(kafka: KafkaNamespace) -> None:
    aiokafka = pytest.importorskip("aiokafka")
    topic = kafka.topic("aio-in")
    kafka.produce(topic, ROWS)

    async def consume() -> list[Any]:
        consumer = aiokafka.AIOKafkaConsumer(
            topic, **kafka.consumer_config(client="aiokafka"), value_deserializer=json.loads
        )
        try:
            # start() joins the group (5 s with aiokafka's 10 s default session on tansu) and
            # has no bound of its own, so asyncio's bounds it.
            await asyncio.wait_for(consumer.start(), CLIENT_WAIT_MS / 1000)
            batches = await consumer.getmany(timeout_ms=CLIENT_WAIT_MS)
        finally:
            await consumer.stop()
        return [message.value for batch in batches.values() for message in batch]

    assert asyncio.run(consume()) == ROWS


def test_aiokafka_producer_writes_with_its_config(kafka: KafkaNamespace) -> None:
    aiokafka = pytest.importorskip("aiokafka")
    topic = kafka.topic("aio-out")

    async def produce() -> None:
        producer = aiokafka.AIOKafkaProducer(**kafka.producer_config(client="aiokafka"))
        await producer.start()
        try:
            for row in ROWS:
                await producer.send_and_wait(topic, json.dumps(row).encode())
        finally:
            await producer.stop()

    asyncio.run(produce())
    assert kafka.consume(topic) == ROWS


# --------------------------------------------------------------------------- local deviations


DEVIATIONS_HEADING = "## Where the local servers differ"


def _deviations_doc() -> str:
    text = DOCS.read_text(encoding="utf-8")
    if DEVIATIONS_HEADING not in text:
        pytest.fail(f"{DOCS} has no section {DEVIATIONS_HEADING!r}")
    section = text.split(DEVIATIONS_HEADING, 1)[1].split("\n## ", 1)[0]
    # Each deviation says what to use instead.
    assert "docker" in section
    assert "external" in section
    return section


def _needs(server: Any, name: str) -> None:
    if name not in server.description:
        pytest.skip(f"the deviation is {name}'s; the local server here is {server.description}")


def test_tansu_has_no_create_partitions_and_the_docs_say_so(
    broker: Any, kafka: KafkaNamespace
) -> None:
    _needs(broker, "tansu")
    admin = pytest.importorskip("confluent_kafka.admin")
    topic = kafka.topic("grow")
    client = admin.AdminClient({"bootstrap.servers": kafka.bootstrap_servers})  # kept alive
    futures = client.create_partitions([admin.NewPartitions(topic, 3)], request_timeout=10)
    with pytest.raises(Exception, match="CreatePartitions"):
        futures[topic].result(15)  # if this passes, tansu learnt it: update the docs
    assert "CreatePartitions" in _deviations_doc()


def test_tansu_refuses_old_init_producer_id_and_the_docs_say_so(
    broker: Any, kafka: KafkaNamespace
) -> None:
    """aiokafka sends InitProducerId v0 for an idempotent producer; tansu fails v0-v2."""
    _needs(broker, "tansu")
    aiokafka = pytest.importorskip("aiokafka")

    async def start_idempotent() -> None:
        config = kafka.producer_config(client="aiokafka")
        producer = aiokafka.AIOKafkaProducer(**config, enable_idempotence=True)
        try:
            await asyncio.wait_for(producer.start(), CLIENT_WAIT_MS / 1000)
        finally:
            await producer.stop()

    with pytest.raises(aiokafka.errors.UnknownError):
        asyncio.run(start_idempotent())
    section = _deviations_doc()
    assert "InitProducerId" in section
    assert "aiokafka" in section


def test_tansu_fetch_shows_aborted_records_and_the_docs_say_so(
    broker: Any, kafka: KafkaNamespace
) -> None:
    _needs(broker, "tansu")
    ck = pytest.importorskip("confluent_kafka")
    topic = kafka.topic("tx")
    producer = ck.Producer(kafka.producer_config(**{"transactional.id": uuid.uuid4().hex}))
    producer.init_transactions(10)
    for value, commit in ((b"aborted", False), (b"committed", True)):
        producer.begin_transaction()
        producer.produce(topic, value)
        producer.flush(10)
        (producer.commit_transaction if commit else producer.abort_transaction)(10)
    settings = {"isolation.level": "read_committed", "enable.partition.eof": True}
    consumer = ck.Consumer({**kafka.consumer_config(), **settings})
    consumer.assign([ck.TopicPartition(topic, 0, ck.OFFSET_BEGINNING)])
    seen: list[bytes] = []
    try:
        for _ in range(40):  # up to 40 one-second polls; ends at the partition's end
            message = consumer.poll(1.0)
            if message is None or message.error() is None:
                seen.extend([message.value()] if message is not None else [])
                continue
            if message.error().code() == ck.KafkaError._PARTITION_EOF:
                break
    finally:
        consumer.close()
    assert seen == [b"aborted", b"committed"]  # Apache Kafka gives [b"committed"]
    assert kafka.count(topic) == 1  # the fixture's own count is right regardless
    assert "read_committed" in _deviations_doc()


def test_moto_takes_a_wrong_secret_and_the_docs_say_so(local_s3: Any) -> None:
    _needs(local_s3, "moto")
    boto3 = pytest.importorskip("boto3")
    endpoint: S3Endpoint = local_s3.endpoint
    client = boto3.client(
        "s3",
        endpoint_url=endpoint.endpoint_url,
        aws_access_key_id=endpoint.access_key,
        aws_secret_access_key="not-the-secret",
        region_name=endpoint.region,
    )
    assert client.list_buckets()["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert "wrong secret" in _deviations_doc()


# --------------------------------------------------------------------------- through the fixtures


USER_TESTS = """
import asyncio, json
import pytest

pytestmark = pytest.mark.integration
ROWS = [{"id": 1, "region": "eu"}, {"id": 2, "region": "us"}]


def test_kafka_python_and_aiokafka_join_fast(kafka, dlq):
    from kafka import KafkaConsumer
    from aiokafka import AIOKafkaConsumer

    topic = kafka.topic("orders")
    kafka.produce(topic, ROWS)
    consumer = KafkaConsumer(
        topic, **kafka.consumer_config(group="kp", client="kafka-python"),
        consumer_timeout_ms=4000,
    )
    got = [json.loads(m.value) for _, m in zip(ROWS, consumer)]
    consumer.close()
    assert got == ROWS

    async def consume():
        aio = AIOKafkaConsumer(topic, **kafka.consumer_config(group="aio", client="aiokafka"))
        try:
            await asyncio.wait_for(aio.start(), 4)
            batches = await aio.getmany(timeout_ms=4000)
        finally:
            await aio.stop()
        return [json.loads(m.value) for batch in batches.values() for m in batch]

    assert asyncio.run(consume()) == ROWS
    dlq.assert_count(0, 0)


def test_polars_writes_a_hive_dataset_read_back_with_its_partitions(s3, dlq):
    import polars as pl

    bucket = s3.bucket("sales")
    frame = pl.DataFrame({"id": [1, 2]})
    frame.write_parquet(f"s3://{bucket}/sales/region=eu/part-0.parquet",
                        storage_options=s3.storage_options_for("polars"))
    rows = s3.read_records(bucket, "sales/")
    assert rows == [{"id": 1, "region": "eu"}, {"id": 2, "region": "eu"}]
    dlq.assert_count(0, 0)
"""


def test_the_fixtures_speak_each_client_in_a_user_run(pytester: pytest.Pytester) -> None:
    pytest.importorskip("kafka")
    pytest.importorskip("aiokafka")
    pytest.importorskip("polars")
    pytester.makepyprojecttoml("[tool.pytest-pipeline]\n")
    pytester.makepyfile(test_dialects=USER_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
