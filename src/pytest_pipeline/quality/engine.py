"""Great Expectations suites as data-quality gates, in tests and in production code.

The same JSON suites (the format ``ExpectationSuite.to_json_dict()`` writes, one file per suite
under ``expectations_dir``) serve the ``expectations`` test fixture and a pipeline at run time::

    from pytest_pipeline.quality.engine import validate

    result = validate(frame, "silver_orders", expectations_dir="tests/quality/expectations")
    if not result.success:
        send_to_dlq(result.bad_rows(frame))
        frame = result.good_rows(frame)

Nothing here imports pytest, and Great Expectations is imported on first use only: from then on
one ephemeral GE context (no analytics, no progress bars, no files, no network) is reused.
"""

from __future__ import annotations

import difflib
import json
import os
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_pipeline._optional import require
from pytest_pipeline.errors import QualityError, SuiteError
from pytest_pipeline.records.values import REPORT_JSON, json_value
from pytest_pipeline.records.values import plain_value as _plain

if TYPE_CHECKING:
    from types import ModuleType

    import pandas

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

EXTRA = "quality"
SAMPLE_SIZE = 5
"""Sample unexpected values kept per failed expectation."""

_FEATURE = "Great Expectations suites (the quality layer)"
_MAX_KWARGS_TEXT = 70


def great_expectations() -> ModuleType:
    """Import Great Expectations with usage statistics off (unless the user opted in).

    ``GX_ANALYTICS_ENABLED`` is GE's documented switch; it is read when GE starts up, so it is
    set before the first import. An explicit user setting is left alone.
    """
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    if "great_expectations" in sys.modules:
        return require("great_expectations", EXTRA, _FEATURE)
    # Its first import takes seconds: said once, like a server's "ready in", so a slow first
    # quality test is not a mystery.
    began = time.perf_counter()
    module = require("great_expectations", EXTRA, _FEATURE)
    version = getattr(module, "__version__", "?")
    LOAD_NOTES.append(
        f"quality: Great Expectations {version} loaded in {time.perf_counter() - began:.2f} s"
    )
    return module


#: Lines for the terminal (the first GE import), taken by the quality hooks.
LOAD_NOTES: list[str] = []


# --------------------------------------------------------------------------- suites


def _registered_types() -> list[str]:
    from great_expectations.expectations.registry import (
        list_registered_expectation_implementations,
    )

    return sorted(list_registered_expectation_implementations())


