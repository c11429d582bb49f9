"""Performance budgets: which limits apply to a test, and honest measurement of a code block.

Limits (:func:`resolve_limits`): each of ``records``, ``max_seconds``, ``max_memory_mb`` and
``min_records_per_second`` comes from the test's ``performance(...)`` marker, else from the first
``[[tool.pytest-pipeline.budgets.override]]`` whose ``match`` glob matches the test id, else from
``[tool.pytest-pipeline.budgets]``. ``time_scale`` multiplies the time budget and divides the
throughput floor (slower hardware: more seconds, fewer records per second).

Measurement (:func:`measure`) takes one pass, with no profiler or tracing allocator attached:

* time: ``time.perf_counter()`` around the block, nothing else inside the timed section;
* memory: the peak resident set size (RSS) *added* by the block. On Linux the kernel's RSS
  high-water mark is reset before the block (``5`` written to ``/proc/self/clear_refs``) and read
  after it (``VmHWM``); the baseline is the RSS just before the block. This covers every
  allocation that touches memory, C extensions included (numpy, pyarrow, pandas), and costs
  nothing while the block runs. Elsewhere the process-lifetime peak (``getrusage``) is used: exact
  when the block sets a new process peak, else only an upper bound (the row says so).

Nothing collects garbage around the block: the block meets the garbage collector in the state
the test left it, as it would bare (see :func:`measure`).

See docs/performance.md for the known errors of both methods.
"""

from __future__ import annotations

import fnmatch
import os
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from typing import Any

from pytest_pipeline.config import PipelineConfig

MIB = 1024 * 1024
_CLEAR_REFS = "/proc/self/clear_refs"
_STATUS = "/proc/self/status"


# --------------------------------------------------------------------------- limits


@dataclass(frozen=True)
class Limits:
    """The budget of one test, ``time_scale`` already applied."""

    records: int | None
    max_seconds: float | None
    max_memory_mb: float | None
    min_records_per_second: float | None
    time_scale: float = 1.0
    source: str = "budgets"
    """Where the limits came from: ``marker``, ``override <glob>``, ``budgets`` (or a mix)."""
    origins: Mapping[str, str] = field(default_factory=dict)
    """Per limit, where it came from as breach lines say it (``the marker``, ...)."""

    def _from(self, key: str) -> str:
        origin = self.origins.get(key)
        return f" from {origin}" if origin else ""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (report rows)."""
        return asdict(self)


def _matches(nodeid: str, pattern: str) -> bool:
    # Node ids use "/" on every OS; a glob written for one file also matches its parametrized ids.
    return fnmatch.fnmatchcase(nodeid, pattern) or fnmatch.fnmatchcase(
        nodeid.split("[", 1)[0], pattern
    )


def resolve_limits(
    nodeid: str, marker_kwargs: Mapping[str, Any], resolved: PipelineConfig
) -> Limits:
    """The limits of test ``nodeid``: marker kwargs > first matching override > global budgets."""
    override = next((o for o in resolved.budgets.overrides if _matches(nodeid, o.match)), None)
    globals_: dict[str, Any] = {
        "records": None,
        "max_seconds": resolved.budgets.max_seconds,
        "max_memory_mb": resolved.budgets.max_memory_mb,
        "min_records_per_second": resolved.budgets.min_records_per_second,
    }
    values: dict[str, Any] = {}
    sources: list[str] = []
    origins: dict[str, str] = {}
    for key, default in globals_.items():
        if marker_kwargs.get(key) is not None:
            values[key], source = marker_kwargs[key], "marker"
        elif override is not None and getattr(override, key) is not None:
            values[key], source = getattr(override, key), f"override {override.match!r}"
        else:
            values[key], source = default, "budgets"
        if source not in sources and (values[key] is not None or source != "budgets"):
            sources.append(source)
        origins[key] = _origin_text(source, key, resolved)
    scale = resolved.budgets.time_scale
    if values["max_seconds"] is not None:
        values["max_seconds"] = float(values["max_seconds"]) * scale
    if values["min_records_per_second"] is not None:
        values["min_records_per_second"] = float(values["min_records_per_second"]) / scale
    if values["max_memory_mb"] is not None:
        values["max_memory_mb"] = float(values["max_memory_mb"])
    source = " + ".join(sources) or "budgets"
    return Limits(**values, time_scale=scale, source=source, origins=origins)


def _origin_text(source: str, key: str, resolved: PipelineConfig) -> str:
    """Where one limit came from, as a breach line names it."""
    if source == "marker":
        return "the marker"
    if source != "budgets":
        return source  # override '<glob>'
    default = resolved.origins.get(f"budgets.{key}", "default") == "default"
    return f"the default budgets.{key}" if default else f"budgets.{key}"


# --------------------------------------------------------------------------- results


@dataclass
class Result:
    """What one measurement found (``budget.result``)."""

    seconds: float
    records: int | None = None
    peak_memory_mb: float | None = None
    memory_method: str = "none"
    """``hwm-reset`` (exact peak of the block), ``maxrss`` (upper bound), or ``none``."""
    timing: str = "perf_counter"
    """``perf_counter`` (one run of the block) or ``benchmark-median`` (pytest-benchmark)."""

    @property
    def records_per_second(self) -> float | None:
        """Records divided by seconds, when the record count is known."""
        if self.records is None or self.seconds <= 0:
            return None
        return self.records / self.seconds

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form, with ``records_per_second`` included."""
        data = asdict(self)
        data["records_per_second"] = self.records_per_second
        return data


