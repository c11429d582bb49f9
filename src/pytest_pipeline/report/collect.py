"""The run's report data, shared by the features that contribute to ``--pipeline-report``.

Each feature adds its rows under a section name on the process that prints the summary (the
single pytest process, or the xdist controller, which receives worker data on test reports).
"""

from __future__ import annotations

from typing import Any

import pytest


class RunReport:
    """Sections of the end-of-run report, e.g. ``performance``, ``quality``, ``dlq``."""

    def __init__(self) -> None:
        self.sections: dict[str, Any] = {}
        #: The services the run's tests used: name and backend.
        self.services: list[dict[str, Any]] = []
        #: What a reader of the figures must know (e.g. measured under pytest-xdist).
        self.notes: list[str] = []

    def add(self, name: str, rows: list[Any]) -> None:
        """Append ``rows`` to the list section ``name``."""
        self.sections.setdefault(name, []).extend(rows)

    def set(self, name: str, value: Any) -> None:
        """Set the section ``name`` to ``value`` (a JSON-serialisable value)."""
        self.sections[name] = value


_KEY = pytest.StashKey[RunReport]()


def run_report(config: pytest.Config) -> RunReport:
    """The report of this session (created on first use)."""
    report = config.stash.get(_KEY, None)
    if report is None:
        report = config.stash[_KEY] = RunReport()
    return report


def write_notes(config: pytest.Config, notes: list[str] | tuple[str, ...]) -> None:
    """Print ``notes`` (a server's "ready in", GE's load time) on lines of their own.

    Also after xdist's progress dots, which leave the cursor mid-line.
    """
    terminal = config.pluginmanager.get_plugin("terminalreporter")
    if not notes or terminal is None:
        return
    writer = getattr(terminal, "_tw", None)
    if writer is not None and int(getattr(writer, "width_of_current_line", 0)) > 0:
        terminal.write("\n")
    for note in notes:
        terminal.write_line(note)
