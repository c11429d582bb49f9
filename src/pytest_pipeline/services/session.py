"""Session hooks of the services: announce starts, remember failures, stop servers at the end."""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any

import pytest

from pytest_pipeline.config import SERVICES, PipelineConfig
from pytest_pipeline.services.fixtures import CALL_FAILED_KEY, MANAGER_KEY, services_of
from pytest_pipeline.services.manager import RunInfo, ServiceManager


def run_info(config: pytest.Config) -> RunInfo:
    """This process's view of the run: its own (owner) or the controller's (xdist worker)."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and "pipeline_run" in workerinput:
        return RunInfo.from_workerinput(workerinput["pipeline_run"], workerinput["workerid"])
    return RunInfo.new()


class ServiceHooks:
    """Registered once per session by the plugin."""

    def __init__(self, config: pytest.Config, resolved: PipelineConfig) -> None:
        self.config = config
        self.manager = ServiceManager(resolved, run_info(config))
        config.stash[MANAGER_KEY] = self.manager
        self.kept: list[str] = []

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        # xdist controller: every worker shares this run's directory and owner pid.
        node.workerinput["pipeline_run"] = self.manager.run.to_workerinput()

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        self.manager.expect({name for item in items for name in services_of(item)})

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        if report.when == "call":
            item.stash[CALL_FAILED_KEY] = report.failed
        # Plain attributes reach the xdist controller with the report.
        if self.manager.notes:
            report.pipeline_notes = list(self.manager.notes)  # type: ignore[attr-defined]
            self.manager.notes.clear()
        if self.manager.kept:
            report.pipeline_kept = list(self.manager.kept)  # type: ignore[attr-defined]
            self.manager.kept.clear()
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        notes = getattr(report, "pipeline_notes", ())
        terminal = self.config.pluginmanager.get_plugin("terminalreporter")
        if notes and terminal is not None:
            # Start on a line of its own, also after xdist's progress dots.
            writer = getattr(terminal, "_tw", None)
            if writer is not None and int(getattr(writer, "width_of_current_line", 0)) > 0:
                terminal.write("\n")
            for note in notes:
                terminal.write_line(note)
        self.kept.extend(getattr(report, "pipeline_kept", ()))

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.kept:
            terminalreporter.section("pytest-pipeline: kept after failure")
            for line in self.kept:
                terminalreporter.write_line(line)
            if any(self.manager.backend_for(name) == "local" for name in SERVICES):
                terminalreporter.write_line(
                    "note: local servers stop when the run ends; inspect kept data while the "
                    "run is paused (e.g. with --pdb), or use an external server."
                )

    @pytest.hookimpl(trylast=True)
    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if self.manager.run.root_pid != os.getpid():
            return
        for problem in self.manager.shutdown():
            terminal = config.pluginmanager.get_plugin("terminalreporter")
            if terminal is not None:
                terminal.write_line(f"pytest-pipeline: {problem}")
