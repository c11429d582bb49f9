"""Per-test S3 namespaces: uniquely named buckets on the session's object store.

Records are written and read in the format their key's suffix names, by the same code and
rules as fixture files (:mod:`pytest_pipeline.records.codec`): ``.json`` (an array of objects),
``.jsonl`` / ``.ndjson`` (one object per line), ``.csv`` (a header line; strings quoted, so
``""`` and null stay apart; values type-inferred by pyarrow when read back), ``.parquet``
(pyarrow), and ``.gz`` of the text formats.

boto3 and pyarrow are imported where they are used, so importing this module costs only the
standard library.
"""

from __future__ import annotations

import gzip
import hashlib
import re
import threading
import warnings
import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import unquote

from pytest_pipeline._optional import require
from pytest_pipeline.errors import PipelineWarning, RecordsError, ServiceError
from pytest_pipeline.records import codec
from pytest_pipeline.records.codec import SUPPORTED_SUFFIXES  # the same formats as fixtures
from pytest_pipeline.records.tables import check_records
from pytest_pipeline.records.values import WIRE_JSON
from pytest_pipeline.services.endpoints import S3Endpoint
from pytest_pipeline.services.namespace import Namespace

__all__ = ["SUPPORTED_SUFFIXES", "S3Namespace", "bucket_name"]


_CONTENT_TYPES = {
    "json": "application/json",
    "jsonl": "application/x-ndjson",
    "csv": "text/csv",
    "parquet": "application/vnd.apache.parquet",
}

MAX_BUCKET_LENGTH = 63
_HASH_LENGTH = 8

_BUCKET_OK = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")
_BUCKET_BAD_CHARS = re.compile(r"[^a-z0-9-]+")
# Prefixes and suffixes S3 reserves for its own kinds of bucket.
_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", "--x-s3", "--table-s3")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:_HASH_LENGTH]


def _clean(text: str) -> str:
    return re.sub(r"-{2,}", "-", _BUCKET_BAD_CHARS.sub("-", text.lower())).strip("-")


def _valid_bucket(name: str) -> bool:
    return (
        3 <= len(name) <= MAX_BUCKET_LENGTH
        and _BUCKET_OK.fullmatch(name) is not None
        and "--" not in name
        and not name.startswith(_RESERVED_PREFIXES)
        and not name.endswith(_RESERVED_SUFFIXES)
    )


def bucket_name(prefix: str, name: str) -> str:
    """The bucket ``bucket(name)`` creates in the namespace ``prefix``.

    ``prefix-name`` when that is a valid DNS-style bucket name (lowercase letters, digits and
    single hyphens, 3-63 characters; dots are avoided because they break TLS with virtual-host
    addressing); otherwise the name is lowercased, cleaned, shortened and suffixed with a hash
    of the original, so distinct names never share a bucket.
    """
    if not name:
        raise ServiceError("an S3 bucket name cannot be empty")
    head = _clean(prefix) or "pp"
    if len(head) > 30:  # keep room for the name; the hash keeps long prefixes distinct
        head = f"{head[:21].rstrip('-')}-{_digest(prefix)}"
    candidate = f"{head}-{name}"
    if _valid_bucket(candidate):
        return candidate
    base = _clean(name)
    room = MAX_BUCKET_LENGTH - len(head) - _HASH_LENGTH - 2
    base = base[: max(room, 0)].rstrip("-")
    return f"{head}-{base}-{_digest(name)}" if base else f"{head}-{_digest(name)}"


#: The folder name Hive, Spark and pyarrow write for a null partition value.
HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"
_INT32 = re.compile(r"-?[0-9]+")


def hive_partitions(key: str, prefix: str) -> dict[str, str | None]:
    """``{name: value}`` of the ``name=value`` folders of ``key`` below ``prefix``'s folder."""
    base = prefix[: prefix.rfind("/") + 1]
    folders = key[len(base) :].split("/")[:-1] if key.startswith(base) else []
    found: dict[str, str | None] = {}
    for folder in folders:
        name, equals, value = folder.partition("=")
        if equals and name:
            found[unquote(name)] = None if value == HIVE_NULL else unquote(value)
    return found


def _as_int32(value: str) -> int | None:
    number = int(value) if _INT32.fullmatch(value) else None
    return number if number is not None and -(2**31) <= number < 2**31 else None


