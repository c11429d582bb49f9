"""Configuration: ``[tool.pytest-pipeline]`` + environment + ``--pipeline-*`` options.

Every setting is declared once in :data:`SETTINGS` (key, type, default, environment variable,
command-line option, help). Resolution runs once per session, in the order
CLI > environment > pyproject > defaults, and yields a frozen :class:`PipelineConfig`.
The same table drives validation errors, ``pytest --help`` and the configuration reference.
"""

from __future__ import annotations

import difflib
import os
import random
import sys
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from pytest_pipeline.errors import ConfigError
from pytest_pipeline.masking import Secret, SecretURL, mask_secrets

SECTION = "tool.pytest-pipeline"
ENV_PREFIX = "PYTEST_PIPELINE_"
LAYERS = ("unit", "integration", "performance", "quality")
DLQ_MODES = ("strict", "warn", "off")
PII_MODES = ("error", "warn", "off")
BACKENDS = ("auto", "docker", "local", "external")
MISSING_MODES = ("error", "skip")
NETWORKS = ("bridge", "host")
SERVICES = ("postgres", "kafka", "s3")


# --------------------------------------------------------------------------- value parsers
# Each parser takes the raw value (TOML value, or a string from env/CLI) and returns the typed
# value or raises ValueError with the expected type in words.


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"1", "true", "yes", "on"}:
        return True
    if isinstance(value, str) and value.strip().lower() in {"0", "false", "no", "off"}:
        return False
    raise ValueError("a boolean (true or false)")


def _as_int(value: Any) -> int:
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


def _as_positive_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("a positive number")
    number: float | None = None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str) and value.isascii():  # float() takes any script's digits
        try:
            number = float(value.strip().replace("_", ""))
        except ValueError:
            number = None
    if number is None or not number > 0:  # nan is not > 0
        raise ValueError("a positive number")
    return number


def _bounded_number(unit: str, most: float, least: float = 0.0) -> Callable[[Any], float]:
    """A parser of a positive number of ``unit``, from ``least`` (exclusive of 0) to ``most``.

    Every bad value gets the whole range in its message.
    """
    low = f"at least {least:.15g} and " if least else ""
    expected = f"a positive number of {unit}, {low}at most {most:.15g}"

    def parse(value: Any) -> float:
        try:
            number = _as_positive_float(value)
        except ValueError:
            raise ValueError(expected) from None
        if not least <= number <= most:
            raise ValueError(expected)
        return number

    return parse


#: The longest wait services.startup_timeout may ask for: a day (inf would overflow the clocks).
MAX_TIMEOUT = 86400.0
#: The shortest: below it no server answers and every wait only fails (1e-300 is a typo).
MIN_TIMEOUT = 0.1
_as_timeout = _bounded_number("seconds", MAX_TIMEOUT, MIN_TIMEOUT)

#: The largest size a *_mb key may give (1 TiB): inf or 1e308 MB have no byte count.
MAX_MEGABYTES = 1024.0 * 1024.0
_as_megabytes = _bounded_number("MB", MAX_MEGABYTES)


def _as_str(value: Any) -> str:
    if isinstance(value, str) and value.strip():
        return value
    raise ValueError("a non-empty string")


