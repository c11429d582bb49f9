"""pytest-pipeline: layered testing conventions for data-pipeline repositories.

Importing this package is cheap: no data or client library is loaded until a test uses it.
"""

from __future__ import annotations

from pytest_pipeline.contracts import edge_case, transform_contract
from pytest_pipeline.dlq import assert_dlq_count

__all__ = ["__version__", "assert_dlq_count", "edge_case", "transform_contract"]

try:
    from importlib.metadata import version as _version

    __version__ = _version("pytest-pipeline")
except Exception:  # pragma: no cover - running from a source tree without metadata
    __version__ = "0.0.0"
