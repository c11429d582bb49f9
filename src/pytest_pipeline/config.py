"""Configuration: ``[tool.pytest-pipeline]`` + environment + ``--pipeline-*`` options.

Every setting is declared once in :data:`SETTINGS` (key, type, default, environment variable,
command-line option, help), the options that are no configuration key too (``--pipeline-report``,
``--pipeline-doctor``, ...). Resolution runs once per session, in the order
CLI > environment > pyproject > defaults, and yields a frozen :class:`PipelineConfig`, which nests
``services`` and ``budgets`` as the TOML does. The names and parsers ``init`` shares live in
:mod:`pytest_pipeline.constants` (no pytest import).
The same table drives validation errors, ``pytest --help`` and the configuration reference.
"""

from __future__ import annotations

import difflib
import os
import random
import sys
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import pytest

from pytest_pipeline.constants import (
    BACKENDS,
    DEFAULT_COMPARE_THRESHOLD,
    DEFAULT_EXPECTATIONS_DIR,
    DEFAULT_FIXTURES_DIR,
    DEFAULT_LAYER_DIRS,
    DLQ_MODES,
    ENV_PREFIX,
    MISSING_MODES,
    NETWORKS,
    PII_MODES,
    SECTION,
    SERVICES,
    as_bool,
    as_fraction,
    as_int,
    as_layer_dirs,
    as_megabytes,
    as_positive_float,
    as_seed,
    as_str,
    as_str_list,
    as_timeout,
    choice,
)
from pytest_pipeline.errors import ConfigError
from pytest_pipeline.masking import Secret, SecretURL, mask_secrets


class Setting(NamedTuple):
    """One setting: where it can be set and how its value is checked.

    ``toml`` is False for a command-line option that is no configuration key (``key`` then only
    names its :class:`PipelineConfig` field and ``--pipeline-*`` option).
    """

    key: str
    parse: Callable[[Any], Any]
    default: Any
    help: str
    type_name: str
    env: str | None = None
    cli: str | None = None
    toml: bool = True

    @property
    def dest(self) -> str:
        return "pipeline_" + self.key.replace(".", "_")

    @property
    def is_flag(self) -> bool:
        """An option that takes no value: given means true."""
        return self.cli is not None and self.parse is as_bool


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


def _option(
    key: str, parse: Callable[[Any], Any], default: Any, help: str, type_name: str
) -> Setting:
    """A command-line-only setting: ``--pipeline-<key>``, no configuration key or variable."""
    return Setting(
        key=key,
        parse=parse,
        default=default,
        help=help,
        type_name=type_name,
        cli="--pipeline-" + key.replace("_", "-"),
        toml=False,
    )


