"""The project's schema, applied once to the template every per-test database is copied from.

``services.postgres.schema`` lists SQL files and directories of them (applied in order; a
directory's ``*.sql`` files in natural order of their names, so ``2_x.sql`` before
``10_y.sql``), ``schema_hook`` names a ``"module:function"`` called with the template's DSN
(Alembic, ...) and ``schema_command`` a shell command run with the DSN in ``DATABASE_URL``.
The hook runs first, then the command, then the SQL files (seed rows included).

The inputs' content (file names and bytes, the hook and command strings, the hook module's
source file and the files of ``schema_inputs``) is hashed into :attr:`Schema.digest`, which
names the template: an unchanged schema is never applied twice. Standard library only at
import time.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import re
import signal
import subprocess
import sys
import sysconfig
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.machinery import PathFinder
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_pipeline.errors import ConfigError, SchemaError

if TYPE_CHECKING:
    from pytest_pipeline.config import PipelineConfig
    from pytest_pipeline.services.endpoints import PostgresEndpoint

__all__ = ["Schema", "SchemaError", "from_config", "split_statements"]

#: The environment variable holding the template's DSN for ``schema_command``.
DSN_ENV = "DATABASE_URL"
_KEY = "services.postgres"
_HOOK = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")
# A statement shown in an error is cut after this many characters.
_SHOWN = 400


@dataclass(frozen=True)
class SchemaFile:
    """One SQL file of the schema: where it is, its name for messages, and its text."""

    path: Path
    label: str
    text: str


@dataclass(frozen=True)
class Schema:
    """Everything that goes into the template, and the hash of it."""

    files: tuple[SchemaFile, ...]
    hook: str | None
    command: str | None
    rootdir: Path
    timeout: float
    digest: str

    def key(self, server_version: int) -> str:
        """12 hex digits naming the template built from this schema on that server version."""
        return hashlib.sha256(f"{self.digest}|{server_version}".encode()).hexdigest()[:12]

    def apply(self, endpoint: PostgresEndpoint, dbname: str) -> None:
        """Run the hook, the command and the SQL files against ``dbname``; SchemaError if any
        of them fails (the caller drops the half-built database)."""
        dsn = endpoint.dsn(dbname)
        if self.hook:
            _run_hook(self.hook, dsn, self.rootdir, endpoint.password)
        if self.command:
            _run_command(self.command, endpoint, dbname, self.rootdir, self.timeout)
        if self.files:
            _run_files(self.files, endpoint, dbname)


# --------------------------------------------------------------------------- configuration

_loaded: dict[int, tuple[Any, Schema | None]] = {}


def from_config(resolved: PipelineConfig) -> Schema | None:
    """The schema configured for ``resolved`` (None when there is none), read once per process."""
    cached = _loaded.get(id(resolved))
    if cached is not None and cached[0] is resolved:
        return cached[1]
    schema = load(
        resolved.rootdir,
        resolved.services.postgres.schema,
        resolved.services.postgres.schema_hook,
        resolved.services.postgres.schema_command,
        resolved.services.postgres.schema_inputs,
        resolved.services.startup_timeout,
    )
    _loaded[id(resolved)] = (resolved, schema)
    return schema


def load(
    rootdir: Path,
    entries: tuple[str, ...],
    hook: str | None,
    command: str | None,
    inputs: tuple[str, ...] = (),
    timeout: float = 60.0,
) -> Schema | None:
    """Read the schema's files and hash every input; ConfigError naming a missing path."""
    if not (entries or hook or command):
        return None
    if hook is not None and not _HOOK.fullmatch(hook.strip()):
        raise ConfigError(
            f"pytest-pipeline: {_KEY}.schema_hook must be 'module:function' (e.g. "
            f"'myproj.db:migrate'), got {hook!r}."
        )
    files = [f for entry in entries for f in _sql_files(rootdir, entry, "schema")]
    digest = hashlib.sha256()
    for item in files:
        _feed(digest, "file", item.label, item.text.encode("utf-8"))
    for entry in inputs:
        for path in _input_files(rootdir, entry):
            _feed(digest, "input", path.relative_to(rootdir).as_posix(), path.read_bytes())
    _feed(digest, "hook", hook or "", b"")
    if hook is not None:
        _feed(digest, "hook module", *_hook_source(hook, rootdir))
    _feed(digest, "command", command or "", b"")
    return Schema(tuple(files), hook, command, rootdir, timeout, digest.hexdigest())


