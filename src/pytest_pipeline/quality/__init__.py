"""Great Expectations quality checks with readable failures (``pytest_pipeline.quality.validate``
also runs outside pytest). Importing this package imports neither Great Expectations nor pandas,
and the engine module loads on first use of a name below (the plugin imports the package).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pytest_pipeline.errors import QualityError, SuiteError

if TYPE_CHECKING:
    from pytest_pipeline.quality.engine import (
        FailedExpectation,
        QualityEngine,
        QualityResult,
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


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'pytest_pipeline.quality' has no attribute {name!r}")
    import importlib

    # import_module, not `from ... import engine`: the package attribute may be a module that
    # an in-process pytester run dropped from sys.modules.
    engine = importlib.import_module("pytest_pipeline.quality.engine")

    # Not cached here: pytester's in-process runs drop modules first imported inside them,
    # and the next run must see the module it imports itself.
    return getattr(engine, name)