def _count(value: float) -> str:
    return f"{value:,.0f}"


def breaches(result: Result, limits: Limits) -> list[str]:
    """One line per broken limit (time and throughput share a line: they describe one run).

    Example: ``performance budget exceeded: 100,000 records in 12.31 s (max 10.00 s) =
    8,123 records/s (min 10,000/s)``.
    """
    scaled = f", time_scale {limits.time_scale:g}" if limits.time_scale != 1.0 else ""
    slow = limits.max_seconds is not None and result.seconds > limits.max_seconds
    rate = result.records_per_second
    floor = limits.min_records_per_second
    starved = rate is not None and floor is not None and rate < floor
    lines: list[str] = []
    if slow or starved:
        what = f"{_count(result.records)} records in " if result.records is not None else ""
        line = f"performance budget exceeded: {what}{result.seconds:.2f} s"
        if slow:
            line += f" (max {limits.max_seconds:.2f} s{limits._from('max_seconds')}{scaled})"
        if rate is not None:
            line += f" = {_count(rate)} records/s"
            if starved:
                origin = limits._from("min_records_per_second")
                line += f" (min {_count(floor or 0)}/s{origin}{scaled})"
        if result.timing == "benchmark-median":
            line += " [pytest-benchmark median]"
        lines.append(line)
    peak = result.peak_memory_mb
    if peak is not None and limits.max_memory_mb is not None and peak > limits.max_memory_mb:
        what = f"{_count(result.records)} records with " if result.records is not None else ""
        bound = " (upper bound: maxrss)" if result.memory_method == "maxrss" else ""
        lines.append(
            f"performance budget exceeded: {what}peak memory {peak:,.1f} MB"
            f"{bound} (max {limits.max_memory_mb:,.1f} MB{limits._from('max_memory_mb')})"
        )
    return lines


def unchecked_floor(result: Result, limits: Limits) -> str | None:
    """Why a configured throughput floor could not be checked (no record count), or None."""
    if limits.min_records_per_second is None or result.records is not None:
        return None
    return (
        f"min_records_per_second = {_count(limits.min_records_per_second)} was not checked: "
        "the measurement has no record count. Pass records= to budget.measure() / budget.run(), "
        "or set records in the test's performance marker or its budgets.override."
    )


def headroom(result: Result, limits: Limits) -> float | None:
    """The smallest margin left under any limit, in % of that limit (negative: over budget)."""
    margins: list[float] = []
    if limits.max_seconds:
        margins.append((limits.max_seconds - result.seconds) / limits.max_seconds)
    rate = result.records_per_second
    if rate is not None and limits.min_records_per_second:
        margins.append((rate - limits.min_records_per_second) / limits.min_records_per_second)
    if result.peak_memory_mb is not None and limits.max_memory_mb:
        margins.append((limits.max_memory_mb - result.peak_memory_mb) / limits.max_memory_mb)
    return round(min(margins) * 100, 1) if margins else None


