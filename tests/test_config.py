"""Configuration: precedence, validation errors and their messages, the resolved object."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_pipeline import config as pipeline_config
from pytest_pipeline import constants
from pytest_pipeline.errors import ConfigError

UsageCheck = Callable[..., None]
Toml = Callable[[str], None]


@pytest.fixture
def one_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_one="def test_one():\n    pass\n")


# --------------------------------------------------------------------------- precedence

# setting key in pyproject (TOML literal), env variable, CLI option, header field
PRECEDENCE = [
    pytest.param(
        "seed", ("11", "22", "33"), "PYTEST_PIPELINE_SEED", "--pipeline-seed", "seed={}", id="seed"
    ),
    pytest.param(
        "dlq_assertions",
        ('"warn"', "off", "strict"),
        "PYTEST_PIPELINE_DLQ_ASSERTIONS",
        "--pipeline-dlq-assertions",
        "dlq_assertions={}",
        id="dlq_assertions",
    ),
    pytest.param(
        "services.backend",
        ('"local"', "external", "docker"),
        "PYTEST_PIPELINE_BACKEND",
        "--pipeline-backend",
        "backend={}",
        id="backend",
    ),
]


def _toml_line(key: str, literal: str) -> str:
    if key.startswith("services."):
        return f"[tool.pytest-pipeline.services]\n{key.split('.', 1)[1]} = {literal}\n"
    return f"[tool.pytest-pipeline]\n{key} = {literal}\n"


@pytest.mark.parametrize(("key", "values", "env", "option", "header"), PRECEDENCE)
@pytest.mark.usefixtures("one_test")
def test_precedence_cli_over_env_over_pyproject_over_defaults(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    key: str,
    values: tuple[str, str, str],
    env: str,
    option: str,
    header: str,
) -> None:
    toml_value, env_value, cli_value = values
    default = {"seed": "1234", "dlq_assertions": "strict", "services.backend": "auto"}[key]

    result = pytester.runpytest()
    result.stdout.fnmatch_lines(
        [f"pipeline: *{header.format(default)}*(no ?tool.pytest-pipeline? section)"]
    )

    pytester.makepyprojecttoml(_toml_line(key, toml_value))
    result = pytester.runpytest()
    result.stdout.fnmatch_lines([f"pipeline: *{header.format(toml_value.strip(chr(34)))}*"])

    monkeypatch.setenv(env, env_value)
    result = pytester.runpytest()
    result.stdout.fnmatch_lines([f"pipeline: *{header.format(env_value)}*"])

    result = pytester.runpytest(f"{option}={cli_value}")
    result.stdout.fnmatch_lines([f"pipeline: *{header.format(cli_value)}*"])
    assert result.ret == 0


def test_environment_reaches_a_subprocess_run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, pipeline_toml: Toml
) -> None:
    pipeline_toml("seed = 5\n")
    pytester.makepyfile(
        """
        def test_seen(pipeline_config):
            assert pipeline_config.seed == 77
            assert pipeline_config.origins["seed"] == "PYTEST_PIPELINE_SEED"
        """
    )
    monkeypatch.setenv("PYTEST_PIPELINE_SEED", "77")
    result = pytester.runpytest_subprocess()
    result.stdout.fnmatch_lines(["pipeline: seed=77 *"])
    result.assert_outcomes(passed=1)


def test_resolved_config_as_fixture(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, pipeline_toml: Toml
) -> None:
    pipeline_toml(
        """
        fixtures_dir = "data/fixtures"
        require_layer = false
        allowed_hosts = ["localhost", "db.internal"]
        [tool.pytest-pipeline.services]
        startup_timeout = 30
        postgres = { url = "postgresql://localhost/from_toml" }
        [tool.pytest-pipeline.budgets]
        max_seconds = 2.5
        [[tool.pytest-pipeline.budgets.override]]
        match = "tests/performance/test_x.py::*"
        records = 1_000
        max_seconds = 5
        """
    )
    monkeypatch.setenv("PYTEST_PIPELINE_KAFKA_BOOTSTRAP", "localhost:9092")
    monkeypatch.setenv("PYTEST_PIPELINE_POSTGRES_URL", "postgresql://localhost/from_env")
    monkeypatch.setenv("PYTEST_PIPELINE_TIME_SCALE", "2")
    pytester.makepyfile(
        """
        import dataclasses
        import pytest

        def test_config(pipeline_config, pytestconfig):
            c = pipeline_config
            assert c.fixtures_dir == pytestconfig.rootpath / "data" / "fixtures"
            assert c.allowed_hosts == ("localhost", "db.internal")
            assert c.services.startup_timeout == 30.0
            assert c.budgets.max_seconds == 2.5
            assert c.budgets.time_scale == 2.0
            assert c.services["postgres"].url == "postgresql://localhost/from_env"
            assert c.services["kafka"].bootstrap == "localhost:9092"
            assert c.services["kafka"].is_external
            assert not c.services["s3"].is_external
            assert c.budgets.overrides[0].match == "tests/performance/test_x.py::*"
            assert c.budgets.overrides[0].records == 1000
            assert c.budgets.overrides[0].max_seconds == 5.0
            with pytest.raises(dataclasses.FrozenInstanceError):
                c.seed = 1
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_resolve_directly(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.pytest-pipeline]\nseed = 1\ndlq_assertions = "warn"\n', encoding="utf-8"
    )
    resolved = pipeline_config.resolve(
        tmp_path, {"pipeline_seed": "3"}, env={"PYTEST_PIPELINE_DLQ_ASSERTIONS": "off"}
    )
    assert (resolved.seed, resolved.dlq_assertions, resolved.services.backend) == (3, "off", "auto")
    assert resolved.origins["seed"] == "--pipeline-seed"
    assert resolved.origins["dlq_assertions"] == "PYTEST_PIPELINE_DLQ_ASSERTIONS"
    assert resolved.origins["services.backend"] == "default"
    assert resolved.source == tmp_path / "pyproject.toml"
    with pytest.raises(dataclasses.FrozenInstanceError):
        resolved.seed = 4  # type: ignore[misc]


