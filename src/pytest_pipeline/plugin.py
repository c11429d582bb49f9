"""The ``pytest11`` entry point ``pipeline``: registers each feature's plugin.

Each feature package keeps its pytest side (hooks and fixtures) in its own ``plugin.py`` with a
``register(config, resolved)`` function. Only the hooks that must run before ``pytest_configure``
live here. Importing this module imports no data or client library: they load when used.
"""

from __future__ import annotations

import pytest

from pytest_pipeline import config as _config
from pytest_pipeline.contracts import plugin as _contracts
from pytest_pipeline.dlq import plugin as _dlq
from pytest_pipeline.fixture_files import plugin as _fixture_files
from pytest_pipeline.layers import plugin as _layers
from pytest_pipeline.performance import plugin as _performance
from pytest_pipeline.pii import plugin as _pii
from pytest_pipeline.quality import plugin as _quality
from pytest_pipeline.report import channel as _channel
from pytest_pipeline.report import plugin as _report
from pytest_pipeline.seeding import plugin as _seeding
from pytest_pipeline.services import plugin as _services
from pytest_pipeline.synth import plugin as _synth

# In registration order; each takes (config, resolved) and registers what it needs.
FEATURES = (
    _config,
    _layers,
    _seeding,
    _fixture_files,
    _dlq,
    _services,
    _quality,
    _synth,
    _performance,
    _contracts,
    _pii,
    _report,
)


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    # Before conftest.py and test modules are imported (and their asserts rewritten).
    _dlq.enable_assertion_pass_hook(early_config)


def pytest_addoption(parser: pytest.Parser) -> None:
    _config.add_options(parser)


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> int | None:
    if not _config.option_given(config, "doctor"):
        return None
    from pytest_pipeline.cli import doctor

    print(doctor.render(_config.from_pytest(config)))
    return 0


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    resolved = _config.from_pytest(config)  # a bad config stops the run before collection
    _channel.register(config)  # each feature's data to and from pytest-xdist workers
    for feature in FEATURES:
        feature.register(config, resolved)