def _add_partitions(
    records: list[dict[str, Any]], partitions: Sequence[tuple[int, Mapping[str, str | None]]]
) -> list[dict[str, Any]]:
    """``records`` with each file's partition values; a column is ``int`` when all its values
    are 32-bit integers, as pyarrow's hive partitioning infers it."""
    values: dict[str, set[str]] = {}
    for _, found in partitions:
        for name, value in found.items():
            values.setdefault(name, set()).update(() if value is None else (value,))
    ints = {name for name, seen in values.items() if all(_as_int32(v) is not None for v in seen)}
    start = 0
    for count, found in partitions:
        typed = {n: _as_int32(v) if n in ints and v is not None else v for n, v in found.items()}
        for row in records[start : start + count]:
            row.update(typed)
        start += count
    return records


def _unsupported(bucket: str, key: str) -> ServiceError:
    return ServiceError(
        f"s3://{bucket}/{key}: unsupported file type; records are read and written by key "
        f"suffix, one of {', '.join(SUPPORTED_SUFFIXES)}"
    )


# --------------------------------------------------------------------------- clients


_clients_lock = threading.Lock()
_clients: dict[S3Endpoint, Any] = {}

#: Tries of one request, the first one included.
_ATTEMPTS = 3

_T = TypeVar("_T")


def _timeouts(total: float) -> tuple[float, float, int]:
    """(connect timeout, read timeout, attempts) of a client whose request, every attempt
    timing out, still ends within ``total`` seconds (services.startup_timeout)."""
    per_attempt = total / _ATTEMPTS
    connect = min(5.0, per_attempt / 2)
    return connect, per_attempt - connect, _ATTEMPTS


def _client_for(endpoint: S3Endpoint) -> Any:
    """One boto3 client per endpoint and process: creating one costs tens of milliseconds.

    botocore clients are thread-safe.
    """
    with _clients_lock:
        client = _clients.get(endpoint)
        if client is None:
            boto3 = require("boto3", "s3", "The s3 fixture")
            connect, read, attempts = _timeouts(endpoint.timeout)
            config = require("botocore.config", "s3", "The s3 fixture").Config(
                s3={"addressing_style": "path"},  # no DNS for bucket.localhost needed
                # total_max_attempts counts the first try (max_attempts would not).
                retries={"total_max_attempts": attempts, "mode": "standard"},
                connect_timeout=connect,
                read_timeout=read,
                # S3-compatible stores do not all accept the checksums newer botocore adds.
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            )
            client = _clients[endpoint] = boto3.session.Session().client(
                "s3",
                endpoint_url=endpoint.endpoint_url,
                aws_access_key_id=endpoint.access_key,
                aws_secret_access_key=endpoint.secret_key,
                region_name=endpoint.region,
                config=config,
            )
        return client


def reach(endpoint: S3Endpoint) -> None:
    """Raise ``ServiceError`` unless the store answers one request within its timeout.

    Any answer counts, a refusal too (a CI key may not list buckets): only a store that
    cannot be reached is an error.
    """
    errors = require("botocore.exceptions", "s3", "The s3 fixture")
    client = _client_for(endpoint)
    try:
        _within(endpoint, client.list_buckets)
    except errors.ClientError:
        return
    except (errors.BotoCoreError, _Unanswered) as exc:
        raise ServiceError(
            f"pytest-pipeline: cannot reach the S3 endpoint at {endpoint.endpoint_url}: {exc}. "
            "Check that the server runs and answers within services.startup_timeout "
            f"({endpoint.timeout:g} s)."
        ) from None


class _Unanswered(Exception):
    """A request to the store that did not end within services.startup_timeout."""


def _within(endpoint: S3Endpoint, call: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
    """``call(*args, **kwargs)``, given up after ``endpoint.timeout`` seconds of wall clock.

    botocore's read timeout bounds each socket read, not a request: a store that sends its
    answer a byte at a time would hold a request for ever. The call runs in a daemon thread;
    one given up is left to end with the process (or when the store closes the connection).
    """
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append((True, call(*args, **kwargs)))
        except BaseException as exc:  # handed to the caller's thread
            outcome.append((False, exc))

    worker = threading.Thread(target=run, name="pytest-pipeline-s3-request", daemon=True)
    worker.start()
    worker.join(endpoint.timeout)
    if not outcome:
        raise _Unanswered(
            f"no complete answer within services.startup_timeout ({endpoint.timeout:g} s)"
        )
    ok, value = outcome[0]
    if not ok:
        raise value
    return value  # type: ignore[no-any-return]


class _Bounded:
    """A boto3 client whose every call ends within services.startup_timeout (:func:`_within`).

    For the requests the plugin makes itself; ``S3Namespace.client`` stays the plain client.
    """

    def __init__(self, endpoint: S3Endpoint) -> None:
        self._endpoint = endpoint
        self._client = _client_for(endpoint)

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)
        return lambda *args, **kwargs: _within(self._endpoint, method, *args, **kwargs)

    def read_object(self, **kwargs: Any) -> bytes:
        """``get_object(**kwargs)``'s body: the request and the body's download, bounded."""
        body: bytes = _within(
            self._endpoint, lambda: self._client.get_object(**kwargs)["Body"].read()
        )
        return body


