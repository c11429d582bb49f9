"""Keyed comparison benchmark: 100,000 rows x 10 columns, rows in another order.

Times ``compare(actual, expected, key="id")`` (what ``assert_matches_fixture(..., key="id")``
runs after reading the file) for a DataFrame, a pyarrow Table and records as ``actual``, equal
and with 1 % of the rows changed (the diff is built and capped). Optionally times datacompy on
the same frames, when it is importable, for the comparison made in issue 13. Each run is a
fresh process. Run directly: ``python bench/bench_compare_keyed.py`` (prints Markdown).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

ROWS = 100_000
ROUNDS = 3

_CHILD = textwrap.dedent(
    """
    import json, statistics, sys, time

    import numpy as np
    import pandas as pd
    import pyarrow as pa

    from pytest_pipeline.fixture_files.compare import compare

    rows, rounds, engine = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    rng = np.random.default_rng(1234)
    frame = pd.DataFrame({
        "id": np.arange(rows),
        "customer": [f"c{i % 977}" for i in range(rows)],
        "region": rng.choice(["eu", "us", "apac"], rows),
        "amount": rng.uniform(0, 1000, rows).round(2),
        "fee": rng.uniform(0, 10, rows).round(4),
        "qty": rng.integers(1, 50, rows),
        "active": rng.integers(0, 2, rows).astype(bool),
        "day": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 365, rows), "D"),
        "code": [f"K{i:06d}" for i in range(rows)],
        "note": rng.choice(["", "vip", "late"], rows),
    })
    expected = pa.Table.from_pandas(frame).to_pylist()  # what a Parquet fixture gives
    shuffled = frame.sample(frac=1.0, random_state=7).reset_index(drop=True)
    changed = shuffled.copy()
    changed.loc[::100, "amount"] += 0.5

    def best(fn):
        times = []
        for _ in range(rounds):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return min(times)

    out = {}
    if engine == "ours":
        table = pa.Table.from_pandas(shuffled, preserve_index=False)
        records = table.to_pylist()
        assert compare(shuffled, expected, key="id").equal
        out["DataFrame, equal"] = best(lambda: compare(shuffled, expected, key="id"))
        out["pyarrow Table, equal"] = best(lambda: compare(table, expected, key="id"))
        out["records, equal"] = best(lambda: compare(records, expected, key="id"))
        diff = compare(changed, expected, key="id")
        assert diff.differing_rows == rows // 100, diff.differing_rows
        out["DataFrame, 1 % differ"] = best(lambda: compare(changed, expected, key="id"))
        out["DataFrame, ignore_order"] = best(
            lambda: compare(shuffled, expected, ignore_order=True)
        )
    else:
        import datacompy

        expected_frame = pd.DataFrame(expected)

        def run(actual):
            cmp = datacompy.PandasCompare(actual, expected_frame, join_columns="id")
            cmp.matches()
            return cmp.report()

        out["datacompy, DataFrame, equal"] = best(lambda: run(shuffled))
        out["datacompy, DataFrame, 1 % differ"] = best(lambda: run(changed))
    print(json.dumps(out))
    """
)


def _run(engine: str) -> dict[str, float] | None:
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(ROWS), str(ROUNDS), engine],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        if engine == "ours":
            raise SystemExit(proc.stderr)
        return None  # datacompy not importable: only our engine is reported
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def run() -> str:
    """The timings as Markdown, for bench/run.py (datacompy's rows only where it is installed)."""
    rows = dict(_run("ours") or {})
    rows.update(_run("datacompy") or {})
    lines = [
        f"Keyed comparison, {ROWS:,} rows x 10 columns in another order, best of {ROUNDS}:",
        "",
        "| case | seconds |",
        "|---|---|",
    ]
    lines += [f"| {case} | {seconds:.2f} |" for case, seconds in rows.items()]
    return "\n".join(lines)


def main() -> None:
    """Print the timings as a Markdown table."""
    print(run())


if __name__ == "__main__":
    main()