SETTINGS: tuple[Setting, ...] = (
    _setting(
        "fixtures_dir",
        as_str,
        DEFAULT_FIXTURES_DIR,
        "Directory of fixture files, relative to the rootdir.",
        "path",
        cli=True,
    ),
    _setting(
        "expectations_dir",
        as_str,
        DEFAULT_EXPECTATIONS_DIR,
        "Directory of Great Expectations suites (JSON), relative to the rootdir.",
        "path",
    ),
    _setting(
        "fixtures_max_mb",
        as_megabytes,
        256.0,
        "Largest fixture file loaded, in MB once decompressed; a larger one is an error.",
        "number (MB)",
    ),
    _setting(
        "fixtures_pii",
        choice(*PII_MODES),
        "warn",
        "What fixture files holding data that looks real (card numbers, IBANs, e-mail "
        "addresses, phone numbers, national IDs) do at collection: error, warn, off.",
        "error | warn | off",
    ),
    _setting(
        "fixtures_pii_allow",
        as_str_list,
        (),
        "File globs (relative to fixtures_dir) and exact values the fixtures_pii scan lets "
        "through.",
        "list of strings",
    ),
    _setting(
        "seed",
        as_seed,
        1234,
        'Base seed; each test\'s seed derives from it and the test id. "random" picks one '
        "per run (printed in the header).",
        'integer or "random"',
        cli=True,
    ),
    _setting(
        "dlq_assertions",
        choice(*DLQ_MODES),
        "strict",
        "What happens to a passing integration test that asserted no DLQ count: "
        "strict (fail), warn, off.",
        "strict | warn | off",
        cli=True,
    ),
    _setting(
        "require_layer",
        as_bool,
        False,
        "Make a test without a layer marker a collection error.",
        "boolean",
    ),
    _setting(
        "allowed_hosts",
        as_str_list,
        ("localhost", "127.0.0.1", "::1"),
        "Hosts that service URLs may point at; others are refused before connecting.",
        "list of strings",
    ),
    _setting(
        "layer_dirs",
        as_layer_dirs,
        DEFAULT_LAYER_DIRS,
        "Directories whose tests get a layer marker automatically.",
        "table of layer = directory",
        env=False,
    ),
    _setting(
        "services.backend",
        choice(*BACKENDS),
        "auto",
        "Where service fixtures get their servers: auto, docker, local, external.",
        "auto | docker | local | external",
        cli=True,
    ),
    _setting(
        "services.missing",
        choice(*MISSING_MODES),
        "error",
        "What integration tests get when no backend can provide a service: error or skip.",
        "error | skip",
        cli=True,
    ),
    _setting(
        "services.network",
        choice(*NETWORKS),
        "bridge",
        "Docker backend: bridge (ports published on 127.0.0.1) or host networking (Linux CI, "
        "Docker-in-Docker).",
        "bridge | host",
        cli=True,
    ),
    _setting(
        "services.startup_timeout",
        as_timeout,
        60.0,
        "Seconds a server may take to become ready.",
        "number (seconds)",
    ),
    _setting(
        "services.postgres.schema",
        as_str_list,
        (),
        "SQL files and directories of .sql files (natural order of names) applied, in order, "
        "to the template every test database is copied from; relative to the rootdir.",
        "list of paths",
        env=False,
    ),
    _setting(
        "services.postgres.schema_hook",
        as_str,
        None,
        "'module:function' called with the template's DSN before the schema files (Alembic); "
        "its module's file is hashed into the template's cache key.",
        "string",
        env=False,
    ),
    _setting(
        "services.postgres.schema_command",
        as_str,
        None,
        "Shell command run in the rootdir with the template's DSN in DATABASE_URL, after "
        "schema_hook and before the schema files.",
        "string",
        env=False,
    ),
    _setting(
        "services.postgres.schema_inputs",
        as_str_list,
        (),
        "Files or directories not run but hashed into the template's cache key (e.g. "
        "alembic/versions for a schema_hook or schema_command).",
        "list of paths",
        env=False,
    ),
    _setting(
        "budgets.max_seconds",
        as_positive_float,
        10.0,
        "Default time budget of a performance test.",
        "number (seconds)",
        env=False,
    ),
    _setting(
        "budgets.max_memory_mb",
        as_positive_float,
        500.0,
        "Default peak-memory budget of a performance test.",
        "number (MB)",
        env=False,
    ),
    _setting(
        "budgets.min_records_per_second",
        as_positive_float,
        None,
        "Default throughput floor of a performance test.",
        "number",
        env=False,
    ),
    _setting(
        "budgets.time_scale",
        as_positive_float,
        1.0,
        "Multiplies every time budget (slower CI hardware).",
        "number",
        cli=True,
    ),
    _setting(
        "compare_fail",
        as_bool,
        False,
        "Fail the run (exit code 1) when --pipeline-compare finds a regression beyond "
        "--pipeline-compare-threshold; the option takes no value.",
        "boolean",
        cli=True,
    ),
    _option(
        "update_fixtures",
        as_bool,
        False,
        "assert_matches_fixture writes the expected fixture file instead of comparing.",
        "boolean",
    ),
    _option(
        "keep_failed",
        as_bool,
        False,
        "Keep a failed test's database, topics and buckets and print how to connect.",
        "boolean",
    ),
    _option(
        "report",
        as_str,
        None,
        "Write the run report as JSON: performance rows, DLQ summary, services used and "
        "the hardware fingerprint.",
        "path",
    ),
    _option(
        "compare",
        as_str,
        None,
        "Compare performance with an earlier --pipeline-report file (same hardware class "
        "only) and report regressions.",
        "path",
    ),
    _option(
        "compare_threshold",
        as_fraction,
        DEFAULT_COMPARE_THRESHOLD,
        "How much worse a figure may get before --pipeline-compare reports it "
        f"(default {DEFAULT_COMPARE_THRESHOLD:.2f} = {DEFAULT_COMPARE_THRESHOLD:.0%}).",
        "fraction",
    ),
    _option(
        "doctor",
        as_bool,
        False,
        "Show which service backends can run here, and the resolved configuration; run no tests.",
        "boolean",
    ),
)
SETTINGS_BY_KEY = {setting.key: setting for setting in SETTINGS}
# The keys [tool.pytest-pipeline] may hold (the others are command-line options only).
_TOML_KEYS = tuple(setting.key for setting in SETTINGS if setting.toml)

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
class PostgresConfig(ServiceConfig):
    """``[tool.pytest-pipeline.services.postgres]``: a service, and what the template database
    every test database is copied from is built of (services/schema.py)."""

    schema: tuple[str, ...] = ()
    schema_hook: str | None = None
    schema_command: str | None = None
    schema_inputs: tuple[str, ...] = ()


