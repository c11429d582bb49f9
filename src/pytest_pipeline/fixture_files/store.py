"""Fixture files: load raw input / expected output files from ``fixtures_dir`` and compare.

Supported formats, chosen by suffix: ``.json`` (any JSON value; records are a list of objects),
``.jsonl`` / ``.ndjson`` (one object per line; blank lines are skipped), ``.csv`` (a header line,
types inferred by pyarrow's CSV reader; an unquoted empty cell or ``NA``/``null``/... is null,
a quoted ``""`` is the empty string), ``.parquet``, and ``.gz`` of the text formats. They are
read and written by :mod:`pytest_pipeline.records.codec`, as S3 objects are; this module adds
the files' safe access, the size guard, caching and comparing.

Each file is parsed once per :class:`FixtureStore` (the plugin keeps one per session); a file
rewritten on disk is parsed again. Every call hands out a fresh copy the test may mutate.

pandas and pyarrow are imported only when a file that needs them is used.
"""

from __future__ import annotations

import difflib
import functools
import gzip
import os
import posixpath
import secrets
import stat
import zlib
from collections.abc import Callable, Mapping, Sequence, Sized
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from pytest_pipeline._optional import require
from pytest_pipeline._paths import resolve_inside
from pytest_pipeline.errors import FixtureFileError, RecordsError
from pytest_pipeline.fixture_files.compare import (
    Diff,
    compare,
    mismatch_message,
    order_for_write,
)
from pytest_pipeline.records import codec
from pytest_pipeline.records.codec import SUPPORTED_SUFFIXES, Format
from pytest_pipeline.records.tables import (
    is_record_list,
    is_tabular,
    prepare_frame,
    records_table,
    table_records,
    to_records,
)

if TYPE_CHECKING:
    from types import ModuleType

    import pandas

__all__ = ["SUPPORTED_SUFFIXES", "FixtureStore"]

_MAX_SCANNED_FILES = 10_000  # bound the walk for "did you mean" suggestions
_UPDATE_HINT = "--pipeline-update-fixtures"
_EXTRA = None  # pandas and pyarrow are core dependencies
_MIB = 1024 * 1024
DEFAULT_MAX_BYTES = 256 * _MIB
"""The size guard's default (``fixtures_max_mb = 256``), on decompressed bytes."""
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


def _pyarrow() -> ModuleType:
    return require("pyarrow", _EXTRA, "Fixture files")


@dataclass(frozen=True)
class _Match:
    """How ``assert_matches`` compares (its keyword arguments)."""

    rel: float | None = None
    abs: float | None = None
    key: str | Sequence[str] | None = None
    ignore_order: bool = False
    ignore_columns: str | Sequence[str] | None = None
    tolerance: Mapping[str, Any] | None = None
    csv_raw: bool = False


def _names(columns: str | Sequence[str] | None) -> frozenset[str]:
    if columns is None:
        return frozenset()
    return frozenset((columns,) if isinstance(columns, str) else columns)


def _reordered_table(actual: Any, drop: frozenset[str], order: list[int]) -> Any:
    """A DataFrame or Table without the ``drop`` columns, its rows in ``order``; dtypes kept."""
    pa = _pyarrow()
    if isinstance(actual, pa.Table | pa.RecordBatch):
        table = actual if isinstance(actual, pa.Table) else pa.Table.from_batches([actual])
        table = table.drop_columns([c for c in table.column_names if c in drop])
        return table.take(pa.array(order, type=pa.int64()))
    frame = prepare_frame(actual)  # named index levels are columns, as in to_records
    frame = frame.drop(columns=[c for c in frame.columns if c in drop])
    return frame.iloc[order].reset_index(drop=True)


def _strip_suffix(name: str) -> str:
    """``a/b.jsonl.gz`` -> ``a/b``: the part shared by the same fixture in another format."""
    stem = name[:-3] if name.lower().endswith(".gz") else name
    head, dot, _ = stem.rpartition(".")
    return head if dot and "/" not in stem[len(head) :] else stem


# --------------------------------------------------------------------------- parsed files

_UNSET: Any = object()


