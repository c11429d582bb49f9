"""What the per-test Postgres isolation costs: the template check and the roles query.

Before each test's database is copied, ``create_database`` checks the template (one admin
query that also lists the roles); after the test, the roles tied to its database alone are
listed before it is dropped. On a local server (the local backend), side by side, alternated:

* a clone with the check (``create_database``'s two steps) vs without it (``_clone``);
* the check query on its own, and the roles query at teardown.

Run ``python bench/bench_template_check.py [CLONES]`` (prints Markdown; default 100 clones of
each kind).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from pytest_pipeline.services import local
from pytest_pipeline.services import postgres as pg
from pytest_pipeline.services.endpoints import PostgresEndpoint


def _ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.2f} ms"


def measure(endpoint: PostgresEndpoint, clones: int) -> list[tuple[str, str]]:
    """Rows of (what, median) for ``clones`` clones of each kind, alternated.

    Both kinds then run the same teardown (roles query, drop), so they differ only by the
    check. The check is timed where it runs, right after the previous test's drop: there any
    first query pays for the catalog changes of the drop, so a bare ``SELECT 1`` is shown too.
    """
    pg.ensure_template(endpoint)
    checked: list[float] = []
    bare: list[float] = []
    check: list[float] = []
    roles: list[float] = []
    select_one: list[float] = []
    for index in range(clones):
        for with_check in (True, False) if index % 2 else (False, True):
            name = f"pp-bench-{uuid.uuid4().hex[:8]}"
            start = time.perf_counter()
            if with_check:
                _, before = pg._check_template(endpoint)
                check.append(time.perf_counter() - start)
                pg._clone(endpoint, name)
                checked.append(time.perf_counter() - start)
            else:
                before = frozenset()
                pg._clone(endpoint, name)
                bare.append(time.perf_counter() - start)
            start = time.perf_counter()
            pg._test_roles(endpoint, name, before, [])
            roles.append(time.perf_counter() - start)
            pg.drop_database(endpoint, name)
            if not with_check:
                start = time.perf_counter()
                pg._admin(endpoint, "SELECT 1")
                select_one.append(time.perf_counter() - start)
    cost = statistics.median(checked) - statistics.median(bare)
    return [
        (f"clone with the template check (median of {clones})", _ms(checked)),
        (f"clone without it (median of {clones}, alternated)", _ms(bare)),
        ("difference of the medians", f"{cost * 1000:.2f} ms"),
        ("the check query, right after a drop", _ms(check)),
        ("`SELECT 1`, right after a drop", _ms(select_one)),
        ("the roles query at teardown", _ms(roles)),
    ]


def run(clones: int = 100) -> str:
    """The figures as Markdown, for bench/run.py (a local server of its own)."""
    with tempfile.TemporaryDirectory(prefix="pp-bench-template-") as run_dir:
        record = local.start("postgres", Path(run_dir), root_pid=os.getpid(), timeout=120)
        try:
            rows = measure(record.endpoint, clones)  # type: ignore[arg-type]
        finally:
            pg.close_admin_connections()
            local.stop(record)
    lines = [
        "What per-test isolation costs on a local server: the template check before each clone "
        "and the roles query after each test, clones with and without the check alternated.",
        "",
        "| what | median |",
        "|---|---|",
    ]
    lines += [f"| {what} | {value} |" for what, value in rows]
    return "\n".join(lines)


def main() -> None:
    print(run(int(sys.argv[1]) if len(sys.argv) > 1 else 100))


if __name__ == "__main__":
    main()
