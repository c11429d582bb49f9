"""Cold and warm start of the local servers, each measured in a fresh Python process.

"first start" is the very first start on a machine: for Postgres an empty cache directory,
so initdb runs once to build the cached data directory. "warm start" reuses that cache.
"ready" is ``ServerRecord.started_in``: from the ``start()`` call until the server answers
its protocol. "all three in threads" starts Postgres, Kafka and S3 at once from one process,
the way a session could, and reports the wall time until all are ready.

Run ``python bench/bench_cold_start.py [ROUNDS]`` (prints Markdown), or through
``bench/run.py`` once registered there as ``"cold_start": "bench_cold_start"``.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from pytest_pipeline.services import local

SERVICES = ("postgres", "kafka", "s3")

_ONE = textwrap.dedent(
    """
    import json, os, sys, time
    from pathlib import Path
    import pytest  # already loaded in a pytest process: not part of what we measure
    began = time.monotonic()
    from pytest_pipeline.services import local
    found = local.availability(sys.argv[1])
    checked = time.monotonic()
    record = local.start(sys.argv[1], Path(sys.argv[2]), root_pid=os.getpid(), timeout=120)
    local.stop(record)
    print(json.dumps({"import + availability": checked - began, "ready": record.started_in,
                      "description": record.description}))
    """
)

_ALL = textwrap.dedent(
    """
    import json, os, sys, time
    from concurrent.futures import ThreadPoolExecutor
    from pathlib import Path
    from pytest_pipeline.services import local
    run_dir = Path(sys.argv[1])
    began = time.monotonic()
    with ThreadPoolExecutor(3) as pool:
        records = list(pool.map(
            lambda s: local.start(s, run_dir, root_pid=os.getpid(), timeout=120),
            ["postgres", "kafka", "s3"]))
    wall = time.monotonic() - began
    for record in records:
        local.stop(record)
    print(json.dumps({"wall": wall, **{r.service: r.started_in for r in records}}))
    """
)


def _child(script: str, *args: str, env: dict[str, str] | None = None) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **(env or {})},
    )
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _s(value: object) -> str:
    return f"{float(str(value)):.3f}"


def run(rounds: int = 5) -> str:
    """Measure and return a Markdown table."""
    rows = [
        f"| service | what runs | first start: ready (s) | warm start: ready, median of "
        f"{rounds} (s) | min to max (s) | import + availability() (s) |",
        "|---|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory() as scratch:
        fresh_cache = {"XDG_CACHE_HOME": str(Path(scratch, "cache"))}
        for service in SERVICES:
            found = local.availability(service)
            if not found.ok:
                rows.append(f"| {service} | unavailable: {found.why_not} | | | | |")
                continue
            run_dir = Path(scratch, service)
            run_dir.mkdir()
            first = _child(_ONE, service, str(run_dir), env=fresh_cache)
            warm = [_child(_ONE, service, str(run_dir), env=fresh_cache) for _ in range(rounds)]
            ready = [float(str(w["ready"])) for w in warm]
            rows.append(
                f"| {service} | {found.how} | {_s(first['ready'])} | "
                f"{statistics.median(ready):.3f} | {min(ready):.3f} to {max(ready):.3f} | "
                f"{_s(warm[-1]['import + availability'])} |"
            )
        run_dir = Path(scratch, "all")
        run_dir.mkdir()
        together = [_child(_ALL, str(run_dir), env=fresh_cache) for _ in range(rounds)]
    wall = [float(str(t["wall"])) for t in together]
    rows += [
        "",
        f"All three in threads from one process (warm): wall time median "
        f"{statistics.median(wall):.3f} s (min {min(wall):.3f}, max {max(wall):.3f}).",
    ]
    return "\n".join(rows)


if __name__ == "__main__":
    print(run(int(sys.argv[1]) if len(sys.argv) > 1 else 5))
