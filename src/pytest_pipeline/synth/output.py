"""Generated columns as records, a pandas DataFrame or a pyarrow Table."""

from __future__ import annotations

from typing import Any

from pytest_pipeline.errors import SynthError
from pytest_pipeline.synth.spec import Plan


def to_output(plan: Plan, columns: dict[str, list[Any]], n: int, output: str) -> Any:
    """``columns`` (equal-length lists, in plan order) in the form ``output`` names."""
    if output == "records":
        return _records(columns, n)
    if output == "pandas":
        return _frame(plan, columns, n)
    if output == "arrow":
        import pyarrow as pa

        if plan.schema is not None:
            return pa.table(columns, schema=plan.schema)
        return pa.table(columns)
    raise SynthError(f"unknown output {output!r}: use 'records', 'pandas' or 'arrow'")


def _records(columns: dict[str, list[Any]], n: int) -> list[dict[str, Any]]:
    if not columns:
        return [{} for _ in range(n)]
    # A dict display per row is about three times faster than dict(zip(names, row)). The
    # source holds only repr()s of the column names (string literals) and loop variables.
    names = [str(name) for name in columns]
    targets = "".join(f"v{i}, " for i in range(len(names)))
    body = ", ".join(f"{name!r}: v{i}" for i, name in enumerate(names))
    build = eval(f"lambda columns: [{{{body}}} for {targets}in zip(*columns)]")
    records: list[dict[str, Any]] = build(list(columns.values()))
    return records


def _frame(plan: Plan, columns: dict[str, list[Any]], n: int) -> Any:
    import pandas as pd

    frame = pd.DataFrame(columns, index=pd.RangeIndex(n))
    for spec in plan.columns:
        # A declared dtype (of_type "int32", a schema's int16) is kept where no null forbids it.
        if spec.kind in ("int", "float") and spec.dtype and not frame[spec.name].isna().any():
            try:
                frame[spec.name] = frame[spec.name].astype(spec.dtype)  # type: ignore[call-overload]
            except (TypeError, ValueError):
                continue
    return frame
