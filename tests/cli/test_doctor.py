"""``pytest --pipeline-doctor`` and ``pytest-pipeline doctor``: the resolved setup."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_pipeline import config as pipeline_config
from pytest_pipeline.cli import doctor

Toml = Callable[[str], None]
UsageCheck = Callable[..., None]


def test_doctor_shows_resolved_config_and_runs_no_tests(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, pipeline_toml: Toml
) -> None:
    pipeline_toml('seed = 5\n[tool.pytest-pipeline.services]\nbackend = "local"\n')
    pytester.makepyfile("def test_never_runs():\n    raise AssertionError\n")
    monkeypatch.setenv("PYTEST_PIPELINE_DLQ_ASSERTIONS", "warn")
    result = pytester.runpytest("--pipeline-doctor", "--pipeline-seed=9")
    assert result.ret == 0
    path = pytester.path / "pyproject.toml"
    result.stdout.fnmatch_lines(
        [
            f"configuration ({path}):",
            "  seed = 9  [[]--pipeline-seed[]]",
            "  dlq_assertions = warn  [[]PYTEST_PIPELINE_DLQ_ASSERTIONS[]]",
            f"  services.backend = local  [[]{path}[]]",
            "  services.startup_timeout = 60.0  [[]default[]]",
        ]
    )
    assert "test_never_runs" not in result.stdout.str()
    assert "collected" not in result.stdout.str()


def test_doctor_with_bad_config_is_a_clean_error(
    pytester: pytest.Pytester, pipeline_toml: Toml, assert_usage_error: UsageCheck
) -> None:
    pipeline_toml('fixture_dir = "x"\n')
    result = pytester.runpytest("--pipeline-doctor")
    assert_usage_error(
        result, "ERROR: pytest-pipeline: unknown configuration key 'fixture_dir'*fixtures_dir?*"
    )


def test_doctor_render_lists_every_setting(tmp_path: Path) -> None:
    resolved = pipeline_config.resolve(tmp_path, {}, env={})
    lines = doctor.render_config(resolved)
    assert lines[0] == "configuration (no [tool.pytest-pipeline] section):"
    keyed = [setting.key for setting in pipeline_config.SETTINGS if setting.toml]
    settings = lines[1 : 1 + len(keyed)]
    keys = [line.split(" = ")[0].strip() for line in settings]
    assert keys == keyed  # command-line options only (--pipeline-doctor) are no setting here
    assert all(line.endswith("[default]") for line in settings)
    assert lines[1 + len(keyed) :] == [
        "  services.postgres: (defaults)",
        "  services.kafka: (defaults)",
        "  services.s3: (defaults)",
    ]


def test_doctor_shows_services_and_overrides_with_secrets_masked(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        "[tool.pytest-pipeline.services]\n"
        'kafka = { image = "apache/kafka:4.1.1" }\n'
        "[[tool.pytest-pipeline.budgets.override]]\n"
        'match = "tests/performance/test_n.py::*"\n'
        "records = 100_000\n"
        "max_seconds = 5.0\n",
        encoding="utf-8",
    )
    env = {
        "PYTEST_PIPELINE_POSTGRES_URL": "postgresql://app:hunter2@localhost:5432/db",
        "PYTEST_PIPELINE_S3_ENDPOINT": "http://localhost:9000",
        "PYTEST_PIPELINE_S3_ACCESS_KEY": "AKIAEXAMPLE",
        "PYTEST_PIPELINE_S3_SECRET_KEY": "very-secret",
    }
    text = doctor.render(pipeline_config.resolve(tmp_path, {}, env=env))
    assert "  services.postgres: url=postgresql://app:***@localhost:5432/db  [external]" in text
    assert "  services.kafka: image=apache/kafka:4.1.1" in text.splitlines()
    assert (
        "  services.s3: endpoint=http://localhost:9000 access_key=*** secret_key=***  [external]"
        in text
    )
    assert "  budgets.override tests/performance/test_n.py::*: records=100000 max_seconds=5.0" in (
        text
    )
    assert "hunter2" not in text
    assert "very-secret" not in text
    assert "AKIAEXAMPLE" not in text


def test_doctor_tells_which_backend_each_service_uses(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.pytest-pipeline.services]\nkafka = { bootstrap = "localhost:9092" }\n'
    )
    resolved = pipeline_config.resolve(tmp_path, {}, env={})
    lines = doctor.render(resolved).splitlines()
    # No engine here (tests/conftest.py points DOCKER_HOST nowhere): auto means local.
    assert lines[0].startswith("docker engine: no - no Docker engine answers at unix:///")
    # The session's own choice, asked of its manager, and why.
    assert lines[1].startswith("backend auto: local - no Docker engine answers at unix:///")
    assert lines[2] == "service backends:"
    assert "    docker: no engine (image postgres:16-alpine)" in lines
    assert "  kafka: uses external (a URL is configured)" in lines
    assert "    external: configured" in lines
    postgres = lines[lines.index("  postgres: uses local (auto)") + 1]
    assert postgres.startswith("    local: yes - PostgreSQL ")
    assert "    external: not configured (PYTEST_PIPELINE_POSTGRES_URL)" in lines


def test_doctor_with_backend_external_and_no_url_says_nothing_runs(tmp_path: Path) -> None:
    # It used to say "uses external (a URL is configured)" and then "external: not configured".
    (tmp_path / "pyproject.toml").write_text(
        '[tool.pytest-pipeline.services]\nbackend = "external"\n'
        's3 = { endpoint = "http://localhost:9000", access_key = "k", secret_key = "s" }\n'
    )
    resolved = pipeline_config.resolve(tmp_path, {}, env={})
    lines = doctor.render(resolved).splitlines()
    assert (
        "  kafka: uses nothing: services.backend = external, but no URL is configured for kafka"
        in lines
    )
    assert "    external: not configured (PYTEST_PIPELINE_KAFKA_BOOTSTRAP)" in lines
    assert "  s3: uses external (a URL is configured)" in lines
    assert "    external: configured" in lines


def test_doctor_with_backend_docker_and_no_engine_says_nothing_runs(tmp_path: Path) -> None:
    # The manager's answer: a test using postgres fails (services.missing = error). It used to
    # say "uses docker", derived again in the doctor without asking whether docker could run.
    (tmp_path / "pyproject.toml").write_text(
        '[tool.pytest-pipeline.services]\nbackend = "docker"\n'
    )
    resolved = pipeline_config.resolve(tmp_path, {}, env={})
    lines = doctor.render(resolved).splitlines()
    assert lines[0].startswith("docker engine: no - ")  # tests/conftest.py: DOCKER_HOST nowhere
    assert "  postgres: uses nothing: services.missing = error" in lines
