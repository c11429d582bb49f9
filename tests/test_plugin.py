"""Plugin surface: the entry point, the header line and the ``--help`` group."""

from __future__ import annotations

from collections.abc import Callable

import pytest

Toml = Callable[[str], None]
UsageCheck = Callable[..., None]


def test_header_line_with_defaults(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_ok():\n    pass\n")
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(
        [
            "pipeline: seed=1234 dlq_assertions=strict backend=auto "
            "(no ?tool.pytest-pipeline? section)"
        ]
    )
    result.assert_outcomes(passed=1)


def test_header_line_from_pyproject(pytester: pytest.Pytester, pipeline_toml: Toml) -> None:
    pipeline_toml(
        'seed = 42\ndlq_assertions = "warn"\n[tool.pytest-pipeline.services]\nbackend = "local"\n'
    )
    pytester.makepyfile("def test_ok():\n    pass\n")
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(
        [
            "pipeline: seed=42 dlq_assertions=warn backend=local "
            "(?tool.pytest-pipeline? in pyproject.toml)"
        ]
    )


def test_help_groups_pipeline_options(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        [
            "pytest-pipeline (data-pipeline testing conventions):",
            "  --pipeline-fixtures-dir=PATH",
            "  --pipeline-seed=INTEGER",
            "  --pipeline-dlq-assertions={strict,warn,off}",
            "  --pipeline-backend={auto,docker,local,external}",
            "  --pipeline-missing={error,skip}",
            "  --pipeline-time-scale=NUMBER",
            "  --pipeline-update-fixtures*",
            "  --pipeline-keep-failed*",
            "  --pipeline-doctor*",
        ]
    )
    # every option of the group is a --pipeline-* option
    text = result.stdout.str()
    group = text.split("pytest-pipeline (data-pipeline testing conventions):")[1]
    group = group.split("\n\n")[0]
    options = [line.split()[0] for line in group.splitlines() if line.startswith("  --")]
    assert options
    assert all(option.startswith("--pipeline-") for option in options)


def test_help_mentions_config_key_and_env(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    text = " ".join(result.stdout.str().split())
    assert "Overrides seed in [tool.pytest-pipeline] and PYTEST_PIPELINE_SEED." in text
    assert "Overrides services.backend in [tool.pytest-pipeline] and PYTEST_PIPELINE_BACKEND." in (
        text
    )


def test_plugin_is_registered_by_entry_point(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--co")
    result.stdout.fnmatch_lines(["plugins: *pipeline-1.*"])
