"""Postgres sink: silver payments, idempotent by ``payment_id``."""

from __future__ import annotations

from typing import Any

import psycopg

SCHEMA = """
create table if not exists payments (
    payment_id   text primary key,
    merchant     text not null,
    currency     char(3) not null,
    amount_minor bigint not null check (amount_minor > 0),
    paid_at      timestamptz not null,
    batch_id     text not null
)
"""

INSERT = """
insert into payments (payment_id, merchant, currency, amount_minor, paid_at, batch_id)
values (%(payment_id)s, %(merchant)s, %(currency)s, %(amount_minor)s, %(paid_at)s, %(batch_id)s)
on conflict (payment_id) do nothing
"""


def write_payments(dsn: str, silver: list[dict[str, Any]], batch_id: str) -> int:
    """Insert ``silver`` in one transaction; returns the rows new to the table.

    A replayed batch (at-least-once delivery) inserts nothing twice: the first load wins.
    """
    with psycopg.connect(dsn) as conn:
        conn.execute(SCHEMA)
        if not silver:
            return 0
        with conn.cursor() as cur:
            cur.executemany(INSERT, [{**record, "batch_id": batch_id} for record in silver])
            return max(cur.rowcount, 0)
