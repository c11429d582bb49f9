"""Exceptions raised by pytest-pipeline.

Every error the plugin raises names what is wrong (file, key, test or host) and what to do,
so users never have to read a traceback from inside a dependency.
"""

from __future__ import annotations

import pytest


class PipelineError(Exception):
    """Base class of every error raised by pytest-pipeline."""


# UsageError is @final in pytest's stubs; subclassing it is what makes pytest print the message as
# "ERROR: ..." with exit code 4 and no traceback, which is the point of this class.
class ConfigError(PipelineError, pytest.UsageError):  # type: ignore[misc]
    """Invalid ``[tool.pytest-pipeline]`` configuration, option or environment variable."""


class FixtureFileError(PipelineError):
    """A fixture file that is missing, malformed or of an unsupported format."""


class RecordsError(PipelineError, ValueError):
    """Records that cannot be read from or written to a file format (``pytest_pipeline.records``).

    The message names the file or object; callers re-raise it as their own error type.
    """


class MissingDependencyError(PipelineError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


class ServiceError(PipelineError):
    """A service (Postgres, Kafka, S3) that cannot be started, reached or used."""


class HostNotAllowedError(ServiceError):
    """A service URL points at a host outside ``allowed_hosts``."""


class ServiceUnavailable(ServiceError):
    """No backend can provide a service here; ``services.missing`` decides error or skip."""


class SchemaError(ServiceError):
    """The project's schema could not be applied to the template database."""


class UnsafeDirectoryError(ServiceError):
    """A directory under a shared root that another user could have planted or changed."""


class QualityError(PipelineError):
    """Data that cannot be validated (wrong type), or a suite argument of the wrong kind."""


class SuiteError(QualityError):
    """A suite that is missing, unreadable or malformed; the message names the file."""


class ContractError(PipelineError):
    """A ``transform_contract(...)`` declaration that cannot be expanded into tests."""


class SynthError(PipelineError):
    """A suite or schema the generator cannot make data for; the message says which part."""


class RegexNotGeneratable(PipelineError, ValueError):
    """A construct of a ``regex`` expectation's pattern the sampler cannot produce strings for."""


class CompareError(PipelineError):
    """An earlier report that cannot be compared with this run (message says why)."""


class TrendError(PipelineError):
    """Report files that cannot be plotted; the message names the file and what to do."""


class PipelineWarning(UserWarning):
    """A pytest-pipeline rule broken in ``warn`` mode, or a cleanup that did not finish."""


class SynthWarning(PipelineWarning):
    """Expectations of a suite that the generated data does not honour (listed, with why)."""
