"""The pytest side of the services: the fixtures and the session hooks.

The fixtures are ``*_service`` (the session's server) and the per-test namespaces.

Both kinds come from two small factories, one per kind, so the three services share one
code path for startup errors, ``services.missing``, cleanup and ``--pipeline-keep-failed``.
"""

from __future__ import annotations

import logging
import os
import shlex
import sys
import threading
import warnings
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any, NamedTuple

import pytest

from pytest_pipeline.config import PipelineConfig
from pytest_pipeline.constants import SERVICES
from pytest_pipeline.dlq import rule as _dlq
from pytest_pipeline.errors import PipelineError, ServiceUnavailable
from pytest_pipeline.masking import Secret, has_secrets, mask_secrets, scrub_report
from pytest_pipeline.report.channel import channel_of, from_controller, send, worker_id
from pytest_pipeline.report.collect import run_report, write_notes

if TYPE_CHECKING:
    from pytest_pipeline.services.kafka import KafkaNamespace
    from pytest_pipeline.services.manager import RunInfo, Service, ServiceManager
    from pytest_pipeline.services.postgres import PostgresDatabase
    from pytest_pipeline.services.s3 import S3Namespace

HOOKS_KEY = pytest.StashKey["ServiceHooks"]()
CALL_FAILED_KEY = pytest.StashKey[bool]()
USED_KEY = pytest.StashKey[list[str]]()  # set at collection, for the tests that use a service


def services_of(item: pytest.Item) -> list[str]:
    """The services a test asks for, through ``<name>`` or ``<name>_service``."""
    names = set(getattr(item, "fixturenames", ()))
    return [name for name in SERVICES if name in names or f"{name}_service" in names]


def manager_of(config: pytest.Config) -> ServiceManager:
    """The service manager of this session (created on first use: a run whose tests use no
    service never imports the service code)."""
    return config.stash[HOOKS_KEY].manager


def _fail_cleanly(exc: PipelineError, secrets: tuple[str, ...] = ()) -> None:
    """Report a service problem as one readable message, without our internals' traceback."""
    __tracebackhide__ = True
    pytest.fail(mask_secrets(str(exc), secrets), pytrace=False)


def _service_fixture(name: str) -> Any:
    @pytest.fixture(scope="session", name=f"{name}_service")
    def service_fixture(request: pytest.FixtureRequest) -> Service:
        manager = manager_of(request.config)
        try:
            service = manager.get(name)
        except PipelineError as exc:
            # Failed outside the except block: pytest would print the message twice, as a
            # chained exception.
            problem: PipelineError = exc
        else:
            if service.started_in is not None:
                manager.notes.append(service.start_line())
            return service
        if isinstance(problem, ServiceUnavailable) and manager.resolved.services.missing == "skip":
            pytest.skip(str(problem))
        _fail_cleanly(problem)
        raise problem  # unreachable: pytest.fail raised

    service_fixture.__doc__ = f"The session's {name} server (started on first use, shared)."
    return service_fixture


class _NamespaceKind(NamedTuple):
    """How one service opens a test's namespace and says what it kept."""

    open: Callable[[Service, str, PipelineConfig], Any]
    kept: Callable[[Any, Service], str]


def _namespace_fixture(name: str, kind: _NamespaceKind) -> Any:
    @pytest.fixture(name=name)
    def namespace_fixture(request: pytest.FixtureRequest) -> Generator[Any, None, None]:
        service: Service = request.getfixturevalue(f"{name}_service")
        manager = manager_of(request.config)
        problem: PipelineError | None = None
        try:
            namespace = kind.open(service, manager.unique_prefix(), manager.resolved)
        except PipelineError as exc:
            problem = exc
        if problem is not None:
            _fail_cleanly(problem)
        yield namespace
        keep = manager.resolved.keep_failed and request.node.stash.get(CALL_FAILED_KEY, False)
        namespace.close(delete=not keep)
        if keep:
            manager.kept.append(f"{request.node.nodeid}: {kind.kept(namespace, service)}")

    namespace_fixture.__doc__ = f"This test's own {name} namespace, dropped after the test."
    return namespace_fixture


# --------------------------------------------------------------------------- per service


def _open_postgres(service: Service, prefix: str, resolved: PipelineConfig) -> PostgresDatabase:
    from pytest_pipeline.services import schema
    from pytest_pipeline.services.postgres import create_database

    assert service.endpoint.__class__.__name__ == "PostgresEndpoint"
    loaded = schema.from_config(resolved)  # read and hashed once per process
    return create_database(service.endpoint, prefix, loaded)  # type: ignore[arg-type]