def _feed(digest: Any, kind: str, name: str, data: bytes) -> None:
    # Lengths first: no two different input lists hash the same bytes.
    for part in (kind.encode(), name.encode("utf-8"), data):
        digest.update(len(part).to_bytes(8, "big") + part)


def _hook_source(hook: str, rootdir: Path) -> tuple[str, bytes]:
    """The hook module's file (label, bytes): edits to it rebuild the template. Empty when it
    cannot be found; loading the hook then fails with a clear error."""
    path = _module_file(hook.strip().partition(":")[0], rootdir)
    if path is None:
        return "", b""
    try:
        return _label(rootdir, path), path.read_bytes()
    except OSError:
        return "", b""


def _module_file(module_name: str, rootdir: Path) -> Path | None:
    """Where ``module_name`` is, found as :func:`_import` would find it, without importing it."""
    search: list[str] | None = [*sys.path, str(rootdir)]
    spec = None
    parts = module_name.split(".")
    for i in range(len(parts)):
        spec = PathFinder.find_spec(".".join(parts[: i + 1]), search)
        if spec is None:
            break
        search = list(spec.submodule_search_locations or [])
    if spec is None:
        # Served by an import hook (an editable install): this imports the parent packages.
        try:
            spec = importlib.util.find_spec(module_name)
        except (ImportError, ValueError):
            return None
    origin = spec.origin if spec is not None and spec.has_location else None
    return Path(origin) if origin else None


def natural_key(name: str) -> list[Any]:
    """Sort key putting ``2_x.sql`` before ``10_y.sql`` (digit runs compared as numbers)."""
    return [(0, int(p), p) if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", name) if p]


def _resolve(rootdir: Path, entry: str, key: str) -> Path:
    path = (rootdir / entry).resolve()
    if not path.exists():
        raise ConfigError(
            f"pytest-pipeline: {_KEY}.{key} names {entry!r}, which does not exist "
            f"(looked for {path}; paths are relative to the rootdir {rootdir})."
        )
    return path


def _label(rootdir: Path, path: Path) -> str:
    try:
        return path.relative_to(rootdir.resolve()).as_posix()
    except ValueError:
        return str(path)


def _sql_files(rootdir: Path, entry: str, key: str) -> Iterator[SchemaFile]:
    path = _resolve(rootdir, entry, key)
    if path.is_dir():
        paths = sorted(
            (p for p in path.iterdir() if p.suffix == ".sql" and p.is_file()),
            key=lambda p: natural_key(p.name),
        )
        if not paths:
            raise ConfigError(
                f"pytest-pipeline: {_KEY}.{key} names the directory {entry!r}, which holds no "
                "*.sql file."
            )
    else:
        paths = [path]
    for sql_path in paths:
        try:
            text = sql_path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"pytest-pipeline: cannot read the schema file {sql_path} ({_KEY}.{key}): {exc}"
            ) from None
        yield SchemaFile(sql_path, _label(rootdir, sql_path), text)


