"""The pytest side of the run report: ``--pipeline-report PATH`` writes it when the run ends."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from pytest_pipeline.config import PipelineConfig
from pytest_pipeline.report.channel import worker_id
from pytest_pipeline.report.collect import run_report


def register(config: pytest.Config, resolved: PipelineConfig) -> None:
    """Register the report writer when ``--pipeline-report`` asks for a report."""
    path = resolved.report
    if path and worker_id(config) is None:  # the summary process writes it
        config.pluginmanager.register(ReportHooks(config, Path(path)), "pipeline-report")


class ReportHooks:
    """Writes the report after every feature has added its section to it."""

    def __init__(self, config: pytest.Config, path: Path) -> None:
        self.config = config
        self.path = path

    @pytest.hookimpl(wrapper=True)
    def pytest_terminal_summary(self, terminalreporter: Any) -> Generator[None, None, None]:
        result = yield  # the features' summaries fill the run report
        from pytest_pipeline.report import document

        report = run_report(self.config)
        built = document.build_report(report.sections, report.services, report.notes)
        document.write_report(self.path, built)
        terminalreporter.write_line(f"pytest-pipeline: report written to {self.path}")
        return result
