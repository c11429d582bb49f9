"""Layer markers: automatic marking by directory, require_layer, marker argument checks."""

from __future__ import annotations

from collections.abc import Callable

import pytest

Toml = Callable[[str], None]


@pytest.fixture
def layered_project(pytester: pytest.Pytester) -> pytest.Pytester:
    """Tests in each default layer directory, none with a decorator, plus one outside."""
    for layer in ("unit", "integration", "performance", "quality"):
        (pytester.path / "tests" / layer).mkdir(parents=True)
        body = (
            "def test_dlq(dlq):\n    dlq.assert_count(0, 0)\n"
            if layer == "integration"
            else ("def test_it():\n    pass\n")
        )
        pytester.path.joinpath("tests", layer, f"test_{layer}_things.py").write_text(body)
    pytester.path.joinpath("tests", "test_loose.py").write_text("def test_loose():\n    pass\n")
    return pytester


@pytest.mark.parametrize("layer", ["unit", "integration", "performance", "quality"])
def test_layer_dirs_mark_tests_automatically(layered_project: pytest.Pytester, layer: str) -> None:
    result = layered_project.runpytest("-m", layer, "-v")
    result.assert_outcomes(passed=1, deselected=4)
    result.stdout.fnmatch_lines([f"tests/{layer}/test_{layer}_things.py::test_* PASSED*"])


def test_unmarked_outside_layer_dirs_is_not_selected(layered_project: pytest.Pytester) -> None:
    result = layered_project.runpytest(
        "-m", "not (unit or integration or performance or quality)", "-v"
    )
    result.assert_outcomes(passed=1, deselected=4)
    result.stdout.fnmatch_lines(["tests/test_loose.py::test_loose PASSED*"])


def test_explicit_marker_is_kept_inside_a_layer_dir(pytester: pytest.Pytester) -> None:
    (pytester.path / "tests" / "unit").mkdir(parents=True)
    pytester.path.joinpath("tests", "unit", "test_mixed.py").write_text(
        "import pytest\n\n@pytest.mark.quality\ndef test_quality_in_unit_dir():\n    pass\n"
    )
    pytester.runpytest("-m", "unit and quality").assert_outcomes(passed=1)


def test_custom_layer_dirs(pytester: pytest.Pytester, pipeline_toml: Toml) -> None:
    pipeline_toml('layer_dirs = { unit = "checks/fast", quality = "checks/dq" }\n')
    for directory in ("checks/fast", "checks/dq", "tests/unit"):
        (pytester.path / directory).mkdir(parents=True, exist_ok=True)
        name = directory.replace("/", "_")
        (pytester.path / directory / f"test_{name}.py").write_text(
            f"def test_{name}():\n    pass\n"
        )
    result = pytester.runpytest("-m", "unit", "-v")
    result.assert_outcomes(passed=1, deselected=2)
    result.stdout.fnmatch_lines(["checks/fast/test_checks_fast.py::test_checks_fast PASSED*"])
    result = pytester.runpytest("-m", "quality", "-v")
    result.assert_outcomes(passed=1, deselected=2)
    result.stdout.fnmatch_lines(["checks/dq/test_checks_dq.py::test_checks_dq PASSED*"])


def test_nested_layer_dir_wins(pytester: pytest.Pytester, pipeline_toml: Toml) -> None:
    pipeline_toml('layer_dirs = { unit = "tests", quality = "tests/dq" }\n')
    (pytester.path / "tests" / "dq").mkdir(parents=True)
    (pytester.path / "tests" / "test_a.py").write_text("def test_a():\n    pass\n")
    (pytester.path / "tests" / "dq" / "test_b.py").write_text("def test_b():\n    pass\n")
    result = pytester.runpytest("-m", "quality and not unit", "-v")
    result.assert_outcomes(passed=1, deselected=1)
    result.stdout.fnmatch_lines(["tests/dq/test_b.py::test_b PASSED*"])


# --------------------------------------------------------------------------- require_layer


def test_require_layer_makes_unmarked_test_a_collection_error(
    layered_project: pytest.Pytester, pipeline_toml: Toml
) -> None:
    pipeline_toml("require_layer = true\n")
    result = layered_project.runpytest()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR collecting tests/test_loose.py*",
            "tests/test_loose.py::test_loose: has no layer marker and require_layer = true; mark "
            "it with one of @pytest.mark.unit, @pytest.mark.integration, "
            "@pytest.mark.performance, @pytest.mark.quality or move it under a directory of "
            "layer_dirs",
            "*Interrupted: 1 error during collection*",
        ]
    )
    # Only the unmarked test is named.
    assert "test_unit_things" not in result.stdout.str()


def test_require_layer_passes_with_marked_and_auto_marked_tests(
    layered_project: pytest.Pytester, pipeline_toml: Toml
) -> None:
    pipeline_toml("require_layer = true\n")
    layered_project.path.joinpath("tests", "test_loose.py").write_text(
        "import pytest\n\n@pytest.mark.unit\ndef test_loose():\n    pass\n"
    )
    result = layered_project.runpytest()
    result.assert_outcomes(passed=5)
    assert result.ret == pytest.ExitCode.OK


