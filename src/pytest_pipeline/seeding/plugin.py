"""The pytest side of seeding: each test runs with its own seed, shown when it fails."""

from __future__ import annotations

import sys

import pytest

from pytest_pipeline.config import PipelineConfig
from pytest_pipeline.report.channel import channel_of
from pytest_pipeline.seeding import seeds as _seeds

SEED_KEY = pytest.StashKey[int]()


@pytest.fixture
def pipeline_seed(request: pytest.FixtureRequest) -> int:
    """This test's seed (``random``, numpy and Faker are already seeded with it)."""
    seed: int = request.node.stash[SEED_KEY]
    return seed


@pytest.fixture(scope="session")
def pipeline_seeds(pipeline_config: PipelineConfig) -> _seeds.SessionSeeds:
    """Seeds for session- or module-scoped data: ``pipeline_seeds.derive(name)``."""
    return _seeds.SessionSeeds(pipeline_config.seed)


def register(config: pytest.Config, resolved: PipelineConfig) -> None:
    """Register the seed fixtures and the hook that seeds each test."""
    config.pluginmanager.register(sys.modules[__name__], "pipeline-seed-fixtures")
    hooks = SeedHooks(resolved)
    config.pluginmanager.register(hooks, "pipeline-seeding")
    channel = channel_of(config)
    channel.on_report(hooks.send)
    # pytest-xdist: with seed = "random" each worker would draw its own (config reads it).
    channel.to_workers("seeding", lambda: hooks.base)


class SeedHooks:
    """Seeds ``random``, numpy and Faker before each test; names the seed of a failure."""

    def __init__(self, resolved: PipelineConfig) -> None:
        self.base = resolved.seed

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        seed = item.stash[SEED_KEY] = _seeds.derive_seed(self.base, item.nodeid)
        _seeds.seed_everything(seed)

    def send(self, item: pytest.Item, report: pytest.TestReport) -> None:
        """Report channel sender: a failed test's report says its seed."""
        if report.failed and SEED_KEY in item.stash:
            report.sections.append(
                (
                    "pytest-pipeline seed",
                    f"test seed {item.stash[SEED_KEY]} (base seed {self.base}); "
                    f"reproduce with --pipeline-seed {self.base}",
                )
            )
