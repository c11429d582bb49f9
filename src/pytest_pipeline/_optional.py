"""Import optional dependencies where they are used, naming the extra that provides them."""

from __future__ import annotations

import importlib
from types import ModuleType

from pytest_pipeline.errors import MissingDependencyError

#: Every install line the project prints or writes carries this floor: the package index also
#: holds an unrelated, older ``pytest-pipeline`` (0.3.0) with the same import name.
VERSION_FLOOR = ">=1.0"


def requirement(extras: str | None = None) -> str:
    """The requirement to install this package (with ``extras``), floor included."""
    return (
        f"pytest-pipeline[{extras}]{VERSION_FLOOR}" if extras else f"pytest-pipeline{VERSION_FLOOR}"
    )


def require(module: str, extra: str | None, feature: str) -> ModuleType:
    """Import ``module`` or raise an error telling what to install for ``feature``.

    ``extra`` names the extra that provides ``module``; ``None`` marks a core dependency
    (pandas, pyarrow), whose absence means a broken installation.
    """
    __tracebackhide__ = True  # the error is the caller's: show their line, not this one
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        target = requirement(extra)
        core = ", a core dependency of pytest-pipeline," if extra is None else ""
        raise MissingDependencyError(
            f"{feature} needs the Python package {module!r}{core} which is not installed "
            f'({exc}). Install it with: pip install "{target}"'
        ) from None