def _s3fs_options(endpoint: S3Endpoint) -> dict[str, Any]:
    return {
        "key": endpoint.access_key,
        "secret": endpoint.secret_key,
        "client_kwargs": {"endpoint_url": endpoint.endpoint_url, "region_name": endpoint.region},
        "config_kwargs": {"s3": {"addressing_style": "path"}},
    }


def _object_store_options(endpoint: S3Endpoint) -> dict[str, Any]:
    # object_store's keys (polars); path-style addressing is its default.
    return {
        "aws_endpoint_url": endpoint.endpoint_url,
        "aws_access_key_id": endpoint.access_key,
        "aws_secret_access_key": endpoint.secret_key,
        "aws_region": endpoint.region,
        "aws_allow_http": str(endpoint.endpoint_url.startswith("http://")).lower(),
    }


def _pyarrow_options(endpoint: S3Endpoint) -> dict[str, Any]:
    scheme, _, address = endpoint.endpoint_url.partition("://")
    return {
        "access_key": endpoint.access_key,
        "secret_key": endpoint.secret_key,
        "region": endpoint.region,
        "endpoint_override": address.rstrip("/"),
        "scheme": scheme,
    }


def _boto3_options(endpoint: S3Endpoint) -> dict[str, Any]:
    return {
        "endpoint_url": endpoint.endpoint_url,
        "aws_access_key_id": endpoint.access_key,
        "aws_secret_access_key": endpoint.secret_key,
        "region_name": endpoint.region,
    }


#: Client names ``storage_options_for`` knows, and the builder of each one's options.
CLIENT_DIALECTS = {
    "s3fs": _s3fs_options,
    "pandas": _s3fs_options,
    "fsspec": _s3fs_options,
    "polars": _object_store_options,
    "object_store": _object_store_options,
    "pyarrow": _pyarrow_options,
    "boto3": _boto3_options,
}


def client_options(endpoint: S3Endpoint, client: str) -> dict[str, Any]:
    """Options that connect ``client`` (a key of :data:`CLIENT_DIALECTS`) to ``endpoint``."""
    build = CLIENT_DIALECTS.get(client)
    if build is None:
        raise ServiceError(
            f"s3.storage_options_for: unknown client {client!r}; "
            f"use one of {', '.join(sorted(CLIENT_DIALECTS))}"
        )
    return build(endpoint)


