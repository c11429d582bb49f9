"""Per-test databases with the project's schema: template clone vs running the schema per test.

A 20-table schema (keys, foreign keys, indexes, checks, a view, seed rows) on a local server
(the local backend). Side by side, alternated, each followed by the same drop:

* ``services.postgres.schema``: the schema is applied once to the template, each test's
  database is a clone of it (``create_database`` with the schema);
* the schema run per test, as fixtures without a template do it (pytest-postgresql's
  ``load=``): a clone of the empty template, then the schema's statements.

Run ``python bench/bench_schema.py [ROUNDS]`` (prints Markdown; default 30 of each) or
``python bench/run.py schema``.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from pytest_pipeline.services import local, schema
from pytest_pipeline.services import postgres as pg
from pytest_pipeline.services.endpoints import PostgresEndpoint

TABLES = 20


def schema_sql(tables: int = TABLES) -> str:
    """A schema of ``tables`` related tables with seed rows."""
    parts = []
    for n in range(tables):
        parent = f",\n    parent_id int REFERENCES t{n - 1} (id)" if n else ""
        parts.append(
            f"CREATE TABLE t{n} (\n    id serial PRIMARY KEY,\n    name text NOT NULL,\n"
            f"    amount numeric(12, 2) CHECK (amount >= 0),\n"
            f"    created timestamptz NOT NULL DEFAULT now(),\n    payload jsonb{parent}\n);\n"
            f"CREATE INDEX t{n}_name ON t{n} (name);\n"
            f"CREATE INDEX t{n}_created ON t{n} (created);\n"
            f"INSERT INTO t{n} (name, amount)\n"
            "    SELECT 'seed ' || i, i FROM generate_series(1, 5) i;\n"
        )
    parts.append(
        "CREATE VIEW t_all AS SELECT id, name FROM t0 UNION ALL SELECT id, name FROM t1;\n"
    )
    return "".join(parts)


def _ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.1f} ms"


def measure(endpoint: PostgresEndpoint, rounds: int, root: Path) -> list[tuple[str, str]]:
    """Rows of (what, median) for ``rounds`` per-test databases of each kind, alternated."""
    (root / "schema.sql").write_text(schema_sql())
    loaded = schema.load(root, ("schema.sql",), None, None)
    assert loaded is not None
    pg.ensure_template(endpoint)
    start = time.perf_counter()
    pg.ensure_template(endpoint, loaded)
    build = time.perf_counter() - start
    cloned: list[float] = []
    per_test: list[float] = []
    for index in range(rounds):
        for with_template in (True, False) if index % 2 else (False, True):
            name = f"pp-bench-{uuid.uuid4().hex[:8]}"
            start = time.perf_counter()
            if with_template:
                db = pg.create_database(endpoint, name, loaded)
                cloned.append(time.perf_counter() - start)
            else:
                db = pg.create_database(endpoint, name)
                loaded.apply(endpoint, db.name)
                per_test.append(time.perf_counter() - start)
            db.close(delete=True)
    ratio = statistics.median(per_test) / statistics.median(cloned)
    statements = len(schema.split_statements(schema_sql()))
    return [
        (
            f"database from the schema's template (median of {rounds})",
            _ms(cloned),
        ),
        (
            f"empty database + the schema's {statements} statements (median of {rounds})",
            _ms(per_test),
        ),
        ("per-test saving of the template", f"{ratio:.1f}x faster"),
        ("one-time template build (per schema change; cached across runs)", _ms([build])),
    ]


def run(rounds: int = 30) -> str:
    """The Markdown table for docs/benchmarks.md."""
    with tempfile.TemporaryDirectory(prefix="pp-bench-schema-") as tmp:
        record = local.start("postgres", Path(tmp), root_pid=os.getpid(), timeout=120)
        try:
            rows = measure(record.endpoint, rounds, Path(tmp))  # type: ignore[arg-type]
        finally:
            pg.close_admin_connections()
            local.stop(record)
    lines = [
        f"Per-test Postgres database with a {TABLES}-table schema (keys, foreign keys, 2 "
        "indexes and 5 seed rows per table, a view), local backend, each followed by its drop:",
        "",
        "| what | median |",
        "|---|---|",
    ]
    lines += [f"| {what} | {value} |" for what, value in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    print(run(int(sys.argv[1]) if len(sys.argv) > 1 else 30))
