"""The documentation site: it builds strict, every page is in the nav, and the troubleshooting
page covers every message the plugin can give.

Messages are found statically (``ast``) in ``src/pytest_pipeline``: the first argument of every
call to one of the plugin's exception or warning classes, ``pytest.UsageError``, ``pytest.fail``,
``pytest.skip``, ``pytest.exit`` and ``warnings.warn``, plus the strings of a few functions and
constants that build messages passed on through variables (``MESSAGE_SOURCES``). Of each message
one literal fragment must appear in docs/troubleshooting.md: its leading text, or its longest
literal piece when it starts with a placeholder. Rewording the rest of a message does not break
the test; a new message, or a new start of one, does, until troubleshooting.md says what it
means and how to fix it.
"""

from __future__ import annotations

import ast
import functools
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "pytest_pipeline"
DOCS = ROOT / "docs"
TROUBLESHOOTING = DOCS / "troubleshooting.md"

#: Shorter fragments ("cannot read ", "must be ") say too little to tie a message to its entry.
MIN_FRAGMENT = 12
#: A leading text this long identifies its message; a shorter one gives way to the longest piece.
MIN_LEAD = 20
#: Many messages start with it; the text after it is what identifies the message.
PREFIX = "pytest-pipeline: "
#: pytest's own calls that show a message to the user.
PYTEST_CALLS = {"fail", "skip", "exit", "UsageError"}
CALLS = {f"pytest.{name}" for name in PYTEST_CALLS} | {"warnings.warn"}
#: Calls whose argument at this position is a message shown to the user (besides the errors).
MESSAGE_ARGS = {
    "Availability": 3,  # the local backend's "why not" when a server is missing
    "_fail": 0,  # cli/scaffold.py (pytest-pipeline init) raises PipelineError through it
}
#: Functions and constants (per module) whose strings become messages through variables.
MESSAGE_SOURCES = {
    "layers/markers.py": ("check_item", "_check_number"),
    "performance/budgets.py": ("breaches",),
    "dlq/rule.py": ("violation_message", "HOW_TO_FIX", "count_of", "assert_dlq_count"),
    "records/codec.py": ("_locate_csv_problem", "too_large"),
    "records/tables.py": ("check_records",),
    "cli/scaffold.py": ("_package_problem",),
    "services/manager.py": ("EXTERNAL_HINT", "shutdown"),
    "services/local/_core.py": ("_exited",),
    "services/local/_postgres.py": ("HINT",),
    "services/local/_kafka.py": ("HINT",),
    "services/local/_s3.py": ("HINT",),
}
#: Messages that are not documented, each with the reason: internal invariants that no input
#: of a user can reach (the fragment, as the failure output of the coverage test shows it).
NOT_DOCUMENTED = {
    "unknown local service": "internal: the service names are fixed by the plugin",
    "the pytest process owning the run": "internal: the run owner itself starts the servers",
    "the run directory": "internal: the manager creates it right before starting a server",
}


@dataclass(frozen=True)
class Message:
    """One message of the plugin: where it is made, and the fragment docs must contain."""

    where: str
    fragment: str


# --------------------------------------------------------------------------- extraction


def _normalize(text: str) -> str:
    return " ".join(text.split())


