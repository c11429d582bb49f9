"""Great Expectations quality checks with readable failures (``pytest_pipeline.quality.validate``
also runs outside pytest). Importing this package imports neither Great Expectations nor pandas.
"""

from __future__ import annotations

from pytest_pipeline.quality.engine import (
    FailedExpectation,
    QualityEngine,
    QualityError,
    QualityResult,
    SuiteError,
    SuiteLibrary,
    load_suite,
    validate,
)

__all__ = [
    "FailedExpectation",
    "QualityEngine",
    "QualityError",
    "QualityResult",
    "SuiteError",
    "SuiteLibrary",
    "load_suite",
    "validate",
]