def _as_str_list(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        items = [part.strip() for part in value.split(",") if part.strip()]
        return tuple(items)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise ValueError("a list of strings")


def _choice(*choices: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        if isinstance(value, str) and value.strip().lower() in choices:
            return value.strip().lower()
        raise ValueError("one of " + ", ".join(repr(choice) for choice in choices))

    return parse


def _as_seed(value: Any) -> int | None:
    # "random" picks a fresh base seed for the run; it is printed so the run can be repeated.
    if isinstance(value, str) and value.strip().lower() == "random":
        return None
    try:
        seed = _as_int(value)
    except ValueError:
        raise ValueError('an integer or "random"') from None
    if seed < 0:
        raise ValueError('a non-negative integer or "random"')
    return seed


def _as_layer_dirs(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ValueError("a table of layer = directory")
    for layer, directory in value.items():
        if layer not in LAYERS:
            raise ValueError(f"a table whose keys are layers ({', '.join(LAYERS)}), not {layer!r}")
        if not isinstance(directory, str):
            raise ValueError(f"a table of layer = directory string ({layer} is not a string)")
    return dict(value)


@dataclass(frozen=True)
class Setting:
    """One configuration key: where it can be set and how its value is checked."""

    key: str
    parse: Callable[[Any], Any]
    default: Any
    help: str
    type_name: str
    env: str | None = None
    cli: str | None = None

    @property
    def dest(self) -> str:
        return "pipeline_" + self.key.replace(".", "_")


def _setting(
    key: str,
    parse: Callable[[Any], Any],
    default: Any,
    help: str,
    type_name: str,
    *,
    env: bool = True,
    cli: bool = False,
) -> Setting:
    short = key.rsplit(".", 1)[-1]
    return Setting(
        key=key,
        parse=parse,
        default=default,
        help=help,
        type_name=type_name,
        env=ENV_PREFIX + short.upper() if env else None,
        cli="--pipeline-" + short.replace("_", "-") if cli else None,
    )


SETTINGS: tuple[Setting, ...] = (
    _setting(
        "fixtures_dir",
        _as_str,
        "tests/fixtures",
        "Directory of fixture files, relative to the rootdir.",
        "path",
        cli=True,
    ),
    _setting(
        "expectations_dir",
        _as_str,
        "tests/quality/expectations",
        "Directory of Great Expectations suites (JSON), relative to the rootdir.",
        "path",
    ),
    _setting(
        "fixtures_max_mb",
        _as_megabytes,
        256.0,
        "Largest fixture file loaded, in MB once decompressed; a larger one is an error.",
        "number (MB)",
    ),
    _setting(
        "fixtures_pii",
        _choice(*PII_MODES),
        "warn",
        "What fixture files holding data that looks real (card numbers, IBANs, e-mail "
        "addresses, phone numbers, national IDs) do at collection: error, warn, off.",
        "error | warn | off",
    ),
    _setting(
        "fixtures_pii_allow",
        _as_str_list,
        (),
        "File globs (relative to fixtures_dir) and exact values the fixtures_pii scan lets "
        "through.",
        "list of strings",
    ),
    _setting(
        "seed",
        _as_seed,
        1234,
        'Base seed; each test\'s seed derives from it and the test id. "random" picks one '
        "per run (printed in the header).",
        'integer or "random"',
        cli=True,
    ),
    _setting(
        "dlq_assertions",
        _choice(*DLQ_MODES),
        "strict",
        "What happens to a passing integration test that asserted no DLQ count: "
        "strict (fail), warn, off.",
        "strict | warn | off",
        cli=True,
    ),
    _setting(
        "require_layer",
        _as_bool,
        False,
        "Make a test without a layer marker a collection error.",
        "boolean",
    ),
    _setting(
        "allowed_hosts",
        _as_str_list,
        ("localhost", "127.0.0.1", "::1"),
        "Hosts that service URLs may point at; others are refused before connecting.",
        "list of strings",
    ),
    _setting(
        "layer_dirs",
        _as_layer_dirs,
        {layer: f"tests/{layer}" for layer in LAYERS},
        "Directories whose tests get a layer marker automatically.",
        "table of layer = directory",
        env=False,
    ),
    _setting(
        "services.backend",
        _choice(*BACKENDS),
        "auto",
        "Where service fixtures get their servers: auto, docker, local, external.",
        "auto | docker | local | external",
        cli=True,
    ),
    _setting(
        "services.missing",
        _choice(*MISSING_MODES),
        "error",
        "What integration tests get when no backend can provide a service: error or skip.",
        "error | skip",
        cli=True,
    ),
    _setting(
        "services.network",
        _choice(*NETWORKS),
        "bridge",
        "Docker backend: bridge (ports published on 127.0.0.1) or host networking (Linux CI, "
        "Docker-in-Docker).",
        "bridge | host",
        cli=True,
    ),
    _setting(
        "services.startup_timeout",
        _as_timeout,
        60.0,
        "Seconds a server may take to become ready.",
        "number (seconds)",
    ),
    _setting(
        "services.postgres.schema",
        _as_str_list,
        (),
        "SQL files and directories of .sql files (natural order of names) applied, in order, "
        "to the template every test database is copied from; relative to the rootdir.",
        "list of paths",
        env=False,
    ),
    _setting(
        "services.postgres.schema_hook",
        _as_str,
        None,
        "'module:function' called with the template's DSN before the schema files (Alembic); "
        "its module's file is hashed into the template's cache key.",
        "string",
        env=False,
    ),
    _setting(
        "services.postgres.schema_command",
        _as_str,
        None,
        "Shell command run in the rootdir with the template's DSN in DATABASE_URL, after "
        "schema_hook and before the schema files.",
        "string",
        env=False,
    ),
    _setting(
        "services.postgres.schema_inputs",
        _as_str_list,
        (),
        "Files or directories not run but hashed into the template's cache key (e.g. "
        "alembic/versions for a schema_hook or schema_command).",
        "list of paths",
        env=False,
    ),
    _setting(
        "budgets.max_seconds",
        _as_positive_float,
        10.0,
        "Default time budget of a performance test.",
        "number (seconds)",
        env=False,
    ),
    _setting(
        "budgets.max_memory_mb",
        _as_positive_float,
        500.0,
        "Default peak-memory budget of a performance test.",
        "number (MB)",
        env=False,
    ),
    _setting(
        "budgets.min_records_per_second",
        _as_positive_float,
        None,
        "Default throughput floor of a performance test.",
        "number",
        env=False,
    ),
    _setting(
        "budgets.time_scale",
        _as_positive_float,
        1.0,
        "Multiplies every time budget (slower CI hardware).",
        "number",
        cli=True,
    ),
    _setting(
        "compare_fail",
        _as_bool,
        False,
        "Fail the run (exit code 1) when --pipeline-compare finds a regression beyond "
        "--pipeline-compare-threshold; the option takes no value.",
        "boolean",
        cli=True,
    ),
)
SETTINGS_BY_KEY = {setting.key: setting for setting in SETTINGS}

# Nested tables whose own keys are checked by dedicated code below.
SERVICE_KEYS: dict[str, tuple[str, ...]] = {
    "postgres": ("image", "url"),
    "kafka": ("image", "bootstrap"),
    "s3": ("image", "command", "health_path", "endpoint", "access_key", "secret_key", "region"),
}
SERVICE_ENV = {
    ("postgres", "url"): "PYTEST_PIPELINE_POSTGRES_URL",
    ("postgres", "image"): "PYTEST_PIPELINE_POSTGRES_IMAGE",
    ("kafka", "bootstrap"): "PYTEST_PIPELINE_KAFKA_BOOTSTRAP",
    ("kafka", "image"): "PYTEST_PIPELINE_KAFKA_IMAGE",
    ("s3", "endpoint"): "PYTEST_PIPELINE_S3_ENDPOINT",
    ("s3", "access_key"): "PYTEST_PIPELINE_S3_ACCESS_KEY",
    ("s3", "secret_key"): "PYTEST_PIPELINE_S3_SECRET_KEY",
    ("s3", "region"): "PYTEST_PIPELINE_S3_REGION",
    ("s3", "image"): "PYTEST_PIPELINE_S3_IMAGE",
    ("s3", "command"): "PYTEST_PIPELINE_S3_COMMAND",
    ("s3", "health_path"): "PYTEST_PIPELINE_S3_HEALTH_PATH",
}
# Variables read outside this table (service backends): known, so _check_env accepts them.
OTHER_ENV = (
    "PYTEST_PIPELINE_LOCAL_TMPFS",  # 0: local Postgres keeps its data on disk, not in /dev/shm
    "PYTEST_PIPELINE_LOCAL_SERVER",  # set in the environment of the local servers we start
)
OVERRIDE_KEYS = ("match", "records", "max_seconds", "max_memory_mb", "min_records_per_second")
TABLES = ("services", "budgets", *(f"services.{name}" for name in SERVICES), "budgets.override")


# --------------------------------------------------------------------------- resolved config


@dataclass(frozen=True)
class ServiceConfig:
    """Per-service settings; ``external`` holds URL-like settings that select an external server."""

    name: str
    image: str | None = None
    command: str | None = None
    health_path: str | None = None
    url: str | None = None
    bootstrap: str | None = None
    endpoint: str | None = None
    access_key: str | None = None
    secret_key: str | None = None
    region: str | None = None

    def __post_init__(self) -> None:
        # Clients get the real values; repr() (pytest -vv, -l, diffs) shows them masked.
        if self.url:
            object.__setattr__(self, "url", SecretURL(self.url))
        if self.secret_key:
            object.__setattr__(self, "secret_key", Secret(self.secret_key))

    @property
    def is_external(self) -> bool:
        """Whether a URL for an already running server was configured."""
        return bool(self.url or self.bootstrap or self.endpoint)


@dataclass(frozen=True)
class BudgetOverride:
    """``[[tool.pytest-pipeline.budgets.override]]``: limits for tests whose id matches a glob."""

    match: str
    records: int | None = None
    max_seconds: float | None = None
    max_memory_mb: float | None = None
    min_records_per_second: float | None = None


@dataclass(frozen=True)
class PipelineConfig:
    """The resolved configuration of one pytest session (frozen: resolved once)."""

    rootdir: Path
    source: Path | None
    fixtures_dir: Path
    expectations_dir: Path
    fixtures_max_mb: float
    seed: int
    seed_was_random: bool
    dlq_assertions: str
    require_layer: bool
    allowed_hosts: tuple[str, ...]
    layer_dirs: Mapping[str, Path]
    backend: str
    missing: str
    network: str
    startup_timeout: float
    services: Mapping[str, ServiceConfig]
    max_seconds: float
    max_memory_mb: float
    min_records_per_second: float | None
    time_scale: float
    overrides: tuple[BudgetOverride, ...] = ()
    update_fixtures: bool = False
    keep_failed: bool = False
    fixtures_pii: str = "warn"
    fixtures_pii_allow: tuple[str, ...] = ()
    origins: Mapping[str, str] = field(default_factory=dict)
    # services.postgres.schema*: what the template database is built from (services/schema.py).
    postgres_schema: tuple[str, ...] = ()
    postgres_schema_hook: str | None = None
    postgres_schema_command: str | None = None
    postgres_schema_inputs: tuple[str, ...] = ()
    compare_fail: bool = False

    def describe(self) -> str:
        """The essentials for the pytest header line."""
        seed = f"{self.seed} (random)" if self.seed_was_random else str(self.seed)
        return f"seed={seed} dlq_assertions={self.dlq_assertions} backend={self.backend}"


# --------------------------------------------------------------------------- helpers


def _closest(name: str, candidates: list[str]) -> str:
    match = difflib.get_close_matches(name, candidates, n=1, cutoff=0.5)
    return f" (did you mean {match[0]}?)" if match else ""


def _unknown(key: str, where: str, valid: list[str]) -> ConfigError:
    return ConfigError(
        f"pytest-pipeline: unknown configuration key {key!r} in {where}{_closest(key, valid)}. "
        f"Valid keys: {', '.join(sorted(valid))}."
    )


def _parse(setting_key: str, parse: Callable[[Any], Any], value: Any, where: str) -> Any:
    try:
        return parse(value)
    except ValueError as exc:
        # Secrets are never echoed, not even when they are of the wrong type.
        shown = (
            "a value of type " + type(value).__name__
            if "key" in setting_key
            else mask_secrets(repr(value))
        )
        raise ConfigError(
            f"pytest-pipeline: {setting_key} in {where} must be {exc}, got {shown}."
        ) from None


def read_pyproject(path: Path) -> dict[str, Any]:
    """The ``[tool.pytest-pipeline]`` table of ``path`` ({} when absent)."""
    if not path.is_file():
        return {}
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"pytest-pipeline: cannot parse {path}: {exc}") from None
    tools = data.get("tool", {})
    section = tools.get("pytest-pipeline", {}) if isinstance(tools, dict) else {}
    if not isinstance(section, dict):
        raise ConfigError(f"pytest-pipeline: [{SECTION}] in {path} must be a table.")
    if not section and isinstance(tools, dict):
        _check_near_miss(tools, path)
    return section


def _check_near_miss(tools: dict[str, Any], path: Path) -> None:
    """Refuse ``[tool.pytest_pipeline]`` and its kin: a misspelt table would be ignored silently.

    A spelling of our name (``pytest_pipeline``, ``pytest-pipelines``, ...) is ours whatever it
    holds; a looser near-miss (``[tool.pipeline]``) only when it holds one of our keys, so
    another tool's table of that name is left alone.
    """
    ours = {key.split(".", 1)[0] for key in SETTINGS_BY_KEY}
    for name, table in tools.items():
        if name == "pytest-pipeline":
            continue  # present but empty
        squashed = name.lower().replace("_", "").replace("-", "").replace(".", "")
        spelling = squashed.removesuffix("s") == "pytestpipeline"
        close = bool(difflib.get_close_matches(name.lower(), ["pytest-pipeline"], cutoff=0.75))
        loose = squashed.removesuffix("s") == "pipeline" or close
        if spelling or (loose and isinstance(table, dict) and ours & set(table)):
            raise ConfigError(
                f"pytest-pipeline: [tool.{name}] in {path} is not read: the table is "
                f"[{SECTION}] (with a hyphen). Rename it."
            )


def _flatten(section: dict[str, Any], where: str) -> dict[str, Any]:
    """Turn the TOML tables into dotted keys, rejecting unknown keys with a suggestion."""
    flat: dict[str, Any] = {}
    top_valid = [key for key in SETTINGS_BY_KEY if "." not in key] + ["services", "budgets"]
    for key, value in section.items():
        if key in ("services", "budgets"):
            if not isinstance(value, dict):
                raise ConfigError(f"pytest-pipeline: {key} in {where} must be a table.")
            valid = [k.split(".", 1)[1] for k in SETTINGS_BY_KEY if k.startswith(key + ".")]
            valid += list(SERVICES) if key == "services" else ["override"]
            for sub, subvalue in value.items():
                if sub in SERVICES and isinstance(subvalue, dict):
                    # Settings of the table (services.postgres.schema): hoisted to the top.
                    subvalue = dict(subvalue)
                    for name in list(subvalue):
                        if f"{key}.{sub}.{name}" in SETTINGS_BY_KEY:
                            flat[f"{key}.{sub}.{name}"] = subvalue.pop(name)
                if sub not in valid:
                    raise _unknown(f"{key}.{sub}", where, [f"{key}.{v}" for v in valid])
                flat[f"{key}.{sub}"] = subvalue
        elif key in top_valid:
            flat[key] = value
        else:
            raise _unknown(key, where, top_valid)
    return flat


def _service_config(name: str, table: Any, env: Mapping[str, str], where: str) -> ServiceConfig:
    values: dict[str, str] = {}
    key = f"services.{name}"
    if table is not None:
        if not isinstance(table, dict):
            raise ConfigError(f"pytest-pipeline: {key} in {where} must be a table.")
        for sub, value in table.items():
            if sub not in SERVICE_KEYS[name]:
                valid = [f"{key}.{k}" for k in SERVICE_KEYS[name]]
                valid += [k for k in SETTINGS_BY_KEY if k.startswith(f"{key}.")]  # schema...
                raise _unknown(f"{key}.{sub}", where, valid)
            values[sub] = _parse(f"{key}.{sub}", _as_str, value, where)
    for sub in SERVICE_KEYS[name]:
        variable = SERVICE_ENV.get((name, sub))
        if variable and env.get(variable):
            values[sub] = env[variable]
    return ServiceConfig(name=name, **values)


def _override(entry: Any, index: int, where: str) -> BudgetOverride:
    label = f"budgets.override[{index}]"
    if not isinstance(entry, dict):
        raise ConfigError(f"pytest-pipeline: {label} in {where} must be a table.")
    for sub in entry:
        if sub not in OVERRIDE_KEYS:
            raise _unknown(f"{label}.{sub}", where, [f"{label}.{k}" for k in OVERRIDE_KEYS])
    if "match" not in entry:
        raise ConfigError(
            f"pytest-pipeline: {label} in {where} needs a 'match' glob on test ids, "
            'e.g. match = "tests/performance/test_x.py::*".'
        )
    parsed: dict[str, Any] = {"match": _parse(f"{label}.match", _as_str, entry["match"], where)}
    if "records" in entry:
        records = _parse(f"{label}.records", _as_int, entry["records"], where)
        if records <= 0:
            raise ConfigError(
                f"pytest-pipeline: {label}.records in {where} must be a positive integer, "
                f"got {records!r}."
            )
        parsed["records"] = records
    for sub in ("max_seconds", "max_memory_mb", "min_records_per_second"):
        if sub in entry:
            parsed[sub] = _parse(f"{label}.{sub}", _as_positive_float, entry[sub], where)
    return BudgetOverride(**parsed)


def _check_env(env: Mapping[str, str]) -> None:
    """Reject misspelt ``PYTEST_PIPELINE_*`` variables: a typo must not silently do nothing."""
    known = {s.env for s in SETTINGS if s.env} | set(SERVICE_ENV.values()) | set(OTHER_ENV)
    for variable in env:
        if variable.startswith(ENV_PREFIX) and variable not in known:
            raise ConfigError(
                f"pytest-pipeline: unknown environment variable {variable}"
                f"{_closest(variable, sorted(known))}. Known: {', '.join(sorted(known))}."
            )


def resolve(
    rootdir: Path,
    cli: Mapping[str, Any],
    env: Mapping[str, str] | None = None,
    pyproject: Path | None = None,
) -> PipelineConfig:
    """Resolve the configuration once: CLI > environment > pyproject > defaults.

    ``cli`` maps a setting's ``dest`` to the option value (``None`` when not given), plus the
    flags ``pipeline_update_fixtures`` and ``pipeline_keep_failed``.
    """
    env = os.environ if env is None else env
    _check_env(env)
    path = pyproject or rootdir / "pyproject.toml"
    section = read_pyproject(path)
    where = f"[{SECTION}] of {path}"
    flat = _flatten(section, where)

    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for setting in SETTINGS:
        value, origin = setting.default, "default"
        if setting.key in flat:
            value = _parse(setting.key, setting.parse, flat[setting.key], where)
            origin = str(path)
        if setting.env and env.get(setting.env):
            value = _parse(
                setting.key, setting.parse, env[setting.env], f"environment variable {setting.env}"
            )
            origin = setting.env
        if setting.cli and cli.get(setting.dest) is not None:
            value = _parse(setting.key, setting.parse, cli[setting.dest], f"option {setting.cli}")
            origin = setting.cli
        values[setting.key] = value
        origins[setting.key] = origin

    overrides_raw = flat.get("budgets.override", [])
    if not isinstance(overrides_raw, list):
        raise ConfigError(
            f"pytest-pipeline: budgets.override in {where} must be an array of tables "
            "([[tool.pytest-pipeline.budgets.override]])."
        )
    services = {
        name: _service_config(name, flat.get(f"services.{name}"), env, where) for name in SERVICES
    }

    seed = values["seed"]
    seed_was_random = seed is None
    if seed is None:
        seed = random.SystemRandom().randrange(2**31)
    layer_dirs = {layer: (rootdir / directory) for layer, directory in values["layer_dirs"].items()}
    return PipelineConfig(
        rootdir=rootdir,
        source=path if section else None,
        fixtures_dir=rootdir / values["fixtures_dir"],
        expectations_dir=rootdir / values["expectations_dir"],
        fixtures_max_mb=values["fixtures_max_mb"],
        seed=seed,
        seed_was_random=seed_was_random,
        dlq_assertions=values["dlq_assertions"],
        require_layer=values["require_layer"],
        allowed_hosts=values["allowed_hosts"],
        layer_dirs=layer_dirs,
        backend=values["services.backend"],
        missing=values["services.missing"],
        network=values["services.network"],
        startup_timeout=values["services.startup_timeout"],
        services=services,
        max_seconds=values["budgets.max_seconds"],
        max_memory_mb=values["budgets.max_memory_mb"],
        min_records_per_second=values["budgets.min_records_per_second"],
        time_scale=values["budgets.time_scale"],
        overrides=tuple(_override(e, i, where) for i, e in enumerate(overrides_raw)),
        update_fixtures=bool(cli.get("pipeline_update_fixtures")),
        keep_failed=bool(cli.get("pipeline_keep_failed")),
        fixtures_pii=values["fixtures_pii"],
        fixtures_pii_allow=values["fixtures_pii_allow"],
        origins=origins,
        postgres_schema=values["services.postgres.schema"],
        postgres_schema_hook=values["services.postgres.schema_hook"],
        postgres_schema_command=values["services.postgres.schema_command"],
        postgres_schema_inputs=values["services.postgres.schema_inputs"],
        compare_fail=values["compare_fail"],
    )


def _metavar(setting: Setting) -> str:
    # Choices show every value ({strict,warn,off}); other types their kind (INTEGER, PATH).
    if "|" in setting.type_name:
        return "{" + ",".join(part.strip() for part in setting.type_name.split("|")) + "}"
    return setting.type_name.split(" ")[0].upper()


def add_options(parser: pytest.Parser) -> None:
    """Register the ``--pipeline-*`` options in their own ``pytest --help`` group."""
    group = parser.getgroup("pipeline", "pytest-pipeline (data-pipeline testing conventions)")
    for setting in SETTINGS:
        if setting.cli and setting.parse is _as_bool:
            # A flag: given means true; None when absent, so env and pyproject still apply.
            group.addoption(
                setting.cli,
                dest=setting.dest,
                action="store_const",
                const="true",
                default=None,
                help=f"{setting.help} Overrides {setting.key} in [{SECTION}]"
                + (f" and {setting.env}." if setting.env else "."),
            )
        elif setting.cli:
            group.addoption(
                setting.cli,
                dest=setting.dest,
                default=None,
                metavar=_metavar(setting),
                help=f"{setting.help} Overrides {setting.key} in [{SECTION}]"
                + (f" and {setting.env}." if setting.env else "."),
            )
    group.addoption(
        "--pipeline-update-fixtures",
        dest="pipeline_update_fixtures",
        action="store_true",
        help="assert_matches_fixture writes the expected fixture file instead of comparing.",
    )
    group.addoption(
        "--pipeline-keep-failed",
        dest="pipeline_keep_failed",
        action="store_true",
        help="Keep a failed test's database, topics and buckets and print how to connect.",
    )
    group.addoption(
        "--pipeline-report",
        dest="pipeline_report",
        default=None,
        metavar="PATH",
        help="Write the run report as JSON: performance rows, DLQ summary, services used and "
        "the hardware fingerprint.",
    )
    group.addoption(
        "--pipeline-compare",
        dest="pipeline_compare",
        default=None,
        metavar="PATH",
        help="Compare performance with an earlier --pipeline-report file (same hardware class "
        "only) and report regressions.",
    )
    group.addoption(
        "--pipeline-compare-threshold",
        dest="pipeline_compare_threshold",
        default=0.10,
        type=float,
        metavar="FRACTION",
        help="How much worse a figure may get before --pipeline-compare reports it "
        "(default 0.10 = 10%%).",
    )
    group.addoption(
        "--pipeline-doctor",
        dest="pipeline_doctor",
        action="store_true",
        help="Show which service backends can run here, and the resolved configuration; "
        "run no tests.",
    )


_CONFIG_KEY = pytest.StashKey[PipelineConfig]()


def from_pytest(config: pytest.Config) -> PipelineConfig:
    """Resolve (first call) or return the session's configuration."""
    resolved = config.stash.get(_CONFIG_KEY, None)
    if resolved is None:
        cli = {
            name: value
            for name, value in vars(config.option).items()
            if name.startswith("pipeline_")
        }
        resolved = resolve(Path(config.rootpath), cli)
        # pytest-xdist workers take the controller's seed: with seed = "random" each worker
        # would otherwise draw its own and test seeds would depend on the worker.
        workerinput = getattr(config, "workerinput", None)
        if workerinput is not None and "pipeline_seed" in workerinput:
            resolved = replace(resolved, seed=int(workerinput["pipeline_seed"]))
        config.stash[_CONFIG_KEY] = resolved
        dropped = dropped_config(resolved, Path(config.invocation_params.dir))
        if dropped and workerinput is None:
            from pytest_pipeline.errors import PipelineWarning

            config.stash[DROPPED_KEY] = dropped[0]  # the header shows it too
            _warn_at_table(config, PipelineWarning(dropped[0]), dropped[1])
    return resolved


#: Why the project's ``[tool.pytest-pipeline]`` is not used (see :func:`dropped_config`).
DROPPED_KEY = pytest.StashKey[str]()


@pytest.fixture(scope="session")
def pipeline_config(pytestconfig: pytest.Config) -> PipelineConfig:
    """The resolved ``[tool.pytest-pipeline]`` configuration of this session."""
    return from_pytest(pytestconfig)


def register(config: pytest.Config, resolved: PipelineConfig) -> None:
    """Register the ``pipeline_config`` fixture and the header line that describes the run."""
    config.pluginmanager.register(sys.modules[__name__], "pipeline-config")
    config.pluginmanager.register(ConfigHooks(config, resolved), "pipeline-config-hooks")


class ConfigHooks:
    """The ``pipeline:`` header lines: the resolved essentials and where they came from."""

    def __init__(self, config: pytest.Config, resolved: PipelineConfig) -> None:
        self.config = config
        self.resolved = resolved

    def pytest_report_header(self) -> list[str]:
        source = (
            f"[tool.pytest-pipeline] in {self.resolved.source.name}"
            if self.resolved.source
            else "no [tool.pytest-pipeline] section"
        )
        lines = [f"pipeline: {self.resolved.describe()} ({source})"]
        dropped = self.config.stash.get(DROPPED_KEY, None)
        if dropped:  # before the tests, not only in the warnings summary at the end
            lines.append(f"pipeline: WARNING {dropped.removeprefix('pytest-pipeline: ')}")
        return lines


def _warn_at_table(config: pytest.Config, warning: Warning, pyproject: Path) -> None:
    """``config.issue_config_time_warning`` (pytest's -W filters apply) attributed to the
    ``[tool.pytest-pipeline]`` line of ``pyproject``, the file to fix: a warning names its
    caller's frame, so the call is made from code compiled under that file's name and line."""
    try:
        lines = pyproject.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        lines = []
    line = next((n for n, text in enumerate(lines, 1) if text.strip().startswith(f"[{SECTION}")), 1)
    code = compile(
        "\n" * (line - 1) + "config.issue_config_time_warning(warning, stacklevel=2)",
        str(pyproject),
        "exec",
    )
    exec(code, {"config": config, "warning": warning})


def dropped_config(resolved: PipelineConfig, invocation_dir: Path) -> tuple[str, Path] | None:
    """Why the project's ``[tool.pytest-pipeline]`` is not used, when pytest's rootdir missed it.

    ``pytest --pipeline-compare ../base.json`` (a space, not ``=``): pytest takes the path for a
    test path while it picks the rootdir, which becomes a parent folder of the project. The
    nearest pyproject.toml upwards from the invocation folder is the project's; when it holds the
    table and the rootdir's does not, the settings would be dropped without a word.
    """
    if resolved.source is not None:
        return None
    for folder in (invocation_dir, *invocation_dir.parents):
        candidate = folder / "pyproject.toml"
        if folder == resolved.rootdir or not candidate.is_file():
            if folder == resolved.rootdir:
                return None
            continue
        try:
            if not read_pyproject(candidate):
                return None
        except ConfigError:
            return None  # a broken file elsewhere is not this run's to report
        return (
            f"pytest-pipeline: the rootdir {resolved.rootdir} has no [{SECTION}], so the one in "
            f"{candidate} is NOT used. Pass options that take a path with '=' "
            f"(--pipeline-compare=PATH), or run with --rootdir={folder}.",
            candidate,
        )
    return None


def reference_table() -> str:
    """The Markdown table of every setting, for docs/configuration.md (kept in sync by a test)."""
    rows = [
        "| key | type | default | environment | option | meaning |",
        "|---|---|---|---|---|---|",
    ]
    for setting in SETTINGS:
        default = setting.default
        if isinstance(default, tuple):
            default = list(default)
        shown = "none" if default is None else f"`{default!r}`".replace("'", '"')
        if isinstance(default, bool):
            shown = f"`{str(default).lower()}`"
        if isinstance(default, dict):
            shown = "`" + ", ".join(f"{k} = {v}" for k, v in default.items()) + "`"
        rows.append(
            f"| `{setting.key}` | {setting.type_name.replace('|', 'or')} | {shown} | "
            f"{'`' + setting.env + '`' if setting.env else ''} | "
            f"{'`' + setting.cli + '`' if setting.cli else ''} | {setting.help} |"
        )
    for (service, key), variable in SERVICE_ENV.items():
        rows.append(
            f"| `services.{service}.{key}` | string | none | `{variable}` | | "
            f"{_SERVICE_HELP[key].format(service=service)} |"
        )
    return "\n".join(rows)


_SERVICE_HELP = {
    "url": "URL of an already running {service} server (selects the external backend).",
    "bootstrap": "Bootstrap servers of an already running {service} (selects external).",
    "endpoint": "Endpoint URL of an already running {service} (selects external).",
    "access_key": "Access key of the external {service}.",
    "secret_key": "Secret key of the external {service} (never printed).",
    "region": "Region name for the external {service} client.",
    "image": "Container image for the docker backend.",
    "command": "Docker backend: the S3 image's command; {{host}} and {{port}} are where it must "
    "listen (default MinIO's).",
    "health_path": "Docker backend: the S3 image's health URL path (default MinIO's).",
}
