"""Scan ``fixtures_dir`` for values that look real, with the fixture loader's own readers.

Every file the loader reads is scanned (``.json``, ``.jsonl``/``.ndjson``, ``.csv``, their
``.gz`` forms, and ``.parquet`` when pyarrow is installed). Bytes come from the loader's reader
(links not followed, ``fixtures_max_mb`` counted after decompression); JSON and JSON Lines are
parsed by the loader's parsers and each string (and integer) value is searched, so a hit names
its record and field; the line and column are where that text sits in the file. CSV cells are
read as written (the stdlib reader), not through pyarrow's type inference, which would turn
``+44...`` into a number. A file the loader cannot parse is searched line by line.

An unchanged tree costs a directory walk: :func:`scan_tree` takes and returns a JSON-able
state (kept in pytest's cache by the plugin) that maps each file's ``(size, mtime_ns)`` to a
hash of its content and each content hash to its hits, masked. A file whose stat changed is
read and hashed; only new content is parsed and searched. Raw values are never stored: a hit
keeps its masked form and a digest, which is how ``fixtures_pii_allow`` values are matched.
"""

from __future__ import annotations

import bisect
import csv
import fnmatch
import hashlib
import importlib.util
import io
import os
import re
import stat
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_pipeline.errors import FixtureFileError, RecordsError

if TYPE_CHECKING:
    from types import ModuleType

    from pytest_pipeline.pii import detectors

__all__ = ["Hit", "ScanResult", "report", "scan_data", "scan_tree"]

#: Bumped when detectors change, so that cached results of an older scan are not reused.
SCANNER_VERSION = 1
#: Hits listed in a collection error or warning; ``pytest-pipeline scan`` lists them all.
MAX_LISTED = 30
#: ``fixtures_max_mb``'s default, in bytes (as the loader's ``DEFAULT_MAX_BYTES``).
DEFAULT_LIMIT = 256 * 1024 * 1024


# An unchanged tree needs neither the loader nor the detectors (about 20 ms to import): both
# are imported when a file has to be read.
def _ff() -> ModuleType:
    from pytest_pipeline.fixture_files import store as fixture_files

    return fixture_files


def _codec() -> ModuleType:
    from pytest_pipeline.records import codec

    return codec


def _detectors() -> ModuleType:
    from pytest_pipeline.pii import detectors

    return detectors


@dataclass(frozen=True)
class Hit:
    """One value that looks real: where it is and its masked form (never the value)."""

    kind: str
    masked: str
    digest: str
    line: int | None = None
    column: int | None = None
    row: int | None = None
    field: str | None = None
    file: str = ""  # relative to fixtures_dir

    def describe(self, prefix: str = "") -> str:
        """``prefix/file:line:column (row 2, field "email"): e-mail address j***@g***.com``."""
        where = prefix + self.file
        if self.line is not None:
            where += f":{self.line}:{self.column}"
        details = []
        if self.row is not None:
            details.append(f"row {self.row}")
        if self.field:
            details.append(f"field {self.field!r}")
        shown = f" ({', '.join(details)})" if details else ""
        return f"{where}{shown}: {self.kind} {self.masked}"


@dataclass
class ScanResult:
    """What one scan found, and how much work it took (the cache's effect)."""

    hits: list[Hit] = field(default_factory=list)
    files: int = 0  # fixture files in the tree (allowed ones excluded)
    read: int = 0  # files read and hashed: new, or their size or mtime changed
    scanned: int = 0  # files parsed and searched: content not seen before
    allowed: int = 0  # hits let through by fixtures_pii_allow values
    allowed_files: int = 0  # files not scanned: a fixtures_pii_allow glob names them
    skipped: list[str] = field(default_factory=list)  # "file: why" for files not scanned

    def stats(self) -> dict[str, int]:
        """The counters, as kept in pytest's cache for the last run."""
        return {
            "files": self.files,
            "read": self.read,
            "scanned": self.scanned,
            "hits": len(self.hits),
            "allowed": self.allowed,
            "skipped": len(self.skipped),
        }


