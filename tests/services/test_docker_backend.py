"""The docker backend against a real Docker engine, with the images scripts/docker-test-images
builds offline (their tags come from `eval "$(scripts/docker-test-images --env)"`).

Without an engine (or without those images) these tests are skipped, unless
PIPELINE_TESTS_REQUIRE_DOCKER=1 (set by .ci/run) turns that into a failure: CI must not pass
by skipping them.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.conftest import MACHINE_ENV

from pytest_pipeline.services import docker as backend

IMAGES = {
    "postgres": MACHINE_ENV.get("PYTEST_PIPELINE_POSTGRES_IMAGE", ""),
    "kafka": MACHINE_ENV.get("PYTEST_PIPELINE_KAFKA_IMAGE", ""),
    "s3": MACHINE_ENV.get("PYTEST_PIPELINE_S3_IMAGE", ""),
}
REAPER = MACHINE_ENV.get("RYUK_CONTAINER_IMAGE", "")
REQUIRED = os.environ.get("PIPELINE_TESTS_REQUIRE_DOCKER") == "1"
ENGINE_ENV = {k: v for k, v in MACHINE_ENV.items() if k.startswith(("DOCKER_", "TESTCONTAINERS_"))}


def _why_not() -> str:
    engine = backend.probe(2.0)
    if not engine.ok:
        return engine.why_not
    missing = [name for name, image in IMAGES.items() if not image] + ([] if REAPER else ["reaper"])
    if missing:
        return f'no test image for {", ".join(missing)}: eval "$(scripts/docker-test-images --env)"'
    return ""


WHY_NOT = _why_not()
if WHY_NOT and REQUIRED:
    raise RuntimeError(
        f"PIPELINE_TESTS_REQUIRE_DOCKER=1 but the docker tests cannot run: {WHY_NOT}"
    )
pytestmark = [
    pytest.mark.skipif(bool(WHY_NOT), reason=WHY_NOT),
]


@pytest.fixture
def engine_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Give the example runs the real engine and the offline reaper back."""
    # Their run directories stay apart from those of tests running in parallel (which check
    # that their own runs leave none). Only subprocesses see it: this process keeps the
    # temp dir it already uses (gettempdir() caches its first answer).
    tempfile.gettempdir()
    (tmp_path / "tmp").mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    monkeypatch.delenv("DOCKER_HOST")
    for name, value in ENGINE_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("RYUK_CONTAINER_IMAGE", REAPER)
    # A killed run's containers go after 1 s instead of testcontainers' default 10 s.
    monkeypatch.setenv("RYUK_RECONNECTION_TIMEOUT", "1s")


@pytest.fixture
def project(pytester: pytest.Pytester, engine_env: None) -> Callable[..., None]:
    """An example project on the docker backend with the test images."""

    def write(extra: str = "", s3: str = "", backend: str = "docker") -> None:
        tables = {name: f'{{ image = "{image}" }}' for name, image in IMAGES.items()}
        if s3:
            tables["s3"] = s3
        images = "\n".join(f"{name} = {table}" for name, table in tables.items())
        pytester.makepyprojecttoml(
            "[tool.pytest-pipeline]\nseed = 7\n[tool.pytest-pipeline.services]\n"
            f'backend = "{backend}"\nstartup_timeout = 60\n{images}\n{textwrap.dedent(extra)}'
        )

    return write


