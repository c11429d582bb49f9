"""The layer markers in ``--markers`` and under ``--strict-markers``."""

from __future__ import annotations

from collections.abc import Callable

import pytest

Toml = Callable[[str], None]
UsageCheck = Callable[..., None]


def test_markers_are_documented(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers")
    assert result.ret == 0
    result.stdout.fnmatch_lines_random(
        [
            "@pytest.mark.unit: pipeline layer: *",
            "@pytest.mark.integration: pipeline layer: *dead-letter-queue*",
            "@pytest.mark.performance(records=None, max_seconds=None, max_memory_mb=None, "
            "min_records_per_second=None): pipeline layer: *",
            "@pytest.mark.quality: pipeline layer: *",
            "@pytest.mark.no_dlq(reason): exempt one integration test from the DLQ-count rule*",
        ]
    )


def test_strict_markers_passes_with_every_marker(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.unit
        def test_unit():
            pass

        @pytest.mark.integration
        def test_integration(dlq):
            dlq.assert_count([], 0)

        @pytest.mark.integration
        @pytest.mark.no_dlq(reason="reads only")
        def test_exempt():
            pass

        @pytest.mark.performance(records=10, max_seconds=5)
        def test_performance():
            pass

        @pytest.mark.quality
        def test_quality():
            pass
        """
    )
    result = pytester.runpytest("--strict-markers")
    result.assert_outcomes(passed=5)
    assert result.ret == pytest.ExitCode.OK


def test_strict_markers_still_catches_typos(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.intergration
        def test_typo():
            pass
        """
    )
    result = pytester.runpytest("--strict-markers")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*'intergration' not found in `markers` configuration option*"])
