"""``pytest-pipeline init --existing`` and the conventions every ``init`` writes.

An existing repository gets only the conventions (configuration, layer folders, conftest, CI)
and keeps every byte of its own files; the generated configuration collects test files of the
same name in two layers; the generated CI lines run for real: an empty shard passes, and the
unit job's coverage check fails under its threshold and passes over it.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_scaffold import (
    GITHUB,
    GITLAB,
    _pytest_lines,
    comment_columns,
    github_steps,
    init,
    pipeline_section,
    run_ci_line,
)

from pytest_pipeline import config

PYPROJECT = """\
# The team's own settings: init --existing must not touch a byte of them.
[project]
name = "acme"
version = "3.0.0"

[tool.ruff]
line-length = 110

[tool.mypy]
strict = true
"""
THEIR_FILES = {
    "pyproject.toml": PYPROJECT,
    "README.md": "# acme\n",
    "src/acme/__init__.py": '"""Acme."""\n',
    "src/acme/transforms/__init__.py": "",
    "src/acme/transforms/names.py": (
        "def strip_names(rows: list[str]) -> list[str]:\n"
        "    return [row.strip() for row in rows]\n\n\n"
        "def drop_empty(rows: list[str]) -> list[str]:\n"
        "    return [row for row in rows if row]\n"
    ),
    "tests/conftest.py": "import pytest\n\n\n@pytest.fixture\ndef acme() -> str:\n    return 'a'\n",
    "tests/test_legacy.py": "def test_legacy(acme):\n    assert acme == 'a'\n",
    ".github/workflows/pipeline-tests.yml": "name: ours\non: push\n",
}
SAMPLE_PATHS = (
    "src/acme/pipeline.py",
    "src/acme/transforms/orders.py",
    "tests/unit/test_orders_transform.py",
    "tests/fixtures/orders",
    "tests/quality/expectations/orders_clean.json",
)
SAME_NAME_TEST = "def test_same_name_in_two_layers():\n    assert True\n"
UNIT_TEST = (
    "from acme.transforms.names import strip_names\n\n\n"
    "def test_strip_names():\n    assert strip_names([' a ']) == ['a']\n"
)
DROP_EMPTY_TEST = (
    "from acme.transforms.names import drop_empty\n\n\n"
    "def test_drop_empty():\n    assert drop_empty(['a', '']) == ['a']\n"
)


def _write_repo(root: Path) -> None:
    for relative, text in THEIR_FILES.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def _snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _workflow(root: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((root / GITHUB).read_text(encoding="utf-8"))
    return data


# --------------------------------------------------------------------------- --existing


def test_existing_repo_gets_only_the_conventions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write_repo(tmp_path)
    before = _snapshot(tmp_path)

    code, out, _ = init(capsys, tmp_path, "--existing")

    assert code == 0, out
    after = _snapshot(tmp_path)
    # Every file of theirs is byte for byte the same; pyproject.toml only grew at its end.
    for relative, data in before.items():
        if relative != "pyproject.toml":
            assert after[relative] == data, relative
    text = after["pyproject.toml"].decode()
    assert text.startswith(PYPROJECT + "\n[tool.pytest.ini_options]")
    assert "(conventions only, package acme, CI: github, 2 integration shards)" in out
    assert (
        "appended   [tool.pytest.ini_options], [tool.pytest-pipeline], [tool.coverage] "
        "to pyproject.toml" in out
    )
    # What exists is skipped and says why; the layer folders and conftest are the new files.
    assert (
        "skipped    tests/conftest.py (exists with other content; --existing never overwrites)"
        in out
    )
    assert f"skipped    {GITHUB} (exists with other content; --existing never overwrites)" in out
    assert f"note: {GITHUB} was kept as it is" in out
    assert sorted(set(after) - set(before)) == [
        "tests/fixtures/.gitkeep",
        "tests/integration/.gitkeep",
        "tests/performance/.gitkeep",
        "tests/quality/expectations/.gitkeep",
        "tests/unit/.gitkeep",
    ]
    for relative in SAMPLE_PATHS:
        assert not (tmp_path / relative).exists(), relative
    # Their pyproject has no test extra: init says what to add instead of editing [project].
    assert (
        'note: the CI jobs run pip install -e ".[test]": add to [project.optional-dependencies] '
        'of pyproject.toml: test = ["pytest-pipeline[local,quality]>=1.0", "pytest-split", '
        '"pytest-cov"]' in out
    )
    assert "pip install 'pytest-pipeline[local,quality]>=1.0' pytest-split pytest-cov" in out
    data = tomllib.loads(text)
    assert data["tool"]["ruff"] == {"line-length": 110}
    assert "override" not in data["tool"]["pytest-pipeline"]["budgets"]  # no sample, no budget
    assert data["tool"]["coverage"]["run"]["source"] == ["src/acme/transforms"]
    assert data["tool"]["coverage"]["report"]["fail_under"] == 90
    resolved = config.resolve(tmp_path, {}, env={})
    assert resolved.require_layer is False  # tests/test_legacy.py is outside the layers

    # Again: nothing new, nothing appended twice; what exists is kept or skipped.
    code, again, _ = init(capsys, tmp_path, "--existing")
    assert code == 0
    assert _snapshot(tmp_path) == after
    assert "created" not in again
    assert "appended" not in again
    assert "kept       tests/unit/ (folder exists)" in again
    assert "kept       [tool.coverage] in pyproject.toml (exists, left as it is)" in again


def test_existing_with_a_test_extra_and_its_own_pytest_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "acme"\nversion = "1"\n\n'
        "[project.optional-dependencies]\n"
        'test = ["pytest-pipeline[local]", "hypothesis"]\n\n'
        '[tool.pytest.ini_options]\naddopts = "-q"\npythonpath = ["src"]\n\n'
        "[tool.coverage.report]\nfail_under = 75\n",
        encoding="utf-8",
    )
    code, out, _ = init(capsys, tmp_path, "--existing", "--ci", "none", "--package", "acme")
    assert code == 0
    assert "appended   [tool.pytest-pipeline] to pyproject.toml" in out
    assert (
        "note: the test extra's 'pytest-pipeline[local]' has no >=1.0 floor: pip may install "
        'an unrelated, older package of the same name; write "pytest-pipeline[local,quality]>=1.0"'
        in out
    )
    assert '"pytest-split", "pytest-cov" to the test extra' in out
    assert (
        '[tool.pytest.ini_options] addopts has no "--import-mode=importlib": add it, or test '
        "files of the same name in two layer folders" in out
    )
    assert "set [tool.coverage.report] fail_under = 90 (and run.source) to match" in out
    assert 'pip install -e ".[test]"' in out  # the extra names the plugin: next says to use it


def test_existing_without_pyproject_writes_only_tool_sections(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A setup.py project: a [project] table would change what it builds.
    (tmp_path / "setup.py").write_text("from setuptools import setup\nsetup()\n", "utf-8")
    code, out, _ = init(capsys, tmp_path, "--existing", "--ci", "none", "--package", "acme")
    assert code == 0
    data = tomllib.loads((tmp_path / "pyproject.toml").read_text(encoding="utf-8"))
    assert sorted(data) == ["tool"]
    assert sorted(data["tool"]) == ["coverage", "pytest", "pytest-pipeline"]
    assert (
        "created    pyproject.toml ([tool.pytest.ini_options], [tool.pytest-pipeline], "
        "[tool.coverage])" in out
    )
    assert 'builds from setup.py: add extras_require={"test": [' in out
    assert (tmp_path / "tests/conftest.py").is_file()
    # Without setup.py, the same repository is told to give pyproject.toml a [project] table.
    (tmp_path / "setup.py").unlink()
    code, out, _ = init(capsys, tmp_path, "--existing", "--ci", "none", "--package", "acme")
    assert code == 0
    assert "pyproject.toml has no [project] table" in out


def test_existing_refuses_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = init(capsys, tmp_path, "--existing", "--force")
    assert code == 2
    assert "--existing never overwrites a file, so it cannot be combined with --force" in err
    assert list(tmp_path.iterdir()) == []


def test_coverage_min_must_be_a_percentage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = init(capsys, tmp_path, "--coverage-min", "101")
    assert code == 2
    assert "--coverage-min must be a percentage between 0 and 100, got 101" in err


# --------------------------------------------------------------------------- same test file name


@pytest.mark.parametrize("mode", ["sample", "existing"])
def test_same_file_name_in_two_layers_collects(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mode: str
) -> None:
    if mode == "existing":
        _write_repo(tmp_path)
    code, _, _ = init(capsys, tmp_path, *(["--existing"] if mode == "existing" else []))
    assert code == 0
    for layer in ("unit", "quality"):
        (tmp_path / "tests" / layer / "test_same.py").write_text(SAME_NAME_TEST, "utf-8")
    ids = ["tests/unit/test_same.py", "tests/quality/test_same.py"]

    done, counts = run_ci_line("pytest " + " ".join(ids), tmp_path, "-rA")

    assert done.returncode == 0, done.stdout + done.stderr
    assert counts == {"passed": 2}
    # Without the generated --import-mode=importlib the second file does not collect.
    plain, _ = run_ci_line("pytest " + " ".join(ids), tmp_path, "-o", "addopts=--strict-markers")
    assert plain.returncode == 2
    assert "import file mismatch" in plain.stdout


# --------------------------------------------------------------------------- the CI lines, run


def test_an_empty_shard_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The sample has two integration tests: one of three shards selects none.
    code, out, _ = init(capsys, tmp_path, "--shards", "3", "--ci", "github")
    assert code == 0
    assert "some shards run no test (their job passes" in out
    (line,) = github_steps(_workflow(tmp_path), "integration")
    assert line.endswith(" || [ $? -eq 5 ]")
    empty = []
    for group in ("1", "2", "3"):
        listed, counts = run_ci_line(
            line, tmp_path, "--collect-only", "-q", variables={"matrix.group": group}
        )
        assert listed.returncode == 0, listed.stdout + listed.stderr
        if not re.search(r"^tests/\S+::\S+$", listed.stdout, re.MULTILINE):
            empty.append(group)
    assert len(empty) == 1
    # That shard's job line, run as the job runs it, passes ...
    done, counts = run_ci_line(line, tmp_path, variables={"matrix.group": empty[0]})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "passed" not in counts
    assert counts["deselected"] >= 1
    # ... where pytest itself exits 5 (no test selected).
    bare = line.removesuffix(" || [ $? -eq 5 ]")
    done, _ = run_ci_line(bare, tmp_path, variables={"matrix.group": empty[0]})
    assert done.returncode == 5


def test_an_empty_gitlab_shard_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, _ = init(capsys, tmp_path, "--shards", "3", "--ci", "gitlab")
    assert code == 0
    pipeline = yaml.safe_load((tmp_path / GITLAB).read_text(encoding="utf-8"))
    (line,) = _pytest_lines(pipeline["integration"]["script"])
    results = []
    for index in ("1", "2", "3"):
        done, _ = run_ci_line(
            line,
            tmp_path,
            "--collect-only",
            "-q",
            variables={"CI_NODE_TOTAL": "3", "CI_NODE_INDEX": index},
        )
        assert done.returncode == 0, done.stdout + done.stderr
        results.append(len(re.findall(r"^tests/\S+::\S+$", done.stdout, re.MULTILINE)))
    assert sorted(results) == [0, 1, 1]


def test_the_unit_job_checks_the_transforms_coverage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write_repo(tmp_path)
    (tmp_path / GITHUB).unlink()  # theirs would be kept: let init write its own
    code, _, _ = init(capsys, tmp_path, "--existing")
    assert code == 0
    (line,) = github_steps(_workflow(tmp_path), "unit")
    assert shlex.split(line)[:6] == [
        "pytest",
        "-m",
        "unit",
        "--cov=src/acme/transforms",
        "--cov-report=term-missing",
        "--cov-fail-under=90",
    ]
    # No unit test yet, while names.py has code: 0 % fails the job.
    done, _ = run_ci_line(line, tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr

    # One of two functions tested: 75 % of the statements, under the 90 % target.
    (tmp_path / "tests/unit/test_names.py").write_text(UNIT_TEST, encoding="utf-8")
    done, counts = run_ci_line(line, tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert counts["passed"] == 1
    assert "FAIL Required test coverage of 90% not reached. Total coverage: 75.00%" in done.stdout

    # Both tested: over the target, the job passes.
    (tmp_path / "tests/unit/test_drop.py").write_text(DROP_EMPTY_TEST, encoding="utf-8")
    done, counts = run_ci_line(line, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert counts["passed"] == 2
    assert "Required test coverage of 90% reached. Total coverage: 100.00%" in done.stdout

    # The other layers have no test yet: their jobs pass (pytest's exit status 5 accepted).
    workflow = _workflow(tmp_path)
    for layer in ("quality", "performance"):
        (other,) = github_steps(workflow, layer)
        done, counts = run_ci_line(other, tmp_path)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "passed" not in counts


def test_coverage_min_sets_the_job_and_the_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write_repo(tmp_path)
    (tmp_path / GITHUB).unlink()
    code, _, _ = init(capsys, tmp_path, "--existing", "--coverage-min", "70")
    assert code == 0
    data = tomllib.loads((tmp_path / "pyproject.toml").read_text(encoding="utf-8"))
    assert data["tool"]["coverage"]["report"]["fail_under"] == 70
    (line,) = github_steps(_workflow(tmp_path), "unit")
    assert "--cov-fail-under=70" in shlex.split(line)
    (tmp_path / "tests/unit/test_names.py").write_text(UNIT_TEST, encoding="utf-8")
    done, _ = run_ci_line(line, tmp_path)  # 75 % >= 70 %
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Required test coverage of 70% reached. Total coverage: 75.00%" in done.stdout


# --------------------------------------------------------------------------- install lines


@pytest.mark.parametrize("ci", ["github", "gitlab"])
def test_every_install_line_gets_this_package(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], ci: str
) -> None:
    code, out, _ = init(capsys, tmp_path, "--ci", ci)
    assert code == 0
    data = tomllib.loads((tmp_path / "pyproject.toml").read_text(encoding="utf-8"))
    assert data["project"]["optional-dependencies"]["test"] == [
        "pytest-pipeline[local,quality]>=1.0",
        "pytest-split",
        "pytest-cov",
    ]
    assert data["build-system"]["build-backend"] == "setuptools.build_meta"
    workflow = (tmp_path / (GITHUB if ci == "github" else GITLAB)).read_text(encoding="utf-8")
    installs = [line for line in (workflow + out).splitlines() if "pip install" in line]
    assert installs
    for line in installs:
        # The project with its test extra, or the plugin with a floor above the other 0.3.0.
        assert 'pip install -e ".[test]"' in line or "pytest-pipeline[" not in line, line
    assert len([i for i in installs if 'pip install -e ".[test]"' in i]) >= 4
    assert "pytest-pipeline" not in workflow.replace("pytest-pipeline>=1.0", "").replace(
        "pytest-pipeline init", ""
    )


# --------------------------------------------------------------------------- other layouts

NAMES_PY = THEIR_FILES["src/acme/transforms/names.py"]
ROOT_UNIT_TEST = UNIT_TEST.replace("acme.transforms.names", "mypkg.transforms.names")
ROOT_DROP_TEST = DROP_EMPTY_TEST.replace("acme.transforms.names", "mypkg.transforms.names")


def _write_flat_repo(root: Path) -> None:
    """A setup.py project with pytest.ini and its package at the root, no src/ folder."""
    files = {
        "setup.py": "from setuptools import find_packages, setup\n\nsetup(name='mypkg')\n",
        "pytest.ini": "[pytest]\naddopts = -q\n",
        "mypkg/__init__.py": "",
        "mypkg/transforms/__init__.py": "",
        "mypkg/transforms/names.py": NAMES_PY,
        "docs/__init__.py": "",  # not a package of the project's code
        "tests/test_x.py": "def test_x():\n    assert True\n",
        "tests/test_y.py": "def test_y():\n    assert True\n",
    }
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


@pytest.mark.parametrize("package", [[], ["--package", "mypkg"]], ids=["derived", "explicit"])
def test_a_flat_layout_gets_root_paths(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], package: list[str]
) -> None:
    root = tmp_path / "legacy"
    _write_flat_repo(root)

    code, out, _ = init(capsys, root, "--existing", *package)

    assert code == 0, out
    assert "(conventions only, package mypkg," in out
    assert "src/" not in out
    data = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    assert data["tool"]["coverage"]["run"]["source"] == ["mypkg/transforms"]
    assert data["tool"]["pytest-pipeline"]["require_layer"] is False
    assert len(comment_columns(pipeline_section(root))) == 1  # "false" keeps the column
    (line,) = github_steps(_workflow(root), "unit")
    assert "--cov=mypkg/transforms" in shlex.split(line)
    # pytest.ini wins over pyproject.toml: init says, in plain sentences, what it lacks.
    assert (
        "note: pytest.ini holds pytest's settings (it wins over pyproject.toml), so no "
        "[tool.pytest.ini_options] was added" in out
    )
    assert "note: pytest.ini [pytest] has no pythonpath = .: add it" in out
    assert 'note: pytest.ini [pytest] addopts has no "--import-mode=importlib": add it' in out
    # A setup.py project: the test extra belongs in setup(), not in a [project] table.
    assert (
        'setup.py: add extras_require={"test": ["pytest-pipeline[local,quality]>=1.0", '
        '"pytest-split", "pytest-cov"]} to its setup() call' in out
    )
    assert "[project.optional-dependencies]" not in out
    # Tests outside the layer folders: named, and said to run in no CI job.
    assert (
        "2 existing test file(s) are outside the layer folders (tests/test_x.py, "
        "tests/test_y.py) and run in NO CI job (each job selects its layer with pytest -m)" in out
    )

    # Following the notes, the unit job's line runs and measures mypkg/transforms.
    (root / "pytest.ini").write_text(
        "[pytest]\naddopts = -q --import-mode=importlib\npythonpath = .\n", encoding="utf-8"
    )
    (root / "tests/unit/test_names.py").write_text(ROOT_UNIT_TEST, encoding="utf-8")
    (root / "tests/unit/test_drop.py").write_text(ROOT_DROP_TEST, encoding="utf-8")
    done, counts = run_ci_line(line, root)
    assert done.returncode == 0, done.stdout + done.stderr
    assert counts["passed"] == 2
    assert "Required test coverage of 90% reached. Total coverage: 100.00%" in done.stdout

    # A second run: nothing about sample files, which --existing never writes.
    code, again, _ = init(capsys, root, "--existing", *package)
    assert code == 0
    assert "sample" not in again


def test_a_transforms_module_is_measured_as_a_module(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "pyproject.toml").write_text(PYPROJECT.replace("acme", "orders"), "utf-8")
    (tmp_path / "src/orders").mkdir(parents=True)
    (tmp_path / "src/orders/__init__.py").write_text("", encoding="utf-8")
    (tmp_path / "src/orders/transforms.py").write_text(NAMES_PY, encoding="utf-8")

    code, out, _ = init(capsys, tmp_path, "--existing")

    assert code == 0, out
    assert "does not exist" not in out
    data = tomllib.loads((tmp_path / "pyproject.toml").read_text(encoding="utf-8"))
    assert data["tool"]["coverage"]["run"]["source"] == ["orders.transforms"]
    (line,) = github_steps(_workflow(tmp_path), "unit")
    assert "--cov=orders.transforms" in shlex.split(line)
    test = UNIT_TEST.replace("acme.transforms.names", "orders.transforms")
    (tmp_path / "tests/unit/test_names.py").write_text(test, encoding="utf-8")
    done, counts = run_ci_line(line, tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr  # one of two functions: 75 %
    assert counts["passed"] == 1
    assert "Total coverage: 75.00%" in done.stdout
    drop = DROP_EMPTY_TEST.replace("acme.transforms.names", "orders.transforms")
    (tmp_path / "tests/unit/test_drop.py").write_text(drop, encoding="utf-8")
    done, counts = run_ci_line(line, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Required test coverage of 90% reached. Total coverage: 100.00%" in done.stdout