class _Entry:
    """One parsed fixture file, kept for the session and never handed out as is."""

    __slots__ = ("_table", "_value", "flat", "kind")

    def __init__(self, kind: str, *, value: Any = _UNSET, table: Any = None, flat: bool = False):
        self.kind = kind
        self._value = value  # parsed JSON, or records built from the table on first use
        self._table = table  # pyarrow Table: immutable, so it is safe to share
        # A list of dicts whose values are all immutable scalars: copying each dict is a deep
        # copy, several times faster than walking the values (measured on 100k rows).
        self.flat = flat

    def data(self) -> Any:
        """The parsed value, shared: callers must not mutate it."""
        if self._value is _UNSET:
            self._value = table_records(self._table)
        return self._value

    def fresh(self) -> Any:
        """A copy of the parsed value the caller owns."""
        value = self.data()
        if self.flat:
            return [row.copy() for row in value]
        return _copy_json(value)

    def table(self, display: str) -> Any:
        if self._table is None:
            try:
                self._table = records_table(self._value, display)
            except RecordsError as exc:
                raise FixtureFileError(str(exc)) from None
        return self._table


def _copy_json(value: Any) -> Any:
    kind = type(value)
    if kind is dict:
        return {k: _copy_json(v) for k, v in value.items()}
    if kind is list:
        return [_copy_json(v) for v in value]
    if kind is tuple:
        return tuple(_copy_json(v) for v in value)
    return value  # scalars are immutable


# --------------------------------------------------------------------------- parsing


def _read_bytes(path: Path, fmt: Format, display: str, limit: int) -> bytes:
    """The file's bytes (decompressed for ``.gz``), never more than ``limit`` of them.

    ``path`` is resolved and checked to be inside the fixtures directory; ``O_NOFOLLOW`` keeps
    a link swapped in since from being followed. A gzip file is inflated in steps, so a bomb
    stops at ``limit`` instead of filling memory.
    """
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
    except OSError as exc:
        raise FixtureFileError(f"cannot read {display}: {exc.strerror or exc}") from None
    with open(fd, "rb") as handle:
        try:
            size = os.fstat(fd).st_size
            if not fmt.gz:
                if size > limit:
                    raise FixtureFileError(codec.too_large(display, limit, size))
                data = handle.read(limit + 1)  # + 1: a file that grew since is caught too
            else:
                with gzip.GzipFile(fileobj=handle, mode="rb") as inflating:
                    data = inflating.read(limit + 1)
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise FixtureFileError(f"{display} is not a valid gzip file: {exc}") from None
        except OSError as exc:
            raise FixtureFileError(f"cannot read {display}: {exc.strerror or exc}") from None
    if len(data) > limit:
        how = " when decompressed" if fmt.gz else ""
        raise FixtureFileError(codec.too_large(display, limit, None, how))
    return data


def _flat_records(value: Any, text: str, outer_brackets: int) -> bool:
    if not isinstance(value, list) or not all(type(row) is dict for row in value):
        return False
    # Fast path: each "{" opens a record and no "[" besides the outer array means no nested
    # containers (a brace inside a string only sends us to the exact check below).
    if text.count("{") == len(value) and text.count("[") == outer_brackets:
        return True
    return all(type(v) not in (dict, list) for row in value for v in row.values())


def _parse(path: Path, fmt: Format, display: str, limit: int, raw: bool = False) -> _Entry:
    """Read and parse one fixture file (called once per file version per store).

    ``raw`` reads a CSV file's cells as text, without type inference.
    """
    data = _read_bytes(path, fmt, display, limit)
    try:
        if fmt.kind == "parquet":
            table = codec.read_parquet(data, display, limit)
            flat = not any(_pyarrow().types.is_nested(f.type) for f in table.schema)
            return _Entry("parquet", table=table, flat=flat)
        if fmt.kind == "csv":  # CSV cells are never nested
            return _Entry("csv", table=codec.read_csv(data, display, raw=raw), flat=True)
        text = codec.decode_text(data, display)
        if fmt.kind == "json":
            value = codec.parse_json(text, display)
            return _Entry("json", value=value, flat=_flat_records(value, text, 1))
        records = codec.parse_jsonl(text, display)
        return _Entry("jsonl", value=records, flat=_flat_records(records, text, 0))
    except RecordsError as exc:
        raise FixtureFileError(str(exc)) from None


# --------------------------------------------------------------------------- writing