def test_seed_random_is_shown_in_header(pipeline_toml: Toml, pytester: pytest.Pytester) -> None:
    pipeline_toml('seed = "random"\n')
    pytester.makepyfile(
        """
        def test_seed(pipeline_config):
            print("BASE", pipeline_config.seed)
        """
    )
    result = pytester.runpytest("-s")
    result.stdout.fnmatch_lines(["pipeline: seed=* (random) dlq_assertions=strict backend=auto*"])
    shown = re.search(r"pipeline: seed=(\d+) \(random\)", result.stdout.str())
    used = re.search(r"BASE (\d+)", result.stdout.str())
    assert shown
    assert used
    assert shown.group(1) == used.group(1)
    # --pipeline-seed with the printed value reproduces the run (and is no longer "random").
    again = pytester.runpytest("-s", f"--pipeline-seed={shown.group(1)}")
    again.stdout.fnmatch_lines(
        [f"pipeline: seed={shown.group(1)} dlq_assertions=*", f"*BASE {shown.group(1)}*"]
    )
    assert "(random)" not in again.stdout.str()


# --------------------------------------------------------------------------- unknown keys


@pytest.mark.parametrize(
    ("toml", "key", "suggestion"),
    [
        pytest.param(
            '[tool.pytest-pipeline]\nfixture_dir = "x"\n',
            "'fixture_dir'",
            "fixtures_dir",
            id="top-level",
        ),
        pytest.param(
            "[tool.pytest-pipeline]\nrequire_layers = true\n",
            "'require_layers'",
            "require_layer",
            id="top-level-plural",
        ),
        pytest.param(
            '[tool.pytest-pipeline.services]\nbacknd = "docker"\n',
            "'services.backnd'",
            "services.backend",
            id="services",
        ),
        pytest.param(
            '[tool.pytest-pipeline.services.postgres]\nurll = "postgresql://x"\n',
            "'services.postgres.urll'",
            "services.postgres.url",
            id="service-table",
        ),
        pytest.param(
            "[tool.pytest-pipeline.budgets]\nmax_second = 3\n",
            "'budgets.max_second'",
            "budgets.max_seconds",
            id="budgets",
        ),
        pytest.param(
            '[[tool.pytest-pipeline.budgets.override]]\nmatch = "t::*"\nmax_second = 3\n',
            "'budgets.override[[]0[]].max_second'",
            "budgets.override[[]0[]].max_seconds",
            id="override",
        ),
        pytest.param(
            '[tool.pytest-pipeline.service]\nbackend = "docker"\n',
            "'service'",
            "services",
            id="table-name",
        ),
    ],
)
@pytest.mark.usefixtures("one_test")
def test_unknown_key_names_key_file_and_closest(
    pytester: pytest.Pytester, assert_usage_error: UsageCheck, toml: str, key: str, suggestion: str
) -> None:
    pytester.makepyprojecttoml(toml)
    result = pytester.runpytest()
    path = pytester.path / "pyproject.toml"
    assert_usage_error(
        result,
        f"ERROR: pytest-pipeline: unknown configuration key {key} in "
        f"[[]tool.pytest-pipeline[]] of {path} (did you mean {suggestion}?)*",
    )