# --------------------------------------------------------------------------- one file


class _Locator:
    """Line and column (1-based) of texts in a file, searched in document order."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.cursor = 0
        self._starts: list[int] | None = None

    @property
    def starts(self) -> list[int]:
        if self._starts is None:  # most files have no hit: count lines only when one does
            self._starts = [0] + [m.end() for m in re.finditer("\n", self.text)]
        return self._starts

    def line_start(self, line: int) -> int:
        return self.starts[line - 1]

    def find(self, raw: str, floor: int = 0) -> tuple[int | None, int | None]:
        pos = self.text.find(raw, max(self.cursor, floor))
        if pos < 0:
            pos = self.text.find(raw, floor)
        if pos < 0:
            return None, None  # written with escapes (JSON "\u0040"): the field still says where
        self.cursor = pos + len(raw)
        line = bisect.bisect_right(self.starts, pos)
        return line, pos - self.starts[line - 1] + 1


def _hit(match: detectors.Match, **where: Any) -> Hit:
    return Hit(
        kind=match.kind,
        masked=_detectors().mask(match.kind, match.value),
        digest=_detectors().digest(match.kind, match.value),
        **where,
    )


def _walk(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """``(field path, text)`` of every string and integer in ``value``, in document order."""
    if isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{key}" if path else str(key)
            if isinstance(key, str):
                yield child + " (key)", key
            yield from _walk(item, child)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _walk(item, f"{path}[{index}]")
    elif isinstance(value, str):
        yield path, value
    elif isinstance(value, int) and not isinstance(value, bool):
        yield path, str(value)


def _scan_record(
    record: Any, row: int | None, locator: _Locator | None, floor: int = 0, path: str = ""
) -> Iterator[Hit]:
    for field_path, text in _walk(record, path):
        for match in _detectors().find(text):
            line, column = (None, None)
            if locator is not None:
                line, column = locator.find(text[match.start : match.end], floor)
            yield _hit(match, line=line, column=column, row=row, field=field_path or None)


def _scan_lines(text: str) -> Iterator[Hit]:
    """A file no parser accepts: every line searched, without record or field."""
    for number, line in enumerate(text.split("\n"), 1):
        for match in _detectors().find(line):
            yield _hit(match, line=number, column=match.start + 1)


def _scan_json(text: str, display: str) -> list[Hit]:
    value = _codec().parse_json(text, display)
    locator = _Locator(text)
    if isinstance(value, list):
        return [
            hit for row, item in enumerate(value, 1) for hit in _scan_record(item, row, locator)
        ]
    return list(_scan_record(value, None, locator))


def _scan_jsonl(text: str, display: str, wanted: set[int] | None) -> list[Hit]:
    records = _codec().parse_jsonl(text, display)
    lines = [n for n, line in enumerate(text.split("\n"), 1) if line.strip(" \t\r")]
    locator = _Locator(text)
    hits: list[Hit] = []
    for row, (record, line) in enumerate(zip(records, lines, strict=True), 1):
        if wanted is None or line in wanted:
            hits.extend(_scan_record(record, row, locator, locator.line_start(line)))
    return hits


def _scan_csv(text: str, wanted: set[int] | None) -> list[Hit]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    locator = _Locator(text)
    header: list[str] | None = None
    hits: list[Hit] = []
    end = row = 0
    for cells in reader:
        start, end = end + 1, reader.line_num
        if not cells:
            continue  # a blank line, skipped by the loader too
        floor = locator.line_start(start)
        if header is None:
            header = cells
            for cell in cells:
                hits.extend(_scan_record(cell, None, locator, floor, "(header)"))
            continue
        row += 1
        if wanted is not None and wanted.isdisjoint(range(start, end + 1)):
            continue
        for index, cell in enumerate(cells):
            name = header[index] if index < len(header) else f"column {index + 1}"
            hits.extend(_scan_record(cell, row, locator, floor, name))
    return hits


def _scan_parquet(data: bytes, display: str, limit: int) -> list[Hit]:
    from pytest_pipeline.records.tables import table_records

    records = table_records(_codec().read_parquet(data, display, limit))
    return [hit for row, record in enumerate(records, 1) for hit in _scan_record(record, row, None)]


def scan_data(data: bytes, name: str, display: str, limit: int) -> list[Hit]:
    """The hits in one fixture file's content (decompressed), as read by the loader.

    ``name`` gives the format by its suffix; ``display`` names the file in parse errors, which
    are not raised: a file that does not parse is searched line by line instead.
    """
    fmt = _codec().format_of(name)
    if fmt is None:
        return []
    if fmt.kind == "parquet":
        return _scan_parquet(data, display, limit)
    text = _codec().decode_text(data, display)
    wanted = None
    if "\\" not in text:
        # Without escapes a value is its text: what the whole text does not hold, no value
        # does. Most files end here, at regex speed; records are read only on lines with a hit.
        # A comma separates CSV cells and JSON items: "1,4539..." is then two values, though in
        # free text a digit run after a comma is no card. ";" keeps the positions.
        found = _detectors().find(text.replace(",", ";"))
        if not found:
            return []
        locator = _Locator(text)
        wanted = {bisect.bisect_right(locator.starts, match.start) for match in found}
    try:
        if fmt.kind == "json":
            return _scan_json(text, display)
        if fmt.kind == "jsonl":
            return _scan_jsonl(text, display, wanted)
        return _scan_csv(text, wanted)
    except (RecordsError, csv.Error):
        return list(_scan_lines(text))


# --------------------------------------------------------------------------- the tree


def _fixture_files(root: Path, names: dict[str, bool]) -> Iterator[tuple[str, str, os.stat_result]]:
    """``(relative posix name, path, lstat)`` of each fixture file, links and dotfiles left out.

    A link is not followed: a target inside the tree is scanned under its own name, and a
    target outside it is not a fixture file the loader would read. ``os.scandir`` gives the
    stat without a second system call; an unchanged tree costs little more than this walk.
    """
    pending = [(str(root), "")]
    while pending:
        folder, prefix = pending.pop()
        try:
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda entry: entry.name)
        except OSError:
            continue  # removed or unreadable while walking
        subfolders = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISDIR(info.st_mode):
                subfolders.append((entry.path, prefix + entry.name + "/"))
            elif stat.S_ISREG(info.st_mode):
                relative = prefix + entry.name
                known = names.get(relative)  # whether a name is a fixture's never changes
                if known is None:
                    known = names[relative] = _codec().format_of(entry.name) is not None
                if known:
                    yield relative, entry.path, info
        pending.extend(reversed(subfolders))


def _allowed_file(relative: str, allow: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(relative, pattern) for pattern in allow)


def _allowed_digests(allow: Sequence[str]) -> set[str]:
    return {
        _detectors().digest(kind, _detectors().normalize(kind, value))
        for value in allow
        for kind in _detectors().KINDS
    }


def _fresh_state(limit: int) -> dict[str, Any]:
    return {"version": SCANNER_VERSION, "limit": limit, "files": {}, "results": {}, "names": {}}


def scan_tree(
    root: Path,
    *,
    allow: Sequence[str] = (),
    limit: int = DEFAULT_LIMIT,
    state: Any = None,
    display_prefix: str = "",
) -> tuple[ScanResult, dict[str, Any]]:
    """Scan every fixture file under ``root``; returns the result and the new cache state.

    ``allow`` holds globs of files (relative to ``root``) that are not scanned, and values
    that are not hits. ``state`` is what an earlier call returned (or None): files whose
    ``(size, mtime_ns)`` did not change are not read, contents seen before not parsed.
    """
    old = state if isinstance(state, dict) else {}
    if old.get("version") != SCANNER_VERSION or old.get("limit") != limit:
        old = _fresh_state(limit)
    old_files: dict[str, Any] = old.get("files", {})
    old_results: dict[str, Any] = old.get("results", {})
    new = _fresh_state(limit)
    names = old.get("names")
    new["names"] = names if isinstance(names, dict) else {}
    result = ScanResult()
    for relative, path, info in _fixture_files(root, new["names"]):
        if _allowed_file(relative, allow):
            result.allowed_files += 1
            continue
        if relative.lower().endswith(".parquet") and not importlib.util.find_spec("pyarrow"):
            result.skipped.append(f"{relative}: Parquet needs pyarrow, which is not installed")
            continue
        result.files += 1
        display = display_prefix + relative
        entry, data = _file_entry(path, display, info, old_files.get(relative), result, limit)
        new["files"][relative] = entry
        digest = entry.get("sha")
        if digest is None:
            result.skipped.append(entry["error"])
            continue
        hits = old_results.get(digest, new["results"].get(digest))
        if hits is None:
            hits = _scan_content(path, data, display, limit, result)
        new["results"][digest] = hits
        result.hits.extend(Hit(**hit, file=relative) for hit in hits)
    _apply_allowlist(result, allow)
    return result, new


def _read(path: str, display: str, limit: int) -> bytes:
    fmt = _codec().format_of(path)
    assert fmt is not None  # only files with a known suffix are walked
    data: bytes = _ff()._read_bytes(Path(path), fmt, display, limit)
    return data


def _file_entry(
    path: str, display: str, info: os.stat_result, cached: Any, result: ScanResult, limit: int
) -> tuple[dict[str, Any], bytes | None]:
    """``{"size", "mtime_ns", "sha"}`` of a file (``"error"`` instead of ``sha`` if unreadable),
    and its content when it had to be read."""
    key = {"size": info.st_size, "mtime_ns": info.st_mtime_ns}
    if isinstance(cached, dict) and all(cached.get(k) == v for k, v in key.items()):
        return cached, None
    result.read += 1
    try:
        data = _read(path, display, limit)
    except FixtureFileError as exc:
        return {**key, "error": str(exc)}, None
    return {**key, "sha": hashlib.sha256(data).hexdigest()}, data


def _scan_content(
    path: str, data: bytes | None, display: str, limit: int, result: ScanResult
) -> list[dict[str, Any]]:
    """The hits of one file's content, as the cache keeps them (no file name: shared by hash)."""
    result.scanned += 1
    try:
        if data is None:  # stat unchanged but no result under its hash: an edited cache
            data = _read(path, display, limit)
        hits = scan_data(data, path, display, limit)
    except (FixtureFileError, RecordsError) as exc:  # not UTF-8, an unreadable Parquet file
        result.skipped.append(str(exc))
        return []
    return [{k: v for k, v in asdict(hit).items() if k != "file"} for hit in hits]