def _pieces(node: ast.expr) -> list[str | None]:
    """The literal pieces of a message expression; ``None`` stands for a computed part."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.JoinedStr):
        return [
            part.value if isinstance(part, ast.Constant) and isinstance(part.value, str) else None
            for part in node.values
        ]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _pieces(node.left) + _pieces(node.right)
    return [None]


def _fragment(pieces: list[str | None]) -> str | None:
    """The leading literal text when it says enough, else the longest literal piece."""
    joined: list[str] = []  # adjacent literals joined; a computed part starts a new piece
    current: str | None = ""
    for piece in pieces:
        if piece is None:
            joined.append(current or "")
            current = ""
        else:
            current = (current or "") + piece
    joined.append(current or "")
    joined[0] = joined[0].removeprefix(PREFIX)
    strip = " \t\n:;,.()'\""
    # Prose has spaces: a lone word is a key or a mode ("benchmark-median"), not a message.
    texts = [_normalize(piece).strip(strip) for piece in joined]
    texts = [text if " " in text else "" for text in texts]
    if len(texts[0]) >= MIN_LEAD:
        return texts[0]
    longest = max(texts, key=len)
    return longest if len(longest) >= MIN_FRAGMENT else None


def _message_nodes(node: ast.expr) -> Iterator[ast.expr]:
    """The alternatives of a message expression (``a or b``, ``a if c else b``)."""
    if isinstance(node, ast.BoolOp):
        for value in node.values:
            yield from _message_nodes(value)
    elif isinstance(node, ast.IfExp):
        yield from _message_nodes(node.body)
        yield from _message_nodes(node.orelse)
    else:
        yield node


def _call_name(call: ast.Call) -> str | None:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        owner = func.value.id if isinstance(func.value, ast.Name) else None
        if owner == "pytest" and func.attr in PYTEST_CALLS:
            return f"pytest.{func.attr}"
        if owner == "warnings" and func.attr == "warn":
            return "warnings.warn"
        return func.attr
    return None


def _modules() -> list[tuple[str, ast.Module]]:
    return [
        (path.relative_to(SRC).as_posix(), ast.parse(path.read_text(encoding="utf-8")))
        for path in sorted(SRC.rglob("*.py"))
    ]


def error_classes(modules: list[tuple[str, ast.Module]]) -> set[str]:
    """Public exception and warning classes defined by the plugin (subclasses included)."""
    known = {"Exception", "UserWarning", "Warning", "ImportError", "UsageError"}
    classes: set[str] = set()
    grew = True
    while grew:
        grew = False
        for _, tree in modules:
            for node in ast.walk(tree):
                if not isinstance(node, ast.ClassDef) or node.name in classes:
                    continue
                bases = {
                    base.id if isinstance(base, ast.Name) else getattr(base, "attr", "")
                    for base in node.bases
                }
                if bases & (known | classes) and not node.name.startswith("_"):
                    classes.add(node.name)
                    grew = True
    return classes


def _is_string(node: ast.AST) -> bool:
    return isinstance(node, ast.JoinedStr) or (
        isinstance(node, ast.Constant) and isinstance(node.value, str)
    )


def _strings(node: ast.AST) -> Iterator[ast.expr]:
    """The outermost string expressions in ``node`` (docstrings left out)."""
    if _is_string(node):
        assert isinstance(node, ast.expr)
        yield node
        return
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.Expr) and isinstance(child.value, ast.Constant):
            continue  # a docstring
        if _is_string(child) or (isinstance(child, ast.BinOp) and isinstance(child.op, ast.Add)):
            assert isinstance(child, ast.expr)
            yield child
        else:
            yield from _strings(child)


def _source_definitions(tree: ast.Module, names: tuple[str, ...], module: str) -> list[ast.AST]:
    found: dict[str, ast.AST] = {}
    for node in ast.walk(tree):  # functions and methods; constants at module level
        if isinstance(node, ast.FunctionDef) and node.name in names:
            found.setdefault(node.name, node)
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name) and target.id in names and node.value:
                    found[target.id] = node.value
    missing = sorted(set(names) - set(found))
    assert not missing, f"MESSAGE_SOURCES names {missing} in {module}, which has no such name"
    return [found[name] for name in names]


@functools.cache  # parsing the sources takes about a second: once per test process
def plugin_messages() -> tuple[Message, ...]:
    """Every message of the plugin that has a literal fragment to look for."""
    modules = _modules()
    classes = error_classes(modules)
    messages: list[Message] = []

    def add(module: str, node: ast.expr) -> None:
        for alternative in _message_nodes(node):
            fragment = _fragment(_pieces(alternative))
            if fragment is not None:
                messages.append(Message(f"{module}:{alternative.lineno}", fragment))

    for module, tree in modules:
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = _call_name(node)
            if name in classes or name in CALLS:
                argument = node.args[0] if node.args else None
                if argument is None:
                    argument = next(
                        (k.value for k in node.keywords if k.arg in ("reason", "msg", "message")),
                        None,
                    )
                if argument is not None:
                    add(module, argument)
            elif name in MESSAGE_ARGS and len(node.args) > MESSAGE_ARGS[name]:
                add(module, node.args[MESSAGE_ARGS[name]])
        for definition in _source_definitions(tree, MESSAGE_SOURCES.get(module, ()), module):
            for string in _strings(definition):
                add(module, string)
    return tuple(messages)


def _documented(text: str, fragment: str) -> bool:
    return _normalize(fragment) in text


# --------------------------------------------------------------------------- tests


def test_the_extraction_finds_the_messages_it_is_meant_to() -> None:
    # Guards the guard: a change in the extraction that finds nothing must not pass silently.
    fragments = {message.fragment for message in plugin_messages()}
    assert "unknown configuration key" in fragments  # ConfigError via a helper, f-string
    assert "points outside the fixtures directory" in fragments  # placeholder first: longest
    # Built in a MESSAGE_SOURCES function, after a placeholder (the test id):
    assert any(f.startswith("DLQ rule: this integration test passed") for f in fragments)
    assert "performance budget exceeded" in fragments
    assert len(fragments) > 100


def test_troubleshooting_covers_every_message() -> None:
    text = _normalize(TROUBLESHOOTING.read_text(encoding="utf-8"))
    missing = sorted(
        {
            f"{message.where}: {message.fragment!r}"
            for message in plugin_messages()
            if not _documented(text, message.fragment)
            and not any(skip in message.fragment for skip in NOT_DOCUMENTED)
        }
    )
    assert not missing, (
        f"{len(missing)} message(s) of the plugin are not in docs/troubleshooting.md; "
        "document each (the message with placeholders, why, the fix):\n" + "\n".join(missing)
    )


def test_not_documented_allowlist_is_still_needed() -> None:
    fragments = [message.fragment for message in plugin_messages()]
    stale = [skip for skip in NOT_DOCUMENTED if not any(skip in f for f in fragments)]
    assert not stale, f"NOT_DOCUMENTED entries that match no message any more: {stale}"


def _nav_pages(nav: object) -> Iterator[str]:
    if isinstance(nav, str):
        yield nav
    elif isinstance(nav, list):
        for entry in nav:
            yield from _nav_pages(entry)
    elif isinstance(nav, dict):
        for value in nav.values():
            yield from _nav_pages(value)


def test_every_page_is_in_the_nav_and_every_nav_entry_exists() -> None:
    yaml = pytest.importorskip("yaml")
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    in_nav = list(_nav_pages(config["nav"]))
    pages = {path.relative_to(DOCS).as_posix() for path in DOCS.rglob("*.md")}
    assert sorted(pages - set(in_nav)) == [], "pages missing from the nav of mkdocs.yml"
    assert sorted(set(in_nav) - pages) == [], "nav entries of mkdocs.yml with no page"
    assert len(in_nav) == len(set(in_nav)), "a page is in the nav twice"


def test_configuration_reference_matches_the_settings() -> None:
    from pytest_pipeline.config import reference_table

    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- reference:start -->\n(.*?)\n<!-- reference:end -->", text, re.S)
    assert match, "docs/configuration.md lost its reference markers"
    assert match.group(1) == reference_table(), (
        "docs/configuration.md's reference table drifted from the settings: paste "
        "pytest_pipeline.config.reference_table() between the markers"
    )


def test_site_builds_strict(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs", reason="mkdocs is in the docs extra")
    site = tmp_path / "site"
    # No -q: mkdocs 1.6 drops warnings below its log level before --strict counts them.
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stderr}"
    assert (site / "troubleshooting" / "index.html").is_file()
