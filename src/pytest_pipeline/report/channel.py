"""The one channel between the process that runs a test and the one that prints the summary.

Under pytest-xdist the tests run in workers and the controller prints the summary; without it
both are the same process. Data crosses on the test reports, which xdist serialises with
their plain attributes: every feature's data travels in one attribute, ``report.pipeline``, a
dict keyed by the feature's name. What a worker tells at its end travels in one ``workeroutput``
key, ``pipeline``; the other way, the controller's data for the workers travels in one
``workerinput`` key, ``pipeline``.

One :class:`Channel` per session does each test's report work in one hook wrapper: it calls
the senders the features registered (each one cheap when its feature is not in the test), then
masks the run's secrets in the report as the last step. On the receiving side it hands each
feature's data to that feature's receiver.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import pytest

from pytest_pipeline.masking import scrub_report

ATTR = "pipeline"
#: A sender looks at a finished report of ``item`` and may add to it (``send``, sections).
Sender = Callable[[pytest.Item, pytest.TestReport], None]
#: A receiver gets one feature's data from a report (on the controller, or the one process).
Receiver = Callable[[pytest.TestReport, Any], None]
#: Gives the controller's data for a new xdist worker, under the feature's name.
Provider = Callable[[], Any]

_KEY = pytest.StashKey["Channel"]()


def send(report: pytest.TestReport, feature: str, data: Any) -> None:
    """Put ``data`` (plain, JSON-serialisable) on ``report`` for ``feature``'s receiver."""
    report.__dict__.setdefault(ATTR, {})[feature] = data


def worker_id(config: pytest.Config) -> str | None:
    """This process's pytest-xdist worker id (``gw0``, ...), or None in the summary process."""
    workerinput = getattr(config, "workerinput", None)
    return None if workerinput is None else str(workerinput["workerid"])


def from_controller(config: pytest.Config, feature: str) -> Any:
    """What the xdist controller gave this worker for ``feature`` (None elsewhere)."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is None:
        return None
    return workerinput.get(ATTR, {}).get(feature)


def at_worker_end(config: pytest.Config, feature: str, data: Any) -> None:
    """In an xdist worker: give the controller ``data`` for ``feature`` when the worker ends
    (set it by ``pytest_sessionfinish``; see :meth:`Channel.on_worker_end`)."""
    output = getattr(config, "workeroutput", None)
    if output is not None:
        output.setdefault(ATTR, {})[feature] = data


def channel_of(config: pytest.Config) -> Channel:
    """The session's channel (registered by the plugin before the features)."""
    return config.stash[_KEY]


def register(config: pytest.Config) -> Channel:
    """Create and register the session's channel."""
    channel = config.stash[_KEY] = Channel()
    config.pluginmanager.register(channel, "pipeline-channel")
    return channel


class Channel:
    """Senders, receivers and worker providers of the features, called from one hook each."""

    def __init__(self) -> None:
        self.senders: list[Sender] = []
        self.receivers: dict[str, Receiver] = {}
        self.providers: dict[str, Provider] = {}
        self.worker_ends: dict[str, Callable[[Any], None]] = {}

    def on_report(self, sender: Sender) -> None:
        """Call ``sender`` with each test report (setup, call and teardown) once it is made."""
        self.senders.append(sender)

    def on_receive(self, feature: str, receiver: Receiver) -> None:
        """Call ``receiver`` with ``feature``'s data of each report that carries some."""
        self.receivers[feature] = receiver

    def to_workers(self, feature: str, provider: Provider) -> None:
        """Give each new xdist worker ``provider()`` under ``feature`` (see from_controller)."""
        self.providers[feature] = provider

    def on_worker_end(self, feature: str, receiver: Callable[[Any], None]) -> None:
        """On the controller: call ``receiver`` with what each worker gave at its end."""
        self.worker_ends[feature] = receiver

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        given = (getattr(node, "workeroutput", None) or {}).get(ATTR) or {}
        for feature, data in given.items():
            receiver = self.worker_ends.get(feature)
            if receiver is not None:
                receiver(data)

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        if self.providers:
            node.workerinput[ATTR] = {name: give() for name, give in self.providers.items()}

    # tryfirst: the outermost wrapper, so its scrub runs after every other wrapper's changes.
    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        for sender in self.senders:
            sender(item, report)
        # The last pass: no recorded secret reaches the terminal, junit XML or the controller.
        scrub_report(report)
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        data = report.__dict__.get(ATTR)
        if not data:
            return
        for feature, payload in data.items():
            receiver = self.receivers.get(feature)
            if receiver is not None:
                receiver(report, payload)
