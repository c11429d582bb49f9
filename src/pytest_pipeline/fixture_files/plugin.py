"""The pytest side of fixture files: the loading and comparing fixtures, and the list of files
``--pipeline-update-fixtures`` wrote."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from pytest_pipeline.config import PipelineConfig
from pytest_pipeline.report.channel import channel_of, send

if TYPE_CHECKING:
    import pandas
    import pyarrow

    from pytest_pipeline.fixture_files.store import FixtureStore

STORE_KEY = pytest.StashKey["FixtureStore"]()


def store_for(config: pytest.Config, resolved: PipelineConfig) -> FixtureStore:
    """The session's fixture store (one per session: it parses each file once)."""
    from pytest_pipeline.fixture_files.store import FixtureStore

    store = config.stash.get(STORE_KEY, None)
    if store is None:
        store = config.stash[STORE_KEY] = FixtureStore(
            resolved.fixtures_dir,
            update=resolved.update_fixtures,
            rootdir=resolved.rootdir,
            max_bytes=int(resolved.fixtures_max_mb * 1024 * 1024),
        )
    return store


@pytest.fixture(scope="session")
def _pipeline_fixture_store(
    pytestconfig: pytest.Config, pipeline_config: PipelineConfig
) -> FixtureStore:
    return store_for(pytestconfig, pipeline_config)


@pytest.fixture
def load_fixture(_pipeline_fixture_store: FixtureStore) -> Callable[..., Any]:
    """``load_fixture(name, csv_raw=False)``: a file from ``fixtures_dir`` as Python data.

    A fresh copy; ``csv_raw=True`` keeps a CSV file's cells as the text written.
    """
    return _pipeline_fixture_store.load


@pytest.fixture
def load_fixture_as_dataframe(
    _pipeline_fixture_store: FixtureStore,
) -> Callable[..., pandas.DataFrame]:
    """``load_fixture_as_dataframe(name, csv_raw=False)``: a fixture file as a DataFrame."""
    return _pipeline_fixture_store.load_dataframe


@pytest.fixture
def load_fixture_as_table(
    _pipeline_fixture_store: FixtureStore,
) -> Callable[..., pyarrow.Table]:
    """``load_fixture_as_table(name, csv_raw=False)``: a fixture file as a pyarrow Table."""
    return _pipeline_fixture_store.load_table


@pytest.fixture
def assert_matches_fixture(_pipeline_fixture_store: FixtureStore) -> Callable[..., None]:
    """``assert_matches_fixture(actual, name, ...)``: compare with an expected file.

    Keywords: ``rel=``, ``abs=``, ``allow_empty=``, ``key=`` (match rows by these columns),
    ``ignore_order=``, ``ignore_columns=``, ``tolerance=`` (per column) and ``csv_raw=``; see
    docs/fixture-files.md. With ``--pipeline-update-fixtures`` the file is written from
    ``actual`` instead (sorted by ``key``); an empty ``actual`` only with ``allow_empty=True``.
    """
    return _pipeline_fixture_store.assert_matches


def register(config: pytest.Config, resolved: PipelineConfig) -> None:
    """Register the fixture-file fixtures; in update mode, also the list of files written."""
    config.pluginmanager.register(sys.modules[__name__], "pipeline-fixtures")
    if resolved.update_fixtures:  # only update mode writes files: no per-test hooks otherwise
        hooks = UpdateHooks(config, resolved)
        config.pluginmanager.register(hooks, "pipeline-fixture-updates")
        channel = channel_of(config)
        channel.on_report(hooks.send)
        channel.on_receive("fixture_files", hooks.receive)


class UpdateHooks:
    """Carries the files ``--pipeline-update-fixtures`` wrote to the summary process."""

    def __init__(self, config: pytest.Config, resolved: PipelineConfig) -> None:
        self.config = config
        self.rootdir = resolved.rootdir
        self.updated: list[str] = []
        self._reported = 0

    def send(self, item: pytest.Item, report: pytest.TestReport) -> None:
        """Report channel sender: the files written since the last report."""
        store = self.config.stash.get(STORE_KEY, None)
        if store is not None and len(store.updated) > self._reported:
            paths = [
                os.path.relpath(path, self.rootdir) for path in store.updated[self._reported :]
            ]
            self._reported = len(store.updated)
            send(report, "fixture_files", paths)

    def receive(self, report: pytest.TestReport, paths: list[str]) -> None:
        """Report channel receiver: remember the files for the summary."""
        self.updated.extend(paths)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.updated:
            terminalreporter.write_line(
                f"pytest-pipeline: --pipeline-update-fixtures wrote "
                f"{len(self.updated)} fixture file(s); review them before committing:"
            )
            for path in self.updated:
                terminalreporter.write_line(f"  {path}")
