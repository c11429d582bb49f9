"""The pytest side of transform contracts: expand each declaration at collection.

``transform_contract(...)`` returns a test function taking one argument; this hook
parametrizes it with the contract's scenarios, so each is an ordinary collected test (own node
id, ``-k``, ``--lf``, pytest-xdist). A bad declaration is a collection error naming the test.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import pytest

from pytest_pipeline import config as _config
from pytest_pipeline.contracts import CASE_ARG, CONTRACT_ATTR
from pytest_pipeline.contracts.spec import Contract
from pytest_pipeline.errors import ContractError

if TYPE_CHECKING:
    from pytest_pipeline.fixture_files.store import FixtureStore


def register(config: pytest.Config, resolved: _config.PipelineConfig) -> None:
    """Register the hook that expands each ``transform_contract`` into its scenarios."""
    config.pluginmanager.register(sys.modules[__name__], "pipeline-contracts")


def _store(config: pytest.Config) -> FixtureStore:
    """The fixture files as collection reads them (the session's store: same loader, limits)."""
    from pytest_pipeline.fixture_files.plugin import store_for

    return store_for(config, _config.from_pytest(config))


def _loader(config: pytest.Config) -> Any:
    def load(name: str, kind: str) -> Any:
        store = _store(config)
        if kind == "pandas":
            return store.load_dataframe(name)
        if kind == "arrow":
            return store.load_table(name)
        return store.load(name)

    return load


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    contract = getattr(metafunc.function, CONTRACT_ATTR, None)
    if not isinstance(contract, Contract):
        return
    from pytest_pipeline.contracts import scenarios

    test = metafunc.definition.nodeid
    try:
        prepared = scenarios.prepare(contract, test, _loader(metafunc.config))
        found = scenarios.cases(prepared)
    except ContractError as exc:
        # Reported like a broken test module: "ERROR collecting ...", the message alone.
        raise pytest.Collector.CollectError(str(exc)) from None
    metafunc.parametrize(
        CASE_ARG,
        [
            pytest.param(
                case,
                id=case.id,
                marks=[pytest.mark.skip(reason=case.skip_reason)] if case.skip_reason else [],
            )
            for case in found
        ],
    )