def _input_files(rootdir: Path, entry: str) -> list[Path]:
    path = _resolve(rootdir, entry, "schema_inputs")
    if path.is_file():
        return [path]
    found = [p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    return sorted(found, key=lambda p: p.as_posix())


# --------------------------------------------------------------------------- SQL files

_DOLLAR = re.compile(r"\$([A-Za-z_\x80-\uffff][\w\x80-\uffff]*)?\$")


def split_statements(text: str) -> list[tuple[int, str]]:
    """The statements of an SQL script with the line each starts on (1-based).

    Splits on ``;`` outside quotes ('...', E'...', "..."), dollar quotes ($$...$$, $tag$...$tag$),
    comments (-- and nested /* */) and the ``BEGIN ATOMIC ... END`` body of a function or
    procedure, as psql does. Comment-only text yields no statement.
    """
    statements: list[tuple[int, str]] = []
    start, depth = 0, 0
    head: list[str] = []  # the current statement's words
    i, n = 0, len(text)
    while i < n:
        skipped = _skip(text, i)
        if skipped is not None:
            i = skipped
        elif text[i] == ";" and depth == 0:
            _add_statement(statements, text, start, i)
            start, head = i + 1, []
            i += 1
        elif text[i].isalpha() or text[i] == "_":
            word = _WORD.match(text, i)
            assert word is not None
            i = word.end()
            head.append(word.group(0).upper())
            depth = _routine_depth(head, depth)
        else:
            i += 1
    _add_statement(statements, text, start, n)
    return statements


_WORD = re.compile(r"[A-Za-z_\x80-\uffff][\w$\x80-\uffff]*")
_ROUTINE = re.compile(r"CREATE (OR REPLACE )?(FUNCTION|PROCEDURE)\b")


def _routine_depth(words: list[str], depth: int) -> int:
    """The BEGIN/CASE ... END nesting after the last of ``words`` (statement's words so far):
    only inside CREATE FUNCTION / PROCEDURE, whose SQL-standard body holds semicolons."""
    if not _ROUTINE.match(" ".join(words[:4])):
        return 0
    if words[-1] in ("BEGIN", "CASE"):
        return depth + 1
    if words[-1] == "END" and depth:
        return depth - 1
    return depth


def _skip(text: str, i: int) -> int | None:
    """Where the comment, quoted text or dollar quote starting at ``i`` ends (None: none)."""
    c = text[i]
    if c == "-" and text.startswith("--", i):
        end = text.find("\n", i)
        return len(text) if end < 0 else end + 1
    if c == "/" and text.startswith("/*", i):
        return _skip_block_comment(text, i)
    if c == "'":
        escapes = i > 0 and text[i - 1] in "eE" and (i < 2 or not _ident(text[i - 2]))
        return _skip_quoted(text, i, "'", escapes)
    if c == '"':
        return _skip_quoted(text, i, '"', False)
    if c == "$" and (i == 0 or not _ident(text[i - 1])):
        match = _DOLLAR.match(text, i)
        if match is None:
            return i + 1
        end = text.find(match.group(0), match.end())
        return len(text) if end < 0 else end + len(match.group(0))
    return None


def _ident(char: str) -> bool:
    return char.isalnum() or char == "_"


def _skip_block_comment(text: str, i: int) -> int:
    depth, i = 1, i + 2
    while i < len(text) and depth:
        if text.startswith("/*", i):
            depth, i = depth + 1, i + 2
        elif text.startswith("*/", i):
            depth, i = depth - 1, i + 2
        else:
            i += 1
    return i


def _skip_quoted(text: str, i: int, quote: str, escapes: bool) -> int:
    i += 1
    while i < len(text):
        if escapes and text[i] == "\\":
            i += 2
        elif text[i] == quote:
            if text.startswith(quote * 2, i):
                i += 2
            else:
                return i + 1
        else:
            i += 1
    return i


def _add_statement(statements: list[tuple[int, str]], text: str, start: int, end: int) -> None:
    body = text[start:end]
    offset = _first_code(body)
    if offset is None:
        return
    line = text.count("\n", 0, start + offset) + 1
    statements.append((line, body[offset:].rstrip()))


def _first_code(body: str) -> int | None:
    """Where the first character outside whitespace and comments is, or None."""
    i = 0
    while i < len(body):
        if body[i].isspace():
            i += 1
        elif body.startswith("--", i):
            end = body.find("\n", i)
            if end < 0:
                return None
            i = end + 1
        elif body.startswith("/*", i):
            i = _skip_block_comment(body, i)
        else:
            return i
    return None


def _run_files(files: tuple[SchemaFile, ...], endpoint: PostgresEndpoint, dbname: str) -> None:
    from pytest_pipeline.services import pg
    from pytest_pipeline.services.postgres import connect

    psycopg = pg.psycopg()
    conn = connect(endpoint, dbname)
    try:
        for item in files:
            for line, statement in split_statements(item.text):
                if statement.startswith("\\"):
                    raise SchemaError(
                        f"the schema file {item.label}, line {line}: psql meta-commands "
                        f"({statement.split()[0]}) are not SQL and cannot be applied. List "
                        f"each file in {_KEY}.schema instead of \\i, or use schema_command."
                    )
                try:
                    conn.execute(statement)
                except psycopg.Error as exc:
                    where = line + _line_of_position(statement, exc)
                    raise SchemaError(
                        f"the schema file {item.label} failed at line {where}: "
                        f"{pg.first_line(exc, endpoint)}\nstatement (line {line}): "
                        f"{_shorten(statement)}\nNo template was made; fix the file and run "
                        "again."
                    ) from None
    finally:
        conn.close()


def _line_of_position(statement: str, exc: Any) -> int:
    """Lines from the statement's start to the error position the server reported (0 if none)."""
    diag = getattr(exc, "diag", None)
    position = getattr(diag, "statement_position", None)
    try:
        index = int(position) - 1 if position else -1
    except ValueError:
        return 0
    return statement.count("\n", 0, index) if 0 <= index <= len(statement) else 0


def _shorten(statement: str) -> str:
    return statement if len(statement) <= _SHOWN else statement[:_SHOWN] + " ..."


# --------------------------------------------------------------------------- hook and command


def _run_hook(hook: str, dsn: str, rootdir: Path, password: str | None) -> None:
    from pytest_pipeline.masking import mask_secrets

    module_name, _, name = hook.strip().partition(":")
    try:
        module = _import(module_name, rootdir)
        function = getattr(module, name)
    except Exception as exc:
        raise SchemaError(
            f"{_KEY}.schema_hook {hook!r}: cannot load it: {type(exc).__name__}: {exc}. The "
            "module must be importable from the rootdir (or installed)."
        ) from None
    try:
        function(dsn)
    except Exception as exc:
        frame = _user_frame(exc, getattr(module, "__file__", None))
        at = f" (at {frame.filename}:{frame.lineno})" if frame else ""
        text = mask_secrets(f"{type(exc).__name__}: {exc}", (password,) if password else ())
        raise SchemaError(
            f"{_KEY}.schema_hook {hook!r} failed{at}: {text}\nNo template was made; fix the "
            "hook and run again."
        ) from None


def _user_frame(exc: BaseException, hook_file: str | None) -> traceback.FrameSummary | None:
    """The innermost frame of ``exc`` in the project's code: the hook's module, or a file in
    no library (site-packages, the standard library) nor in pytest-pipeline; else the innermost.
    """
    frames = traceback.extract_tb(exc.__traceback__)
    library = {sysconfig.get_path(name) for name in ("stdlib", "platstdlib", "purelib", "platlib")}
    library.add(str(Path(__file__).resolve().parents[1]))  # pytest_pipeline itself
    roots = tuple(os.path.join(os.path.realpath(p), "") for p in library if p)

    hook_real = os.path.realpath(hook_file) if hook_file else None

    def ours(filename: str) -> bool:
        real = os.path.realpath(filename)
        if real == hook_real:  # a project installed into site-packages, too
            return True
        installed = {"site-packages", "dist-packages"} & set(Path(real).parts)
        return not (filename.startswith("<") or real.startswith(roots) or installed)

    for frame in reversed(frames):
        if ours(frame.filename):
            return frame
    return frames[-1] if frames else None


def _import(module_name: str, rootdir: Path) -> Any:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is None or not module_name.startswith(exc.name):
            raise
    root = str(rootdir)
    if root not in sys.path:
        sys.path.insert(0, root)  # a project module beside pyproject.toml
    return importlib.import_module(module_name)


def _run_command(
    command: str, endpoint: PostgresEndpoint, dbname: str, rootdir: Path, timeout: float
) -> None:
    from pytest_pipeline.masking import mask_secrets

    env = dict(os.environ)
    env.update(
        {
            DSN_ENV: str(endpoint.dsn(dbname)),
            "PGHOST": endpoint.host,
            "PGPORT": str(endpoint.port),
            "PGUSER": endpoint.user,
            "PGDATABASE": dbname,
        }
    )
    if endpoint.password:
        env["PGPASSWORD"] = endpoint.password
    proc = subprocess.Popen(
        command,
        shell=True,
        cwd=rootdir,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its whole process group is stopped on a timeout
    )
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise SchemaError(
            f"{_KEY}.schema_command {command!r} did not finish within {timeout:g} s "
            "(services.startup_timeout); raise it if the migrations are just slow."
        ) from None
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    if proc.returncode != 0:
        text = output.decode(errors="replace").rstrip() or "(no output)"
        tail = "\n".join("    " + line for line in text.splitlines()[-20:])
        secrets = (endpoint.password,) if endpoint.password else ()
        raise SchemaError(
            f"{_KEY}.schema_command {command!r} failed with exit status {proc.returncode} "
            f"(run in {rootdir} with the template's DSN in {DSN_ENV}). Last lines of its "
            f"output:\n{mask_secrets(tail, secrets)}\nNo template was made; fix it and run again."
        )