@dataclass(frozen=True)
class ServicesConfig(Mapping[str, ServiceConfig]):
    """``[tool.pytest-pipeline.services]``: its settings, and each service's table.

    A mapping of service name to :class:`ServiceConfig` too (``services["kafka"]``, ``.values()``)
    for code that handles every service alike.
    """

    backend: str
    missing: str
    network: str
    startup_timeout: float
    postgres: PostgresConfig
    kafka: ServiceConfig
    s3: ServiceConfig

    def __getitem__(self, name: str) -> ServiceConfig:
        if name not in SERVICES:
            raise KeyError(name)
        service: ServiceConfig = getattr(self, name)
        return service

    def __iter__(self) -> Iterator[str]:
        return iter(SERVICES)

    def __len__(self) -> int:
        return len(SERVICES)


class BudgetOverride(NamedTuple):
    """``[[tool.pytest-pipeline.budgets.override]]``: limits for tests whose id matches a glob."""

    match: str
    records: int | None = None
    max_seconds: float | None = None
    max_memory_mb: float | None = None
    min_records_per_second: float | None = None


class BudgetsConfig(NamedTuple):
    """``[tool.pytest-pipeline.budgets]``: the default budget of a performance test."""

    max_seconds: float
    max_memory_mb: float
    min_records_per_second: float | None
    time_scale: float
    #: ``[[tool.pytest-pipeline.budgets.override]]`` tables, in file order.
    overrides: tuple[BudgetOverride, ...] = ()


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
    services: ServicesConfig
    budgets: BudgetsConfig
    fixtures_pii: str = "warn"
    fixtures_pii_allow: tuple[str, ...] = ()
    origins: Mapping[str, str] = field(default_factory=dict)
    compare_fail: bool = False
    # Command-line only (no configuration key).
    update_fixtures: bool = False
    keep_failed: bool = False
    report: str | None = None
    compare: str | None = None
    compare_threshold: float = DEFAULT_COMPARE_THRESHOLD
    doctor: bool = False

    def describe(self) -> str:
        """The essentials for the pytest header line."""
        seed = f"{self.seed} (random)" if self.seed_was_random else str(self.seed)
        return f"seed={seed} dlq_assertions={self.dlq_assertions} backend={self.services.backend}"

    if not TYPE_CHECKING:  # type checkers see only the new names

        def __getattr__(self, name: str) -> Any:
            # Names of 1.0, before `services` and `budgets` were nested as in the TOML.
            path = MOVED_NAMES.get(name)
            if path is None:
                raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
            warnings.warn(
                f"pytest-pipeline: pipeline_config.{name} is now pipeline_config.{path}; "
                "the old name will be removed in 2.0.",
                DeprecationWarning,
                stacklevel=2,
            )
            value: Any = self
            for part in path.split("."):
                value = getattr(value, part)
            return value


