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
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from pytest_pipeline.errors import ConfigError

SECTION = "tool.pytest-pipeline"
ENV_PREFIX = "PYTEST_PIPELINE_"
LAYERS = ("unit", "integration", "performance", "quality")
DLQ_MODES = ("strict", "warn", "off")
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
    if isinstance(value, str):
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
    elif isinstance(value, str):
        try:
            number = float(value.strip().replace("_", ""))
        except ValueError:
            number = None
    if number is None or not number > 0:
        raise ValueError("a positive number")
    return number


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
        _as_positive_float,
        60.0,
        "Seconds a server may take to become ready.",
        "number (seconds)",
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
    origins: Mapping[str, str] = field(default_factory=dict)

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
        shown = "a value of type " + type(value).__name__ if "key" in setting_key else repr(value)
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
    section = data.get("tool", {}).get("pytest-pipeline", {})
    if not isinstance(section, dict):
        raise ConfigError(f"pytest-pipeline: [{SECTION}] in {path} must be a table.")
    return section


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
                raise _unknown(f"{key}.{sub}", where, [f"{key}.{k}" for k in SERVICE_KEYS[name]])
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
        origins=origins,
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
        if setting.cli:
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
    return resolved


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