def test_unknown_key_without_close_match_lists_valid_keys(
    pytester: pytest.Pytester, assert_usage_error: UsageCheck, pipeline_toml: Toml
) -> None:
    pipeline_toml("zzz = 1\n")
    result = pytester.runpytest()
    assert_usage_error(
        result,
        "ERROR: pytest-pipeline: unknown configuration key 'zzz' in *. "
        "Valid keys: allowed_hosts, budgets, compare_fail, dlq_assertions, *seed, services.",
    )
    assert "did you mean" not in result.stderr.str()


# --------------------------------------------------------------------------- wrong types


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(
            'seed = "abc"', "seed in * must be an integer or \"random\", got 'abc'.", id="seed-str"
        ),
        pytest.param(
            "seed = -3",
            'seed in * must be a non-negative integer or "random", got -3.',
            id="seed-negative",
        ),
        pytest.param(
            "seed = 1.5", 'seed in * must be an integer or "random", got 1.5.', id="seed-float"
        ),
        pytest.param(
            'require_layer = "yes please"',
            "require_layer in * must be a boolean (true or false), got 'yes please'.",
            id="require_layer",
        ),
        pytest.param(
            'dlq_assertions = "loose"',
            "dlq_assertions in * must be one of 'strict', 'warn', 'off', got 'loose'.",
            id="dlq_assertions",
        ),
        pytest.param(
            "fixtures_dir = 3",
            "fixtures_dir in * must be a non-empty string, got 3.",
            id="fixtures_dir",
        ),
        pytest.param(
            "allowed_hosts = [1, 2]",
            "allowed_hosts in * must be a list of strings, got [[]1, 2[]].",
            id="allowed_hosts",
        ),
        pytest.param(
            'layer_dirs = { fast = "tests/fast" }',
            "layer_dirs in * must be a table whose keys are layers *, not 'fast', got *",
            id="layer_dirs-key",
        ),
        pytest.param(
            "layer_dirs = { unit = 3 }",
            "layer_dirs in * must be a table of layer = directory string*, got *",
            id="layer_dirs-value",
        ),
        pytest.param(
            "[tool.pytest-pipeline.services]\nstartup_timeout = -1",
            "services.startup_timeout in * must be a positive number of seconds, at least 0.1 "
            "and at most 86400, got -1.",
            id="startup_timeout",
        ),
        pytest.param(
            '[tool.pytest-pipeline.services]\nbackend = "kubernetes"',
            "services.backend in * must be one of 'auto', 'docker', 'local', "
            "'external', got 'kubernetes'.",
            id="backend",
        ),
        pytest.param(
            '[tool.pytest-pipeline.services]\npostgres = "postgres:16"',
            "services.postgres in * must be a table.",
            id="service-not-table",
        ),
        pytest.param(
            "[tool.pytest-pipeline.services.kafka]\nimage = 3",
            "services.kafka.image in * must be a non-empty string, got 3.",
            id="service-value",
        ),
        pytest.param(
            '[tool.pytest-pipeline.budgets]\nmax_memory_mb = "lots"',
            "budgets.max_memory_mb in * must be a positive number, got 'lots'.",
            id="budget",
        ),
        pytest.param(
            "[[tool.pytest-pipeline.budgets.override]]\nrecords = 5",
            "budgets.override[[]0[]] in * needs a 'match' glob on test ids*",
            id="override-no-match",
        ),
        pytest.param(
            '[[tool.pytest-pipeline.budgets.override]]\nmatch = "x"\nrecords = 0',
            "budgets.override[[]0[]].records in * must be a positive integer, got 0.",
            id="override-records",
        ),
        pytest.param(
            '[tool.pytest-pipeline.budgets]\noverride = { match = "x" }',
            "budgets.override in * must be an array of tables*",
            id="override-not-array",
        ),
    ],
)
@pytest.mark.usefixtures("one_test")
def test_wrong_type_names_key_expected_type_and_value(
    pytester: pytest.Pytester, assert_usage_error: UsageCheck, body: str, message: str
) -> None:
    if not body.startswith("["):
        body = "[tool.pytest-pipeline]\n" + body
    pytester.makepyprojecttoml(body + "\n")
    result = pytester.runpytest()
    assert_usage_error(result, f"ERROR: pytest-pipeline: {message}")
    assert str(pytester.path / "pyproject.toml") in result.stderr.str()


