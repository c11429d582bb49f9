"""Session hooks of the services: announce starts, remember failures, stop servers at the end."""

from __future__ import annotations

import os
import threading
from collections.abc import Generator
from typing import Any

import pytest

from pytest_pipeline.config import SERVICES, PipelineConfig
from pytest_pipeline.errors import PipelineError
from pytest_pipeline.reporting import write_notes
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
        workerinput = getattr(config, "workerinput", None)
        if workerinput is not None:
            self.manager.docker_session = workerinput.get("pipeline_docker_session")
            self.manager.auto_docker = workerinput.get("pipeline_auto_docker")
        config.stash[MANAGER_KEY] = self.manager
        self.kept: list[str] = []
        self._docker_session: str | None = None
        self._reaper: threading.Thread | None = None
        self._docker_checked = False
        self._reaper_note: str | None = None
        self._reaper_reported = False

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        # xdist controller: every worker shares this run's directory and owner pid.
        node.workerinput["pipeline_run"] = self.manager.run.to_workerinput()
        if self.manager.resolved.backend == "auto":
            node.workerinput["pipeline_auto_docker"] = self.manager.auto_picks_docker()
            # The controller runs no test to carry its line (why auto falls back): say it now.
            write_notes(self.config, self.manager.notes)
            self.manager.notes.clear()
        if not self._docker_checked and self.manager.uses_docker():
            self._docker_checked = True
            # Containers must live as long as this process, not as long as the worker that
            # started them: workers label them with this process's session, whose reaper
            # starts here, in the background, while the workers boot.
            from pytest_pipeline.services import docker

            try:
                self._docker_session = docker.owner_session()
            except PipelineError as exc:  # e.g. no docker extra: each test says so itself
                self._reaper_note = str(exc)
            else:
                self._reaper = threading.Thread(target=self._start_reaper, daemon=True)
                self._reaper.start()
        if self._docker_session is not None:
            node.workerinput["pipeline_docker_session"] = self._docker_session

    def _start_reaper(self) -> None:
        from pytest_pipeline.services import docker

        try:
            self._reaper_note = docker.ensure_reaper(timeout=self.manager.resolved.startup_timeout)
        except Exception as exc:  # a background thread: never a bare traceback
            self._reaper_note = f"docker: the reaper did not start: {exc}"

    def _write(self, line: str) -> None:
        terminal = self.config.pluginmanager.get_plugin("terminalreporter")
        if terminal is not None:
            terminal.write_line(f"pytest-pipeline: {line}")

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
        if report.failed and report.when in ("setup", "call"):
            # "Connection refused" alone hides the cause: say that the server died, and why.
            for message in self._dead_servers(services_of(item)):
                report.sections.append(("pytest-pipeline: a server died", message))
        # Plain attributes reach the xdist controller with the report.
        if self.manager.notes:
            report.pipeline_notes = list(self.manager.notes)  # type: ignore[attr-defined]
            self.manager.notes.clear()
        if self.manager.containers_started and self.manager.docker_session is not None:
            report.pipeline_containers = True  # type: ignore[attr-defined]
            self.manager.containers_started = False
        if self.manager.kept:
            report.pipeline_kept = list(self.manager.kept)  # type: ignore[attr-defined]
            self.manager.kept.clear()
        return report

    def _dead_servers(self, names: list[str]) -> list[str]:
        """What :func:`local.died` says of this run's local servers of ``names`` that died."""
        if not names:
            return []
        from pytest_pipeline import _safedir

        state = _safedir.read_json(self.manager.run.run_dir / "state.json") or {}
        messages: list[str] = []
        for name in names:
            record = (state.get(name) or {}).get("record") or {}
            if "watchdog_pid" not in record:  # not a local server (a container, external)
                continue
            from pytest_pipeline.services import local

            message = local.died(local.ServerRecord.from_dict(record))
            if message:
                messages.append(message)
        return messages

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        write_notes(self.config, getattr(report, "pipeline_notes", ()))
        self.kept.extend(getattr(report, "pipeline_kept", ()))
        if getattr(report, "pipeline_containers", False) and not self._reaper_reported:
            # Said once, and only to runs that started containers.
            self._reaper_reported = True
            if self._reaper is not None:
                self._reaper.join(timeout=30)
            if self._reaper_note:
                self._write(self._reaper_note)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.kept:
            terminalreporter.section("pytest-pipeline: kept after failure")
            for line in self.kept:
                terminalreporter.write_line(line)
            if any(self.manager.backend_for(name) != "external" for name in SERVICES):
                terminalreporter.write_line(
                    "note: the servers this run started stop when it ends; inspect kept data "
                    "while the run is paused (e.g. with --pdb), or use an external server."
                )

    @pytest.hookimpl(trylast=True)
    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if self.manager.run.root_pid != os.getpid():
            return
        if self._reaper is not None:
            self._reaper.join(timeout=30)
        for problem in self.manager.shutdown():
            self._write(problem)
