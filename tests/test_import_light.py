"""Loading the plugin imports no data or client library; missing extras are named."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pytest_pipeline._optional import require
from pytest_pipeline.errors import MissingDependencyError

HEAVY = (
    "pandas",
    "pyarrow",
    "numpy",
    "great_expectations",
    "testcontainers",
    "psycopg",
    "confluent_kafka",
    "boto3",
)


def test_importing_the_plugin_is_light() -> None:
    code = (
        "import sys\n"
        "import pytest_pipeline.plugin\n"
        "import pytest_pipeline\n"
        f"heavy = {HEAVY!r}\n"
        "print('LOADED', sorted(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "LOADED []", done.stdout + done.stderr


def test_a_pytest_session_with_the_plugin_is_light(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only pytest-pipeline is loaded (other installed plugins may import what they like), and
    # the session uses the plugin's everyday fixtures, markers, the DLQ rule and seeding.
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makeconftest(
        f"""
        import sys

        def pytest_sessionfinish(session):
            heavy = {HEAVY!r}
            print("LOADED", sorted(m for m in heavy if m in sys.modules))
        """
    )
    pytester.makepyfile(
        """
        import random
        import pytest

        @pytest.mark.unit
        def test_unit(pipeline_seed, pipeline_config):
            assert random.random() == random.Random(pipeline_seed).random()

        @pytest.mark.integration
        def test_integration(dlq):
            dlq.assert_count([], 0)

        @pytest.mark.integration
        def test_plain():
            dlq_records = []
            assert len(dlq_records) == 0
        """
    )
    result = pytester.runpytest_subprocess("-p", "pytest_pipeline.plugin", "-s")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["pipeline: seed=1234 *", "*LOADED []*"])


def test_missing_optional_dependency_names_the_extra() -> None:
    with pytest.raises(MissingDependencyError) as info:
        require("pytest_pipeline_no_such_module", "quality", "Great Expectations suites")
    message = str(info.value)
    assert (
        "Great Expectations suites needs the Python package 'pytest_pipeline_no_such_module'"
        in message
    )
    assert 'pip install "pytest-pipeline[quality]>=1.0"' in message
    assert isinstance(info.value, ImportError)
    assert info.value.__cause__ is None


def test_missing_optional_dependency_in_a_test_run(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from pytest_pipeline._optional import require

        def test_needs_extra():
            require("pytest_pipeline_no_such_module", "docker", "the docker backend")
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*MissingDependencyError: the docker backend needs the Python package "
            "'pytest_pipeline_no_such_module'*pip install \"pytest-pipeline[[]docker[]]>=1.0\"",
        ]
    )
    assert "_optional.py" not in result.stdout.str()


def test_require_returns_the_module() -> None:
    assert require("json", "dev", "json") is sys.modules["json"]
