"""``pytest-pipeline init``: scaffold a pipeline test layout into a new or existing repository.

It writes the four layer folders with a sample transform and one passing test per layer, a
fixture file and a Great Expectations suite, the ``[tool.pytest-pipeline]`` section of
``pyproject.toml`` and a CI workflow with one job per layer. It never overwrites a file
without ``--force``, and never rewrites ``pyproject.toml``: missing sections are appended as
text, existing ones are left as they are.

The templates are package data under ``pytest_pipeline/templates``; ``@@name@@`` marks a
value filled in here. Only the standard library is imported: ``init`` must work (and
``pytest-pipeline --help`` must stay fast) whatever extras are installed.
"""

from __future__ import annotations

import argparse
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

__all__ = ["HELP", "add_arguments", "run"]

HELP = (
    "scaffold layer test folders, a sample pipeline with passing tests, "
    "[tool.pytest-pipeline] and a CI workflow (one job per layer)"
)

CI_CHOICES = ("github", "gitlab", "none")
CI_PATHS = {"github": ".github/workflows/pipeline-tests.yml", "gitlab": ".gitlab-ci.yml"}
DEFAULT_RUNNERS = {"github": "ubuntu-24.04", "gitlab": "saas-linux-small-amd64"}
DEFAULT_PYTHON = "3.12"
DEFAULT_SHARDS = 2
MAX_SHARDS = 100
SAMPLE_INTEGRATION_TESTS = 2
"""Integration tests in the sample: more shards than this leave a shard with no test."""

LAYERS = ("unit", "integration", "performance", "quality")
DEFAULT_DIRS = {
    "fixtures": "tests/fixtures",
    "expectations": "tests/quality/expectations",
    **{layer: f"tests/{layer}" for layer in LAYERS},
}
PLACEHOLDER = re.compile(r"@@([a-z_]+)@@")
# Names a sample package must not take: it would shadow what the sample or its tests import.
RESERVED = frozenset(
    {
        "boto3",
        "conftest",
        "confluent_kafka",
        "great_expectations",
        "moto",
        "numpy",
        "pandas",
        "pgserver",
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
_SKIP_DIRS = frozenset({"node_modules", "site-packages", "build", "dist", "__pycache__"})


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
        "kept; init refuses to overwrite a file that differs unless --force is given."
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


def _options(args: argparse.Namespace) -> Options:
    ci = str(args.ci)
    shards = int(args.shards)
    if not 1 <= shards <= MAX_SHARDS:
        _fail(f"--shards must be between 1 and {MAX_SHARDS}, got {shards}")
    python = str(args.python).strip()
    match = re.fullmatch(r"3\.(\d+)", python)
    if match is None or int(match.group(1)) < 11:
        _fail(f"--python must be a Python version 3.11 or later, like 3.12; got {python!r}")
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
    )


# --------------------------------------------------------------------------- templates


def _templates() -> Traversable:
    return resources.files("pytest_pipeline") / "templates"


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
        where = f"[tool.pytest-pipeline] of {pyproject_path}"
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


def package_name(repo: Repo, explicit: str | None) -> str:
    """The sample package: ``--package``, the only package in src/, the project or folder name."""
    if explicit is not None:
        problem = _package_problem(explicit)
        if problem:
            _fail(f"--package {explicit!r} {problem}; choose another name")
        return explicit
    project = repo.pyproject.get("project", {})
    candidates = [
        _existing_src_package(repo.root),
        project.get("name") if isinstance(project, dict) else None,
        repo.root.resolve().name,
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
    """create | overwrite | keep | conflict"""
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


def _values(options: Options, repo: Repo, package: str, require_layer: bool) -> dict[str, str]:
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
        "require_layer": "true" if require_layer else "false",
        "fixtures_dir": repo.dirs["fixtures"],
        "expectations_dir": repo.dirs["expectations"],
        **{f"{layer}_dir": repo.dirs[layer] for layer in LAYERS},
    }


def _project_files(repo: Repo, values: Mapping[str, str]) -> list[Planned]:
    top = {"src": "src", **repo.dirs}
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


def _ci_file(options: Options, values: Mapping[str, str]) -> Planned | None:
    if options.ci == "none":
        return None
    variant = "sharded" if options.shards > 1 else "single"
    job = _template_text(f"ci/{options.ci}-integration-{variant}.yml.tmpl", values)
    text = _template_text(f"ci/{options.ci}.yml.tmpl", {**values, "integration_job": job})
    return Planned(CI_PATHS[options.ci], text)


def _decide(planned: Planned, root: Path, force: bool) -> None:
    path = root / planned.path
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
    else:
        planned.action, planned.reason = "conflict", "exists with other content"


def _newline(text: str) -> str:
    return "\r\n" if "\r\n" in text else "\n"


def _plan_pyproject(plan: Plan, repo: Repo, values: Mapping[str, str]) -> None:
    pipeline = _template_text("pyproject/pipeline.toml.tmpl", values)
    pytest_ini = _template_text("pyproject/pytest.toml.tmpl", values)
    if repo.pyproject_text is None:
        project = _template_text("pyproject/project.toml.tmpl", values)
        plan.pyproject_action = "create"
        plan.pyproject_sections = ["[project]"]
        blocks = [project]
        if repo.other_pytest_config is None:
            plan.pyproject_sections.append("[tool.pytest.ini_options]")
            blocks.append(pytest_ini)
        plan.pyproject_sections.append("[tool.pytest-pipeline]")
        blocks.append(pipeline)
        plan.pyproject_text = "\n".join(blocks)
        return

    blocks = []
    if repo.has_pytest_section:
        pytest_table = repo.pyproject["tool"]["pytest"]
        ini = isinstance(pytest_table, dict) and "ini_options" in pytest_table
        plan.pyproject_kept.append("[tool.pytest.ini_options]" if ini else "[tool.pytest]")
        _check_pytest_settings(plan, repo.pyproject, repo.dirs)
    elif repo.other_pytest_config is None:
        plan.pyproject_sections.append("[tool.pytest.ini_options]")
        blocks.append(pytest_ini)
    if repo.has_pipeline_section:
        plan.pyproject_kept.append("[tool.pytest-pipeline]")
    else:
        plan.pyproject_sections.append("[tool.pytest-pipeline]")
        blocks.append(pipeline)
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


def _as_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return value.split()
    return [str(item) for item in value] if isinstance(value, list) else []


def _check_pytest_settings(plan: Plan, data: Mapping[str, Any], dirs: Mapping[str, str]) -> None:
    """Notes on existing pytest settings that would keep the sample tests from running."""
    pytest_table = data.get("tool", {}).get("pytest", {})
    if not isinstance(pytest_table, dict):
        return
    ini = pytest_table.get("ini_options", pytest_table)
    if not isinstance(ini, dict):
        return
    table = "[tool.pytest.ini_options]" if "ini_options" in pytest_table else "[tool.pytest]"
    pythonpath = [entry.strip("./") for entry in _as_list(ini.get("pythonpath"))]
    if "src" not in pythonpath:
        plan.notes.append(
            f'{table} has no pythonpath = ["src"]: add it (or install the project) so the '
            f"sample tests can import {plan.package}"
        )
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
                "will not run the sample tests there; add them to testpaths"
            )


