"""Run the benchmarks and write their results into docs/benchmarks.md.

Usage: ``python bench/run.py [NAME ...]`` (default: every benchmark). Each benchmark owns one
section of docs/benchmarks.md between ``<!-- bench:NAME -->`` markers; the machine the run was
made on is recorded with it. Ratios are measured side by side in one run: these machines are
shared and noisy, so absolute figures vary between runs.
"""

from __future__ import annotations

import importlib
import re
import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"
BENCHMARKS = {
    "cold_start": "bench_cold_start",
    "services": "bench_services",
    "quality": "bench_quality",
    "budgets": "bench_budgets",
    "docker": "bench_docker",
    "synth": "bench_synth",
    "schema": "bench_schema",
    "template_check": "bench_template_check",
    "compare_keyed": "bench_compare_keyed",
}


def machine() -> str:
    """CPU model, cores, memory, OS and Python of this machine, one line."""
    # The same fingerprint as --pipeline-report's, so figures and reports name one machine.
    from pytest_pipeline.report.document import hardware_fingerprint

    hw = hardware_fingerprint()
    memory = f", {hw['memory_gib']:.0f} GiB" if hw.get("memory_gib") else ""
    return (
        f"{hw['cpu_model']}, {hw['cpu_count']} cores{memory}, {hw['os']} {hw['os_release']}, "
        f"Python {hw['python']}"
    )


def write_section(name: str, body: str) -> None:
    """Replace (or append) the section of benchmark ``name`` in docs/benchmarks.md."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d")
    block = (
        f"<!-- bench:{name} -->\n_Run {stamp} on {machine()}._\n\n{body.strip()}\n"
        f"<!-- /bench:{name} -->"
    )
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"<!-- bench:{name} -->.*?<!-- /bench:{name} -->", re.DOTALL)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else f"{text}\n{block}\n"
    DOC.write_text(text)


def main(names: list[str]) -> int:
    sys.path.insert(0, str(Path(__file__).parent))
    for name in names or list(BENCHMARKS):
        module = importlib.import_module(BENCHMARKS[name])
        print(f"running {name} ...", flush=True)
        body = module.run()
        print(body)
        write_section(name, body)
    print(f"wrote {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