@pytest.mark.usefixtures("one_test")
def test_bad_cli_value_names_the_option(
    pytester: pytest.Pytester, assert_usage_error: UsageCheck
) -> None:
    result = pytester.runpytest("--pipeline-seed=abc")
    assert_usage_error(
        result,
        "ERROR: pytest-pipeline: seed in option --pipeline-seed must be an integer or "
        "\"random\", got 'abc'.",
    )
    result = pytester.runpytest("--pipeline-time-scale=0")
    assert_usage_error(
        result,
        "ERROR: pytest-pipeline: budgets.time_scale in option --pipeline-time-scale must be "
        "a positive number, got '0'.",
    )


@pytest.mark.usefixtures("one_test")
def test_bad_env_value_names_the_variable(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, assert_usage_error: UsageCheck
) -> None:
    monkeypatch.setenv("PYTEST_PIPELINE_DLQ_ASSERTIONS", "loose")
    result = pytester.runpytest()
    assert_usage_error(
        result,
        "ERROR: pytest-pipeline: dlq_assertions in environment variable "
        "PYTEST_PIPELINE_DLQ_ASSERTIONS must be one of 'strict', 'warn', 'off', got 'loose'.",
    )


@pytest.mark.usefixtures("one_test")
def test_unknown_env_variable_is_an_error_with_suggestion(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, assert_usage_error: UsageCheck
) -> None:
    monkeypatch.setenv("PYTEST_PIPELINE_POSTGRES_URI", "postgresql://localhost/x")
    result = pytester.runpytest()
    assert_usage_error(
        result,
        "ERROR: pytest-pipeline: unknown environment variable PYTEST_PIPELINE_POSTGRES_URI "
        "(did you mean PYTEST_PIPELINE_POSTGRES_URL?). Known: *",
    )


def test_every_variable_the_package_reads_is_known(monkeypatch: pytest.MonkeyPatch) -> None:
    # A PYTEST_PIPELINE_* name used anywhere in the package must pass the unknown-variable check.
    source = Path(pipeline_config.__file__).parent
    names = {
        name
        for path in source.rglob("*.py")
        for name in re.findall(r"PYTEST_PIPELINE_[A-Z0-9_]*[A-Z0-9]", path.read_text("utf-8"))
    }
    assert "PYTEST_PIPELINE_POSTGRES_URL" in names
    pipeline_config._check_env(dict.fromkeys(names, "1"))