def _write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` (resolved, checked to be inside the fixtures dir) with ``data``.

    In one step, so a concurrent reader (another xdist worker) never sees half a file. The
    temporary file is created next to it without following links (``O_EXCL | O_NOFOLLOW``),
    with the existing file's mode, or 0666 less the umask for a new file, like any editor
    would; ``os.replace`` swaps the name itself, never what a link there points to.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        before = os.lstat(path)
    except FileNotFoundError:
        before = None
    mode = stat.S_IMODE(before.st_mode) if before and stat.S_ISREG(before.st_mode) else None
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW
    fd = os.open(tmp, flags, 0o600 if mode is not None else 0o666)
    try:
        with open(fd, "wb") as handle:
            if mode is not None:
                os.chmod(fd if os.chmod in os.supports_fd else tmp, mode)
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------- the store

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _user_facing(method: Callable[_P, _R]) -> Callable[_P, _R]:
    """Show a test author their own line for our errors, not the parser frames below it.

    pytest hides frames that set ``__tracebackhide__``, but the helpers that raise are many;
    dropping the traceback of our own, fully worded errors is simpler and just as clear.
    """

    @functools.wraps(method)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        __tracebackhide__ = True
        try:
            return method(*args, **kwargs)
        except FixtureFileError as exc:
            raise exc.with_traceback(None) from None

    return wrapper


class FixtureStore:
    """Fixture files under ``fixtures_dir``: loaded once, handed out as fresh copies.

    ``update=True`` (``--pipeline-update-fixtures``) makes :meth:`assert_matches` write
    ``actual`` to the fixture file instead of comparing. ``rootdir`` is only used to print
    paths relative to it in messages. ``max_bytes`` (``fixtures_max_mb``) bounds a file's
    size once decompressed.

    Files are read and written only inside ``fixtures_dir`` (itself resolved once, so it may
    be a link): a name whose path resolves outside it, through a link to a file or folder, is
    refused; a link that stays inside is followed.
    """

    def __init__(
        self,
        fixtures_dir: Path,
        *,
        update: bool = False,
        rootdir: Path | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self.fixtures_dir = Path(fixtures_dir).resolve()
        self.update = update
        self.rootdir = Path(rootdir).resolve() if rootdir is not None else None
        self.max_bytes = max_bytes
        self.updated: list[Path] = []
        """Fixture files written by :meth:`assert_matches` in update mode, in order."""
        # (resolved path, raw CSV text?) -> ((mtime_ns, size, inode), parsed file)
        self._cache: dict[tuple[Path, bool], tuple[tuple[int, int, int], _Entry]] = {}

    # ---- public API

    @_user_facing
    def path(self, name: str) -> Path:
        """The resolved path of the fixture file ``name`` (relative to ``fixtures_dir``).

        Raises :class:`FixtureFileError` when it does not exist, naming close matches.
        """
        __tracebackhide__ = True
        return self._existing(self._relative_name(name))

    @_user_facing
    def load(self, name: str, *, csv_raw: bool = False) -> Any:
        """The parsed content of the fixture file ``name``, as a fresh copy.

        ``.json`` gives whatever the JSON holds (records as a list of dicts); ``.jsonl`` /
        ``.ndjson``, ``.csv`` and ``.parquet`` give a list of dicts. ``csv_raw=True`` gives a
        CSV file's cells as the text written (no type inference; an empty cell is ``""``).
        """
        __tracebackhide__ = True
        relative = self._relative_name(name)
        return self._entry(relative, self._format(relative), csv_raw).fresh()

    @_user_facing
    def load_table(self, name: str, *, csv_raw: bool = False) -> Any:
        """The fixture file ``name`` as a pyarrow Table (immutable, so it is shared)."""
        __tracebackhide__ = True
        relative = self._relative_name(name)
        entry = self._entry(relative, self._format(relative), csv_raw)
        return entry.table(self._display(self._existing(relative)))

    @_user_facing
    def load_dataframe(self, name: str, *, csv_raw: bool = False) -> pandas.DataFrame:
        """The fixture file ``name`` as a new pandas DataFrame (built from the Arrow table)."""
        __tracebackhide__ = True
        require("pandas", _EXTRA, "Loading a fixture file as a DataFrame")
        relative = self._relative_name(name)
        entry = self._entry(relative, self._format(relative), csv_raw)
        display = self._display(self._existing(relative))
        try:
            table = entry.table(display)
        except FixtureFileError:
            if entry.kind not in ("json", "jsonl") or not is_record_list(entry.data()):
                raise
            # Records with mixed-type columns have no Arrow schema; pandas makes object columns.
            import pandas as pd

            return pd.DataFrame(entry.fresh())
        frame: pandas.DataFrame = table.to_pandas()
        return frame

    @_user_facing
    def assert_matches(
        self,
        actual: Any,
        name: str,
        *,
        rel: float | None = None,
        abs: float | None = None,
        allow_empty: bool = False,
        key: str | Sequence[str] | None = None,
        ignore_order: bool = False,
        ignore_columns: str | Sequence[str] | None = None,
        tolerance: Mapping[str, float | Mapping[str, float]] | None = None,
        csv_raw: bool = False,
    ) -> None:
        """Assert that ``actual`` equals the fixture file ``name``; in update mode, write it.

        ``actual`` is records (a list of dicts), a pandas DataFrame or a pyarrow Table; for a
        ``.json`` fixture it may be any JSON value. Floats compare within ``rel`` / ``abs``
        (see :mod:`pytest_pipeline.fixture_files.compare` for the full semantics). On a
        mismatch raises ``AssertionError`` listing the differing rows and keys.

        Rows are compared by position unless ``key`` (a column or several) matches them by
        key, or ``ignore_order=True`` compares them in any order. ``ignore_columns`` are left
        out on both sides; ``tolerance`` gives columns their own tolerance (``{"amount": 0.01}``
        is absolute, ``{"amount": {"rel": 1e-6}}`` relative). ``csv_raw=True`` compares a CSV
        file's cells as the exact text written.

        Update mode refuses to write an empty ``actual`` (no rows, ``None``, ``{}``, ``""``)
        unless ``allow_empty=True`` says that no output is the expected result: a broken
        pipeline that outputs nothing must not silently empty its expected file. With ``key``
        it writes the rows sorted by key (with ``ignore_order``, by every column) and without
        the ``ignore_columns``, so the file is stable whatever order the pipeline produced.
        """
        __tracebackhide__ = True
        relative = self._relative_name(name)
        fmt = self._format(relative)
        match = _Match(rel, abs, key, ignore_order, ignore_columns, tolerance, csv_raw)
        if self.update:
            self._update(actual, relative, fmt, match, allow_empty)
            return
        entry = self._entry(relative, fmt, csv_raw, creating=True)
        diff = self._compare(actual, entry, fmt, relative, match)
        if not diff.equal:
            display = self._display(self._existing(relative))
            raise AssertionError(
                mismatch_message(relative, diff)
                + f"\n(fixture file: {display}; if the new output is right, rerun with "
                f"{_UPDATE_HINT} to rewrite it, then review the change)"
            )

    # ---- internals

    def _display(self, path: Path) -> str:
        if self.rootdir is not None and path.is_relative_to(self.rootdir):
            return path.relative_to(self.rootdir).as_posix()
        return str(path)

    def _dir_display(self) -> str:
        shown = self._display(self.fixtures_dir)
        if shown != str(self.fixtures_dir):
            shown += f" ({self.fixtures_dir})"
        return shown

    def _relative_name(self, name: str | os.PathLike[str]) -> str:
        __tracebackhide__ = True
        if not isinstance(name, str | os.PathLike):
            raise TypeError(
                f"a fixture name is a path relative to fixtures_dir, like "
                f"'payments/raw/valid.jsonl'; got {type(name).__name__}"
            )
        text = os.fspath(name)
        if not isinstance(text, str):
            raise TypeError("a fixture name must be a str path, not bytes")
        if "\0" in text:
            raise FixtureFileError(
                f"fixture name {text!r} contains a NUL character (\\0), which no file name can "
                "hold; check how the name was built (a stray byte from binary data or a C "
                "string)"
            )
        windows = PureWindowsPath(text)
        if PurePosixPath(text).is_absolute() or windows.is_absolute() or windows.drive:
            raise FixtureFileError(
                f"fixture name {text!r} is an absolute path; fixture names are relative to the "
                f"fixtures directory {self._dir_display()}, like 'payments/raw/valid.jsonl'"
            )
        normal = posixpath.normpath(text.replace("\\", "/") if os.sep == "\\" else text)
        if normal in ("", "."):
            raise FixtureFileError(
                "empty fixture name; pass a path relative to the fixtures directory, like "
                "'payments/raw/valid.jsonl'"
            )
        if normal == ".." or normal.startswith("../"):
            raise FixtureFileError(
                f"fixture name {text!r} points outside the fixtures directory "
                f"{self._dir_display()}; fixture files must live under it"
            )
        return normal

    def _format(self, relative: str) -> Format:
        __tracebackhide__ = True
        fmt = codec.format_of(relative)
        if fmt is None:
            path = self.fixtures_dir / relative
            if path.is_dir():
                raise FixtureFileError(
                    f"fixture {relative!r} is a directory ({self._display(path)}), not a file"
                )
            raise FixtureFileError(
                f"fixture file {relative!r} has an unsupported format; supported suffixes: "
                f"{', '.join(SUPPORTED_SUFFIXES)}"
            )
        return fmt

    def _inside(self, relative: str) -> Path:
        """The resolved path of ``relative``; an error when a link leads out of the directory."""
        __tracebackhide__ = True
        try:
            path, escape = resolve_inside(self.fixtures_dir, relative)
        except (OSError, RuntimeError) as exc:  # RuntimeError: a link loop (Python < 3.13)
            reason = getattr(exc, "strerror", None) or exc
            raise FixtureFileError(
                f"cannot resolve fixture file {relative!r} in {self._dir_display()}: {reason}"
            ) from None
        if escape is not None:
            raise FixtureFileError(
                f"fixture file {relative!r} leads outside the fixtures directory "
                f"{self._dir_display()}: a symbolic link on the way resolves it to {path}. "
                "Fixture files are read and written only inside that directory: copy the file "
                "into it, or make the link point at a file inside it"
            )
        return path

    def _existing(self, relative: str, creating: bool = False) -> Path:
        """The file's resolved path; a clear error when it is missing.

        ``creating``: the caller is ``assert_matches``, whose missing file update mode writes.
        """
        __tracebackhide__ = True
        path = self._inside(relative)
        if path.is_file():
            return path
        if not self.fixtures_dir.is_dir():
            raise FixtureFileError(
                f"fixtures directory {self._dir_display()} does not exist (looking for "
                f"{relative!r}); create it, or set the `fixtures_dir` key under "
                "[tool.pytest-pipeline] in pyproject.toml to the directory holding your "
                "fixture files"
            )
        if path.is_dir():
            raise FixtureFileError(
                f"fixture {relative!r} is a directory ({self._display(path)}), not a file"
            )
        candidates = self._candidates()
        matches = _suggest(relative, candidates)
        if matches:
            hint = "did you mean " + ", ".join(repr(m) for m in matches) + "?"
        elif candidates:
            hint = "no file with a similar name there"
        else:
            hint = "the directory holds no files"
        if creating:
            hint += (
                f"; if it is a new expected-output file, run pytest with {_UPDATE_HINT} to "
                "create it from actual, then review it"
            )
        raise FixtureFileError(
            f"fixture file {relative!r} not found in the fixtures directory "
            f"{self._dir_display()}: {hint}"
        )

    def _candidates(self) -> list[str]:
        found: list[str] = []
        for dirpath, dirnames, filenames in os.walk(self.fixtures_dir):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for filename in sorted(filenames):
                if filename.startswith("."):
                    continue
                found.append(Path(dirpath, filename).relative_to(self.fixtures_dir).as_posix())
                if len(found) >= _MAX_SCANNED_FILES:
                    return found
        return found

    def _entry(
        self, relative: str, fmt: Format, raw: bool = False, *, creating: bool = False
    ) -> _Entry:
        __tracebackhide__ = True
        if raw and fmt.kind != "csv":
            raise FixtureFileError(
                f"csv_raw=True reads a .csv fixture's cells as text, but {relative!r} is not a "
                "CSV file; JSON, JSON Lines and Parquet keep their own types: drop csv_raw"
            )
        path = self._existing(relative, creating)
        try:
            stat = path.stat()
        except OSError as exc:
            raise FixtureFileError(
                f"cannot read {self._display(path)}: {exc.strerror or exc}"
            ) from None
        # The inode catches atomic rewrites (editors, our update mode) within one mtime tick.
        key = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        cached = self._cache.get((path, raw))
        if cached is not None and cached[0] == key:
            return cached[1]
        entry = _parse(path, fmt, self._display(path), self.max_bytes, raw)
        self._cache[(path, raw)] = (key, entry)
        return entry

    def _compare(
        self, actual: Any, entry: _Entry, fmt: Format, relative: str, match: _Match
    ) -> Diff:
        __tracebackhide__ = True
        if not is_tabular(actual) and fmt.kind != "json" and not is_record_list(actual):
            raise TypeError(
                f"assert_matches_fixture: actual must be records (a list of dicts), a pandas "
                f"DataFrame or a pyarrow Table to compare with {relative}; got "
                f"{type(actual).__name__}"
            )
        try:
            records = to_records(actual) if is_tabular(actual) else actual
            return compare(
                records,
                entry.data(),
                match.rel,
                match.abs,
                text_loose=fmt.kind == "csv" and not match.csv_raw,
                key=match.key,
                ignore_order=match.ignore_order,
                ignore_columns=match.ignore_columns,
                tolerance=match.tolerance,
            )
        except ValueError as exc:  # a bad tolerance or key, duplicate DataFrame columns
            raise ValueError(f"assert_matches_fixture(..., {relative!r}): {exc}") from None

    def _update(
        self, actual: Any, relative: str, fmt: Format, match: _Match, allow_empty: bool
    ) -> None:
        __tracebackhide__ = True
        path = self._inside(relative)
        exists = path.is_file()
        if exists:
            try:
                entry = self._entry(relative, fmt, match.csv_raw)
                if self._compare(actual, entry, fmt, relative, match).equal:
                    return  # leave an equal file alone: no churn in version control
            except FixtureFileError:
                pass  # malformed: overwrite it
            except ValueError:
                pass  # e.g. a key duplicated in the old file; actual is checked just below
        actual = self._shaped(actual, relative, match)
        display = self._display(path)
        if not allow_empty and _is_empty(actual):
            raise FixtureFileError(
                f"assert_matches_fixture: actual for {relative!r} is empty, and "
                f"{_UPDATE_HINT} "
                + (f"would empty {display}" if exists else f"would write {display} empty")
                + "; if the pipeline produced nothing by mistake, fix it first. If no output is "
                f"the expected result, say so: assert_matches_fixture(actual, {relative!r}, "
                "allow_empty=True)"
            )
        if fmt.kind != "json" and not (is_tabular(actual) or is_record_list(actual)):
            raise TypeError(
                f"assert_matches_fixture: actual must be records (a list of dicts), a "
                f"pandas DataFrame or a pyarrow Table to write {relative}; got "
                f"{type(actual).__name__}"
            )
        try:
            data = codec.encode(actual, fmt, display, indent=2, action="write actual to")
        except RecordsError as exc:
            raise FixtureFileError(str(exc)) from None
        try:
            _write_atomically(path, data)
        except OSError as exc:
            raise FixtureFileError(f"cannot write {display}: {exc.strerror or exc}") from None
        for raw in (False, True):
            self._cache.pop((path, raw), None)
        self.updated.append(path)

    def _shaped(self, actual: Any, relative: str, match: _Match) -> Any:
        """``actual`` as update mode writes it: without ``ignore_columns``, in a stable order.

        A duplicated key or a row without the key columns is refused here, as comparing would.
        """
        __tracebackhide__ = True
        if not (match.key or match.ignore_order or match.ignore_columns):
            return actual
        if not (is_tabular(actual) or is_record_list(actual)):
            return actual  # not records: writing it fails with the usual message
        try:
            records = to_records(actual)
            drop = _names(match.ignore_columns)
            if drop:
                records = [{k: v for k, v in row.items() if k not in drop} for row in records]
            order = order_for_write(records, match.key, match.ignore_order)
        except ValueError as exc:
            raise ValueError(f"assert_matches_fixture(..., {relative!r}): {exc}") from None
        if not is_tabular(actual):
            return [records[i] for i in order]
        return _reordered_table(actual, drop, order)


def _is_empty(value: Any) -> bool:
    """No rows, or (for a ``.json`` fixture) an empty or null value."""
    if value is None:
        return True
    # len(), not truth: a DataFrame has no truth value; its len() is its row count.
    return isinstance(value, Sized) and not isinstance(value, bytes | bytearray) and len(value) == 0


def _suggest(relative: str, candidates: list[str]) -> list[str]:
    """Close matches: the same fixture in another format or folder, then near spellings."""
    stem = _strip_suffix(relative)
    folder, _, base = relative.rpartition("/")
    same_stem = [c for c in candidates if _strip_suffix(c) == stem]
    same_base = [c for c in candidates if c.rpartition("/")[2] == base]
    # Spelling is judged on file names within the folder: a shared folder prefix would make
    # every sibling look close. Only the best few are kept, so the hint stays short.
    scored = []
    for candidate in candidates:
        c_folder, _, c_base = candidate.rpartition("/")
        if c_folder == folder:
            scored.append((difflib.SequenceMatcher(None, base, c_base).ratio(), candidate))
    scored.sort(key=lambda item: -item[0])
    best = scored[0][0] if scored else 0.0
    near = [c for ratio, c in scored if ratio >= max(0.6, best - 0.1)][:3]
    if not (same_stem or same_base or near):
        near = difflib.get_close_matches(relative, candidates, n=3, cutoff=0.8)
    return list(dict.fromkeys([*same_stem, *same_base, *near]))[:5]