def _open_kafka(service: Service, prefix: str, resolved: PipelineConfig) -> KafkaNamespace:
    from pytest_pipeline.services import kafka

    # tansu holds a group join for half the session timeout: its consumers get a short one.
    tansu = "tansu" in service.description
    namespace = kafka.KafkaNamespace(
        service.bootstrap_servers,
        prefix,
        timeout=resolved.services.startup_timeout,
        group_settings=kafka.TANSU_GROUP_SETTINGS if tansu else kafka.STANDARD_GROUP_SETTINGS,
    )
    tracker = _dlq.current()
    if tracker is not None:
        # Lets dlq.assert_count(topic, n) count this test's topics (as kafka.count does).
        tracker.topic_counter = lambda topic: (
            namespace.count(topic) if namespace.owns(topic) else None
        )
        tracker.topic_sampler = lambda topic, n: (
            namespace.given_name(topic),
            namespace.consume(topic, n=n, timeout=5),
        )
    return namespace


def _open_s3(service: Service, prefix: str, resolved: PipelineConfig) -> S3Namespace:
    from pytest_pipeline.services.s3 import S3Namespace

    return S3Namespace(service.endpoint, prefix)  # type: ignore[arg-type]


# Servers this run started have random credentials that die with them: printing those lets
# a person paste the command. An external server's stay masked (the user has them).
_THROWAWAY = "(throwaway credentials of a server this run started)"


def _throwaway(service: Service) -> bool:
    return service.backend in ("local", "docker")


def _kept_postgres(db: PostgresDatabase, service: Service) -> str:
    if _throwaway(service):
        return f"postgres database {db.name}: psql {shlex.quote(str(db.dsn))} {_THROWAWAY}"
    return (
        f"postgres database {db.name}: psql {mask_secrets(db.dsn)} "
        "(*** is the password of services.postgres.url)"
    )


def _kept_kafka(namespace: KafkaNamespace, service: Service) -> str:
    topics = ", ".join(namespace.topics) or "(no topics)"
    return f"kafka topics {topics} on {namespace.bootstrap_servers}"


def _kept_s3(namespace: S3Namespace, service: Service) -> str:
    buckets = ", ".join(namespace.buckets) or "(no buckets)"
    line = f"s3 buckets {buckets} at {namespace.endpoint_url}"
    if not _throwaway(service):
        return line
    endpoint = namespace.endpoint
    return (
        f"{line}: AWS_ACCESS_KEY_ID={shlex.quote(endpoint.access_key)} "
        f"AWS_SECRET_ACCESS_KEY={shlex.quote(str(endpoint.secret_key))} "
        f"aws --endpoint-url {shlex.quote(namespace.endpoint_url)} s3 ls {_THROWAWAY}"
    )


postgres_service = _service_fixture("postgres")
kafka_service = _service_fixture("kafka")
s3_service = _service_fixture("s3")
postgres = _namespace_fixture("postgres", _NamespaceKind(_open_postgres, _kept_postgres))
kafka = _namespace_fixture("kafka", _NamespaceKind(_open_kafka, _kept_kafka))
s3 = _namespace_fixture("s3", _NamespaceKind(_open_s3, _kept_s3))


# --------------------------------------------------------------------------- secrets in output


@pytest.hookimpl(tryfirst=True)
def pytest_assertrepr_compare(op: str, left: object, right: object) -> list[str] | None:
    """Explain a comparison involving a secret string without showing the secret.

    pytest's own text diff works on the string's characters, not on its ``repr``.
    """
    if not isinstance(left, Secret) and not isinstance(right, Secret):
        return None
    lines = [f"{left!r} {op} {right!r}"]
    if op == "==" and isinstance(left, str) and isinstance(right, str):
        import difflib

        # As pytest's: "-" is the expected (right) side, "+" the value tested (left).
        expected, actual = mask_secrets(right), mask_secrets(left)
        lines += ["", *(line.rstrip("\n") for line in difflib.ndiff([expected], [actual]))]
    return lines


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Any:
    """The last pass over collection errors: no recorded secret reaches the terminal.

    (Test reports get it from the report channel, report/channel.py.)
    """
    report = yield
    scrub_report(report)
    return report


@pytest.hookimpl(tryfirst=True)
def pytest_warning_recorded(warning_message: warnings.WarningMessage) -> None:
    """Mask the warning before the terminal summary (or an xdist worker) reads it."""
    if not has_secrets():
        return
    message = warning_message.message
    text = str(message)
    masked = mask_secrets(text)
    if masked == text:
        return
    try:
        warning_message.message = type(message)(masked)
    except Exception:  # a warning class whose constructor takes other arguments
        warning_message.message = Warning(masked)


def pytest_sessionstart(session: pytest.Session) -> None:
    """Mask what pytest's live log (``--log-cli-level``) and ``--log-file`` write.

    "Captured log" sections are masked with the report; these two handlers write at once.
    """
    plugin = session.config.pluginmanager.get_plugin("logging-plugin")
    for name in ("log_cli_handler", "log_file_handler"):
        handler = getattr(plugin, name, None)
        if isinstance(handler, logging.Handler):
            _mask_handler_output(handler)


def _mask_handler_output(handler: logging.Handler) -> None:
    plain_format = handler.format

    def format(record: logging.LogRecord) -> str:
        text = plain_format(record)
        return mask_secrets(text) if has_secrets() else text

    handler.format = format  # type: ignore[method-assign]


# --------------------------------------------------------------------------- session hooks


