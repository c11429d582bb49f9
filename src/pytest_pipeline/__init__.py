"""pytest-pipeline: layered testing conventions for data-pipeline repositories.

Importing this package is cheap: no data or client library is loaded until a test uses it,
and the public names below are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_pipeline.contracts import edge_case, transform_contract
    from pytest_pipeline.dlq import assert_dlq_count

__all__ = ["__version__", "assert_dlq_count", "edge_case", "transform_contract"]

_LAZY = {
    "assert_dlq_count": "pytest_pipeline.dlq",
    "edge_case": "pytest_pipeline.contracts",
    "transform_contract": "pytest_pipeline.contracts",
}


def __getattr__(name: str) -> Any:
    # PEP 562: `from pytest_pipeline import transform_contract` imports its module only then.
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            value = version("pytest-pipeline")
        except PackageNotFoundError:  # pragma: no cover - a source tree without metadata
            value = "0.0.0"
    elif name in _LAZY:
        import importlib

        # Not cached: pytester's in-process runs drop modules first imported inside them.
        return getattr(importlib.import_module(_LAZY[name]), name)
    else:
        raise AttributeError(f"module 'pytest_pipeline' has no attribute {name!r}")
    globals()[name] = value
    return value
