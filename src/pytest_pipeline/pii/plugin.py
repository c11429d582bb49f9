"""``fixtures_pii``: scan the fixture files at collection, cached in pytest's cache.

``error`` turns hits into a collection error (the run stops before any test), ``warn`` into a
:class:`~pytest_pipeline.errors.PipelineWarning`, ``off`` skips the scan. The scanner's state
(stat and content hash of each file, masked hits per hash) lives in ``config.cache``, so an
unchanged tree is a directory walk; the counters of the last scan are kept next to it.
"""

from __future__ import annotations

import linecache
import os
import warnings
from collections.abc import Generator
from typing import TYPE_CHECKING

import pytest

from pytest_pipeline.config import PipelineConfig
from pytest_pipeline.errors import PipelineWarning
from pytest_pipeline.report.channel import worker_id

if TYPE_CHECKING:
    from pytest_pipeline.pii.scanner import Hit

#: pytest cache keys: the scanner's state, and the counters of the last scan.
STATE_KEY = "pytest-pipeline/pii/state"
STATS_KEY = "pytest-pipeline/pii/last-scan"
# Beyond this line a warning names line 0 (the message still holds each hit's line).
_MAX_SHOWN_LINE = 100_000


def register(config: pytest.Config, resolved: PipelineConfig) -> None:
    """Register the hooks that scan the fixture files for personal data."""
    config.pluginmanager.register(PiiHooks(config, resolved), "pipeline-fixtures-pii")


class PiiHooks:
    """Scans ``fixtures_dir`` once per session, after collection."""

    def __init__(self, config: pytest.Config, resolved: PipelineConfig) -> None:
        self.config = config
        self.resolved = resolved

    def _should_scan(self) -> bool:
        if self.resolved.fixtures_pii == "off" or not self.resolved.fixtures_dir.is_dir():
            return False
        # pytest-xdist: the controller scans, before any worker runs a test.
        return worker_id(self.config) is None

    @pytest.hookimpl(wrapper=True)
    def pytest_collection(self, session: pytest.Session) -> Generator[None, object, object]:
        result = yield
        if self._should_scan():
            self._scan(session)
        return result

    def _scan(self, session: pytest.Session) -> None:
        from pytest_pipeline.pii import scanner

        root = self.resolved.fixtures_dir.resolve()
        prefix = os.path.relpath(root, self.resolved.rootdir.resolve()).replace(os.sep, "/")
        prefix = "" if prefix == "." else prefix + "/"
        cache = getattr(self.config, "cache", None)  # None under -p no:cacheprovider
        state = cache.get(STATE_KEY, None) if cache is not None else None
        result, new_state = scanner.scan_tree(
            root,
            allow=self.resolved.fixtures_pii_allow,
            limit=int(self.resolved.fixtures_max_mb * 1024 * 1024),
            state=state,
            display_prefix=prefix,
        )
        if cache is not None:
            if new_state != state:
                cache.set(STATE_KEY, new_state)
            cache.set(STATS_KEY, result.stats())
        if not result.hits:
            return
        message = scanner.report(result, prefix)
        if self.resolved.fixtures_pii == "error":
            # What pytest makes of a broken test module: "ERROR collecting ...", no test runs.
            nodeid = prefix.rstrip("/") or "."
            report = pytest.CollectReport(nodeid, "failed", message, result=[])
            session.ihook.pytest_collectreport(report=report)
            # pytest stops on a collection error before the test loop; xdist's loop does not.
            xdist = self.config.pluginmanager.has_plugin("dsession")
            if xdist and not self.config.option.continue_on_collection_errors:
                raise session.Interrupted("1 error during collection")
        else:
            _warn_at(root / result.hits[0].file, result.hits[0], prefix, message)


def _warn_at(path: os.PathLike[str], hit: Hit, prefix: str, message: str) -> None:
    """Warn with the location of the first hit, its masked form as the source line.

    A warnings summary shows the source line of a warning's location (read by linecache);
    the file's real line holds the value, so linecache is given the masked description
    instead (an entry without mtime, which linecache.checkcache leaves alone).
    """
    filename = os.fspath(path)
    lineno = hit.line if hit.line is not None and hit.line <= _MAX_SHOWN_LINE else 0
    if lineno:
        lines = ["\n"] * (lineno - 1) + [hit.describe(prefix) + "\n"]
        linecache.cache[filename] = (0, None, lines, filename)
    warnings.warn_explicit(PipelineWarning(message), PipelineWarning, filename, lineno)