def make_plan(options: Options) -> Plan:
    """Decide every file and section init writes into ``options.target``; write nothing."""
    root = options.target
    if root.exists() and not root.is_dir():
        _fail(f"{root} exists and is not a folder")
    repo = inspect_repo(root) if root.exists() else inspect_missing(root)
    package = package_name(repo, options.package)
    plan = Plan(root=root, package=package)
    require_layer = True
    if not repo.has_pipeline_section and root.exists():
        outside = _tests_outside_layers(repo)
        if outside:
            require_layer = False
            shown = ", ".join(outside[:3]) + (", ..." if len(outside) > 3 else "")
            plan.notes.append(
                f"require_layer = false: {len(outside)} existing test file(s) are outside the "
                f"layer folders ({shown}); mark or move them, then set require_layer = true"
            )
    values = _values(options, repo, package, require_layer)
    plan.files = _project_files(repo, values)
    ci = _ci_file(options, values)
    if ci is not None:
        plan.files.append(ci)
    for planned in plan.files:
        _decide(planned, root, options.force)
    _plan_pyproject(plan, repo, values)
    if repo.other_pytest_config is not None:
        plan.notes.append(
            f"{repo.other_pytest_config} holds pytest's settings (it wins over pyproject.toml): "
            f"add pythonpath = src there so the sample tests can import {package}"
        )
    if repo.has_pipeline_section:
        plan.notes.append(
            "[tool.pytest-pipeline] already exists and was left as it is; the sample files "
            "follow its fixtures_dir, expectations_dir and layer_dirs"
        )
    if options.ci != "none" and options.shards > SAMPLE_INTEGRATION_TESTS:
        plan.notes.append(
            f"--shards {options.shards}: the sample has {SAMPLE_INTEGRATION_TESTS} integration "
            "tests, so some shards select none (pytest exit code 5) until you add more"
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
            path = plan.root / planned.path
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(planned.content, encoding="utf-8", newline="\n")
        path = plan.root / "pyproject.toml"
        if plan.pyproject_action == "create":
            path.write_text(plan.pyproject_text, encoding="utf-8", newline="\n")
        elif plan.pyproject_action == "append":
            # Appended as text: the user's own lines, comments and layout stay as they are.
            with path.open("a", encoding="utf-8", newline="") as handle:
                handle.write(plan.pyproject_text)
    except OSError as exc:
        _fail(f"cannot write {path}: {exc.strerror or exc}")


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
    }
    if not options.dry_run:
        verbs.update(create="created", overwrite="overwrote", append="appended")
    width = max(len(verb) for verb in verbs.values())
    ci = "no CI workflow" if options.ci == "none" else f"CI: {options.ci}"
    if options.ci != "none":
        ci += f", {options.shards} integration shard{'s' if options.shards > 1 else ''}"
    lines = [f"pytest-pipeline init: {plan.root.resolve()} (package {plan.package}, {ci})"]
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
    lines += [
        "next: install the test tools (once), then run every layer:",
        '  pip install "pytest-pipeline[local,quality]" pytest-split',
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
