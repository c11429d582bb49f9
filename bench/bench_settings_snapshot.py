"""What setting back the server-wide settings costs per test (docs/services.md).

A database handed out and dropped as the ``postgres`` fixture does (``create_database``, which
takes the settings, then ``close(delete=True)``, which sets them back), against the same
without the settings (template check, clone, drop), alternated on one local server.

Run ``python bench/bench_settings_snapshot.py [TESTS]`` (default 100 of each).
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


def _one(endpoint: PostgresEndpoint, with_settings: bool) -> float:
    name = f"pp-bench-{uuid.uuid4().hex[:8]}"
    began = time.perf_counter()
    if with_settings:
        db = pg.create_database(endpoint, name)
    else:
        _, roles = pg._check_template(endpoint)
        db = pg.PostgresDatabase(endpoint, pg._clone(endpoint, name), roles_before=roles)
    db.close(delete=True)
    return (time.perf_counter() - began) * 1000


def main(tests: int) -> None:
    record = local.start("postgres", Path(tempfile.mkdtemp()), root_pid=os.getpid(), timeout=60)
    try:
        endpoint = record.endpoint
        assert isinstance(endpoint, PostgresEndpoint)
        pg.ensure_template(endpoint)
        for _ in range(5):  # warm up
            _one(endpoint, True)
            _one(endpoint, False)
        with_, without = [], []
        for _ in range(tests):
            with_.append(_one(endpoint, True))
            without.append(_one(endpoint, False))
        a, b = statistics.median(with_), statistics.median(without)
        print("| per test (median) | with settings | without | difference |")
        print("|---|---|---|---|")
        print(f"| {tests} databases | {a:.2f} ms | {b:.2f} ms | {a - b:+.2f} ms |")
    finally:
        pg.close_admin_connections()
        local.stop(record)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100)