def register(config: pytest.Config, resolved: PipelineConfig) -> None:
    """Register the service fixtures, the secret-masking hooks and the session hooks."""
    config.pluginmanager.register(sys.modules[__name__], "pipeline-services")
    hooks = ServiceHooks(config, resolved)
    config.pluginmanager.register(hooks, "pipeline-service-hooks")
    channel = channel_of(config)
    channel.on_report(hooks.send)
    channel.on_receive("services", hooks.receive)
    channel.on_receive("services-used", hooks.receive_used)
    channel.to_workers("services", hooks.for_worker)


def run_info(config: pytest.Config) -> RunInfo:
    """This process's view of the run: its own (owner) or the controller's (xdist worker)."""
    from pytest_pipeline.services.manager import RunInfo

    given = from_controller(config, "services")
    if given is not None:
        return RunInfo.from_workerinput(given["run"], worker_id(config) or "")
    return RunInfo.new()


class ServiceHooks:
    """Registered once per session by the plugin."""

    def __init__(self, config: pytest.Config, resolved: PipelineConfig) -> None:
        self.config = config
        self.resolved = resolved
        self._manager: ServiceManager | None = None
        self._expected: set[str] = set()
        config.stash[HOOKS_KEY] = self
        self.kept: list[str] = []
        self._docker_session: str | None = None
        self._reaper: threading.Thread | None = None
        self._docker_checked = False
        self._reaper_note: str | None = None
        self._reaper_reported = False

    @property
    def manager(self) -> ServiceManager:
        """The session's service manager, created on first use."""
        if self._manager is None:
            from pytest_pipeline.services.manager import ServiceManager

            manager = ServiceManager(self.resolved, run_info(self.config))
            given = from_controller(self.config, "services")
            if given is not None:
                manager.docker_session = given.get("docker_session")
                manager.auto_docker = given.get("auto_docker")
            manager.expect(self._expected)
            self._manager = manager
        return self._manager

    def for_worker(self) -> dict[str, Any]:
        """What a new xdist worker takes from the controller (through the report channel)."""
        # Every worker shares this run's directory and owner pid.
        given: dict[str, Any] = {"run": self.manager.run.to_workerinput()}
        if self.manager.resolved.services.backend == "auto":
            given["auto_docker"] = self.manager.auto_picks_docker()
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
            given["docker_session"] = self._docker_session
        return given

    def _start_reaper(self) -> None:
        from pytest_pipeline.services import docker

        try:
            timeout = self.manager.resolved.services.startup_timeout
            self._reaper_note = docker.ensure_reaper(timeout=timeout)
        except Exception as exc:  # a background thread: never a bare traceback
            self._reaper_note = f"docker: the reaper did not start: {exc}"

    def _write(self, line: str) -> None:
        terminal = self.config.pluginmanager.get_plugin("terminalreporter")
        if terminal is not None:
            terminal.write_line(f"pytest-pipeline: {line}")

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        expected: set[str] = set()
        for item in items:
            used = services_of(item)
            if used:
                item.stash[USED_KEY] = used
                expected.update(used)
        self._expected = expected
        if self._manager is not None:
            self._manager.expect(self._expected)

    def send(self, item: pytest.Item, report: pytest.TestReport) -> None:
        """Report channel sender: a dead server's cause, and the run's notes for the summary."""
        used = item.stash.get(USED_KEY, None)
        if used:
            if report.when == "setup":
                send(report, "services-used", used)
            elif report.when == "call":
                item.stash[CALL_FAILED_KEY] = report.failed
            if report.failed and report.when in ("setup", "call"):
                # "Connection refused" alone hides the cause: say that the server died, and why.
                for message in self._dead_servers(used):
                    report.sections.append(("pytest-pipeline: a server died", message))
        manager = self._manager
        if manager is None or not (manager.notes or manager.kept or manager.containers_started):
            return
        data: dict[str, Any] = {}
        if manager.notes:
            data["notes"] = list(manager.notes)
            manager.notes.clear()
        if manager.containers_started and manager.docker_session is not None:
            data["containers"] = True
            manager.containers_started = False
        if manager.kept:
            data["kept"] = list(manager.kept)
            manager.kept.clear()
        if data:
            send(report, "services", data)

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

    def receive_used(self, report: pytest.TestReport, names: list[str]) -> None:
        """Report channel receiver: the services used, for the run report (name, backend)."""
        used = run_report(self.config).services
        for name in names:
            if all(entry["name"] != name for entry in used):
                used.append({"name": name, "backend": self.manager.backend_for(name)})
                used.sort(key=lambda entry: SERVICES.index(entry["name"]))

    def receive(self, report: pytest.TestReport, data: dict[str, Any]) -> None:
        """Report channel receiver: print the notes, keep the kept lines for the summary."""
        write_notes(self.config, data.get("notes", ()))
        self.kept.extend(data.get("kept", ()))
        if data.get("containers") and not self._reaper_reported:
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
        if self._manager is None or self._manager.run.root_pid != os.getpid():
            return
        if self._reaper is not None:
            self._reaper.join(timeout=30)
        for problem in self.manager.shutdown():
            self._write(problem)
