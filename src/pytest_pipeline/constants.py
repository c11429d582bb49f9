"""Names and values shared by the plugin and ``pytest-pipeline init``, and the settings' parsers.

Standard library only, and no pytest: ``pytest-pipeline init`` (cli/scaffold.py) imports it to
write the same layers and default folders the plugin reads, without loading pytest.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: The pyproject.toml table of the plugin's settings.
SECTION = "tool.pytest-pipeline"
#: Prefix of every environment variable the plugin reads.
ENV_PREFIX = "PYTEST_PIPELINE_"
#: The test layers, in the order they are shown and run in CI.
LAYERS = ("unit", "integration", "performance", "quality")
DLQ_MODES = ("strict", "warn", "off")
PII_MODES = ("error", "warn", "off")
BACKENDS = ("auto", "docker", "local", "external")
MISSING_MODES = ("error", "skip")
NETWORKS = ("bridge", "host")
SERVICES = ("postgres", "kafka", "s3")

#: Default ``fixtures_dir`` and ``expectations_dir`` (relative to the rootdir).
DEFAULT_FIXTURES_DIR = "tests/fixtures"
DEFAULT_EXPECTATIONS_DIR = "tests/quality/expectations"
#: Default ``layer_dirs``: tests/<layer> for each layer.
DEFAULT_LAYER_DIRS = {layer: f"tests/{layer}" for layer in LAYERS}
#: How much worse a figure may get before ``--pipeline-compare`` reports it (10 %).
DEFAULT_COMPARE_THRESHOLD = 0.10

#: The longest wait services.startup_timeout may ask for: a day (inf would overflow the clocks).
MAX_TIMEOUT = 86400.0
#: The shortest: below it no server answers and every wait only fails (1e-300 is a typo).
MIN_TIMEOUT = 0.1
#: The largest size a *_mb key may give (1 TiB): inf or 1e308 MB have no byte count.
MAX_MEGABYTES = 1024.0 * 1024.0


# --------------------------------------------------------------------------- value parsers
# Each parser takes the raw value (TOML value, or a string from env/CLI) and returns the typed
# value or raises ValueError with the expected type in words.


def as_bool(value: Any) -> bool:
    """``true``/``false`` (TOML) or 1/0, true/false, yes/no, on/off (environment, options)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"1", "true", "yes", "on"}:
        return True
    if isinstance(value, str) and value.strip().lower() in {"0", "false", "no", "off"}:
        return False
    raise ValueError("a boolean (true or false)")


def as_int(value: Any) -> int:
    """An integer (ASCII digits, ``_`` separators allowed in strings)."""
    if isinstance(value, bool):
        raise ValueError("an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isascii():  # int() takes any script's digits
        try:
            return int(value.strip().replace("_", ""))
        except ValueError:
            pass
    raise ValueError("an integer")


def _as_float(value: Any) -> float | None:
    """The number ``value`` stands for, or None (ASCII digits only, never a bool)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and value.isascii():  # float() takes any script's digits
        try:
            return float(value.strip().replace("_", ""))
        except ValueError:
            return None
    return None


def as_positive_float(value: Any) -> float:
    """A number greater than 0 (not nan)."""
    number = _as_float(value)
    if number is None or not number > 0:  # nan is not > 0
        raise ValueError("a positive number")
    return number


def as_fraction(value: Any) -> float:
    """A finite number of 0 or more: 0.10 is 10 %."""
    number = _as_float(value)
    if number is None or not 0 <= number < float("inf"):  # nan fails both
        raise ValueError("a number of 0 or more (0.10 is 10%)")
    return number


def bounded_number(unit: str, most: float, least: float = 0.0) -> Callable[[Any], float]:
    """A parser of a positive number of ``unit``, from ``least`` (exclusive of 0) to ``most``.

    Every bad value gets the whole range in its message.
    """
    low = f"at least {least:.15g} and " if least else ""
    expected = f"a positive number of {unit}, {low}at most {most:.15g}"

    def parse(value: Any) -> float:
        try:
            number = as_positive_float(value)
        except ValueError:
            raise ValueError(expected) from None
        if not least <= number <= most:
            raise ValueError(expected)
        return number

    return parse


as_timeout = bounded_number("seconds", MAX_TIMEOUT, MIN_TIMEOUT)
as_megabytes = bounded_number("MB", MAX_MEGABYTES)


def as_str(value: Any) -> str:
    """A non-empty string."""
    if isinstance(value, str) and value.strip():
        return value
    raise ValueError("a non-empty string")


def as_str_list(value: Any) -> tuple[str, ...]:
    """A TOML list of strings, or a comma-separated string (environment, options)."""
    if isinstance(value, str):
        items = [part.strip() for part in value.split(",") if part.strip()]
        return tuple(items)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise ValueError("a list of strings")


def choice(*choices: str) -> Callable[[Any], str]:
    """A parser of one of ``choices`` (any case)."""

    def parse(value: Any) -> str:
        if isinstance(value, str) and value.strip().lower() in choices:
            return value.strip().lower()
        raise ValueError("one of " + ", ".join(repr(choice) for choice in choices))

    return parse


def as_seed(value: Any) -> int | None:
    """A non-negative integer, or None for ``"random"``."""
    # "random" picks a fresh base seed for the run; it is printed so the run can be repeated.
    if isinstance(value, str) and value.strip().lower() == "random":
        return None
    try:
        seed = as_int(value)
    except ValueError:
        raise ValueError('an integer or "random"') from None
    if seed < 0:
        raise ValueError('a non-negative integer or "random"')
    return seed


def as_layer_dirs(value: Any) -> dict[str, str]:
    """A table of layer = directory, every key a layer."""
    if not isinstance(value, dict):
        raise ValueError("a table of layer = directory")
    for layer, directory in value.items():
        if layer not in LAYERS:
            raise ValueError(f"a table whose keys are layers ({', '.join(LAYERS)}), not {layer!r}")
        if not isinstance(directory, str):
            raise ValueError(f"a table of layer = directory string ({layer} is not a string)")
    return dict(value)