# --------------------------------------------------------------------------- memory probe


def _status_kib(field: bytes) -> int:
    with open(_STATUS, "rb") as status:
        for line in status:
            if line.startswith(field):
                return int(line.split()[1])
    raise OSError(f"{field.decode()} not in {_STATUS}")


def _reset_hwm() -> bool:
    try:
        with open(_CLEAR_REFS, "w") as clear:
            clear.write("5")
    except OSError:
        return False
    return True


def _detect_method() -> str:
    if sys.platform.startswith("linux") and os.path.exists(_CLEAR_REFS):
        try:
            if _reset_hwm() and _status_kib(b"VmHWM:") <= _status_kib(b"VmRSS:") + 64:
                return "hwm-reset"
        except (OSError, ValueError):
            pass
    try:
        import resource  # noqa: F401  (POSIX only)
    except ImportError:
        return "none"
    return "maxrss"


_METHOD: str | None = None


def memory_method() -> str:
    """How this process measures peak memory (decided once): hwm-reset, maxrss or none."""
    global _METHOD
    if _METHOD is None:
        _METHOD = _detect_method()
    return _METHOD


def _maxrss_kib() -> int:
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak  # macOS reports bytes


class PeakMemoryProbe:
    """Peak RSS added between :meth:`start` and :meth:`stop` (both outside any timed section)."""

    def __init__(self) -> None:
        self.method = memory_method()
        self._baseline_kib = 0

    def start(self) -> None:
        """Reset the high-water mark and take the baseline (no garbage collection: see measure)."""
        if self.method == "hwm-reset":
            _reset_hwm()
            self._baseline_kib = _status_kib(b"VmRSS:")
        elif self.method == "maxrss":
            self._baseline_kib = _status_rss_kib_portable()

    def stop(self) -> float | None:
        """Peak added, in MiB (``None`` when this platform cannot tell)."""
        if self.method == "hwm-reset":
            peak = _status_kib(b"VmHWM:")
        elif self.method == "maxrss":
            peak = _maxrss_kib()
        else:
            return None
        return max(0, peak - self._baseline_kib) / 1024


def _status_rss_kib_portable() -> int:
    # Current RSS: /proc where it exists, else psutil when installed (macOS), else 0, which
    # turns the figure into the process-lifetime peak: still an upper bound, as documented.
    try:
        return _status_kib(b"VmRSS:")
    except (OSError, ValueError):
        pass
    try:
        import psutil
    except ImportError:
        return 0
    return int(psutil.Process().memory_info().rss) // 1024


# --------------------------------------------------------------------------- measuring


@contextmanager
def measure(
    records: int | None = None,
    *,
    memory: bool = True,
    pause_dlq: bool = True,
) -> Iterator[Result]:
    """Time the block with ``perf_counter`` and (``memory=True``) take its added peak RSS.

    The yielded :class:`Result` is filled in when the block ends. Only the block runs between
    the two ``perf_counter`` reads: the memory baseline and the peak reading happen outside them.
    With ``pause_dlq`` the DLQ rule does no work inside the block (pytest formats no
    assertion-pass explanations there).

    No garbage is collected before the block: a ``gc.collect()`` resets the collector's count of
    long-lived objects, which Python cannot restore, and so adds or removes full collections
    inside the block (a block over a loaded 200,000-object heap read 4x its bare time). The
    block runs on the collector's schedule as it finds it, exactly as it would bare.
    """
    from pytest_pipeline.dlq.rule import paused_watcher

    result = Result(seconds=0.0, records=records)
    probe = PeakMemoryProbe() if memory else None
    if probe is not None:
        probe.start()
    with paused_watcher() if pause_dlq else nullcontext():
        started = time.perf_counter()
        try:
            yield result
        finally:
            result.seconds = time.perf_counter() - started
    if probe is not None:
        result.peak_memory_mb = probe.stop()
        result.memory_method = probe.method