def _left_by(pid: int) -> list[str]:
    """Containers of ours whose run was owned by process ``pid`` (whatever its start time)."""
    prefix = backend.owner_label(os.getpid()).split("/")[0] + f"/{pid}/"
    env = {k: v for k, v in os.environ.items() if k != "DOCKER_HOST"} | ENGINE_ENV
    out = subprocess.run(
        [
            "docker",
            "ps",
            "-a",
            "--filter",
            f"label={backend.LABEL_OWNER}",
            "--format",
            f'{{{{.ID}}}} {{{{.Label "{backend.LABEL_OWNER}"}}}}',
        ],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    return [
        line.split()[0] for line in out.stdout.splitlines() if line.split()[1].startswith(prefix)
    ]


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """Run pytest on the example project in a subprocess; then no container of it may remain."""
    began = time.monotonic()
    with subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=pytester.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        out, err = proc.communicate(timeout=300)
    result = pytest.RunResult(
        proc.returncode, out.splitlines(), err.splitlines(), time.monotonic() - began
    )
    left = _left_by(proc.pid)
    assert not left, f"containers left behind: {left}\n{out}"
    return result


PIPELINE_TEST = """
    import pytest

    @pytest.mark.parametrize("n", [1, 2])
    def test_pipeline(postgres, kafka, s3, dlq, n):
        postgres.execute("create table payments (id int, amount numeric)")
        postgres.insert("payments", [{"id": i, "amount": 10 * i} for i in range(n)])
        source, dead = kafka.topic("payments"), kafka.topic("payments-dlq")
        kafka.produce(source, [{"id": i} for i in range(n)])
        kafka.produce(dead, [{"id": -1}] * n)
        bucket = s3.bucket("silver")
        s3.put_records(bucket, "part-0.jsonl", [{"id": i} for i in range(n)])
        # Isolation: each test sees only its own rows, messages and objects.
        assert postgres.fetch("select count(*) as c from payments")[0]["c"] == n
        assert len(kafka.consume(source, n=n, timeout=20)) == n
        assert len(s3.read_records(bucket, "part-")) == n
        dlq.assert_count(dead, n)
"""


def test_pipeline_tests_pass_in_containers(
    pytester: pytest.Pytester, project: Callable[..., None]
) -> None:
    project()
    pytester.makepyfile(test_it=PIPELINE_TEST)
    result = run(pytester)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            f"postgres: docker {IMAGES['postgres']} (bridge network, ports on 127.0.0.1, "
            "container *) ready in *",
            f"kafka: docker {IMAGES['kafka']} (*) ready in *",
            f"s3: docker {IMAGES['s3']} (*) ready in *",
        ]
    )


def test_xdist_workers_share_one_container_per_service(
    pytester: pytest.Pytester, project: Callable[..., None]
) -> None:
    project()
    pytester.makepyfile(test_a=PIPELINE_TEST, test_b=PIPELINE_TEST)
    result = run(pytester, "-n", "2")
    result.assert_outcomes(passed=4)
    out = result.stdout.str()
    for name in ("postgres", "kafka", "s3"):
        assert len(re.findall(rf"^{name}: docker ", out, re.M)) == 1, out
    assert "reaper" not in out  # the reaper ran in the controller, without a note


