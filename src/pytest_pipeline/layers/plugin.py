"""The pytest side of the layers: the markers, marking by directory and the marker checks."""

from __future__ import annotations

from collections.abc import Generator

import pytest

from pytest_pipeline.config import PipelineConfig
from pytest_pipeline.layers import markers as _markers


def register(config: pytest.Config, resolved: PipelineConfig) -> None:
    """Register the layer markers and the collection hook that applies and checks them."""
    _markers.register(config)
    config.pluginmanager.register(LayerHooks(resolved), "pipeline-layers")


class LayerHooks:
    """Marks tests by their layer directory and reports bad markers as collection errors."""

    def __init__(self, resolved: PipelineConfig) -> None:
        self.resolved = resolved

    @pytest.hookimpl(wrapper=True)
    def pytest_collection_modifyitems(
        self, session: pytest.Session, items: list[pytest.Item]
    ) -> Generator[None, None, None]:
        # Before the other hooks, so `-m unit` selects tests marked by their directory.
        _markers.apply_layer_dirs(items, self.resolved.layer_dirs)
        yield
        bad: dict[str, list[str]] = {}
        for item in items:
            for violation in _markers.check_item(item, self.resolved.require_layer):
                bad.setdefault(violation.nodeid, []).append(violation.message)
        for nodeid, messages in bad.items():
            # A failed collect report is what pytest itself makes of a broken test module:
            # "ERROR collecting ...", and the run stops before running anything.
            report = pytest.CollectReport(nodeid, "failed", "\n".join(messages), result=[])
            session.ihook.pytest_collectreport(report=report)
        items[:] = [item for item in items if item.nodeid not in bad]