#: 1.0's flat ``PipelineConfig`` names and where they live now (read with a DeprecationWarning).
MOVED_NAMES = {
    **{name: f"services.{name}" for name in ("backend", "missing", "network", "startup_timeout")},
    **{
        name: f"budgets.{name}"
        for name in ("max_seconds", "max_memory_mb", "min_records_per_second", "time_scale")
    },
    "overrides": "budgets.overrides",
    "postgres_schema": "services.postgres.schema",
    "postgres_schema_hook": "services.postgres.schema_hook",
    "postgres_schema_command": "services.postgres.schema_command",
    "postgres_schema_inputs": "services.postgres.schema_inputs",
}


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
    import tomllib  # pytest has loaded it already when it read a pyproject.toml

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
    ours = {key.split(".", 1)[0] for key in _TOML_KEYS}
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
    top_valid = [key for key in _TOML_KEYS if "." not in key] + ["services", "budgets"]
    for key, value in section.items():
        if key in ("services", "budgets"):
            if not isinstance(value, dict):
                raise ConfigError(f"pytest-pipeline: {key} in {where} must be a table.")
            valid = [k.split(".", 1)[1] for k in _TOML_KEYS if k.startswith(key + ".")]
            valid += list(SERVICES) if key == "services" else ["override"]
            for sub, subvalue in value.items():
                if sub in SERVICES and isinstance(subvalue, dict):
                    # Settings of the table (services.postgres.schema): hoisted to the top.
                    subvalue = dict(subvalue)
                    for name in list(subvalue):
                        if f"{key}.{sub}.{name}" in _TOML_KEYS:
                            flat[f"{key}.{sub}.{name}"] = subvalue.pop(name)
                if sub not in valid:
                    raise _unknown(f"{key}.{sub}", where, [f"{key}.{v}" for v in valid])
                flat[f"{key}.{sub}"] = subvalue
        elif key in top_valid:
            flat[key] = value
        else:
            raise _unknown(key, where, top_valid)
    return flat


def _service_values(name: str, table: Any, env: Mapping[str, str], where: str) -> dict[str, str]:
    """The values of a service's own keys (``SERVICE_KEYS``): its table, then its variables."""
    values: dict[str, str] = {}
    key = f"services.{name}"
    if table is not None:
        if not isinstance(table, dict):
            raise ConfigError(f"pytest-pipeline: {key} in {where} must be a table.")
        for sub, value in table.items():
            if sub not in SERVICE_KEYS[name]:
                valid = [f"{key}.{k}" for k in SERVICE_KEYS[name]]
                valid += [k for k in _TOML_KEYS if k.startswith(f"{key}.")]  # schema...
                raise _unknown(f"{key}.{sub}", where, valid)
            values[sub] = _parse(f"{key}.{sub}", as_str, value, where)
    for sub in SERVICE_KEYS[name]:
        variable = SERVICE_ENV.get((name, sub))
        if variable and env.get(variable):
            values[sub] = env[variable]
    return values


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
    parsed: dict[str, Any] = {"match": _parse(f"{label}.match", as_str, entry["match"], where)}
    if "records" in entry:
        records = _parse(f"{label}.records", as_int, entry["records"], where)
        if records <= 0:
            raise ConfigError(
                f"pytest-pipeline: {label}.records in {where} must be a positive integer, "
                f"got {records!r}."
            )
        parsed["records"] = records
    for sub in ("max_seconds", "max_memory_mb", "min_records_per_second"):
        if sub in entry:
            parsed[sub] = _parse(f"{label}.{sub}", as_positive_float, entry[sub], where)
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

    ``cli`` maps a setting's ``dest`` to the option value (``None`` when not given); settings
    that are command-line options only come from it alone.
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
        if setting.toml and setting.key in flat:
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
        name: _service_values(name, flat.get(f"services.{name}"), env, where) for name in SERVICES
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
        services=ServicesConfig(
            backend=values["services.backend"],
            missing=values["services.missing"],
            network=values["services.network"],
            startup_timeout=values["services.startup_timeout"],
            postgres=PostgresConfig(
                name="postgres",
                **services["postgres"],
                schema=values["services.postgres.schema"],
                schema_hook=values["services.postgres.schema_hook"],
                schema_command=values["services.postgres.schema_command"],
                schema_inputs=values["services.postgres.schema_inputs"],
            ),
            kafka=ServiceConfig(name="kafka", **services["kafka"]),
            s3=ServiceConfig(name="s3", **services["s3"]),
        ),
        budgets=BudgetsConfig(
            max_seconds=values["budgets.max_seconds"],
            max_memory_mb=values["budgets.max_memory_mb"],
            min_records_per_second=values["budgets.min_records_per_second"],
            time_scale=values["budgets.time_scale"],
            overrides=tuple(_override(e, i, where) for i, e in enumerate(overrides_raw)),
        ),
        fixtures_pii=values["fixtures_pii"],
        fixtures_pii_allow=values["fixtures_pii_allow"],
        origins=origins,
        compare_fail=values["compare_fail"],
        update_fixtures=values["update_fixtures"],
        keep_failed=values["keep_failed"],
        report=values["report"],
        compare=values["compare"],
        compare_threshold=values["compare_threshold"],
        doctor=values["doctor"],
    )


