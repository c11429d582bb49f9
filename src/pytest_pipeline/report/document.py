"""The end-of-run performance table and the ``--pipeline-report`` JSON document.

A report row is one performance test: its measurement and its budget. The JSON report holds
every section of :func:`pytest_pipeline.report.collect.run_report` (``performance``, ``dlq``,
``quality``, ...), the services used, and the hardware fingerprint of the machine. Two reports
are compared only when their hardware class (CPU model, cores, memory, OS, architecture) is the
same: timings from different machines say nothing about a code change.
"""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from pytest_pipeline.errors import CompareError

REPORT_VERSION = 1
LIBRARIES = (
    "pytest",
    "pytest-pipeline",
    "pytest-benchmark",
    "pytest-xdist",
    "numpy",
    "pandas",
    "pyarrow",
)
# Fingerprint keys that make up the hardware class: a difference in any refuses a comparison.
HARDWARE_CLASS = ("cpu_model", "cpu_count", "memory_gib", "os", "machine")


# --------------------------------------------------------------------------- fingerprint


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _memory_gib() -> float | None:
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None
    # Rounded to whole GiB: the kernel's figure moves by a few MiB between boots.
    return float(round(pages / 1024**3))


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def hardware_fingerprint() -> dict[str, Any]:
    """CPU model, cores, memory, OS, Python and key library versions of this machine."""
    return {
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "os": platform.system(),
        "os_release": platform.release(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "libraries": {name: _version(name) for name in LIBRARIES},
    }


def hardware_class_differences(earlier: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """``key: earlier != current`` for each hardware-class key that differs."""
    return [
        f"{key}: {earlier.get(key)!r} vs {current.get(key)!r} here"
        for key in HARDWARE_CLASS
        if earlier.get(key) != current.get(key)
    ]


# --------------------------------------------------------------------------- table


def _num(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _budget_text(limits: Mapping[str, Any]) -> str:
    parts = []
    if limits.get("max_seconds") is not None:
        parts.append(f"{limits['max_seconds']:.2f} s")
    if limits.get("min_records_per_second") is not None:
        parts.append(f"{limits['min_records_per_second']:,.0f}/s")
    if limits.get("max_memory_mb") is not None:
        parts.append(f"{limits['max_memory_mb']:,.0f} MB")
    return ", ".join(parts) or "-"


def table(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Aligned text lines: test, records, seconds, records/s, peak MB, budget, headroom %."""
    header = ("test", "records", "seconds", "records/s", "peak MB", "budget", "headroom")
    body = [
        (
            row["nodeid"],
            _num(row.get("records"), ",d"),
            _num(row.get("seconds"), ".3f"),
            _num(row.get("records_per_second"), ",.0f"),
            _num(row.get("peak_memory_mb"), ",.1f"),
            _budget_text(row.get("limits", {})),
            "-" if row.get("headroom_pct") is None else f"{row['headroom_pct']:+.0f}%",
        )
        for row in rows
    ]
    widths = [max(len(r[i]) for r in (header, *body)) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True))
        return "  ".join((first, *rest)).rstrip()

    return [line(header), *(line(cells) for cells in body)]


# --------------------------------------------------------------------------- JSON report


def build_report(
    sections: Mapping[str, Any], services: Sequence[Mapping[str, Any]], notes: Sequence[str]
) -> dict[str, Any]:
    """The ``--pipeline-report`` document."""
    document: dict[str, Any] = {
        "pytest_pipeline_report": REPORT_VERSION,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "hardware": hardware_fingerprint(),
        "services": list(services),
        "notes": list(notes),
    }
    document.setdefault("performance", [])
    for name, value in sections.items():
        document[name] = value
    return document


def write_report(path: Path, document: Mapping[str, Any]) -> None:
    """Write the JSON report (directories created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, sort_keys=False, default=str) + "\n")


def load_report(path: Path) -> dict[str, Any]:
    """Read an earlier ``--pipeline-report`` file, or raise :class:`CompareError` saying why."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise CompareError(f"--pipeline-compare: no such report file: {path}") from None
    except (OSError, ValueError) as error:
        raise CompareError(f"--pipeline-compare: cannot read {path}: {error}") from None
    if not isinstance(data, dict) or "pytest_pipeline_report" not in data:
        raise CompareError(
            f"--pipeline-compare: {path} is not a pytest-pipeline report "
            "(write one with --pipeline-report PATH)."
        )
    return data