def _build_expectation(entry: Any, position: int, display: str) -> Any:
    """One expectation of a suite file as a GE Expectation, or a SuiteError naming it."""
    from great_expectations.exceptions.exceptions import ExpectationNotFoundError
    from great_expectations.expectations.expectation_configuration import (
        ExpectationConfiguration,
    )

    where = f"{display}: expectation #{position}"
    if not isinstance(entry, Mapping):
        raise SuiteError(f"{where} is a {type(entry).__name__}, expected a JSON object")
    if "type" not in entry:
        hint = (
            " (a Great Expectations 0.x suite: rename 'expectation_type' to 'type')"
            if "expectation_type" in entry
            else ""
        )
        raise SuiteError(f"{where} has no 'type'{hint}")
    kind = entry["type"]
    where = f"{where} ({kind})"
    if not isinstance(entry.get("kwargs", {}), Mapping):
        raise SuiteError(f"{where}: 'kwargs' must be a JSON object")
    try:
        config = ExpectationConfiguration(**{"kwargs": {}, **entry})
        return config.to_domain_obj()
    except ExpectationNotFoundError:
        close = difflib.get_close_matches(str(kind), _registered_types(), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise SuiteError(f"{where}: unknown expectation type {kind!r}{hint}") from None
    except TypeError as exc:  # an unknown key next to type/kwargs
        raise SuiteError(f"{where}: {exc}") from None
    except ValueError as exc:  # pydantic's ValidationError: missing or invalid kwargs
        detail = " ".join(str(exc).split())
        raise SuiteError(f"{where} has invalid arguments: {detail}") from None


def build_suite(data: Any, display: str, *, default_name: str) -> Any:
    """A GE ``ExpectationSuite`` from the JSON data of a suite file (``display`` names it)."""
    gx = great_expectations()
    if not isinstance(data, Mapping):
        raise SuiteError(f"{display}: a suite is a JSON object, found a {type(data).__name__}")
    expectations = data.get("expectations")
    if not isinstance(expectations, list):
        raise SuiteError(f"{display}: 'expectations' must be a list of expectation objects")
    built = [
        _build_expectation(entry, position, display)
        for position, entry in enumerate(expectations, start=1)
    ]
    return gx.ExpectationSuite(
        name=str(data.get("name") or default_name),
        expectations=built,
        meta=dict(data.get("meta") or {}),
        notes=data.get("notes"),
    )


def load_suite(path: str | os.PathLike[str], *, display: str | None = None) -> Any:
    """Load a suite JSON file (``ExpectationSuite.to_json_dict()`` format) as a GE suite."""
    path = Path(path)
    display = display or str(path)
    return build_suite(read_suite_data(path, display), display, default_name=path.stem)


def read_suite_data(path: Path, display: str) -> Any:
    """The JSON data of a suite file, without Great Expectations (the synthetic data reads it)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SuiteError(f"cannot read suite file {display}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SuiteError(
            f"{display} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from None
    return data


class SuiteLibrary:
    """The suites saved under ``directory``: ``orders/silver.json`` is the suite ``orders/silver``.

    ``rootdir`` only shortens the paths printed in messages. Files are re-read when they change.
    """

    def __init__(self, directory: str | os.PathLike[str], *, rootdir: Path | None = None) -> None:
        self.directory = Path(directory).resolve()
        self.rootdir = rootdir.resolve() if rootdir is not None else None
        self._cache: dict[Path, tuple[tuple[int, int], Any]] = {}

    def _display(self, path: Path) -> str:
        if self.rootdir is not None:
            try:
                return path.relative_to(self.rootdir).as_posix()
            except ValueError:
                pass
        return str(path)

    def names(self) -> list[str]:
        """Names of the suites in the directory, sorted."""
        if not self.directory.is_dir():
            return []
        return sorted(
            path.relative_to(self.directory).with_suffix("").as_posix()
            for path in self.directory.rglob("*.json")
            if path.is_file()
        )

    def path(self, name: str) -> Path:
        """The file of suite ``name`` (``name`` or ``name.json``); SuiteError if missing."""
        __tracebackhide__ = True  # a wrong name is the caller's: show their line
        relative = name[:-5] if name.endswith(".json") else name
        candidate = (self.directory / f"{relative}.json").resolve()
        if candidate.is_file() and candidate.is_relative_to(self.directory):
            return candidate
        where = self._display(self.directory)
        if not self.directory.is_dir():
            raise SuiteError(
                f"no suite {name!r}: the expectations directory {where} does not exist "
                "(set expectations_dir in [tool.pytest-pipeline], or save the suite there "
                "with json.dump(suite.to_json_dict(), file))"
            )
        names = self.names()
        close = difflib.get_close_matches(relative, names, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        listing = ", ".join(names) if names else "none"
        raise SuiteError(f"no suite {name!r} in {where} (suites there: {listing}).{hint}")

    def data(self, name: str) -> tuple[Any, str]:
        """The JSON data of suite ``name`` and the file's display path (no GE import)."""
        __tracebackhide__ = True
        path = self.path(name)
        display = self._display(path)
        return read_suite_data(path, display), display

    def load(self, name: str) -> Any:
        """A fresh GE ``ExpectationSuite`` built from the file of suite ``name``."""
        path = self.path(name)
        stat = path.stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
        cached = self._cache.get(path)
        if cached is None or cached[0] != stamp:
            suite = load_suite(path, display=self._display(path))
            self._cache[path] = (stamp, suite.to_json_dict())
            return suite
        # A fresh object per call: suites are mutable and tests may add to theirs.
        return build_suite(cached[1], self._display(path), default_name=path.stem)


# --------------------------------------------------------------------------- results


def _show(value: Any) -> str:
    value = _plain(value)
    if value is None:
        return "null"
    if isinstance(value, list):
        return "[" + ", ".join(_show(item) for item in value) + "]"
    if isinstance(value, tuple):
        return "(" + ", ".join(_show(item) for item in value) + ")"
    return repr(value)


def _kwargs_text(kwargs: Mapping[str, Any]) -> str:
    text = ", ".join(
        f"{key}={_show(value)}"
        for key, value in kwargs.items()
        if not key.startswith("column") and key not in ("batch_id", "result_format")
    )
    return text if len(text) <= _MAX_KWARGS_TEXT else text[: _MAX_KWARGS_TEXT - 3] + "..."


@dataclass(frozen=True)
class FailedExpectation:
    """One expectation that did not hold (or could not be evaluated: ``error``)."""

    expectation: str
    """The expectation type, e.g. ``expect_column_values_to_not_be_null``."""
    columns: tuple[str, ...]
    kwargs: dict[str, Any]
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    observed_value: Any = None
    sample: tuple[Any, ...] = ()
    """Up to :data:`SAMPLE_SIZE` distinct unexpected values."""
    rows: tuple[int, ...] | None = None
    """Positions (0-based) of the rows that failed, when GE can tell and rows were asked for."""
    error: str | None = None
    """Why GE could not evaluate the expectation (a missing column, a type error, ...)."""

    def describe(self) -> str:
        """The type with its arguments but the columns, e.g. ``..._between(max_value=9)``."""
        arguments = _kwargs_text(self.kwargs)
        return f"{self.expectation}({arguments})" if arguments else self.expectation

    def as_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form (the ``quality`` section of ``--pipeline-report``)."""
        return {
            "expectation": self.expectation,
            "columns": list(self.columns),
            "kwargs": json_value(
                {k: v for k, v in self.kwargs.items() if k not in ("batch_id", "result_format")},
                REPORT_JSON,
            ),
            "unexpected_count": self.unexpected_count,
            "unexpected_percent": json_value(self.unexpected_percent, REPORT_JSON),
            "observed_value": json_value(self.observed_value, REPORT_JSON),
            "sample": json_value(self.sample, REPORT_JSON),
            "error": self.error,
        }


@dataclass(frozen=True)
class QualityResult:
    """The outcome of validating one frame against one suite."""

    suite: str
    row_count: int
    evaluated: int
    failures: tuple[FailedExpectation, ...]
    seconds: float
    with_rows: bool = False
    """Whether row positions were asked for (``rows=True``)."""
    raw: Any = field(default=None, repr=False, compare=False)
    """GE's own ``ExpectationSuiteValidationResult``, for anything not summarised here."""

    @property
    def success(self) -> bool:
        """True when every expectation held."""
        return not self.failures

    @property
    def failed_columns(self) -> list[str]:
        """Columns named by failed expectations, in suite order, without repeats."""
        return list(dict.fromkeys(c for failure in self.failures for c in failure.columns))

    @property
    def failed_rows(self) -> list[int] | None:
        """Sorted positions of the rows that broke a row-level expectation.

        ``None`` when validated with ``rows=False``. Table-level failures (row count, a column
        mean) name no row: check :attr:`success` as well before trusting the good rows.
        """
        if not self.with_rows:
            return None
        return sorted({p for failure in self.failures for p in failure.rows or ()})

    def bad_rows(self, frame: pandas.DataFrame) -> pandas.DataFrame:
        """The rows of ``frame`` (the validated frame) that broke a row-level expectation."""
        return frame.iloc[self._positions()]

    def good_rows(self, frame: pandas.DataFrame) -> pandas.DataFrame:
        """The rows of ``frame`` (the validated frame) that broke no row-level expectation."""
        import numpy as np

        keep = np.ones(len(frame), dtype=bool)
        keep[self._positions()] = False
        return frame.iloc[keep]

    def _positions(self) -> list[int]:
        rows = self.failed_rows
        if rows is None:
            raise QualityError(
                "this result has no row positions: validate with rows=True to split the frame"
            )
        return rows

    def message(self) -> str:
        """A readable report: one line per failed expectation, plus suite name and row count."""
        if self.success:
            return (
                f"quality suite {self.suite!r}: all {self.evaluated} expectations passed "
                f"on {self.row_count} rows"
            )
        head = (
            f"quality suite {self.suite!r} failed on {self.row_count} rows: "
            f"{len(self.failures)} of {self.evaluated} expectations failed"
        )
        header = ("expectation", "column(s)", "observed", "unexpected", "sample unexpected values")
        table = [header]
        for failure in self.failures:
            if failure.unexpected_count is not None:
                percent = failure.unexpected_percent or 0.0
                unexpected = f"{failure.unexpected_count} ({percent:.1f}%)"
            else:
                unexpected = "-"
            observed = "-" if failure.observed_value is None else _show(failure.observed_value)
            if failure.error:
                sample = f"error: {failure.error}"
            elif failure.sample:
                sample = ", ".join(_show(value) for value in failure.sample)
            else:
                sample = "-"
            table.append(
                (
                    failure.describe(),
                    ", ".join(failure.columns) or "-",
                    observed,
                    unexpected,
                    sample,
                )
            )
        widths = [max(len(row[i]) for row in table) for i in range(len(header) - 1)]
        lines = [head]
        for row in table:
            cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
            lines.append("  " + "  ".join([*cells, row[-1]]).rstrip())
        if self.failed_columns:
            lines.append(f"failing columns: {', '.join(self.failed_columns)}")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-serialisable summary (the ``quality`` section of ``--pipeline-report``)."""
        return {
            "suite": self.suite,
            "success": self.success,
            "rows": self.row_count,
            "evaluated": self.evaluated,
            "failed": [failure.as_dict() for failure in self.failures],
            "seconds": round(self.seconds, 6),
        }


def _columns(kwargs: Mapping[str, Any]) -> tuple[str, ...]:
    columns: list[str] = []
    for key in ("column", "column_A", "column_B"):
        if isinstance(kwargs.get(key), str):
            columns.append(kwargs[key])
    for key in ("column_list", "column_set"):
        value = kwargs.get(key)
        if isinstance(value, list | tuple | set):
            columns.extend(str(column) for column in value)
    return tuple(columns)


def _sample(values: Sequence[Any]) -> tuple[Any, ...]:
    seen: dict[str, Any] = {}
    for value in values:
        plain = _plain(value)
        seen.setdefault(repr(plain), plain)
        if len(seen) == SAMPLE_SIZE:
            break
    return tuple(seen.values())


def _error(exception_info: Any) -> str | None:
    # GE nests the info by metric when a metric fails to compute.
    infos: list[Any] = []
    if isinstance(exception_info, Mapping):
        nested = "raised_exception" not in exception_info
        infos = list(exception_info.values()) if nested else [exception_info]
    for info in infos:
        if isinstance(info, Mapping) and info.get("raised_exception"):
            return str(info.get("exception_message") or "exception while evaluating")
    return None


def _failure(outcome: Any, rows: bool) -> FailedExpectation:
    config = outcome.expectation_config
    kwargs = dict(config.kwargs)
    result = dict(outcome.result or {})
    index = result.get("unexpected_index_list") if rows else None
    positions: tuple[int, ...] | None = None
    if index is not None and all(isinstance(_plain(i), int) for i in index):
        positions = tuple(sorted({int(_plain(i)) for i in index}))
    count = result.get("unexpected_count")
    return FailedExpectation(
        expectation=str(config.type),
        columns=_columns(kwargs),
        kwargs=kwargs,
        unexpected_count=int(count) if count is not None else None,
        unexpected_percent=_plain(result.get("unexpected_percent")),
        observed_value=_plain(result.get("observed_value")),
        sample=_sample(result.get("partial_unexpected_list") or ()),
        rows=positions,
        error=_error(outcome.exception_info),
    )


def _order_key(expectation_type: str, kwargs: Mapping[str, Any]) -> str:
    clean = {k: v for k, v in kwargs.items() if k not in ("batch_id", "result_format")}
    return expectation_type + json.dumps(clean, sort_keys=True, default=str)


# --------------------------------------------------------------------------- validation


def to_frame(data: Any) -> pandas.DataFrame:
    """A pandas DataFrame from a DataFrame, a pyarrow Table / RecordBatch or a list of records."""
    pd = require("pandas", None, "Validating data with Great Expectations")
    if isinstance(data, pd.DataFrame):
        given: pandas.DataFrame = data
        return given
    if type(data).__module__.startswith("pyarrow") and hasattr(data, "to_pandas"):
        frame: pandas.DataFrame = data.to_pandas()
        return frame
    if isinstance(data, list) and all(isinstance(row, Mapping) for row in data):
        records: pandas.DataFrame = pd.DataFrame(data)
        return records
    raise QualityError(
        f"cannot validate a {type(data).__module__}.{type(data).__qualname__}: pass a pandas "
        "DataFrame, a pyarrow Table or a list of records"
    )


class QualityEngine:
    """One ephemeral GE context and a pandas batch definition, reused for every validation.

    ``library`` resolves suite names; without it only suite objects, expectation lists and
    paths to suite files are accepted.
    """

    def __init__(self, library: SuiteLibrary | None = None) -> None:
        self.library = library
        self._lock = threading.Lock()
        self._batch_definition: Any = None

    def _definition(self) -> Any:
        if self._batch_definition is None:
            great_expectations()
            from great_expectations.data_context.data_context.ephemeral_data_context import (
                EphemeralDataContext,
            )
            from great_expectations.data_context.types.base import (
                DataContextConfig,
                InMemoryStoreBackendDefaults,
                ProgressBarsConfig,
            )

            # In memory only (no docs sites, no files), no analytics, no tqdm output in tests.
            config = DataContextConfig(
                store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
                analytics_enabled=False,
                progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
            )
            # Built directly: gx.get_context() would make it GE's global "current project" and
            # replace a context the user's pipeline code set up. GE needs some current project
            # to validate, so ours becomes it only when there is none.
            context = EphemeralDataContext(project_config=config)
            from great_expectations.data_context.data_context.context_factory import (
                project_manager,
            )
            from great_expectations.exceptions.exceptions import DataContextRequiredError

            try:
                project_manager.get_current_project()
            except DataContextRequiredError:
                project_manager.set_project(context)
            asset = context.data_sources.add_pandas("pytest_pipeline").add_dataframe_asset("frame")
            self._batch_definition = asset.add_batch_definition_whole_dataframe("whole")
        return self._batch_definition

    def suite(self, suite: Any) -> Any:
        """A GE ``ExpectationSuite`` from a suite, a name / suite file path, or expectations."""
        gx = great_expectations()
        if isinstance(suite, gx.ExpectationSuite):
            return suite
        if isinstance(suite, str | os.PathLike):
            text = os.fspath(suite)
            if self.library is not None and not Path(text).is_absolute():
                try:
                    return self.library.load(text)
                except SuiteError:
                    if not (text.endswith(".json") and Path(text).is_file()):
                        raise
            if text.endswith(".json") or Path(text).is_file():
                return load_suite(text)
            raise SuiteError(
                f"no suite file {text!r}: pass a path to a suite JSON file, or "
                "expectations_dir= to look suite names up"
            )
        from great_expectations.expectations.expectation import Expectation

        if isinstance(suite, Expectation):
            suite = [suite]
        if isinstance(suite, Sequence) and all(isinstance(e, Expectation) for e in suite):
            # copy(): GE ties an expectation to the suite it is added to.
            return gx.ExpectationSuite(name="inline", expectations=[e.copy() for e in suite])
        raise QualityError(
            f"cannot use a {type(suite).__qualname__} as a suite: pass a suite name, an "
            "ExpectationSuite or a list of Great Expectations expectation objects"
        )

    def validate(self, data: Any, suite: Any, *, rows: bool = True) -> QualityResult:
        """Validate ``data`` against ``suite`` (anything :meth:`suite` accepts).

        ``rows=True`` asks GE for the positions of the failing rows (its COMPLETE result
        format, which costs more on large frames with many failures).
        """
        resolved = self.suite(suite)
        frame = to_frame(data)
        pd = require("pandas", None, "Validating data with Great Expectations")
        index = frame.index
        if not (
            isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1
        ):  # GE reports index labels; a default index makes them row positions.
            frame = frame.reset_index(drop=True)
        result_format = {
            "result_format": "COMPLETE" if rows else "SUMMARY",
            "partial_unexpected_count": 20,
        }
        started = time.perf_counter()
        with self._lock:
            batch = self._definition().get_batch(batch_parameters={"dataframe": frame})
            raw = batch.validate(resolved, result_format=result_format)
        seconds = time.perf_counter() - started
        order = {
            _order_key(e.configuration.type, e.configuration.kwargs): i
            for i, e in enumerate(resolved.expectations)
        }
        failed = sorted(
            (outcome for outcome in raw.results if not outcome.success),
            key=lambda o: order.get(
                _order_key(o.expectation_config.type, o.expectation_config.kwargs), len(order)
            ),
        )
        return QualityResult(
            suite=str(resolved.name),
            row_count=len(frame),
            evaluated=len(raw.results),
            failures=tuple(_failure(outcome, rows) for outcome in failed),
            seconds=seconds,
            with_rows=rows,
            raw=raw,
        )


_engines: dict[Path | None, QualityEngine] = {}
_engines_lock = threading.Lock()


def validate(
    data: Any,
    suite: Any,
    *,
    expectations_dir: str | os.PathLike[str] | None = None,
    rows: bool = True,
) -> QualityResult:
    """Validate a frame against a suite without pytest: the production quality gate.

    ``data``: a pandas DataFrame, a pyarrow Table or a list of records. ``suite``: a suite
    name (looked up in ``expectations_dir``), a path to a suite JSON file, a GE
    ``ExpectationSuite`` or a list of GE expectations. Returns a :class:`QualityResult`; with
    ``rows=True`` its :meth:`~QualityResult.bad_rows` / :meth:`~QualityResult.good_rows` split
    the frame, e.g. to route bad rows to a dead-letter queue. Never raises for bad data.
    """
    key = Path(expectations_dir).resolve() if expectations_dir is not None else None
    with _engines_lock:  # one GE context per process (per suite directory)
        engine = _engines.get(key)
        if engine is None:
            library = SuiteLibrary(key) if key is not None else None
            engine = _engines[key] = QualityEngine(library)
    return engine.validate(data, suite, rows=rows)
