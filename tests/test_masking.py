"""Secrets in text and in objects: ``mask_url``, ``mask_secrets`` and the secret string types.

The string types must keep working as the real value for clients (psycopg, boto3, pandas get
``str``) while every ``repr`` pytest shows (``-l`` locals, ``-vv``, assertion summaries) masks.
"""

from __future__ import annotations

import dataclasses
import json
import pickle
import pprint
from pathlib import Path
from urllib.parse import quote

import pytest
from _pytest._io.saferepr import saferepr, saferepr_unlimited

from pytest_pipeline.config import ServiceConfig, resolve
from pytest_pipeline.errors import ConfigError
from pytest_pipeline.masking import Secret, SecretURL, mask_secrets, mask_url
from pytest_pipeline.services.endpoints import (
    PostgresEndpoint,
    S3Endpoint,
    endpoint_from_dict,
    endpoint_to_dict,
)


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        # Unencoded characters that end a URL for a naive pattern: all still masked.
        ("postgresql://u:pa ss@db/x", "postgresql://u:***@db/x"),
        ('postgresql://u:pa"ss@db/x', "postgresql://u:***@db/x"),
        ("postgresql://u:pa'ss@db/x", "postgresql://u:***@db/x"),
        ("postgresql://u:pa<ss>@db/x", "postgresql://u:***@db/x"),
        (
            "url='postgresql://ci:s p'q<r@db:5432/app', x=1",
            "url='postgresql://ci:***@db:5432/app', x=1",
        ),
        # Two URLs on one line: each keeps its own host.
        (
            "postgresql://a:one@h1/db or postgresql://b:two@h2/db",
            "postgresql://a:***@h1/db or postgresql://b:***@h2/db",
        ),
        ("a\npostgresql://u:pw@h/x\nb@c", "a\npostgresql://u:***@h/x\nb@c"),
        # Nothing to mask.
        ("PLAINTEXT://localhost:9092,[::1]:9093", "PLAINTEXT://localhost:9092,[::1]:9093"),
        ("http://127.0.0.1:9000/bucket", "http://127.0.0.1:9000/bucket"),
        # Keyword forms: libpq conninfo (quoted values may hold spaces) and reprs.
        ("host=h password='pa ss' dbname=x", "host=h password='***' dbname=x"),
        ("host=h password=pw&sslmode=require", "host=h password=***&sslmode=require"),
        (
            "S3Endpoint(secret_key='abc def', region='x')",
            "S3Endpoint(secret_key='***', region='x')",
        ),
        ("{'key': 'id', 'secret': 'abc def'}", "{'key': 'id', 'secret': '***'}"),
        ("aws_secret_access_key=abc", "aws_secret_access_key=***"),
        (
            "ServiceConfig(secret_key=None, region=None)",
            "ServiceConfig(secret_key=None, region=None)",
        ),
    ],
)
def test_mask_url(text: str, masked: str) -> None:
    assert mask_url(text) == masked


def test_mask_secrets_replaces_given_and_registered_values() -> None:
    Secret("registered-Value-1")
    text = "a given-Value-2 b registered-Value-1 c registered%2DValue%2D1"
    assert mask_secrets(text, ("given-Value-2",)) == "a *** b *** c registered%2DValue%2D1"
    Secret("with space/and@")
    assert mask_secrets("x with%20space%2Fand%40 y") == "x *** y"


def test_secret_is_the_real_string_for_clients_and_masked_in_every_repr() -> None:
    value = "Pa55 w'rd<@>"
    secret = Secret(value)
    assert secret == value
    assert hash(secret) == hash(value)
    assert str(secret) == value
    assert type(str(secret)) is str
    assert f"{secret}" == value
    assert "%s" % secret == value  # noqa: UP031 - %-formatting is what some clients do
    assert secret.encode() == value.encode()
    for shown in (
        repr(secret),
        ascii(secret),
        saferepr(secret),
        saferepr_unlimited(secret),
        pprint.pformat(secret),
        pprint.pformat({"secret": secret, "more": ["x" * 80] * 3}),
        saferepr({"secret": secret}),
        repr([secret]),
    ):
        assert value not in shown, shown
        assert "***" in shown, shown
    assert json.loads(json.dumps({"s": secret})) == {"s": value}
    restored = pickle.loads(pickle.dumps(secret))
    assert restored == value
    assert repr(restored) == "'***'"


