"""pytest-xdist integration, registered only when xdist is installed (detected once)."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_pipeline.config import PipelineConfig


class XdistHooks:
    """Controller-side hooks: hand each worker what must be the same on every worker."""

    def __init__(self, resolved: PipelineConfig) -> None:
        self.resolved = resolved

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput["pipeline_seed"] = self.resolved.seed
