"""Seeded synthetic records that meet a Great Expectations suite or a pyarrow schema.

"Never use production data in tests": make it from the expectations the team already keeps::

    from pytest_pipeline.synth import synthesize

    records = synthesize("silver_payments", 100_000, seed=7, expectations_dir="expectations")

Not-null, unique, value sets, ranges, regexes, types, string lengths and the column list are
honoured; the first rows carry boundary values on purpose (lowest, highest, zero, empty string,
null, where the column allows them). The same seed gives the same data. Expectations that cannot
be generated for (several columns at once, statistics of a column) are listed in a
:class:`SynthWarning` (or a :class:`SynthError` with ``unsupported="error"``).

In tests, the ``synthetic`` fixture seeds from the test's seed; :func:`strategy` gives the same
records as a Hypothesis strategy (``pip install "pytest-pipeline[synth]>=1.0"``).

Importing this package imports no numpy, pandas, pyarrow, Great Expectations or Hypothesis.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

from pytest_pipeline.errors import SynthError, SynthWarning

if TYPE_CHECKING:
    import pandas
    import pyarrow
    from hypothesis.strategies import SearchStrategy

    from pytest_pipeline.quality.engine import SuiteLibrary
    from pytest_pipeline.synth.spec import Plan, Unsupported

__all__ = [
    "Plan",
    "SynthError",
    "SynthWarning",
    "Unsupported",
    "batches",
    "plan",
    "strategy",
    "synthesize",
]

Output = Literal["records", "pandas", "arrow"]
OnUnsupported = Literal["warn", "error", "ignore"]


# The running pytest session's expectations_dir and rootdir (set by the synth plugin): suite
# names given to plan(), synthesize(), strategy() and batches() without expectations_dir are
# looked up there, as the ``synthetic`` fixture does.
_session_suites: tuple[Path, Path] | None = None


def use_session_suites(suites: tuple[Path, Path] | None) -> tuple[Path, Path] | None:
    """Look suite names up in ``(expectations_dir, rootdir)`` while a test session runs (None:
    stop); returns the previous value, which an inner session (pytester) restores."""
    global _session_suites
    previous, _session_suites = _session_suites, suites
    return previous


def _default_library() -> SuiteLibrary | None:
    if _session_suites is None:
        return None
    from pytest_pipeline.quality.engine import SuiteLibrary

    return SuiteLibrary(_session_suites[0], rootdir=_session_suites[1])


def _is_schema(source: Any) -> bool:
    return type(source).__module__.startswith("pyarrow") and hasattr(source, "names")


def _suite_data(source: Any, library: SuiteLibrary | None) -> tuple[Any, str]:
    __tracebackhide__ = True
    from pytest_pipeline.quality.engine import read_suite_data

    if isinstance(source, str | os.PathLike):
        text = os.fspath(source)
        by_name = library is not None and not Path(text).is_absolute()
        if by_name and not (text.endswith(".json") and Path(text).is_file()):
            assert library is not None
            return library.data(text)
        if text.endswith(".json") or Path(text).is_file():
            return read_suite_data(Path(text), text), text
        raise SynthError(
            f"no suite file {text!r}, and no expectations_dir to look the name up in (outside "
            "a pytest session): pass a path to a suite JSON file, or expectations_dir="
        )
    from pytest_pipeline.synth.spec import read_source

    display = str(getattr(source, "name", None) or "inline suite")
    if isinstance(source, Mapping):
        display = str(source.get("name") or "inline suite")
    return read_source(source, display), display


def plan(
    source: Any,
    *,
    schema: pyarrow.Schema | None = None,
    expectations_dir: str | os.PathLike[str] | None = None,
) -> Plan:
    """What will be generated for ``source``: the columns, and what is not honoured.

    ``source``: a suite name (with ``expectations_dir``), a suite JSON file, a suite's JSON
    data (a dict), a GE ``ExpectationSuite``, a pyarrow schema, or a :class:`Plan`.
    ``schema`` adds column types (and non-null fields) to a suite's columns. Inside a pytest
    session, ``expectations_dir`` defaults to the project's (``[tool.pytest-pipeline]``).
    """
    __tracebackhide__ = True  # a bad suite is the caller's error: show their line
    if expectations_dir is None:
        return plan_with(source, schema, _default_library())
    from pytest_pipeline.quality.engine import SuiteLibrary

    return plan_with(source, schema, SuiteLibrary(expectations_dir))


def plan_with(source: Any, schema: pyarrow.Schema | None, library: SuiteLibrary | None) -> Plan:
    """:func:`plan`, with suite names looked up in ``library`` (the fixture's)."""
    __tracebackhide__ = True
    from pytest_pipeline.synth import spec
    from pytest_pipeline.synth.spec import Plan

    if isinstance(source, Plan):
        return source
    if _is_schema(source):
        return spec.plan_schema(source)
    data, display = _suite_data(source, library)
    planned = spec.plan_suite(data, display)
    return spec.plan_schema(schema, planned) if schema is not None else planned


def report_unsupported(planned: Plan, mode: OnUnsupported, *, stacklevel: int = 3) -> None:
    """Warn about (or refuse) the expectations of ``planned`` the data does not honour."""
    __tracebackhide__ = True
    if not planned.unsupported or mode == "ignore":
        return
    lines = "".join(f"\n  - {item.describe()}" for item in planned.unsupported)
    message = (
        f"suite {planned.name!r}: {len(planned.unsupported)} expectation(s) not honoured by "
        f"the synthetic data (check them on your own data, or drop them):{lines}"
    )
    if mode == "error":
        raise SynthError(message)
    warnings.warn(SynthWarning(message), stacklevel=stacklevel)


@overload
def synthesize(
    source: Any,
    n: int,
    *,
    seed: int = ...,
    schema: pyarrow.Schema | None = ...,
    expectations_dir: str | os.PathLike[str] | None = ...,
    output: Literal["records"] = ...,
    unsupported: OnUnsupported = ...,
) -> list[dict[str, Any]]: ...
@overload
def synthesize(
    source: Any,
    n: int,
    *,
    seed: int = ...,
    schema: pyarrow.Schema | None = ...,
    expectations_dir: str | os.PathLike[str] | None = ...,
    output: Literal["pandas"],
    unsupported: OnUnsupported = ...,
) -> pandas.DataFrame: ...
@overload
def synthesize(
    source: Any,
    n: int,
    *,
    seed: int = ...,
    schema: pyarrow.Schema | None = ...,
    expectations_dir: str | os.PathLike[str] | None = ...,
    output: Literal["arrow"],
    unsupported: OnUnsupported = ...,
) -> pyarrow.Table: ...
def synthesize(
    source: Any,
    n: int,
    *,
    seed: int = 0,
    schema: pyarrow.Schema | None = None,
    expectations_dir: str | os.PathLike[str] | None = None,
    output: Output = "records",
    unsupported: OnUnsupported = "warn",
) -> Any:
    """``n`` seeded records that meet ``source`` (see :func:`plan` for what it may be).

    ``output``: ``"records"`` (a list of dicts), ``"pandas"`` (a DataFrame, declared dtypes
    kept) or ``"arrow"`` (a Table; with the schema when one was given). ``unsupported``: what
    to do about expectations the data does not honour: ``"warn"`` (a :class:`SynthWarning`
    listing them), ``"error"`` or ``"ignore"``.
    """
    __tracebackhide__ = True
    from pytest_pipeline.synth.generate import generate_columns
    from pytest_pipeline.synth.output import to_output

    planned = plan(source, schema=schema, expectations_dir=expectations_dir)
    report_unsupported(planned, unsupported)
    columns = generate_columns(planned, n, seed)
    return to_output(planned, columns, n, output)


def strategy(
    source: Any,
    *,
    schema: pyarrow.Schema | None = None,
    expectations_dir: str | os.PathLike[str] | None = None,
    unsupported: OnUnsupported = "warn",
) -> SearchStrategy[dict[str, Any]]:
    """A Hypothesis strategy of single records that meet ``source`` (needs the synth extra).

    ``source`` is what :func:`plan` takes: a suite name (looked up in ``expectations_dir``,
    by default the project's inside a pytest session), a suite file, a schema, ...
    """
    __tracebackhide__ = True
    from pytest_pipeline.synth.strategies import record_strategy

    planned = plan(source, schema=schema, expectations_dir=expectations_dir)
    report_unsupported(planned, unsupported)
    records: SearchStrategy[dict[str, Any]] = record_strategy(planned)
    return records


def batches(
    source: Any,
    *,
    min_size: int = 0,
    max_size: int | None = 50,
    schema: pyarrow.Schema | None = None,
    expectations_dir: str | os.PathLike[str] | None = None,
    unsupported: OnUnsupported = "warn",
) -> SearchStrategy[list[dict[str, Any]]]:
    """A Hypothesis strategy of lists of records; unique columns stay unique in a list."""
    __tracebackhide__ = True
    from pytest_pipeline.synth.strategies import batch_strategy

    planned = plan(source, schema=schema, expectations_dir=expectations_dir)
    report_unsupported(planned, unsupported)
    lists: SearchStrategy[list[dict[str, Any]]] = batch_strategy(planned, min_size, max_size)
    return lists


def __getattr__(name: str) -> Any:
    # The planning module loads on first use, not with the plugin.
    if name not in ("Plan", "Unsupported"):
        raise AttributeError(f"module 'pytest_pipeline.synth' has no attribute {name!r}")
    import importlib

    # import_module, not `from ... import spec`: the package attribute may be a module that an
    # in-process pytester run dropped from sys.modules.
    spec = importlib.import_module("pytest_pipeline.synth.spec")
    # Not cached here: pytester's in-process runs drop modules first imported inside them,
    # and the next run must see the module it imports itself.
    return getattr(spec, name)
