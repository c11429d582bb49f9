"""Fixtures for fixture files, seeds and DLQ assertions (contract names in DESIGN.md)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from pytest_pipeline import config as _config
from pytest_pipeline.dlq import DlqFixture
from pytest_pipeline.seeding import SessionSeeds

if TYPE_CHECKING:
    import pandas
    import pyarrow

    from pytest_pipeline.fixture_files import FixtureStore

SEED_KEY = pytest.StashKey[int]()
STORE_KEY = pytest.StashKey["FixtureStore"]()


@pytest.fixture(scope="session")
def pipeline_config(pytestconfig: pytest.Config) -> _config.PipelineConfig:
    """The resolved ``[tool.pytest-pipeline]`` configuration of this session."""
    return _config.from_pytest(pytestconfig)


@pytest.fixture(scope="session")
def _pipeline_fixture_store(
    pytestconfig: pytest.Config, pipeline_config: _config.PipelineConfig
) -> FixtureStore:
    # One store per session: it parses each file once and hands out fresh copies.
    from pytest_pipeline.fixture_files import FixtureStore

    store = FixtureStore(
        pipeline_config.fixtures_dir,
        update=pipeline_config.update_fixtures,
        rootdir=pipeline_config.rootdir,
        max_bytes=int(pipeline_config.fixtures_max_mb * 1024 * 1024),
    )
    pytestconfig.stash[STORE_KEY] = store  # the plugin reports the files update mode wrote
    return store


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


@pytest.fixture
def pipeline_seed(request: pytest.FixtureRequest) -> int:
    """This test's seed (``random``, numpy and Faker are already seeded with it)."""
    seed: int = request.node.stash[SEED_KEY]
    return seed


@pytest.fixture(scope="session")
def pipeline_seeds(pipeline_config: _config.PipelineConfig) -> SessionSeeds:
    """Seeds for session- or module-scoped data: ``pipeline_seeds.derive(name)``."""
    return SessionSeeds(pipeline_config.seed)


@pytest.fixture
def dlq() -> DlqFixture:
    """``dlq.assert_count(source, expected)``: the DLQ-count assertion of this test."""
    return DlqFixture()