# --------------------------------------------------------------------------- invalid TOML


@pytest.mark.usefixtures("one_test")
def test_invalid_toml_names_the_file(
    pytester: pytest.Pytester, assert_usage_error: UsageCheck
) -> None:
    # pytest reads pyproject.toml first (looking for its own table) and reports the file.
    pytester.makepyprojecttoml("[tool.pytest-pipeline]\nseed = [1\n")
    result = pytester.runpytest()
    assert_usage_error(result, f"ERROR: {pytester.path / 'pyproject.toml'}: *")


@pytest.mark.usefixtures("one_test")
def test_invalid_toml_when_pytest_uses_another_config_file(
    pytester: pytest.Pytester, assert_usage_error: UsageCheck
) -> None:
    # pytest's config file lives elsewhere, so only pytest-pipeline reads pyproject.toml.
    pytester.mkdir("cfg")
    pytester.makefile(".ini", **{"cfg/pytest": "[pytest]\n"})
    pytester.makepyprojecttoml("[tool.pytest-pipeline]\nseed = = 1\n")
    result = pytester.runpytest("-c", "cfg/pytest.ini", "--rootdir", str(pytester.path))
    assert_usage_error(
        result,
        f"ERROR: pytest-pipeline: cannot parse {pytester.path / 'pyproject.toml'}: *line 2*",
    )


