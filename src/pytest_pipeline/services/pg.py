"""psycopg, imported when first needed, and its errors as one-line messages.

Shared by the ``postgres`` fixture's module (``services.postgres``) and the schema loader
(``services.schema``); importing this module costs only the standard library.
"""

from __future__ import annotations

from typing import Any

from pytest_pipeline._optional import require
from pytest_pipeline.masking import mask_secrets
from pytest_pipeline.services.endpoints import PostgresEndpoint

__all__ = ["first_line", "psycopg", "sql"]


def psycopg() -> Any:
    """The psycopg module; a clear error naming the ``postgres`` extra when it is missing."""
    return require("psycopg", "postgres", "The postgres fixture")


def sql() -> Any:
    """The ``psycopg.sql`` module (identifiers and literals composed safely)."""
    return require("psycopg.sql", "postgres", "The postgres fixture")


def first_line(exc: BaseException, endpoint: PostgresEndpoint) -> str:
    """The first line of a psycopg error, with the password masked should libpq echo it."""
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return mask_secrets(line, (endpoint.password,))
