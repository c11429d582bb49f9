"""The layer markers: registration, automatic marking by directory, and argument checks.

Violations are collected per test and reported by the plugin as collection errors that name
the test, so a bad marker never turns into a confusing failure later in the run.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import NamedTuple

import pytest

from pytest_pipeline.constants import LAYERS

PERFORMANCE_KWARGS = ("records", "max_seconds", "max_memory_mb", "min_records_per_second")


class MarkerSpec(NamedTuple):
    """A marker the plugin registers: its signature as shown by ``pytest --markers``."""

    name: str
    signature: str
    help: str

    @property
    def line(self) -> str:
        return f"{self.signature}: {self.help}"


MARKERS: tuple[MarkerSpec, ...] = (
    MarkerSpec("unit", "unit", "pipeline layer: fast tests of pure transforms, no services."),
    MarkerSpec(
        "integration",
        "integration",
        "pipeline layer: end to end against real Kafka / Postgres / S3; must assert the "
        "expected dead-letter-queue count (dlq.assert_count, assert_dlq_count, "
        "assert ... dlq ... == N) unless marked no_dlq.",
    ),
    MarkerSpec(
        "performance",
        "performance(records=None, max_seconds=None, max_memory_mb=None, "
        "min_records_per_second=None)",
        "pipeline layer: throughput and memory budgets on realistic volumes; the arguments "
        "override [tool.pytest-pipeline.budgets].",
    ),
    MarkerSpec("quality", "quality", "pipeline layer: data-quality expectations."),
    MarkerSpec(
        "no_dlq",
        "no_dlq(reason)",
        "exempt one integration test from the DLQ-count rule; the reason is required.",
    ),
)


class MarkerViolation(NamedTuple):
    """Something wrong with one test's markers; ``message`` names the test and the fix."""

    nodeid: str
    message: str


def register(config: pytest.Config) -> None:
    """Register every marker so ``--strict-markers`` passes and ``--markers`` documents them."""
    for spec in MARKERS:
        config.addinivalue_line("markers", spec.line)


def layer_for_path(path: Path, layer_dirs: Mapping[str, Path]) -> str | None:
    """The layer whose configured directory contains ``path`` (deepest directory wins)."""
    best: tuple[int, str] | None = None
    for layer, directory in layer_dirs.items():
        if path.is_relative_to(directory):
            depth = len(directory.parts)
            if best is None or depth > best[0]:
                best = (depth, layer)
    return best[1] if best else None


def apply_layer_dirs(items: Iterable[pytest.Item], layer_dirs: Mapping[str, Path]) -> None:
    """Mark tests under a layer directory with that layer, unless they carry it already."""
    # Many tests share a file: resolve each file once (pathlib checks cost ~0.1 ms apiece).
    by_file: dict[Path, str | None] = {}
    for item in items:
        path = item.path
        if path not in by_file:
            by_file[path] = layer_for_path(path, layer_dirs)
        layer = by_file[path]
        if layer is not None and item.get_closest_marker(layer) is None:
            item.add_marker(layer)


_NAMES_KEY = pytest.StashKey[frozenset[str]]()


def marker_names(item: pytest.Item) -> frozenset[str]:
    """The names of the markers ``item`` carries, read once (after collection: markers that a
    fixture applies while the test runs are not in it)."""
    names = item.stash.get(_NAMES_KEY, None)
    if names is None:
        names = item.stash[_NAMES_KEY] = frozenset(mark.name for mark in item.iter_markers())
    return names


def layers_of(item: pytest.Item) -> tuple[str, ...]:
    """The layer markers a test carries."""
    names = marker_names(item)
    return tuple(layer for layer in LAYERS if layer in names)


def _check_number(nodeid: str, name: str, value: object, *, integer: bool) -> str | None:
    kind = "a positive integer" if integer else "a positive number"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"performance({name}=...) must be {kind}, got {value!r}"
    if integer and not isinstance(value, int):
        return f"performance({name}=...) must be {kind}, got {value!r}"
    if math.isnan(value) or value <= 0:
        return f"performance({name}=...) must be {kind}, got {value!r}"
    return None


def check_item(item: pytest.Item, require_layer: bool) -> list[MarkerViolation]:
    """Every marker problem of one test."""
    problems: list[str] = []
    for mark in item.iter_markers("performance"):
        if mark.args:
            problems.append(
                "performance(...) takes keyword arguments only "
                f"({', '.join(PERFORMANCE_KWARGS)}), got positional {mark.args!r}"
            )
        for name, value in mark.kwargs.items():
            if name not in PERFORMANCE_KWARGS:
                problems.append(
                    f"performance() got an unknown argument {name!r}; "
                    f"valid: {', '.join(PERFORMANCE_KWARGS)}"
                )
                continue
            problem = _check_number(item.nodeid, name, value, integer=name == "records")
            if problem:
                problems.append(problem)
    for mark in item.iter_markers("no_dlq"):
        reason = mark.kwargs.get("reason", mark.args[0] if mark.args else None)
        extra = set(mark.kwargs) - {"reason"}
        if not isinstance(reason, str) or not reason.strip() or extra or len(mark.args) > 1:
            problems.append(
                "no_dlq needs one reason saying why this test has no DLQ to check, e.g. "
                '@pytest.mark.no_dlq(reason="reads only; the pipeline has no DLQ here")'
            )
    if require_layer and not layers_of(item):
        problems.append(
            "has no layer marker and require_layer = true; mark it with one of "
            f"{', '.join('@pytest.mark.' + layer for layer in LAYERS)} or move it under a "
            "directory of layer_dirs"
        )
    return [MarkerViolation(item.nodeid, f"{item.nodeid}: {problem}") for problem in problems]