def _metavar(setting: Setting) -> str:
    # Choices show every value ({strict,warn,off}); other types their kind (INTEGER, PATH).
    if "|" in setting.type_name:
        return "{" + ",".join(part.strip() for part in setting.type_name.split("|")) + "}"
    return setting.type_name.split(" ")[0].upper()


def _option_help(setting: Setting) -> str:
    where = f" Overrides {setting.key} in [{SECTION}]" if setting.toml else ""
    if where and setting.env:
        where += f" and {setting.env}"
    text = setting.help + (where + "." if where else "")
    return text.replace("%", "%%")  # argparse formats help with %


def add_options(parser: pytest.Parser) -> None:
    """Register the ``--pipeline-*`` options in their own ``pytest --help`` group."""
    group = parser.getgroup("pipeline", "pytest-pipeline (data-pipeline testing conventions)")
    for setting in SETTINGS:
        if setting.cli is None:
            continue
        if setting.is_flag:
            # A flag: given means true; None when absent, so env and pyproject still apply.
            group.addoption(
                setting.cli,
                dest=setting.dest,
                action="store_const",
                const="true",
                default=None,
                help=_option_help(setting),
            )
        else:
            group.addoption(
                setting.cli,
                dest=setting.dest,
                default=None,
                metavar=_metavar(setting),
                help=_option_help(setting),
            )


def option_given(config: pytest.Config, key: str) -> bool:
    """Whether the command-line flag of setting ``key`` was given, before the configuration is
    resolved (``pytest_cmdline_main``: ``pytest --version`` must not resolve it)."""
    return getattr(config.option, SETTINGS_BY_KEY[key].dest, None) is not None


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
        from pytest_pipeline.report.channel import from_controller, worker_id

        seed = from_controller(config, "seeding")
        if seed is not None:
            resolved = replace(resolved, seed=int(seed))
        config.stash[_CONFIG_KEY] = resolved
        dropped = dropped_config(resolved, Path(config.invocation_params.dir))
        if dropped and worker_id(config) is None:
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


def _shown_default(setting: Setting) -> str:
    default = setting.default
    if isinstance(default, tuple):
        default = list(default)
    if isinstance(default, bool):
        return f"`{str(default).lower()}`"
    if isinstance(default, dict):
        return "`" + ", ".join(f"{k} = {v}" for k, v in default.items()) + "`"
    return "none" if default is None else f"`{default!r}`".replace("'", '"')


def reference_table() -> str:
    """The Markdown tables of every setting, for docs/configuration.md (kept in sync by a test):
    the configuration keys, then the options that are no key."""
    rows = [
        "| key | type | default | environment | option | meaning |",
        "|---|---|---|---|---|---|",
    ]
    for setting in SETTINGS:
        if setting.toml:
            rows.append(
                f"| `{setting.key}` | {setting.type_name.replace('|', 'or')} | "
                f"{_shown_default(setting)} | "
                f"{'`' + setting.env + '`' if setting.env else ''} | "
                f"{'`' + setting.cli + '`' if setting.cli else ''} | {setting.help} |"
            )
    for (service, key), variable in SERVICE_ENV.items():
        rows.append(
            f"| `services.{service}.{key}` | string | none | `{variable}` | | "
            f"{_SERVICE_HELP[key].format(service=service)} |"
        )
    rows += [
        "",
        "Command-line options only (no configuration key or environment variable):",
        "",
        "| option | type | default | meaning |",
        "|---|---|---|---|",
    ]
    for setting in SETTINGS:
        if not setting.toml:
            kind = "flag (no value)" if setting.is_flag else setting.type_name
            rows.append(
                f"| `{setting.cli}` | {kind} | {_shown_default(setting)} | {setting.help} |"
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
