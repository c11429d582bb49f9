"""Every exception the plugin raises to its users derives from ``PipelineError`` and is declared
in ``errors.py`` (warnings derive from ``PipelineWarning``)."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

from pytest_pipeline import errors

SRC = Path(errors.__file__).parent
# Signals caught inside the package, never raised to a user.
INTERNAL = {
    "Unfit": "contracts/tabular.py -> checks.py: a value that does not fit a column's type",
    "LegacyFormat": "services/_kafka_batches.py: falls back to reading offsets",
}


def test_exceptions_are_declared_only_in_errors_py() -> None:
    # A private class (_FetchError) is a module's own control flow and never reaches a user.
    found = []
    for path in sorted(SRC.rglob("*.py")):
        if path.name == "errors.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                if node.name in INTERNAL:
                    continue
                bases = [ast.unparse(base) for base in node.bases]
                if any(b.endswith(("Error", "Exception", "Warning")) for b in bases):
                    found.append(f"{path.relative_to(SRC)}: {node.name}({', '.join(bases)})")
    assert found == []


def test_every_error_derives_from_pipeline_error() -> None:
    classes = [
        c for _, c in inspect.getmembers(errors, inspect.isclass) if c.__module__ == errors.__name__
    ]
    for cls in classes:
        base = errors.PipelineWarning if issubclass(cls, Warning) else errors.PipelineError
        assert issubclass(cls, base), cls


def test_public_import_paths_keep_working() -> None:
    from pytest_pipeline.contracts import ContractError
    from pytest_pipeline.quality import QualityError, SuiteError
    from pytest_pipeline.synth import SynthError, SynthWarning

    assert (ContractError, QualityError, SuiteError) == (
        errors.ContractError,
        errors.QualityError,
        errors.SuiteError,
    )
    assert (SynthError, SynthWarning) == (errors.SynthError, errors.SynthWarning)
