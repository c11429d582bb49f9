"""Shared helpers of the pytester-driven tests: example-project config, a clean environment."""

from __future__ import annotations

import contextlib
import importlib
import os
import textwrap
from collections.abc import Callable

import pytest

# pytester's in-process runs forget every module a run imported, and numpy (with pandas and
# pyarrow on top of it) cannot be imported twice in one process. Importing them once here keeps
# them out of the per-test sys.modules snapshots. (Import lightness is tested in subprocesses.)
# psycopg too: imported afresh after a pytester run dropped it, its C extension would still
# raise the first import's exception classes, which `pytest.raises(psycopg.Error)` then misses.
for _name in ("numpy", "pandas", "pyarrow", "psycopg"):
    with contextlib.suppress(ImportError):
        importlib.import_module(_name)


#: The machine's own settings, read before the autouse fixture below hides them: the docker
#: backend's tests need the engine address and the test images.
MACHINE_ENV = {
    name: value
    for name, value in os.environ.items()
    if name.startswith(("PYTEST_PIPELINE_", "DOCKER_", "RYUK_", "TESTCONTAINERS_"))
}
NO_ENGINE = "unix:///nonexistent/pytest-pipeline-tests/docker.sock"


@pytest.fixture(autouse=True)
def _clean_pipeline_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # Example projects must not see this machine's PYTEST_PIPELINE_* settings (a CI runner may
    # point the project's own service tests at external servers).
    for name in list(os.environ):
        if name.startswith("PYTEST_PIPELINE_"):
            monkeypatch.delenv(name)
    # They run as on a machine without Docker, so `backend = auto` means local whether or not
    # an engine runs here; the docker backend's own tests give the engine back.
    monkeypatch.setenv("DOCKER_HOST", NO_ENGINE)


@pytest.fixture
def pipeline_toml(pytester: pytest.Pytester) -> Callable[[str], None]:
    """Write the example project's pyproject.toml: ``body`` goes under [tool.pytest-pipeline]."""

    def write(body: str = "") -> None:
        pytester.makepyprojecttoml("[tool.pytest-pipeline]\n" + textwrap.dedent(body))

    return write


def _assert_usage_error(result: pytest.RunResult, *patterns: str) -> None:
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR, output
    result.stderr.fnmatch_lines(list(patterns))
    assert "Traceback" not in output


@pytest.fixture
def assert_usage_error() -> Callable[..., None]:
    """``assert_usage_error(result, *patterns)``: exit code 4, the stderr lines, no traceback."""
    return _assert_usage_error
