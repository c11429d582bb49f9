"""Import optional dependencies where they are used, naming the extra that provides them."""

from __future__ import annotations

import importlib
from types import ModuleType

from pytest_pipeline.errors import MissingDependencyError


def require(module: str, extra: str, feature: str) -> ModuleType:
    """Import ``module`` or raise an error telling which extra to install for ``feature``."""
    __tracebackhide__ = True  # the error is the caller's: show their line, not this one
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{feature} needs the Python package {module!r}, which is not installed "
            f"({exc}). Install it with: pip install \"pytest-pipeline[{extra}]\""
        ) from None