def test_read_pyproject_errors(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    assert pipeline_config.read_pyproject(path) == {}  # no file: defaults
    path.write_text("[project]\nname = 'x'\n", encoding="utf-8")
    assert pipeline_config.read_pyproject(path) == {}  # no section: defaults
    path.write_text("[tool.pytest-pipeline\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"cannot parse .*pyproject\.toml: .*line 1"):
        pipeline_config.read_pyproject(path)


@pytest.mark.usefixtures("one_test")
def test_section_must_be_a_table(pytester: pytest.Pytester, assert_usage_error: UsageCheck) -> None:
    pytester.makepyprojecttoml('[tool]\npytest-pipeline = "strict"\n')
    result = pytester.runpytest()
    assert_usage_error(
        result, "ERROR: pytest-pipeline: [[]tool.pytest-pipeline[]] in * must be a table."
    )


def test_config_error_is_a_usage_error() -> None:
    # pytest prints UsageError as "ERROR: <message>" with no traceback: that is what makes
    # every configuration problem come out clean.
    assert issubclass(ConfigError, pytest.UsageError)


@pytest.mark.parametrize(
    ("parse", "value"),
    [
        (constants.as_int, "\u0663"),  # Arabic-Indic 3: int() would read 3
        (constants.as_positive_float, "\u0663"),
        (constants.as_positive_float, "\uff11"),  # fullwidth 1
        (constants.as_timeout, "1e-300"),
        (constants.as_timeout, 1e-300),
        (constants.as_megabytes, "\u0663"),
    ],
)
def test_numbers_are_ascii_and_in_range(parse: Callable[[object], object], value: object) -> None:
    with pytest.raises(ValueError, match=r"^a positive number|^an integer"):
        parse(value)


def test_timeouts_and_sizes_share_one_range_parser() -> None:
    assert constants.as_timeout("0.1") == 0.1
    assert constants.as_timeout(86400) == 86400.0
    assert constants.as_megabytes("1_024") == 1024.0
    with pytest.raises(ValueError, match=r"^a positive number of MB, at most 1048576$"):
        constants.as_megabytes(0)


# --------------------------------------------------------------------------- shape and options


def test_resolved_config_nests_services_and_budgets_as_the_toml_does(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        "[tool.pytest-pipeline.services]\n"
        'backend = "local"\n'
        "startup_timeout = 9\n"
        "[tool.pytest-pipeline.services.postgres]\n"
        'schema = ["db/schema.sql"]\n'
        'schema_hook = "app.db:migrate"\n'
        "[tool.pytest-pipeline.budgets]\n"
        "max_seconds = 3\n"
        "[[tool.pytest-pipeline.budgets.override]]\n"
        'match = "tests/x.py::*"\n',
        encoding="utf-8",
    )
    resolved = pipeline_config.resolve(tmp_path, {}, env={})
    services, budgets = resolved.services, resolved.budgets
    assert (services.backend, services.startup_timeout) == ("local", 9.0)
    assert services.postgres.schema == ("db/schema.sql",)
    assert services.postgres.schema_hook == "app.db:migrate"
    assert (budgets.max_seconds, [o.match for o in budgets.overrides]) == (3.0, ["tests/x.py::*"])
    # Every service alike: by name, and in the order of SERVICES.
    assert services["postgres"] is services.postgres
    assert list(services) == list(constants.SERVICES)
    assert [s.name for s in services.values()] == ["postgres", "kafka", "s3"]
    with pytest.raises(KeyError):
        services["backend"]
    assert resolved.describe() == "seed=1234 dlq_assertions=strict backend=local"


def test_command_line_only_settings_come_from_the_options(tmp_path: Path) -> None:
    resolved = pipeline_config.resolve(tmp_path, {}, env={})
    defaults = (resolved.report, resolved.compare, resolved.compare_threshold, resolved.doctor)
    assert defaults == (None, None, constants.DEFAULT_COMPARE_THRESHOLD, False)
    resolved = pipeline_config.resolve(
        tmp_path,
        {
            "pipeline_report": "run.json",
            "pipeline_compare": "base.json",
            "pipeline_compare_threshold": "0",  # 0: any worse figure is reported
            "pipeline_update_fixtures": "true",
            "pipeline_keep_failed": "true",
        },
        env={},
    )
    assert (resolved.report, resolved.compare, resolved.compare_threshold) == (
        "run.json",
        "base.json",
        0.0,
    )
    assert (resolved.update_fixtures, resolved.keep_failed) == (True, True)
    assert resolved.origins["compare_threshold"] == "--pipeline-compare-threshold"


@pytest.mark.parametrize("key", ["report", "compare", "compare_threshold", "doctor"])
def test_command_line_only_settings_are_no_configuration_key(tmp_path: Path, key: str) -> None:
    (tmp_path / "pyproject.toml").write_text(
        f'[tool.pytest-pipeline]\n{key} = "x"\n', encoding="utf-8"
    )
    with pytest.raises(ConfigError, match=f"unknown configuration key '{key}'"):
        pipeline_config.resolve(tmp_path, {}, env={})


@pytest.mark.usefixtures("one_test")
def test_bad_compare_threshold_names_the_option(
    pytester: pytest.Pytester, assert_usage_error: UsageCheck
) -> None:
    result = pytester.runpytest("--pipeline-compare-threshold=-0.5")
    assert_usage_error(
        result,
        "ERROR: pytest-pipeline: compare_threshold in option --pipeline-compare-threshold must "
        "be a number of 0 or more (0.10 is 10%), got '-0.5'.",
    )


def test_every_option_is_a_row_of_the_settings_table(pytester: pytest.Pytester) -> None:
    # pytest --help lists exactly the table's options: none is declared by hand elsewhere.
    result = pytester.runpytest("--help")
    listed = set(re.findall(r"^\s+(--pipeline-[a-z-]+)", result.stdout.str(), re.M))
    assert listed == {s.cli for s in pipeline_config.SETTINGS if s.cli}
    assert "(default 0.10 = 10%)" in result.stdout.str()


def test_the_flat_names_of_1_0_still_read_with_a_deprecation_warning(tmp_path: Path) -> None:
    resolved = pipeline_config.resolve(tmp_path, {})
    for old, new in pipeline_config.MOVED_NAMES.items():
        with pytest.warns(DeprecationWarning, match=rf"pipeline_config\.{old} is now"):
            value = getattr(resolved, old)
        current: object = resolved
        for part in new.split("."):
            current = getattr(current, part)
        assert value == current
    with pytest.raises(AttributeError):
        resolved.no_such_setting  # type: ignore[attr-defined]  # noqa: B018