def test_host_network_and_a_failing_test_leave_nothing(
    pytester: pytest.Pytester, project: Callable[..., None]
) -> None:
    project('network = "host"')
    pytester.makepyfile(
        test_fail="""
        def test_fails(postgres, dlq):
            dlq.assert_count(0, 0)
            assert postgres.fetch("select 1 as one")[0]["one"] == 2
        """
    )
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["postgres: docker * (host network, container *) ready in *"])
    # run() checks that the container went with the run.


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["single", "xdist"])
def test_killed_pytest_is_cleaned_up_by_the_reaper(
    pytester: pytest.Pytester, project: Callable[..., None], xdist: list[str]
) -> None:
    project()
    marker = pytester.path / "started.json"
    pytester.makepyfile(
        test_hang=f"""
        import json, os, time

        def test_hangs(postgres_service, kafka_service):
            with open({str(marker)!r}, "w") as f:
                json.dump({{"worker_pid": os.getpid()}}, f)
            time.sleep(600)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *xdist],
        cwd=pytester.path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its xdist workers can be killed with it afterwards
    )
    try:
        deadline = time.monotonic() + 90
        while not marker.exists():
            assert proc.poll() is None, "pytest ended before the test started"
            assert time.monotonic() < deadline, "the services did not start in time"
            time.sleep(0.2)
        # The containers belong to the pytest process we started (with xdist: the controller).
        assert len(_left_by(proc.pid)) == 2
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    try:
        deadline = time.monotonic() + 30
        while _left_by(proc.pid):
            assert time.monotonic() < deadline, "the reaper did not remove the killed containers"
            time.sleep(0.5)
    finally:
        # xdist workers outlive a killed controller (they sleep in the test): end them too.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    # The killed run's directory (the reaper cannot reach it) goes with the next run.
    runs = Path(os.environ["TMPDIR"], f"pytest-pipeline-{os.getuid()}")
    assert len(list(runs.glob("run-*"))) == 1
    marker.unlink()
    pytester.makepyfile(
        test_hang="""
        def test_next(kafka_service):
            pass
        """
    )
    run(pytester).assert_outcomes(passed=1)
    assert list(runs.glob("run-*")) == []


def test_missing_image_names_the_image_and_the_setting(
    pytester: pytest.Pytester, engine_env: None
) -> None:
    pytester.makepyprojecttoml(
        '[tool.pytest-pipeline.services]\nbackend = "docker"\nstartup_timeout = 20\n'
        'postgres = { image = "pytest-pipeline-test/no-such-image:0" }\n'
    )
    pytester.makepyfile(
        test_pg="""
        def test_pg(postgres, dlq):
            dlq.assert_count(0, 0)
        """
    )
    result = run(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*docker postgres: image pytest-pipeline-test/no-such-image:0 is not on this engine "
            "and could not be pulled*services.postgres.image in [[]tool.pytest-pipeline[]] or "
            "PYTEST_PIPELINE_POSTGRES_IMAGE*scripts/docker-test-images --env*",
        ]
    )
    assert "Traceback" not in result.stdout.str()


def test_container_that_exits_shows_its_log(
    pytester: pytest.Pytester, project: Callable[..., None]
) -> None:
    project(s3=f'{{ image = "{IMAGES["s3"]}", command = "no-such-subcommand {{port}}" }}')
    pytester.makepyfile(
        test_s3="""
        def test_s3(s3, dlq):
            dlq.assert_count(0, 0)
        """
    )
    result = run(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*docker s3: the * container stopped before it was ready (exit code *). Its last log*"]
    )


def test_doctor_reports_engine_and_images(
    pytester: pytest.Pytester, project: Callable[..., None]
) -> None:
    project()
    result = run(pytester, "--pipeline-doctor")
    result.stdout.fnmatch_lines(
        [
            "docker engine: yes - * (Docker *)",
            f"docker reaper: {REAPER} (present; *",
            "  postgres: uses docker",
            f"    docker: yes - image {IMAGES['postgres']} (present)",
        ]
    )


def test_auto_picks_docker_when_the_engine_answers(
    pytester: pytest.Pytester, project: Callable[..., None]
) -> None:
    project(backend="auto")
    pytester.makepyfile(
        test_kafka="""
        def test_kafka(kafka, dlq):
            dlq.assert_count(kafka.topic("dlq"), 0)
        """
    )
    result = run(pytester)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*backend=auto*", f"kafka: docker {IMAGES['kafka']} (*"])


def test_auto_stays_local_without_the_docker_extra(
    monkeypatch: pytest.MonkeyPatch, engine_env: None, tmp_path: Path
) -> None:
    import importlib.util

    from pytest_pipeline import config
    from pytest_pipeline.services.manager import RunInfo, ServiceManager

    real_find_spec = importlib.util.find_spec
    # As if only the local extra were installed, with an engine running here.
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "testcontainers" else real_find_spec(name, *a),
    )
    manager = ServiceManager(config.resolve(tmp_path, {}, env={}), RunInfo.new())
    assert manager.backend_for("postgres") == "local"
    monkeypatch.setattr(importlib.util, "find_spec", real_find_spec)
    manager = ServiceManager(config.resolve(tmp_path, {}, env={}), RunInfo.new())
    assert manager.backend_for("postgres") == "docker"


def test_a_port_that_cannot_be_published_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, engine_env: None
) -> None:
    import socket

    from pytest_pipeline.config import ServiceConfig
    from pytest_pipeline.errors import ServiceError
    from pytest_pipeline.services.docker import _core

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # Every attempt gets the port another process holds, as if it lost the race each time.
        monkeypatch.setattr(_core._proc, "free_ports", lambda count: [port] * count)
        with pytest.raises(ServiceError) as failure:
            _core.start(
                ServiceConfig(name="s3", image=IMAGES["s3"]),
                host_network=False,
                timeout=60,
                labels={backend.LABEL_RUN: "port-test"},
            )
    message = str(failure.value)
    assert message.startswith(f"docker s3: the engine could not start {IMAGES['s3']}: ")
    assert "A port could not be published" in message
    assert 'services.network = "host"' in message
