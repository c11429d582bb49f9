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


class MarkerError(PipelineError):
    """A layer marker used with invalid arguments."""


class FixtureFileError(PipelineError):
    """A fixture file that is missing, malformed or of an unsupported format."""


class MissingDependencyError(PipelineError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


class ServiceError(PipelineError):
    """A service (Postgres, Kafka, S3) that cannot be started, reached or used."""


class HostNotAllowedError(ServiceError):
    """A service URL points at a host outside ``allowed_hosts``."""


class PipelineWarning(UserWarning):
    """A pytest-pipeline rule broken in ``warn`` mode, or a cleanup that did not finish."""