def _error_text(exc: Exception) -> str:
    """A botocore error as ``Code: message``."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        error = response.get("Error", {})
        code, message = error.get("Code"), error.get("Message")
        if code:
            return f"{code}: {message}" if message else str(code)
    return str(exc) or type(exc).__name__


# --------------------------------------------------------------------------- the fixture object


class S3Namespace(Namespace):
    """One test's buckets on a shared object store: what the ``s3`` fixture gives.

    ``bucket(name)`` creates ``<prefix>-<name>`` and returns that real name; the other methods
    take the real name (or the name given to ``bucket()``). ``close()`` (and the end of a
    ``with`` block) empties and deletes the buckets this namespace created, and only those.
    """

    noun = "S3 namespace"

    def __init__(self, endpoint: S3Endpoint, prefix: str) -> None:
        self.endpoint = endpoint
        self.prefix = prefix
        self._buckets: dict[str, str] = {}  # name given to bucket() -> real name
        self._owned: list[str] = []
        super().__init__(prefix)

    def _shown(self) -> dict[str, object]:
        return {"endpoint_url": self.endpoint_url, "prefix": self.prefix, "buckets": self._owned}

    @property
    def endpoint_url(self) -> str:
        """The S3 endpoint, e.g. ``http://127.0.0.1:9000``."""
        return self.endpoint.endpoint_url

    @property
    def client(self) -> Any:
        """A boto3 S3 client for the endpoint (path-style addressing), created on first use."""
        return _client_for(self.endpoint)

    @property
    def _requests(self) -> _Bounded:
        """The client for the plugin's own requests: each one ends within the timeout."""
        return _Bounded(self.endpoint)

    @property
    def access_key(self) -> str:
        """The access key id of the store."""
        return self.endpoint.access_key

    @property
    def secret_key(self) -> str:
        """The secret key: the real value for clients; its ``repr`` is ``'***'``."""
        return self.endpoint.secret_key

    @property
    def region(self) -> str:
        """The region buckets are created in, e.g. ``us-east-1``."""
        return self.endpoint.region

    @property
    def storage_options(self) -> dict[str, Any]:
        """Options for pandas / s3fs: ``pd.read_parquet("s3://...", storage_options=...)``.

        The same as ``storage_options_for("s3fs")``. ``"secret"`` is the real key for the
        clients; its ``repr`` (pytest's output) is ``'***'``.
        """
        return client_options(self.endpoint, "s3fs")

    def storage_options_for(self, client: str) -> dict[str, Any]:
        """Connection options in the dialect of ``client`` (see :data:`CLIENT_DIALECTS`).

        ``"s3fs"`` / ``"pandas"`` / ``"fsspec"``: ``storage_options=`` of pandas and s3fs;
        ``"polars"`` / ``"object_store"``: ``storage_options=`` of polars' ``read_*`` /
        ``scan_*`` / ``write_*``; ``"pyarrow"``: ``pyarrow.fs.S3FileSystem(**options)``;
        ``"boto3"``: ``boto3.client("s3", **options)``. The secret in them masks its ``repr``.
        """
        return client_options(self.endpoint, client)

    @property
    def buckets(self) -> list[str]:
        """Real names of the buckets this namespace created, in creation order."""
        return list(self._owned)

    def owns(self, bucket: str) -> bool:
        """Whether ``bucket`` (a real name, or a name given to :meth:`bucket`) is one of ours."""
        return bucket in self._owned or bucket in self._buckets

    def real_name(self, name: str) -> str:
        """The real bucket name ``bucket(name)`` creates (without creating it)."""
        return bucket_name(self.prefix, name)

    def _resolve(self, bucket: str) -> str:
        return bucket if bucket in self._owned else self._buckets.get(bucket, bucket)

    def _error_text(self, exc: Exception) -> str:
        text = _error_text(exc)
        secret = self.endpoint.secret_key
        return text.replace(secret, "***") if secret else text

    def bucket(self, name: str) -> str:
        """Create the bucket ``name`` of this test and return its unique real name.

        Calling it again with the same name returns the same bucket.
        """
        self._check_open()
        real = self._resolve(name)
        if real in self._owned:
            return real
        real = self.real_name(name)
        params: dict[str, Any] = {"Bucket": real}
        if self.endpoint.region != "us-east-1":
            params["CreateBucketConfiguration"] = {"LocationConstraint": self.endpoint.region}
        try:
            self._requests.create_bucket(**params)
        except Exception as exc:
            reason = self._error_text(exc)
            if "BucketAlreadyOwnedByYou" not in reason:
                raise ServiceError(
                    f"cannot create S3 bucket {real!r} at {self.endpoint_url}: {reason}"
                ) from None
        self._buckets[name] = real
        self._owned.append(real)
        return real

    def put_records(self, bucket: str, key: str, records: Sequence[Mapping[str, Any]]) -> None:
        """Write ``records`` to ``s3://bucket/key`` in the format the key's suffix names."""
        self._check_open()
        real = self._resolve(bucket)
        fmt = codec.format_of(key)
        if fmt is None:
            raise _unsupported(real, key)
        rows = check_records(records, f"s3://{real}/{key}", ServiceError)
        try:
            # WIRE_JSON: a Decimal keeps its exact text, bytes go as base64.
            body = codec.encode(
                [dict(row) for row in rows],
                fmt,
                "them",
                rules=WIRE_JSON,
                what="records",
                action="store",
            )
        except (TypeError, ValueError) as exc:  # RecordsError is a ValueError
            raise ServiceError(f"s3://{real}/{key}: cannot write the records: {exc}") from None
        try:
            self._requests.put_object(
                Bucket=real,
                Key=key,
                Body=body,
                ContentType="application/gzip" if fmt.gz else _CONTENT_TYPES[fmt.kind],
            )
        except Exception as exc:
            raise ServiceError(
                f"cannot write s3://{real}/{key} at {self.endpoint_url}: {self._error_text(exc)}"
            ) from None

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Keys of the objects under ``prefix`` in ``bucket``, sorted."""
        self._check_open()
        real = self._resolve(bucket)
        keys: list[str] = []
        try:
            page: dict[str, Any] = {"NextContinuationToken": ""}
            while "NextContinuationToken" in page:  # page by page: each request is bounded
                token = page["NextContinuationToken"]
                more = {"ContinuationToken": token} if token else {}
                page = self._requests.list_objects_v2(Bucket=real, Prefix=prefix, **more)
                keys.extend(item["Key"] for item in page.get("Contents", ()))
        except Exception as exc:
            raise ServiceError(
                f"cannot list s3://{real}/{prefix} at {self.endpoint_url}: {self._error_text(exc)}"
            ) from None
        return sorted(keys)

    def read_records(self, bucket: str, prefix: str = "") -> list[dict[str, Any]]:
        """Records of every object under ``prefix``, in key order, parsed by key suffix.

        Directory markers (keys ending in ``/``) and files whose name starts with ``_`` or
        ``.`` (``_SUCCESS``, ``.crc``: written by Spark and Hadoop) are skipped, as pyarrow
        datasets do. Any other unknown suffix is a :class:`ServiceError`.

        Hive partitions are kept as pyarrow datasets keep them: each ``name=value`` folder
        below the prefix's folder (``sales/`` for ``"sales/"`` and ``"sales/part"``) adds the
        column ``name`` to its files' records, URL-decoded, ``__HIVE_DEFAULT_PARTITION__`` as
        None, as ``int`` when every value of that column in the read is a 32-bit integer, else
        ``str``; the path's value replaces a column of that name in the file.
        """
        real = self._resolve(bucket)
        wanted: list[tuple[str, codec.Format]] = []
        for key in self.keys(real, prefix):
            basename = key.rsplit("/", 1)[-1]
            if not basename or basename.startswith(("_", ".")):
                continue
            fmt = codec.format_of(key)
            if fmt is None:
                raise _unsupported(real, key)
            wanted.append((key, fmt))
        records: list[dict[str, Any]] = []
        partitions: list[tuple[int, dict[str, str | None]]] = []  # (rows, values) per file
        for key, fmt in wanted:
            try:
                body = self._requests.read_object(Bucket=real, Key=key)
            except Exception as exc:
                raise ServiceError(
                    f"cannot read s3://{real}/{key} at {self.endpoint_url}: {self._error_text(exc)}"
                ) from None
            try:
                if fmt.gz:
                    body = gzip.decompress(body)
            except (OSError, EOFError, zlib.error) as exc:
                raise ServiceError(f"s3://{real}/{key} is not a valid gzip file: {exc}") from None
            try:
                rows = codec.read_records(body, fmt.kind, f"s3://{real}/{key}")
            except RecordsError as exc:  # names the object, its line and column
                raise ServiceError(str(exc)) from None
            records.extend(rows)
            partitions.append((len(rows), hive_partitions(key, prefix)))
        return _add_partitions(records, partitions)

    def _close(self, *, delete: bool) -> None:
        """Empty and delete the buckets this namespace created (only those).

        Problems while cleaning up are reported as warnings, not raised.
        """
        if not delete or not self._owned:
            return
        client = self._requests
        for real in self._owned:
            try:
                _empty_bucket(client, real)
                client.delete_bucket(Bucket=real)
            except Exception as exc:
                if "NoSuchBucket" in self._error_text(exc):
                    continue
                warnings.warn(
                    PipelineWarning(
                        f"could not delete S3 bucket {real!r} at {self.endpoint_url}: "
                        f"{self._error_text(exc)}"
                    ),
                    stacklevel=3,
                )


#: Rounds of "list the first 1,000, delete them" before giving up on emptying a bucket.
MAX_EMPTY_ROUNDS = 10_000


def _empty_bucket(client: Any, bucket: str) -> None:
    # Versions cover unversioned objects too (version id "null"), so one listing suffices.
    # Always the first page, listed afresh: paging on with markers that name keys just deleted
    # skips keys (moto) or stops early, and the bucket is then not empty.
    for _ in range(MAX_EMPTY_ROUNDS):
        page = client.list_object_versions(Bucket=bucket, MaxKeys=1000)
        doomed = [
            {"Key": item["Key"], "VersionId": item["VersionId"]}
            for group in ("Versions", "DeleteMarkers")
            for item in page.get(group, ())
        ][:1000]  # the limit of DeleteObjects
        if not doomed:
            break
        answer = client.delete_objects(Bucket=bucket, Delete={"Objects": doomed, "Quiet": True})
        errors = answer.get("Errors") or ()
        if errors:  # no progress would be made: say why instead of listing the same keys again
            first = errors[0]
            raise ServiceError(
                f"cannot delete s3://{bucket}/{first.get('Key')} ({len(errors)} objects "
                f"failed): {first.get('Code')}: {first.get('Message')}"
            )
    else:
        raise ServiceError(
            f"s3://{bucket} still holds objects after deleting "
            f"{MAX_EMPTY_ROUNDS} rounds of 1,000; delete it by hand"
        )
    uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads", ())
    for upload in uploads:
        client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