def test_secret_url_masks_only_the_password() -> None:
    url = SecretURL("postgresql://ci:s p'q<r@db:5432/app?sslmode=require")
    assert repr(url) == "'postgresql://ci:***@db:5432/app?sslmode=require'"
    assert "s p'q<r" not in pprint.pformat([url] * 5)
    # A password that mask_url cannot see (no scheme) is still registered and masked.
    assert mask_secrets("the password was s p'q<r") == "the password was ***"


def test_psycopg_takes_a_secret_url() -> None:
    conninfo = pytest.importorskip("psycopg.conninfo")
    url = SecretURL("postgresql://ci:p%20w@db:5432/app")
    assert conninfo.conninfo_to_dict(url)["password"] == "p w"


def test_config_and_endpoint_reprs_hold_no_secret() -> None:
    service = ServiceConfig(
        "postgres", url="postgresql://ci:Pg-s3cret@db/x", secret_key="S3-s3cret-key"
    )
    assert "Pg-s3cret" not in repr(service)
    assert "S3-s3cret-key" not in repr(service)
    assert "postgresql://ci:***@db/x" in repr(service)
    assert service.url == "postgresql://ci:Pg-s3cret@db/x"
    pg = PostgresEndpoint("h", 5432, "u", "Pg-s3cret 2")
    assert pg.dsn() == "postgresql://u:Pg-s3cret%202@h:5432/postgres"
    assert "Pg-s3cret" not in repr(pg.dsn())
    assert "Pg-s3cret" not in repr(pg)
    s3 = S3Endpoint("http://h:9000", "key", "S3-s3cret-key")
    assert isinstance(s3.secret_key, Secret)
    back = endpoint_from_dict("postgres", json.loads(json.dumps(endpoint_to_dict(pg))))
    assert back == pg
    assert isinstance(back, PostgresEndpoint)
    assert isinstance(back.password, Secret)
    assert "Pg-s3cret" not in repr(dataclasses.replace(pg, port=1))


def test_a_url_of_the_wrong_type_is_not_echoed(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.pytest-pipeline.services.postgres]\nurl = ["postgresql://ci:Pg-list-s3cret@db/x"]\n'
    )
    with pytest.raises(ConfigError) as raised:
        resolve(tmp_path, {}, env={})
    assert "Pg-list-s3cret" not in str(raised.value)
    assert "postgresql://ci:***@db/x" in str(raised.value)


AWKWARD = "Rv'pa\"ss\\wordLONGSECRET9"


@pytest.mark.parametrize(
    "shown",
    [
        repr("x" + AWKWARD),  # -l locals: quotes and backslash escaped
        repr("x'" + AWKWARD),
        repr("x'" + AWKWARD.replace('"', "")),  # double-quoted repr: ' left as is
        json.dumps({"k": AWKWARD}),  # printed JSON
        json.dumps({"k": AWKWARD}, ensure_ascii=False),
        "assert msg " + quote(AWKWARD, safe="").replace("%", "%%"),  # pytest's % doubling
        "assert msg " + AWKWARD.replace("%", "%%"),
    ],
    ids=["repr", "repr-quote", "repr-double-quoted", "json", "json-utf8", "pct-url", "pct-raw"],
)
def test_escaped_forms_of_a_secret_are_masked(shown: str) -> None:
    Secret(AWKWARD)
    Secret(AWKWARD.replace('"', ""))
    masked = mask_secrets(shown)
    assert "LONGSECRET9" not in masked
    assert "pa" not in masked
    assert "***" in masked


def test_a_secret_cut_by_saferepr_truncation_is_masked() -> None:
    Secret(AWKWARD)
    for head in (90, 100, 110, 115):
        shown = saferepr("x" * head + AWKWARD + "y" * 300, maxsize=240)
        assert "..." in shown
        masked = mask_secrets(shown)
        # No run of 4 or more characters of the secret (in its repr form) is left at the cut.
        escaped = repr(AWKWARD + '"')[1:-2]
        for size in range(4, len(escaped)):
            assert escaped[:size] + "..." not in masked, (head, masked)
    tail = saferepr("x" * 300 + AWKWARD + "y" * 10, maxsize=240)
    assert "LONGSECRET9" not in mask_secrets(tail)
    assert "ECRET9" not in mask_secrets(tail)
    # Ordinary ellipses are left alone.
    assert mask_secrets("waiting... done... Rv") == "waiting... done... Rv"