def test_require_layer_off_by_default(layered_project: pytest.Pytester) -> None:
    layered_project.runpytest().assert_outcomes(passed=5)


# --------------------------------------------------------------------------- bad arguments


@pytest.mark.parametrize(
    ("decorator", "message"),
    [
        pytest.param(
            "@pytest.mark.performance(recods=10)",
            "performance() got an unknown argument 'recods'; valid: records, max_seconds, "
            "max_memory_mb, min_records_per_second",
            id="unknown-kwarg",
        ),
        pytest.param(
            "@pytest.mark.performance(max_seconds=-1)",
            "performance(max_seconds=...) must be a positive number, got -1",
            id="negative-budget",
        ),
        pytest.param(
            "@pytest.mark.performance(max_memory_mb=0)",
            "performance(max_memory_mb=...) must be a positive number, got 0",
            id="zero-budget",
        ),
        pytest.param(
            '@pytest.mark.performance(max_seconds="fast")',
            "performance(max_seconds=...) must be a positive number, got 'fast'",
            id="non-number-budget",
        ),
        pytest.param(
            "@pytest.mark.performance(min_records_per_second=float('nan'))",
            "performance(min_records_per_second=...) must be a positive number, got nan",
            id="nan-budget",
        ),
        pytest.param(
            "@pytest.mark.performance(max_seconds=True)",
            "performance(max_seconds=...) must be a positive number, got True",
            id="bool-budget",
        ),
        pytest.param(
            "@pytest.mark.performance(10_000, 2.0)",
            "performance(...) takes keyword arguments only (records, max_seconds, "
            "max_memory_mb, min_records_per_second), got positional (10000, 2.0)",
            id="positional",
        ),
        pytest.param(
            "@pytest.mark.performance(records=1.5)",
            "performance(records=...) must be a positive integer, got 1.5",
            id="records-float",
        ),
        pytest.param(
            '@pytest.mark.performance(records="10")',
            "performance(records=...) must be a positive integer, got '10'",
            id="records-str",
        ),
        pytest.param(
            "@pytest.mark.integration\n@pytest.mark.no_dlq",
            "no_dlq needs one reason saying why this test has no DLQ to check, e.g. "
            '@pytest.mark.no_dlq(reason="reads only; the pipeline has no DLQ here")',
            id="no_dlq-no-reason",
        ),
        pytest.param(
            '@pytest.mark.integration\n@pytest.mark.no_dlq(reason="  ")',
            "no_dlq needs one reason*",
            id="no_dlq-empty-reason",
        ),
        pytest.param(
            "@pytest.mark.integration\n@pytest.mark.no_dlq(reason=3)",
            "no_dlq needs one reason*",
            id="no_dlq-reason-not-str",
        ),
        pytest.param(
            '@pytest.mark.integration\n@pytest.mark.no_dlq(reason="x", why="y")',
            "no_dlq needs one reason*",
            id="no_dlq-extra-kwarg",
        ),
    ],
)
def test_bad_marker_arguments_are_collection_errors_naming_the_test(
    pytester: pytest.Pytester, decorator: str, message: str
) -> None:
    pytester.makepyfile(
        test_bad=f"import pytest\n\n{decorator}\ndef test_marked():\n    pass\n\n"
        "def test_innocent():\n    pass\n"
    )
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [f"test_bad.py::test_marked: {message}", "*Interrupted: 1 error during collection*"]
    )
    assert "test_innocent:" not in result.stdout.str()
    assert "Traceback" not in result.stdout.str()


def test_several_problems_of_one_test_are_all_reported(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.performance(records=-5, max_seconds="x", bogus=1)
        def test_marked():
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*::test_marked: performance(records=...) must be a positive integer, got -5",
            "*::test_marked: performance(max_seconds=...) must be a positive number, got 'x'",
            "*::test_marked: performance() got an unknown argument 'bogus'*",
        ]
    )


def test_bad_class_marker_names_each_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.performance(max_seconds=0)
        class TestLoad:
            def test_a(self):
                pass

            def test_b(self):
                pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        [
            "*::TestLoad::test_a: performance(max_seconds=...) must be a positive number, got 0",
            "*::TestLoad::test_b: performance(max_seconds=...) must be a positive number, got 0",
        ]
    )


def test_valid_marker_arguments_pass(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.performance(records=10_000, max_seconds=2.5, max_memory_mb=100,
                                 min_records_per_second=1e3)
        def test_perf():
            pass

        @pytest.mark.integration
        @pytest.mark.no_dlq(reason="reads only")
        def test_exempt_kwarg():
            pass

        @pytest.mark.integration
        @pytest.mark.no_dlq("reads only")
        def test_exempt_positional():
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=3)
    assert result.ret == pytest.ExitCode.OK
