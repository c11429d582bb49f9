"""The ``synthetic`` fixture: records from the project's suites, seeded from the test's seed.

Importing this module imports no numpy, pandas, pyarrow, Great Expectations or Hypothesis.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_pipeline import config as _config
from pytest_pipeline import synth

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

    from pytest_pipeline.quality.engine import SuiteLibrary


class Synthetic:
    """What the ``synthetic`` fixture gives: seeded records from suites in ``expectations_dir``.

    A suite may be a suite name, a suite file, a suite's JSON data or a pyarrow schema. The
    seed is the test's (``pipeline_seed``): a failing test gets the same records when re-run,
    and ``--pipeline-seed`` changes them.
    """

    def __init__(self, library: SuiteLibrary, seed: int) -> None:
        self._library = library
        self.seed = seed
        """The seed the records derive from (this test's ``pipeline_seed``)."""

    def plan(self, suite: Any, *, schema: Any = None) -> synth.Plan:
        """The columns that will be generated, and the expectations not honoured."""
        __tracebackhide__ = True
        return synth.plan_with(suite, schema, self._library)

    def records(
        self,
        suite: Any,
        n: int,
        *,
        schema: Any = None,
        output: synth.Output = "records",
        unsupported: synth.OnUnsupported = "warn",
    ) -> Any:
        """``n`` records that meet ``suite`` (``output``: records, pandas or arrow)."""
        __tracebackhide__ = True
        planned = self.plan(suite, schema=schema)
        synth.report_unsupported(planned, unsupported)
        return synth.synthesize(planned, n, seed=self.seed, output=output, unsupported="ignore")

    def frame(self, suite: Any, n: int, *, schema: Any = None) -> Any:
        """``n`` records as a pandas DataFrame."""
        __tracebackhide__ = True
        return self.records(suite, n, schema=schema, output="pandas")

    def table(self, suite: Any, n: int, *, schema: Any = None) -> Any:
        """``n`` records as a pyarrow Table (with ``schema`` when given)."""
        __tracebackhide__ = True
        return self.records(suite, n, schema=schema, output="arrow")

    def strategy(self, suite: Any, *, schema: Any = None) -> SearchStrategy[dict[str, Any]]:
        """A Hypothesis strategy of single records (needs ``"pytest-pipeline[synth]>=1.0"``)."""
        __tracebackhide__ = True
        return synth.strategy(self.plan(suite, schema=schema))


def register(config: pytest.Config, resolved: _config.PipelineConfig) -> None:
    """Register the ``synthetic`` fixture; module-level strategies look up the project's suites."""
    # strategy("orders_clean") at a test module's top level runs at collection, before any
    # fixture: suite names are looked up in the project's expectations_dir, as the fixture does.
    config.pluginmanager.register(sys.modules[__name__], "pipeline-synth")
    previous = synth.use_session_suites((resolved.expectations_dir, resolved.rootdir))
    config.stash[_OUTER_SUITES] = previous


def pytest_unconfigure(config: pytest.Config) -> None:
    synth.use_session_suites(config.stash.get(_OUTER_SUITES, None))


# The suites of an outer session (pytester runs one in-process), restored at the end.
_OUTER_SUITES = pytest.StashKey[tuple[Path, Path] | None]()


@pytest.fixture
def synthetic(pipeline_config: _config.PipelineConfig, pipeline_seed: int) -> Synthetic:
    """``synthetic.records(suite, n)``: seeded records that meet a suite of expectations_dir."""
    from pytest_pipeline.quality.engine import SuiteLibrary

    library = SuiteLibrary(pipeline_config.expectations_dir, rootdir=pipeline_config.rootdir)
    return Synthetic(library, pipeline_seed)