def _apply_allowlist(result: ScanResult, allow: Sequence[str]) -> None:
    if not allow or not result.hits:
        return
    allowed = _allowed_digests(allow)
    kept = [hit for hit in result.hits if hit.digest not in allowed]
    result.allowed = len(result.hits) - len(kept)
    result.hits = kept


# --------------------------------------------------------------------------- the message


def report(result: ScanResult, prefix: str, *, limit: int | None = MAX_LISTED) -> str:
    """The message listing the hits (masked) and what to do about them."""
    files = len({hit.file for hit in result.hits})
    shown = result.hits if limit is None else result.hits[:limit]
    lines = [
        f"fixture files hold data that looks real: {len(result.hits)} value(s) in {files} "
        "file(s); test data must be synthetic or anonymised (fixtures_pii):"
    ]
    lines.extend("  " + hit.describe(prefix) for hit in shown)
    if len(shown) < len(result.hits):
        lines.append(
            f"  ... and {len(result.hits) - len(shown)} more (`pytest-pipeline scan` lists all)"
        )
    lines.append(
        "Replace each value with a made-up one (a published test card number, an address at "
        "example.com, a +1 555-01xx phone number), or, if a value is not real, list it or its "
        "file under fixtures_pii_allow in [tool.pytest-pipeline]."
    )
    return "\n".join(lines)
